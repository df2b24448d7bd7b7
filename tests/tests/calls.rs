//! Calls end to end (issue 5): a resident places a real call from the
//! tablet CLI, central-sim plays the contact from a script, the edge runs
//! the whole lifecycle, and the call record reaches central's billing.

use std::time::{Duration, Instant};

use facility_tests::calls::{call_ready, central_calls, is_state, records, PlacedCall, PIN};
use facility_tests::{find, mentions, wait_until, System};
use serde_json::Value;
/// The facility's video call length for these tests: the warning comes 10 s
/// after the answer and the cut at 70 s.
const LIMIT_SECS: u64 = 70;

fn call_ready_system() -> System {
    call_ready(System::start(), LIMIT_SECS)
}

fn rate_of_contact_1(system: &System) -> i64 {
    let out = system.tablet("R1001", PIN, &["balances"]);
    let contacts = find(out.last(), "contacts").and_then(Value::as_array).cloned().unwrap_or_default();
    let contact = contacts.iter().find(|c| c["contact"] == 1).expect("contact 1 in balances");
    contact["video_rate_cents_per_min"].as_i64().expect("rate")
}

#[test]
fn an_answered_call_is_warned_a_minute_before_the_limit_and_cut_at_it() {
    let system = call_ready_system();
    let rate = rate_of_contact_1(&system);
    system.central_admin(&["call-script", "--contact", "1", "--answer-after", "1"]);
    let mut call = PlacedCall::start(&system, &[]);
    let (_, started) =
        call.wait_for("CallStarted", Duration::from_secs(10), |v| v["ok"].get("CallStarted").is_some());
    assert_eq!(started["ok"]["CallStarted"]["max_duration_secs"], LIMIT_SECS);
    assert_eq!(started["ok"]["CallStarted"]["warn_at_secs"], LIMIT_SECS - 60);
    call.wait_for("ringing", Duration::from_secs(5), |v| is_state(v, "Ringing"));
    let (connected_at, _) = call.wait_for("connected", Duration::from_secs(10), |v| is_state(v, "Connected"));
    let (warned_at, warned) =
        call.wait_for("the warning", Duration::from_secs(20), |v| is_state(v, "Warned"));
    assert_eq!(warned["ok"]["Event"]["Call"]["state"]["Warned"]["remaining_secs"], 60);
    let warn_after = (warned_at - connected_at).as_secs_f64();
    assert!((warn_after - 10.0).abs() <= 1.0, "warned {warn_after} s after the answer");

    let summary = call.summary(Duration::from_secs(LIMIT_SECS + 10));
    assert_eq!(summary["outcome"], "TimeLimit", "{:?}", call.values());
    let connected = summary["connected_secs"].as_f64().unwrap();
    // Both legs are cut at the limit within 200 ms (as the tablet measures it).
    assert!((connected - LIMIT_SECS as f64).abs() <= 0.2, "cut after {connected} s, limit {LIMIT_SECS} s");
    let warned_after = summary["warned_after_secs"].as_f64().unwrap();
    assert!((warned_after - 10.0).abs() <= 1.0, "{summary}");
    assert_eq!(summary["warning_remaining_secs"], 60);

    let record = &records(&system, 1)[0];
    assert_eq!(record["cdr"]["connected_secs"], LIMIT_SECS, "{record}");
    // Every started minute counts: 70 s is two minutes.
    assert_eq!(record["cdr"]["charged_cents"], 2 * rate, "{record}");
    assert_eq!(record["effect"]["collected_cents"], 2 * rate, "{record}");
    let calls = central_calls(&system);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["end_reason"], "TimeLimit");
    assert_eq!(calls[0]["ring"]["max_duration_secs"], LIMIT_SECS);
    // The contact's timer turned red a minute before the cut, on the edge's word.
    assert_eq!(calls[0]["warning_remaining_secs"], 60, "{}", calls[0]);
    let warned = calls[0]["warned_at_ms"].as_i64().expect("the contact was warned");
    let ended = calls[0]["ended_at_ms"].as_i64().expect("the contact's leg ended");
    assert!(
        ((ended - warned) as f64 / 1000.0 - 60.0).abs() <= 1.5,
        "contact warned {} ms before the cut",
        ended - warned
    );
}

