//! Calls end to end (issue 5): a resident places a real call from the
//! tablet CLI, central-sim plays the contact from a script, the edge runs
//! the whole lifecycle, and the call record reaches central's billing.

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use facility_tests::{find, mentions, wait_until, System, FACILITY};
use serde_json::Value;

const PIN: &str = "1234";
/// The facility's video call length for these tests: the warning comes 10 s
/// after the answer and the cut at 70 s.
const LIMIT_SECS: u64 = 70;

/// Opens calling hours all day, gives contact 1 money and sets the video
/// limit, then waits until the edge decides with the new limit.
fn call_ready_system() -> System {
    let system = System::start();
    for weekday in 1..=7 {
        system.central_admin(&[
            "schedule",
            "--unit",
            "A",
            "--weekday",
            &weekday.to_string(),
            "--windows",
            "00:00-24:00",
        ]);
    }
    system.central_admin(&["facility", "--id", FACILITY, "--video-limit-secs", &LIMIT_SECS.to_string()]);
    system.central_admin(&["balance", "--contact", "1", "--cents", "100000"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = system.tablet("R1001", PIN, &["call", "--contact", "1", "--kind", "video"]);
        let max = out.json.last().and_then(|v| find(v, "max_duration_secs")).and_then(Value::as_u64);
        if max == Some(LIMIT_SECS) {
            break;
        }
        assert!(Instant::now() < deadline, "the edge never allowed a {LIMIT_SECS} s call: {}", out.stdout);
        std::thread::sleep(Duration::from_millis(200));
    }
    system
}

/// A `call --place` running in the background, its JSON lines timestamped.
struct PlacedCall {
    child: Child,
    lines: mpsc::Receiver<(Instant, Value)>,
    seen: Vec<(Instant, Value)>,
}

impl PlacedCall {
    fn start(system: &System, extra: &[&str]) -> PlacedCall {
        let mut child = system
            .tablet_cmd(&system.device)
            .args([
                "--resident",
                "R1001",
                "--pin",
                PIN,
                "call",
                "--contact",
                "1",
                "--kind",
                "video",
                "--place",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send((Instant::now(), value)).is_err() {
                    break;
                }
            }
        });
        PlacedCall { child, lines, seen: Vec::new() }
    }

    /// Waits for the first line satisfying `pred`; returns when it came.
    fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> (Instant, Value) {
        if let Some(found) = self.seen.iter().find(|(_, v)| pred(v)) {
            return found.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, value)) => {
                    self.seen.push((at, value.clone()));
                    if pred(&value) {
                        return (at, value);
                    }
                }
                Err(_) => panic!("{what} not seen within {timeout:?}; lines so far: {:?}", self.values()),
            }
        }
    }

    fn summary(&mut self, timeout: Duration) -> Value {
        let (_, line) = self.wait_for("the call summary", timeout, |v| v["ok"].get("CallSummary").is_some());
        line["ok"]["CallSummary"].clone()
    }

    fn values(&self) -> Vec<&Value> {
        self.seen.iter().map(|(_, v)| v).collect()
    }
}

impl Drop for PlacedCall {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_state(v: &Value, state: &str) -> bool {
    v["ok"]["Event"]["Call"]["state"].get(state).is_some() || v["ok"]["Event"]["Call"]["state"] == state
}

/// Central's call records (CDRs) once `count` have been delivered.
fn records(system: &System, count: usize) -> Vec<Value> {
    let mut last = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        last = system.central_admin(&["calls"]).last().clone();
        let records = last["records"].as_array().cloned().unwrap_or_default();
        if records.len() >= count {
            return records;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("{count} call records never reached central: {last}");
}

fn central_calls(system: &System) -> Vec<Value> {
    system.central_admin(&["calls"]).last()["calls"].as_array().cloned().unwrap_or_default()
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
    assert!((connected - LIMIT_SECS as f64).abs() <= 1.0, "cut after {connected} s, limit {LIMIT_SECS} s");
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
