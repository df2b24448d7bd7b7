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
use proto::domain::{Approval, ContactId, LockdownScope, ResidentId, UnitId};
use proto::messaging::*;
use proto::tablet::*;
use proto::MAX_TABLET_FRAME;
use serde_json::{json, Value};

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
        TabletRequest::StartCall { .. } => {
            TabletResponse::Call(CallDecision::Denied(DenyReason::AccountClosed))
        }
        TabletRequest::HangUp { call_id } => {
            TabletResponse::Error(ApiError::UnknownCall { call_id: *call_id })
        }
        TabletRequest::Media { media: MediaId(5), offset } => {
            let blob = photo_blob();
            let start = usize::try_from(*offset).unwrap_or(usize::MAX).min(blob.len());
            let end = (start + MAX_TABLET_MEDIA_CHUNK as usize).min(blob.len());
            TabletResponse::MediaChunk {
                media: MediaId(5),
                content_type: MediaType::Png,
                total: blob.len() as u64,
                offset: *offset,
                bytes: blob[start..end].to_vec(),
            }
        }
        TabletRequest::Media { media: MediaId(6), .. } => {
            TabletResponse::Error(ApiError::MediaNotDownloaded { media: MediaId(6) })
        }
        TabletRequest::Media { media, .. } => TabletResponse::Error(ApiError::UnknownMedia { media: *media }),
        TabletRequest::Hours | TabletRequest::Balances => TabletResponse::Error(ApiError::NotLoggedIn),
        TabletRequest::Mailbox { folder } => TabletResponse::Mailbox(MailboxView {
            folder: *folder,
            messages: vec![MessageSummary {
                id: INBOX_ID,
                contact: ContactId(1),
                contact_name: "Bo".into(),
                direction: Direction::ContactToResident,
                subject: "Hello".into(),
                at: at(),
                attachments: 1,
                state: MessageState::Received { read: false },
            }],
            unread: 1,
        }),
        TabletRequest::ReadMessage { id } => TabletResponse::Message(MessageView {
            id: *id,
            contact: ContactId(1),
            contact_name: "Bo".into(),
            direction: Direction::ContactToResident,
            subject: "Hello".into(),
            body: "How are you?".into(),
            attachments: vec![Attachment::Photo(MediaId(5))],
            at: at(),
            state: MessageState::Received { read: true },
        }),
        TabletRequest::SaveDraft { draft, compose } => match refuse_compose(compose) {
            Some(error) => messaging_error(error),
            None => TabletResponse::DraftSaved { id: draft.unwrap_or(DRAFT_ID) },
        },
        TabletRequest::SendMessage { draft: Some(id), .. } if *id != DRAFT_ID => {
            messaging_error(MessagingError::UnknownDraft(*id))
        }
        TabletRequest::SendMessage { compose, .. } => match refuse_compose(compose) {
            Some(error) => messaging_error(error),
            None => TabletResponse::MessageQueued(MessageView {
                id: SENT_ID,
                contact: compose.contact,
                contact_name: "Bo".into(),
                direction: Direction::ResidentToContact,
                subject: compose.subject.clone(),
                body: compose.body.clone(),
                attachments: compose.attachments.clone(),
                at: at(),
                state: MessageState::Queued,
            }),
        },
        TabletRequest::DeleteDraft { id } if *id == DRAFT_ID => TabletResponse::DraftDeleted { id: *id },
        TabletRequest::DeleteDraft { id } => messaging_error(MessagingError::UnknownDraft(*id)),
        TabletRequest::HideSent { id } => TabletResponse::SentHidden { id: *id },
        TabletRequest::ECards => TabletResponse::ECards(vec![ECardRecord {
            id: ECardId(3),
            category: "Birthdays".into(),
            title: "Cake".into(),
        }]),
        TabletRequest::StampPackages => TabletResponse::StampPackages(StampShop {
            packages: vec![
                StampPackageRecord { id: PackageId(1), stamps: 5, price_cents: 250 },
                StampPackageRecord { id: PackageId(40), stamps: 40, price_cents: 1600 },
            ],
            debit_available_cents: 1000,
            freshness: Freshness { uplink_up: false, cache_age_secs: Some(600) },
        }),
        TabletRequest::BuyStamps { package: PackageId(40), .. } => {
            messaging_error(MessagingError::InsufficientFunds { available_cents: 1000, price_cents: 1600 })
        }
        TabletRequest::BuyStamps { contact, .. } => TabletResponse::StampsBought(PurchaseView {
            key: PURCHASE_KEY,
            contact: *contact,
            stamps: 5,
            price_cents: 250,
            state: PurchaseState::Queued,
        }),
        TabletRequest::StampBalance => TabletResponse::Stamps(StampBalances {
            contacts: vec![ContactStamps {
                contact: ContactId(1),
                name: "Bo".into(),
                available: 5,
                awaiting_payment: 5,
            }],
            purchases: vec![PurchaseView {
                key: PURCHASE_KEY,
                contact: ContactId(1),
                stamps: 5,
                price_cents: 250,
                state: PurchaseState::Queued,
            }],
            debit_available_cents: 750,
            freshness: Freshness { uplink_up: false, cache_age_secs: Some(600) },
        }),
    }
}