#[test]
fn declined_and_unanswered_calls_both_end_as_did_not_answer_without_charge() {
    let system = call_ready_system();
    system.central_admin(&["call-script", "--contact", "1", "--decline-after", "1"]);
    let mut declined = PlacedCall::start(&system, &[]);
    let summary = declined.summary(Duration::from_secs(15));
    assert_eq!(summary["outcome"], "DidNotAnswer", "{:?}", declined.values());
    assert_eq!(summary["connected_secs"].as_f64(), Some(0.0));
    assert!(!declined.values().iter().any(|v| mentions(v, "Declined")), "{:?}", declined.values());
    drop(declined);

    system.central_admin(&["call-script", "--contact", "1", "--no-answer"]);
    let placed = Instant::now();
    let mut unanswered = PlacedCall::start(&system, &[]);
    let summary = unanswered.summary(Duration::from_secs(60));
    assert_eq!(summary["outcome"], "DidNotAnswer", "{:?}", unanswered.values());
    // The edge's ring timeout (45 s) ended it, not anything sooner.
    assert!(placed.elapsed() >= Duration::from_secs(44), "{:?}", placed.elapsed());

    for record in records(&system, 2) {
        assert_eq!(record["cdr"]["connected_secs"], 0, "{record}");
        assert_eq!(record["cdr"]["charged_cents"], 0, "{record}");
        assert_eq!(record["effect"]["collected_cents"], 0, "{record}");
    }
    let reasons: Vec<Value> = central_calls(&system).iter().map(|c| c["end_reason"].clone()).collect();
    assert_eq!(reasons, vec![Value::from("DidNotAnswer"), Value::from("DidNotAnswer")]);
}

