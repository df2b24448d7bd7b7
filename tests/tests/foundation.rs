//! Issue 2 scenarios over real sockets on loopback, one process per component.

use std::time::{Duration, Instant};

use facility_tests::{find, mentions, System};
use serde_json::Value;

const PIN: &str = "1234";

fn contact(contacts: &Value, id: u64) -> &Value {
    let list = find(contacts, "contacts").and_then(Value::as_array).expect("contacts list");
    list.iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("contact {id} not listed: {contacts}"))
}

#[test]
fn login_with_the_right_pin_and_lockout_after_five_failures() {
    let system = System::start();
    let ok = system.tablet("R1001", PIN, &["login"]);
    assert_eq!(ok.code, 0, "{} {}", ok.stdout, ok.stderr);
    assert_eq!(find(ok.last(), "resident").and_then(Value::as_str), Some("R1001"));

    for remaining in (1..=4).rev() {
        let bad = system.tablet("R1002", "0000", &["login"]);
        assert_eq!(bad.code, 1);
        assert_eq!(find(bad.last(), "remaining_attempts").and_then(Value::as_u64), Some(remaining));
    }
    let locked = system.tablet("R1002", "0000", &["login"]);
    assert!(mentions(locked.last(), "LockedOut"), "{}", locked.stdout);
    // The right PIN does not open a locked ID.
    let still = system.tablet("R1002", PIN, &["login"]);
    assert!(mentions(still.last(), "LockedOut"), "{}", still.stdout);
    // An unknown ID gets the same answer as a wrong PIN.
    let unknown = system.tablet("R9999", PIN, &["login"]);
    assert!(mentions(unknown.last(), "BadCredentials"), "{}", unknown.stdout);
}

#[test]
fn contacts_show_availability_and_the_reason_when_unavailable() {
    let system = System::start();
    let out = system.tablet("R1001", PIN, &["contacts"]);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    let contacts = out.last();
    // Documented in central-sim/README.md ("Demo fixture").
    assert!(mentions(&contact(contacts, 2)["voice"], "NotApproved"), "{contacts}");
    assert!(mentions(&contact(contacts, 3)["voice"], "NumberBlocked"), "{contacts}");
    assert!(mentions(&contact(contacts, 4)["video"], "AccountClosed"), "{contacts}");
    assert!(mentions(&contact(contacts, 5)["video"], "InsufficientBalance"), "{contacts}");
    assert_eq!(contact(contacts, 1)["message"], "Available", "{contacts}");
}

#[test]
fn a_call_is_allowed_inside_hours_and_denied_outside_with_the_reason() {
    let system = System::start();
    system.open_all_day("A");
    wait_for_call(&system, "1", "video", |v| mentions(v, "Allowed"));
    let allowed = system.tablet("R1001", PIN, &["call", "--contact", "1", "--kind", "video"]);
    let max = find(allowed.last(), "max_duration_secs").and_then(Value::as_u64).expect("max duration");
    assert!(max > 0 && max <= 30 * 60, "{}", allowed.stdout);
    let warn = find(allowed.last(), "warn_at_secs").and_then(Value::as_u64).expect("warn_at");
    assert_eq!(warn + 60, max);

    for weekday in 1..=7 {
        system.central_admin(&[
            "schedule",
            "--unit",
            "A",
            "--weekday",
            &weekday.to_string(),
            "--windows",
            "",
        ]);
    }
    wait_for_call(&system, "1", "video", |v| mentions(v, "OutsideCallingHours"));
}

#[test]
fn lockdown_denies_at_once_with_central_stopped() {
    let mut system = System::start();
    system.open_all_day("A");
    wait_for_call(&system, "1", "voice", |v| mentions(v, "Allowed"));
    system.stop_central();

    // A tablet already connected and logged in, as on a unit's wall kiosk.
    let mut kiosk = system.session(&system.device);
    assert!(mentions(&kiosk.send(&format!("login R1001 {PIN}")), "LoggedIn"));
    assert!(mentions(&kiosk.send("call 1 voice"), "Allowed"));

    let out = system.edge_cli(&["lockdown", "on"]);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    let applied = Instant::now();
    let event = kiosk.send("wait-event 2");
    assert!(mentions(&event, "LockdownChanged") && mentions(&event, "Facility"), "{event}");
    let denied = kiosk.send("call 1 voice");
    assert!(mentions(&denied, "Lockdown"), "{denied}");
    assert!(applied.elapsed() < Duration::from_secs(1), "lockdown took {:?} to apply", applied.elapsed());

    let out = system.edge_cli(&["lockdown", "off"]);
    assert_eq!(out.code, 0);
    assert!(mentions(&kiosk.send("wait-event 2"), "LockdownChanged"));
    assert!(mentions(&kiosk.send("call 1 voice"), "Allowed"));

    // A lockdown of another unit leaves R1001 (unit A) alone; unit A's denies.
    system.edge_cli(&["lockdown", "on", "--unit", "B"]);
    kiosk.send("wait-event 2");
    assert!(mentions(&kiosk.send("call 1 voice"), "Allowed"));
    system.edge_cli(&["lockdown", "on", "--unit", "A"]);
    kiosk.send("wait-event 2");
    assert!(mentions(&kiosk.send("call 1 voice"), "Lockdown"));

    // The edge notices that central is gone and says how stale its cache is.
    system.wait_metric("edge_uplink_up", Duration::from_secs(15), |up| up == 0.0);
    let status = system.edge_cli(&["status"]);
    assert_eq!(find(status.last(), "edge_uplink_up").and_then(Value::as_f64), Some(0.0), "{}", status.stdout);
    assert!(find(status.last(), "edge_cache_age_seconds")
        .and_then(Value::as_f64)
        .is_some_and(|age| age >= 1.0));
    assert_eq!(find(status.last(), "edge_lockdowns").and_then(Value::as_f64), Some(2.0), "{}", status.stdout);
}

