//! Audit rows leave the edge through the outbox, including those the IT CLI
//! (a separate process) writes while the agent runs.

use std::time::Duration;

use facility_tests::{wait_until, System};
use serde_json::Value;

/// central-sim's record of every audit item it received from the edge.
fn audit_deliveries(system: &System) -> (Vec<Value>, Value) {
    let out = system.central_admin(&["deliveries"]);
    let report = out.last().clone();
    let items = report["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {report}"))
        .iter()
        .filter(|item| item["kind"] == "Audit")
        .cloned()
        .collect();
    (items, report)
}

#[test]
fn a_lockdown_from_the_it_cli_reaches_central_as_one_audit_item_applied_once() {
    let system = System::start();
    // The harness provisioned T-0001 with the CLI before the agent started:
    // that audit row was queued then and goes out once the uplink is up.
    wait_until("the provisioning's audit item at central", Duration::from_secs(30), || {
        !audit_deliveries(&system).0.is_empty()
    });
    let (before, _) = audit_deliveries(&system);

    let out = system.edge_cli(&["lockdown", "on"]);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    wait_until("the lockdown's audit item at central", Duration::from_secs(30), || {
        audit_deliveries(&system).0.len() > before.len()
    });
    // Room for a duplicate to show up, if the agent fed the row twice.
    std::thread::sleep(Duration::from_secs(1));
    let (after, report) = audit_deliveries(&system);
    assert_eq!(after.len(), before.len() + 1, "exactly one new audit item: {report}\n{}", system.edge_log());
    for item in &after {
        assert_eq!(item["applied"], 1, "{item}");
        assert!(item["verdict"].to_string().contains("Accepted"), "{item}");
    }
    assert_eq!(report["applied_more_than_once"], Value::Array(vec![]), "{report}");
}