#[test]
fn a_lockdown_mid_call_cuts_it_within_a_second() {
    let system = call_ready_system();
    system.central_admin(&["call-script", "--contact", "1", "--answer-after", "0.5"]);
    let mut call = PlacedCall::start(&system, &[]);
    call.wait_for("connected", Duration::from_secs(10), |v| is_state(v, "Connected"));
    std::thread::sleep(Duration::from_secs(2));
    let out = system.edge_cli(&["lockdown", "on"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let locked = Instant::now();
    let (ended_at, ended) = call.wait_for("ended", Duration::from_secs(5), |v| is_state(v, "Ended"));
    assert_eq!(ended["ok"]["Event"]["Call"]["state"]["Ended"]["reason"], "Lockdown");
    assert!(
        ended_at.saturating_duration_since(locked) <= Duration::from_secs(1),
        "cut {:?} after",
        ended_at - locked
    );
    let summary = call.summary(Duration::from_secs(5));
    assert_eq!(summary["outcome"], "Lockdown");
    let record = &records(&system, 1)[0];
    let connected = record["cdr"]["connected_secs"].as_u64().unwrap();
    assert!((2..=4).contains(&connected), "{record}");
}

#[test]
fn a_call_of_an_edge_killed_mid_call_is_recorded_after_the_restart() {
    let mut system = call_ready_system();
    let rate = rate_of_contact_1(&system);
    system.central_admin(&["call-script", "--contact", "1", "--answer-after", "0.5"]);
    let mut call = PlacedCall::start(&system, &[]);
    let (connected_at, _) = call.wait_for("connected", Duration::from_secs(10), |v| is_state(v, "Connected"));
    std::thread::sleep(Duration::from_secs(12));
    system.kill_edge();
    let actual = connected_at.elapsed().as_secs_f64();
    drop(call);
    assert!(records(&system, 0).is_empty(), "no record before the restart");

    system.start_edge();
    let record = &records(&system, 1)[0];
    let connected = record["cdr"]["connected_secs"].as_u64().unwrap();
    assert!(connected as f64 <= actual, "billed {connected} s of {actual} s");
    // Checkpoints come every 5 s while connected: at most that goes unbilled.
    assert!(connected as f64 >= actual - 6.0, "billed {connected} s of {actual} s");
    assert_eq!(
        record["cdr"]["charged_cents"].as_i64(),
        Some(i64::from(connected.div_ceil(60) as u32) * rate)
    );
    wait_until("central hears the call ended", Duration::from_secs(20), || {
        central_calls(&system).first().is_some_and(|c| c["end_reason"] == "EdgeRestarted")
    });
}

#[test]
fn hangups_on_either_side_end_the_call_and_bill_the_started_minute() {
    let system = call_ready_system();
    let rate = rate_of_contact_1(&system);
    system.central_admin(&["call-script", "--contact", "1", "--answer-after", "0.5", "--hangup-after", "3"]);
    let mut contact_hangs_up = PlacedCall::start(&system, &[]);
    let summary = contact_hangs_up.summary(Duration::from_secs(20));
    assert_eq!(summary["outcome"], "ContactHungUp", "{:?}", contact_hangs_up.values());
    let connected = summary["connected_secs"].as_f64().unwrap();
    assert!((2.0..=4.5).contains(&connected), "{summary}");
    drop(contact_hangs_up);

    system.central_admin(&["call-script", "--contact", "1", "--answer-after", "0.5"]);
    let mut resident_hangs_up = PlacedCall::start(&system, &["--hangup-after", "2"]);
    let summary = resident_hangs_up.summary(Duration::from_secs(20));
    assert_eq!(summary["outcome"], "ResidentHungUp", "{:?}", resident_hangs_up.values());
    assert_eq!(summary["hung_up_here"], true);

    for record in records(&system, 2) {
        let secs = record["cdr"]["connected_secs"].as_u64().unwrap();
        assert!((1..=4).contains(&secs), "{record}");
        assert_eq!(record["cdr"]["charged_cents"], rate, "{record}");
    }
    let reasons: Vec<Value> = central_calls(&system).iter().map(|c| c["end_reason"].clone()).collect();
    assert_eq!(reasons, vec![Value::from("ContactHungUp"), Value::from("ResidentHungUp")]);
}

#[test]
fn a_tablet_that_vanishes_mid_call_ends_it_as_connection_lost() {
    let system = call_ready_system();
    system.central_admin(&["call-script", "--contact", "1", "--answer-after", "0.5"]);
    let mut call = PlacedCall::start(&system, &[]);
    call.wait_for("connected", Duration::from_secs(10), |v| is_state(v, "Connected"));
    std::thread::sleep(Duration::from_secs(1));
    // SIGKILL: no close reaches the edge; QUIC's idle timeout (15 s) finds it.
    drop(call);
    let gone = Instant::now();
    wait_until("central hears the call ended", Duration::from_secs(30), || {
        central_calls(&system).first().is_some_and(|c| c["end_reason"] == "ConnectionLost")
    });
    let record = &records(&system, 1)[0];
    let connected = record["cdr"]["connected_secs"].as_u64().unwrap();
    assert!(connected as f64 <= 1.0 + gone.elapsed().as_secs_f64() + 1.0, "{record}");
}

#[test]
fn a_suspension_synced_mid_call_cuts_it() {
    let system = call_ready_system();
    system.central_admin(&["call-script", "--contact", "1", "--answer-after", "0.5"]);
    let mut call = PlacedCall::start(&system, &[]);
    call.wait_for("connected", Duration::from_secs(10), |v| is_state(v, "Connected"));
    system.central_admin(&[
        "suspend",
        "--resident",
        "R1001",
        "--services",
        "video",
        "--until",
        "2099-12-31",
        "--reason",
        "test",
    ]);
    let summary = call.summary(Duration::from_secs(15));
    assert_eq!(summary["outcome"], "Suspended", "{:?}", call.values());
    wait_until("central hears the call ended", Duration::from_secs(10), || {
        central_calls(&system).first().is_some_and(|c| c["end_reason"] == "Suspended")
    });
}

#[test]
fn a_video_call_to_a_contact_with_an_empty_balance_does_not_ring() {
    let system = call_ready_system();
    system.central_admin(&["balance", "--contact", "1", "--cents", "0"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = system.tablet("R1001", PIN, &["call", "--contact", "1", "--kind", "video"]);
        if mentions(out.last(), "InsufficientBalance") {
            break;
        }
        assert!(Instant::now() < deadline, "the empty balance never reached the edge: {}", out.stdout);
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = system.tablet("R1001", PIN, &["call", "--contact", "1", "--kind", "video", "--place"]);
    assert!(mentions(out.last(), "InsufficientBalance"), "{}", out.stdout);
    assert!(!out.json.iter().any(|v| v["ok"].get("CallStarted").is_some()), "{}", out.stdout);
    std::thread::sleep(Duration::from_secs(1));
    assert!(central_calls(&system).is_empty(), "a call with no funds rang the contact");
}
