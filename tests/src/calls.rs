//! Placing calls from the tablet CLI and reading their outcome, shared by
//! the call and media scenarios.

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{find, System, FACILITY};

/// Every demo resident's PIN.
pub const PIN: &str = "1234";

/// Opens calling hours all day, gives contact 1 money and sets the video
/// limit, then waits until the edge decides with the new limit.
pub fn call_ready(system: System, limit_secs: u64) -> System {
    system.open_all_day("A");
    system.central_admin(&["facility", "--id", FACILITY, "--video-limit-secs", &limit_secs.to_string()]);
    system.central_admin(&["balance", "--contact", "1", "--cents", "100000"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = system.tablet("R1001", PIN, &["call", "--contact", "1", "--kind", "video"]);
        let max = out.json.last().and_then(|v| find(v, "max_duration_secs")).and_then(Value::as_u64);
        if max == Some(limit_secs) {
            break;
        }
        assert!(Instant::now() < deadline, "the edge never allowed a {limit_secs} s call: {}", out.stdout);
        std::thread::sleep(Duration::from_millis(200));
    }
    system
}

/// A `call --place` running in the background, its JSON lines timestamped.
pub struct PlacedCall {
    child: Child,
    lines: mpsc::Receiver<(Instant, Value)>,
    seen: Vec<(Instant, Value)>,
}

impl PlacedCall {
    /// A video call to contact 1 by R1001, with `extra` flags.
    pub fn start(system: &System, extra: &[&str]) -> PlacedCall {
        Self::start_kind(system, "video", extra)
    }

    pub fn start_kind(system: &System, kind: &str, extra: &[&str]) -> PlacedCall {
        let mut child = system
            .tablet_cmd(&system.device)
            .args(["--resident", "R1001", "--pin", PIN, "call", "--contact", "1", "--kind", kind, "--place"])
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
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> (Instant, Value) {
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

    pub fn summary(&mut self, timeout: Duration) -> Value {
        let (_, line) = self.wait_for("the call summary", timeout, |v| v["ok"].get("CallSummary").is_some());
        line["ok"]["CallSummary"].clone()
    }

    pub fn values(&self) -> Vec<&Value> {
        self.seen.iter().map(|(_, v)| v).collect()
    }
}

impl Drop for PlacedCall {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn is_state(v: &Value, state: &str) -> bool {
    v["ok"]["Event"]["Call"]["state"].get(state).is_some() || v["ok"]["Event"]["Call"]["state"] == state
}

/// Central's call records (CDRs) once `count` have been delivered.
pub fn records(system: &System, count: usize) -> Vec<Value> {
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

pub fn central_calls(system: &System) -> Vec<Value> {
    system.central_admin(&["calls"]).last()["calls"].as_array().cloned().unwrap_or_default()
}
