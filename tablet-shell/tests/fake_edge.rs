//! The `tablet-shell cli` binary against a stand-in edge on loopback: checks
//! the wire (ALPN, frames, pushed events on uni streams), the JSON lines and
//! the exit codes. The real edge's behaviour is tested end to end elsewhere;
//! the stand-in only answers enough to tell the client's paths apart.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use net::{pki::Authority, quic, rpc};
use proto::domain::{ContactId, LockdownScope, ResidentId, UnitId};
use proto::tablet::*;
use proto::MAX_TABLET_FRAME;
use serde_json::Value;

#[derive(Debug)]
struct DenyList(HashSet<String>);

impl quic::ClientGate for DenyList {
    fn admit(&self, peer: &quic::PeerCert) -> Result<(), String> {
        if self.0.contains(&peer.fingerprint) {
            Err("revoked".into())
        } else {
            Ok(())
        }
    }
}

type Seen = Arc<Mutex<Vec<TabletRequest>>>;

struct FakeEdge {
    addr: SocketAddr,
    good: PathBuf,
    revoked: PathBuf,
    seen: Seen,
    connections: Arc<AtomicUsize>,
    dir: PathBuf,
}

impl Drop for FakeEdge {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn answer(req: &TabletRequest) -> TabletResponse {
    match req {
        TabletRequest::Login { pin, .. } if pin != "1234" => {
            TabletResponse::Error(ApiError::BadCredentials { remaining_attempts: 4 })
        }
        TabletRequest::Login { resident, .. } => TabletResponse::LoggedIn(SessionInfo {
            resident: resident.clone(),
            name: "Ada".into(),
            unit: UnitId::new("A"),
            session_id: 1,
        }),
        TabletRequest::Logout => TabletResponse::LoggedOut,
        TabletRequest::Contacts => TabletResponse::Contacts(ContactList {
            contacts: vec![],
            freshness: Freshness { uplink_up: true, cache_age_secs: Some(3) },
        }),
        TabletRequest::PlaceCall { contact: ContactId(1), .. } => {
            TabletResponse::Call(CallDecision::Allowed {
                max_duration_secs: 900,
                warn_at_secs: 840,
                limited_by: LimitedBy::CallLength,
            })
        }
        TabletRequest::PlaceCall { .. } => {
            TabletResponse::Call(CallDecision::Denied(DenyReason::AccountClosed))
        }
        TabletRequest::Hours | TabletRequest::Balances => TabletResponse::Error(ApiError::NotLoggedIn),
    }
}

async fn start(tag: &str) -> FakeEdge {
    let dir = std::env::temp_dir().join(format!("tablet-shell-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ca = Authority::load_or_create(&dir, "Test CA").unwrap();
    let server_id = ca.issue_server("edge", &["localhost".into(), "127.0.0.1".into()]).unwrap();
    let good = ca.issue_client("T-0001").unwrap();
    let revoked = ca.issue_client("T-0002").unwrap();
    let (good_path, revoked_path) = (dir.join("good.bundle"), dir.join("revoked.bundle"));
    good.save(&good_path).unwrap();
    revoked.save(&revoked_path).unwrap();

    let gate = Arc::new(DenyList([revoked.fingerprint().unwrap()].into_iter().collect()));
    let server =
        quic::server_endpoint("127.0.0.1:0".parse().unwrap(), &server_id, gate, quic::TABLET_ALPN).unwrap();
    let addr = server.local_addr().unwrap();
    let seen = Seen::default();
    let log = seen.clone();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let log = log.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    let Ok(req) = rpc::read_frame::<TabletRequest>(&mut recv, MAX_TABLET_FRAME).await else {
                        return;
                    };
                    log.lock().unwrap().push(req.clone());
                    let resp = answer(&req);
                    rpc::write_frame(&mut send, &resp, MAX_TABLET_FRAME).await.unwrap();
                    send.finish().unwrap();
                    if matches!(resp, TabletResponse::LoggedIn(_)) {
                        // Pushed after the answer, as the edge does on a lockdown.
                        let mut uni = conn.open_uni().await.unwrap();
                        let event = ServerEvent::LockdownChanged { active: Some(LockdownScope::Facility) };
                        rpc::write_frame(&mut uni, &event, MAX_TABLET_FRAME).await.unwrap();
                        uni.finish().unwrap();
                    }
                }
            });
        }
    });
    FakeEdge { addr, good: good_path, revoked: revoked_path, seen, connections, dir }
}