const INBOX_ID: MessageId = MessageId::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888);
const INBOX_HEX: &str = "11112222333344445555666677778888";
const DRAFT_ID: MessageId = MessageId::from_u128(0xd7af7);
const DRAFT_HEX: &str = "000000000000000000000000000d7af7";
const SENT_ID: MessageId = MessageId::from_u128(u128::MAX - 1);
const SENT_HEX: &str = "fffffffffffffffffffffffffffffffe";
const PURCHASE_KEY: IdempotencyKey = IdempotencyKey::from_u128(0xabcdef);
const PURCHASE_HEX: &str = "00000000000000000000000000abcdef";
const BODY_LIMIT: usize = 4000;

/// The fake edge's one photo: larger than a tablet chunk.
fn photo_blob() -> Vec<u8> {
    (0..100_000u32).map(|i| (i % 253) as u8).collect()
}

fn at() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000).unwrap()
}

fn messaging_error(error: MessagingError) -> TabletResponse {
    TabletResponse::Error(ApiError::Messaging(error))
}

/// The stand-in's rules: contact 2 has no stamps, contact 4 is pending
/// approval, eCard 99 is unknown; the limits are the defaults.
fn refuse_compose(compose: &Compose) -> Option<MessagingError> {
    let chars = compose.body.chars().count();
    let unknown_ecard = compose.attachments.iter().find_map(|a| match a {
        Attachment::ECard(ECardId(99)) => Some(ECardId(99)),
        _ => None,
    });
    if chars > BODY_LIMIT {
        Some(MessagingError::TooLong {
            field: TextField::Body,
            chars: chars as u32,
            limit: BODY_LIMIT as u32,
        })
    } else if compose.attachments.len() > MAX_ATTACHMENTS {
        Some(MessagingError::TooManyAttachments {
            count: compose.attachments.len() as u32,
            max: MAX_ATTACHMENTS as u32,
        })
    } else if let Some(card) = unknown_ecard {
        Some(MessagingError::UnknownECard(card))
    } else if compose.contact == ContactId(4) {
        Some(MessagingError::ContactNotApproved { status: Approval::Pending })
    } else if compose.contact == ContactId(2) {
        Some(MessagingError::NoStamps { contact: ContactId(2) })
    } else {
        None
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
                    // Pushed after the answer, as the edge does on a lockdown
                    // or when the mail changes.
                    let event = match resp {
                        TabletResponse::LoggedIn(_) => {
                            Some(ServerEvent::LockdownChanged { active: Some(LockdownScope::Facility) })
                        }
                        TabletResponse::MessageQueued(ref view) => {
                            Some(ServerEvent::MailChanged { id: view.id, unread: 1 })
                        }
                        _ => None,
                    };
                    if let Some(event) = event {
                        let mut uni = conn.open_uni().await.unwrap();
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

    // A placed call the policy denies never rings: the denial, exit 1.
    let out = run(&edge, &edge.good, &["call", "--contact", "1", "--kind", "video", "--place"], "").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{out:?}");
    assert_eq!(lines[0]["ok"]["Call"]["Denied"], "AccountClosed");
    assert!(matches!(seen_last(&edge), TabletRequest::StartCall { contact: ContactId(1), .. }));

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

fn seen_last(edge: &FakeEdge) -> TabletRequest {
    edge.seen.lock().unwrap().last().cloned().unwrap()
}

/// Runs one command and returns its exit code and single JSON line.
async fn one(edge: &FakeEdge, args: &[&str], stdin: &str) -> (Option<i32>, Value) {
    let out = run(edge, &edge.good, args, stdin).await;
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{out:?}");
    (out.status.code(), lines.into_iter().next().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_commands_send_typed_requests_and_print_hex_ids() {
    let edge = start("mail").await;

    let (code, line) = one(&edge, &["messages", "inbox"], "").await;
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(line["ok"]["Mailbox"]["folder"], "Inbox");
    assert_eq!(line["ok"]["Mailbox"]["unread"], 1);
    assert_eq!(line["ok"]["Mailbox"]["messages"][0]["id"], INBOX_HEX);
    assert_eq!(line["ok"]["Mailbox"]["messages"][0]["state"], json!({"Received": {"read": false}}));
    let (_, line) = one(&edge, &["messages", "drafts"], "").await;
    assert_eq!(line["ok"]["Mailbox"]["folder"], "Drafts");
    assert_eq!(seen_last(&edge), TabletRequest::Mailbox { folder: Folder::Drafts });

    // The printed ID is what `message read` takes back.
    let (code, line) = one(&edge, &["message", "read", INBOX_HEX], "").await;
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(line["ok"]["Message"]["id"], INBOX_HEX);
    assert_eq!(line["ok"]["Message"]["attachments"], json!([{"Photo": 5}]));
    assert_eq!(seen_last(&edge), TabletRequest::ReadMessage { id: INBOX_ID });

    let (code, line) = one(
        &edge,
        &["message", "draft", "--contact", "1", "--subject", "Soon", "--body", "half", "--ecard", "3"],
        "",
    )
    .await;
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(line, json!({"ok": {"DraftSaved": {"id": DRAFT_HEX}}}));
    let compose = Compose {
        contact: ContactId(1),
        subject: "Soon".into(),
        body: "half".into(),
        attachments: vec![Attachment::ECard(ECardId(3))],
    };
    assert_eq!(seen_last(&edge), TabletRequest::SaveDraft { draft: None, compose: compose.clone() });

    let args = ["message", "draft", "--contact", "1", "--subject", "Soon", "--body", "half", "--ecard", "3"];
    let (_, line) = one(&edge, &[&args[..], &["--id", DRAFT_HEX]].concat(), "").await;
    assert_eq!(line["ok"]["DraftSaved"]["id"], DRAFT_HEX);
    assert_eq!(seen_last(&edge), TabletRequest::SaveDraft { draft: Some(DRAFT_ID), compose });

    // A long body from stdin, sent from the draft; the final line break is dropped.
    let body = "Dear Bo,\n\nIt's been a while. Grüße 😀\n";
    let (code, line) = one(
        &edge,
        &[
            "message",
            "send",
            "--contact",
            "1",
            "--subject",
            "Re: Hello",
            "--body-file",
            "-",
            "--draft",
            DRAFT_HEX,
        ],
        body,
    )
    .await;
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(line["ok"]["MessageQueued"]["id"], SENT_HEX);
    assert_eq!(line["ok"]["MessageQueued"]["state"], "Queued");
    assert_eq!(line["ok"]["MessageQueued"]["body"], "Dear Bo,\n\nIt's been a while. Grüße 😀");
    assert_eq!(
        seen_last(&edge),
        TabletRequest::SendMessage {
            draft: Some(DRAFT_ID),
            compose: Compose {
                contact: ContactId(1),
                subject: "Re: Hello".into(),
                body: "Dear Bo,\n\nIt's been a while. Grüße 😀".into(),
                attachments: vec![],
            },
        }
    );

    let (code, line) = one(&edge, &["message", "delete-draft", DRAFT_HEX], "").await;
    assert_eq!((code, line), (Some(0), json!({"ok": {"DraftDeleted": {"id": DRAFT_HEX}}})));
    let (code, line) = one(&edge, &["message", "hide", SENT_HEX], "").await;
    assert_eq!((code, line), (Some(0), json!({"ok": {"SentHidden": {"id": SENT_HEX}}})));
    assert_eq!(seen_last(&edge), TabletRequest::HideSent { id: SENT_ID });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecards_and_stamps() {
    let edge = start("stamps").await;

    let (code, line) = one(&edge, &["ecards"], "").await;
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(line, json!({"ok": {"ECards": [{"id": 3, "category": "Birthdays", "title": "Cake"}]}}));

    let (code, line) = one(&edge, &["stamps", "packages"], "").await;
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(
        line["ok"]["StampPackages"]["packages"][1],
        json!({"id": 40, "stamps": 40, "price_cents": 1600})
    );
    assert_eq!(line["ok"]["StampPackages"]["freshness"]["uplink_up"], false);

    let (code, line) = one(&edge, &["stamps", "buy", "--contact", "1", "--package", "1"], "").await;
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(
        line,
        json!({"ok": {"StampsBought": {"key": PURCHASE_HEX, "contact": 1, "stamps": 5, "price_cents": 250, "state": "Queued"}}})
    );
    assert_eq!(seen_last(&edge), TabletRequest::BuyStamps { contact: ContactId(1), package: PackageId(1) });

    let (code, line) = one(&edge, &["stamps", "balance"], "").await;
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(line["ok"]["Stamps"]["purchases"][0]["key"], PURCHASE_HEX);
    assert_eq!(
        line["ok"]["Stamps"]["contacts"][0],
        json!({"contact": 1, "name": "Bo", "available": 5, "awaiting_payment": 5})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messaging_refusals_exit_1_with_typed_errors() {
    let edge = start("mailrefused").await;
    let send =
        |contact: &'static str| ["message", "send", "--contact", contact, "--subject", "Hi", "--body", "x"];
    let long_body = edge.dir.join("long.txt");
    std::fs::write(&long_body, "é".repeat(BODY_LIMIT + 1)).unwrap();
    let long_body = long_body.to_str().unwrap().to_string();
    let six_cards: Vec<&str> = ["--ecard", "3"].repeat(6);

    let cases: Vec<(Vec<&str>, Value)> = vec![
        (send("2").to_vec(), json!({"NoStamps": {"contact": 2}})),
        (send("4").to_vec(), json!({"ContactNotApproved": {"status": "Pending"}})),
        (
            vec!["message", "send", "--contact", "1", "--subject", "Hi", "--body-file", &long_body],
            json!({"TooLong": {"field": "Body", "chars": BODY_LIMIT + 1, "limit": BODY_LIMIT}}),
        ),
        ([&send("1")[..], &six_cards].concat(), json!({"TooManyAttachments": {"count": 6, "max": 5}})),
        ([&send("1")[..], &["--ecard", "3", "--ecard", "99"]].concat(), json!({"UnknownECard": 99})),
        ([&send("1")[..], &["--draft", INBOX_HEX]].concat(), json!({"UnknownDraft": INBOX_HEX})),
        (vec!["message", "delete-draft", SENT_HEX], json!({"UnknownDraft": SENT_HEX})),
        (
            vec!["message", "draft", "--contact", "4", "--subject", "S", "--body", "B"],
            json!({"ContactNotApproved": {"status": "Pending"}}),
        ),
        (
            vec!["stamps", "buy", "--contact", "1", "--package", "40"],
            json!({"InsufficientFunds": {"available_cents": 1000, "price_cents": 1600}}),
        ),
    ];
    for (args, api) in cases {
        let (code, line) = one(&edge, &args, "").await;
        assert_eq!(code, Some(1), "{args:?}: {line}");
        assert_eq!(line["error"]["kind"], "api", "{args:?}");
        assert_eq!(line["error"]["api"], json!({"Messaging": api}), "{args:?}");
        assert!(line["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_message_arguments_exit_2_without_a_request() {
    let edge = start("mailusage").await;
    let missing = edge.dir.join("no-such-body.txt");
    let missing = missing.to_str().unwrap();
    let huge = "a".repeat(MAX_TABLET_FRAME + 1);
    // Each with a word its message must contain.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["message", "read", "1234"], "32 hex digits"),
        (vec!["message", "read", &INBOX_HEX[..31]], "32 hex digits"),
        (vec!["messages", "trash"], "trash"),
        (vec!["message", "send", "--contact", "1", "--subject", "S"], "--body"),
        (
            vec!["message", "send", "--contact", "1", "--subject", "S", "--body", "B", "--body-file", "-"],
            "--body",
        ),
        (
            vec!["message", "send", "--contact", "1", "--subject", "S", "--body", "B", "--ecard", "x"],
            "--ecard",
        ),
        (vec!["stamps", "buy", "--contact", "1"], "--package"),
        (
            vec!["message", "send", "--contact", "1", "--subject", "S", "--body-file", missing],
            "no-such-body.txt",
        ),
        // Longer than a frame can carry: refused before anything is sent.
        (
            vec!["message", "send", "--contact", "1", "--subject", "S", "--body", &huge],
            "the edge takes at most",
        ),
    ];
    for (args, word) in cases {
        let (code, line) = one(&edge, &args, "").await;
        assert_eq!(code, Some(2), "{:?}: {line}", &args[..2]);
        assert_eq!(line["error"]["kind"], "usage", "{:?}", &args[..2]);
        let message = line["error"]["message"].as_str().unwrap();
        assert!(message.contains(word), "{:?}: {message}", &args[..2]);
    }
    assert!(edge.seen.lock().unwrap().is_empty(), "{:?}", edge.seen.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lines_take_quoted_messages() {
    let edge = start("mailsession").await;
    let body_file = edge.dir.join("letter.txt");
    std::fs::write(&body_file, "line one\nline two\n").unwrap();
    let script = format!(
        "messages inbox\n\
         send 1 \"Hello, Bo\" 'It'\\''s me: \"Ada\"' --ecard 3\n\
         wait-event 5\n\
         draft 1 'From a file' --body-file '{}'\n\
         send 2 Hi 'no stamps'\n\
         send 1 \"unclosed\n\
         read {INBOX_HEX} # mark it read\n\
         stamps buy 1 1\n\
         stamps balance\n\
         ecards\n",
        body_file.display()
    );
    let out = run(&edge, &edge.good, &["session"], &script).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 10, "{lines:?}");
    assert_eq!(lines[0]["ok"]["Mailbox"]["messages"][0]["id"], INBOX_HEX);
    assert_eq!(lines[1]["ok"]["MessageQueued"]["subject"], "Hello, Bo");
    assert_eq!(lines[1]["ok"]["MessageQueued"]["body"], "It's me: \"Ada\"");
    assert_eq!(lines[1]["ok"]["MessageQueued"]["attachments"], json!([{"ECard": 3}]));
    assert_eq!(lines[2], json!({"ok": {"Event": {"MailChanged": {"id": SENT_HEX, "unread": 1}}}}));
    assert_eq!(lines[3], json!({"ok": {"DraftSaved": {"id": DRAFT_HEX}}}));
    assert_eq!(lines[4]["error"]["api"], json!({"Messaging": {"NoStamps": {"contact": 2}}}));
    assert_eq!(lines[5]["error"]["kind"], "usage");
    assert_eq!(lines[6]["ok"]["Message"]["id"], INBOX_HEX);
    assert_eq!(lines[7]["ok"]["StampsBought"]["key"], PURCHASE_HEX);
    assert_eq!(lines[8]["ok"]["Stamps"]["debit_available_cents"], 750);
    assert_eq!(lines[9]["ok"]["ECards"][0]["id"], 3);

    let seen = edge.seen.lock().unwrap().clone();
    assert!(seen.contains(&TabletRequest::SaveDraft {
        draft: None,
        compose: Compose {
            contact: ContactId(1),
            subject: "From a file".into(),
            body: "line one\nline two".into(),
            attachments: vec![],
        },
    }));
    assert_eq!(edge.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_media_fetches_every_chunk_and_writes_the_file() {
    use sha2::Digest;
    let edge = start("media").await;
    let file = edge.dir.join("photo.png");
    let (code, line) =
        one(&edge, &["message", "media", "--media", "5", "--out", file.to_str().unwrap()], "").await;
    assert_eq!(code, Some(0), "{line}");
    let blob = photo_blob();
    assert_eq!(std::fs::read(&file).unwrap(), blob);
    assert_eq!(line["ok"]["Media"]["size"], blob.len() as u64);
    assert_eq!(line["ok"]["Media"]["content_type"], "image/png");
    assert_eq!(line["ok"]["Media"]["sha256"], hex::encode(sha2::Sha256::digest(&blob)));
    let chunks =
        edge.seen.lock().unwrap().iter().filter(|r| matches!(r, TabletRequest::Media { .. })).count();
    assert_eq!(chunks, 3, "100 000 bytes in 48 KiB chunks");

    let other = edge.dir.join("other");
    let (code, line) =
        one(&edge, &["message", "media", "--media", "6", "--out", other.to_str().unwrap()], "").await;
    assert_eq!(code, Some(1), "{line}");
    assert_eq!(line["error"]["api"], json!({"MediaNotDownloaded": {"media": 6}}));
    let (_, line) =
        one(&edge, &["message", "media", "--media", "7", "--out", other.to_str().unwrap()], "").await;
    assert_eq!(line["error"]["api"], json!({"UnknownMedia": {"media": 7}}));
    assert!(!other.exists());
}