#[test]
fn a_block_made_in_central_reaches_the_edge_on_the_next_sync() {
    let system = System::start();
    system.open_all_day("A");
    let contacts = system.tablet("R1001", PIN, &["contacts"]);
    let number = contact(contacts.last(), 1)["numbers"][0].as_str().expect("number").to_string();
    wait_for_call(&system, "1", "voice", |v| mentions(v, "Allowed"));
    system.central_admin(&["block", "--number", &number, "--all"]);
    wait_for_call(&system, "1", "voice", |v| mentions(v, "NumberBlocked"));
    system.central_admin(&["unblock", "--number", &number, "--all"]);
    wait_for_call(&system, "1", "voice", |v| mentions(v, "Allowed"));
}

#[test]
fn a_revoked_device_is_refused_and_an_unknown_one_too() {
    let system = System::start();
    let bundle = system.provision("T-0002");
    let ok =
        system.tablet_cmd(&bundle).args(["--resident", "R1003", "--pin", PIN, "login"]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));

    let out = system.edge_cli(&["revoke-device", "--name", "T-0002"]);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    std::thread::sleep(Duration::from_millis(600));
    let refused =
        system.tablet_cmd(&bundle).args(["--resident", "R1003", "--pin", PIN, "login"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(3), "{}", String::from_utf8_lossy(&refused.stdout));

    // A certificate from another CA (here: central's edge identity) is no device.
    let foreign = system.edge_dir.join("uplink.pem");
    let refused =
        system.tablet_cmd(&foreign).args(["--resident", "R1003", "--pin", PIN, "login"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(3));
}

#[test]
fn a_new_login_ends_the_older_session_of_the_same_resident() {
    let system = System::start();
    let mut first = system.session(&system.device);
    assert!(mentions(&first.send(&format!("login R1004 {PIN}")), "LoggedIn"));
    let second_bundle = system.provision("T-0003");
    let mut second = system.session(&second_bundle);
    assert!(mentions(&second.send(&format!("login R1004 {PIN}")), "LoggedIn"));
    let event = first.send("wait-event 5");
    assert!(mentions(&event, "LoggedInElsewhere"), "{event}");
    assert!(mentions(&first.send("contacts"), "NotLoggedIn"));
    assert!(mentions(&second.send("contacts"), "contacts"));
}

#[test]
fn audit_verify_passes_then_detects_an_edit() {
    let system = System::start();
    system.tablet("R1001", PIN, &["call", "--contact", "1", "--kind", "voice"]);
    let ok = system.edge_cli(&["audit", "verify"]);
    assert_eq!(ok.code, 0, "{} {}", ok.stdout, ok.stderr);

    let db = system.edge_dir.join("edge.db");
    let sqlite = |sql: &str| {
        let out =
            std::process::Command::new("sqlite3").arg(&db).arg(sql).output().expect("sqlite3 is installed");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // Someone with the database file drops the append-only triggers and edits a row.
    let triggers =
        sqlite("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log';");
    for name in triggers.lines().filter(|l| !l.is_empty()) {
        sqlite(&format!("DROP TRIGGER \"{name}\";"));
    }
    sqlite("UPDATE audit_log SET actor = 'someone-else' WHERE seq = (SELECT MIN(seq) FROM audit_log);");
    let broken = system.edge_cli(&["audit", "verify"]);
    assert_eq!(broken.code, 1, "{}", broken.stdout);
}

/// Places calls as R1001 until the decision satisfies `pred` (sync and the
/// watcher make changes visible within seconds).
fn wait_for_call(system: &System, contact: &str, kind: &str, pred: impl Fn(&Value) -> bool) {
    let mut last = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let out = system.tablet("R1001", PIN, &["call", "--contact", contact, "--kind", kind]);
        if let Some(v) = out.json.last() {
            if pred(v) {
                return;
            }
            last = v.clone();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("call decision never matched; last: {last}\nedge log:\n{}", system.edge_log());
}