/// Runs the binary off the runtime's threads so the fake edge keeps serving.
async fn run(edge: &FakeEdge, bundle: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tablet-shell"));
    cmd.args(["cli", "--edge", &edge.addr.to_string(), "--cert"])
        .arg(bundle)
        .args(args)
        .env_remove("TABLET_PIN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_prints_session_and_logs_out_afterwards() {
    let edge = start("login").await;
    let out = run(&edge, &edge.good, &["--resident", "R1001", "--pin", "1234", "login"], "").await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["ok"]["LoggedIn"]["resident"], "R1001");
    let seen = edge.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            TabletRequest::Login { resident: ResidentId::new("R1001"), pin: "1234".into() },
            TabletRequest::Logout
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_can_come_from_the_environment() {
    let edge = start("envpin").await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tablet-shell"));
    cmd.args(["cli", "--edge", &edge.addr.to_string(), "--cert"])
        .arg(&edge.good)
        .args(["--resident", "R1001", "contacts"])
        .env("TABLET_PIN", "1234");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "only the command's answer is printed");
    assert_eq!(lines[0]["ok"]["Contacts"]["freshness"]["cache_age_secs"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_exit_1_with_json() {
    let edge = start("refused").await;

    let out = run(&edge, &edge.good, &["--resident", "R1001", "--pin", "0000", "contacts"], "").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines[0]["error"]["kind"], "api");
    assert_eq!(lines[0]["error"]["api"]["BadCredentials"]["remaining_attempts"], 4);
    assert!(!edge.seen.lock().unwrap().contains(&TabletRequest::Contacts), "no command after a failed login");

    let out = run(&edge, &edge.good, &["call", "--contact", "2", "--kind", "voice"], "").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(json_lines(&out)[0]["ok"]["Call"]["Denied"], "AccountClosed");

    let out = run(&edge, &edge.good, &["call", "--contact", "1", "--kind", "video"], "").await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json_lines(&out)[0]["ok"]["Call"]["Allowed"]["max_duration_secs"], 900);

    let out = run(&edge, &edge.good, &["hours"], "").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(json_lines(&out)[0]["error"]["api"], "NotLoggedIn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_device_exits_3_and_bad_bundle_exits_2() {
    let edge = start("revoked").await;
    let out = run(&edge, &edge.revoked, &["--resident", "R1001", "--pin", "1234", "login"], "").await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["error"]["kind"], "connection");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
    eprintln!("revoked device: {stderr}");
    assert!(edge.seen.lock().unwrap().is_empty(), "a refused device reaches no handler");

    let missing = edge.dir.join("missing.bundle");
    let out = run(&edge, &missing, &["contacts"], "").await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json_lines(&out)[0]["error"]["kind"], "bundle");

    let out = run(&edge, &edge.good, &["call", "--kind", "voice"], "").await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json_lines(&out)[0]["error"]["kind"], "usage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_reads_commands_and_receives_pushed_events() {
    let edge = start("session").await;
    let script = "# demo\nlogin R1001 1234\nwait-event 5\ncall 1 voice\ndial 5\nlogout\nwait-event 0.2\nquit\ncontacts\n";
    let out = run(&edge, &edge.good, &["session"], script).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(lines[0]["ok"]["LoggedIn"]["session_id"], 1);
    assert_eq!(lines[1]["ok"]["Event"]["LockdownChanged"]["active"], "Facility");
    assert_eq!(lines[2]["ok"]["Call"]["Allowed"]["limited_by"], "CallLength");
    assert_eq!(lines[3]["error"]["kind"], "usage");
    assert_eq!(lines[4]["ok"], "LoggedOut");
    assert_eq!(lines[5]["error"]["kind"], "timeout");
    // Nothing after quit; one connection for the whole script; no second
    // logout since the script logged out itself.
    let seen = edge.seen.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|r| **r == TabletRequest::Logout).count(), 1);
    assert!(!seen.contains(&TabletRequest::Contacts));
    assert_eq!(edge.connections.load(Ordering::SeqCst), 1);
}
