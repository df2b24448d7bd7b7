//! The `central-sim` binary as other processes use it: exit codes, JSON on
//! stdout, readiness through `central.addr`, clean stop on SIGTERM.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn central_sim(args: &[&str], state: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_central-sim"));
    // `--state` goes right after the subcommand (and admin's own flags).
    let (head, tail) = args.split_at(1);
    cmd.args(head).arg("--state").arg(state).args(tail);
    cmd.output().unwrap()
}

fn json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

fn admin(state: &Path, args: &[&str]) -> Output {
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    central_sim(&all, state)
}

#[test]
fn init_admin_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("central");
    let first = central_sim(&["init"], &state);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(
        json(&first)["created"].as_array().unwrap().len(),
        5,
        "db, CA, server and edge bundles, relay TLS files"
    );
    let again = central_sim(&["init"], &state);
    assert!(again.status.success());
    assert_eq!(json(&again)["created"], Value::Array(vec![]));
    assert!(json(&again)["message"].as_str().unwrap().contains("nothing changed"));

    let head = json(&admin(&state, &["head"]));
    let out = admin(&state, &["block", "--number", "+15550100001", "--all"]);
    assert!(out.status.success(), "{out:?}");
    let result = json(&out);
    assert_eq!(result["changed"], true);
    assert_eq!(result["seq"], head["head"].as_u64().unwrap() + 1);

    let after = json(&admin(&state, &["head"]));
    for bad in [
        &["block", "--number", "not-a-number", "--all"][..],
        &["block", "--number", "+15550100001"],
        &["approve", "--contact", "1", "--service", "fax", "--status", "approved"],
        &["balance", "--contact", "424242", "--cents", "100"],
        &["schedule", "--unit", "A", "--weekday", "9", "--windows", "08:00-09:00"],
        &["review", "--message", "ffff", "--approve"],
        &["review", "--message", "10010004"],
        &["stamps", "--resident", "R1001", "--contact", "9999", "--count", "1"],
        &["deliveries", "--key", "not-a-key"],
    ] {
        let out = admin(&state, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{bad:?} printed a result");
        assert!(!out.stderr.is_empty(), "{bad:?} explains the error");
        assert_eq!(json(&admin(&state, &["head"])), after, "{bad:?} changed the database");
    }

    let out = admin(&state, &["review", "--message", "10010004", "--approve"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["entity"]["Mail"]["review"], "Approved");
    let out = admin(&state, &["deliveries"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["keys"], 0);

    let empty = dir.path().join("empty");
    let out = admin(&empty, &["head"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!empty.join("central.db").exists(), "admin does not create a database");
}

#[test]
fn serve_announces_its_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    assert!(central_sim(&["init"], state).status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_central-sim"))
        .args(["serve", "--state"])
        .arg(state)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr_file = state.join("central.addr");
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        if let Ok(text) = std::fs::read_to_string(&addr_file) {
            break text.trim().to_string();
        }
        assert!(Instant::now() < deadline, "central.addr never appeared");
        std::thread::sleep(Duration::from_millis(50));
    };
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(!addr_file.exists());
    let stdout = child.stdout.take().map(|mut s| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut s, &mut text).unwrap();
        text
    });
    assert_eq!(stdout.as_deref(), Some(""), "serve keeps stdout clean");
}
