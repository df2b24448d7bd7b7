//! The agent's side of audit items written by another process: rows the IT
//! CLI commits to the shared file reach the outbox core once each.

use std::collections::BTreeMap;

use edge_core::{
    outbox::{Input, OutboxConfig},
    sync::SyncConfig,
};
use jiff::Timestamp;
use proto::{
    domain::LockdownScope,
    messaging::{DeliveryAck, DeliveryOutcome, IdempotencyKey, OutboxBody},
};

use super::{EdgeState, Transmit};
use crate::store::Store;

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn load(path: &std::path::Path) -> EdgeState {
    let store = Store::open(path).unwrap();
    EdgeState::load("f".into(), store, SyncConfig::default(), OutboxConfig::default(), now()).unwrap().0
}

/// Every audit item handed out for sending, by key, with how often.
#[derive(Default)]
struct Sent(BTreeMap<IdempotencyKey, (String, u32)>);

impl Sent {
    fn record(&mut self, transmits: &[Transmit]) {
        for item in transmits.iter().flat_map(|t| &t.items) {
            let OutboxBody::Audit(record) = &item.body else { panic!("not an audit item: {item:?}") };
            self.0.entry(item.key).or_insert_with(|| (record.action.clone(), 0)).1 += 1;
        }
    }

    fn actions(&self) -> Vec<&str> {
        let mut actions: Vec<&str> = self.0.values().map(|(a, _)| a.as_str()).collect();
        actions.sort_unstable();
        actions
    }

    fn all_once(&self) -> bool {
        self.0.values().all(|(_, n)| *n == 1)
    }
}

/// Plays central: accepts every batch until nothing more goes out.
fn accept_all(state: &mut EdgeState, sent: &mut Sent) {
    let mut pending = state.drain_outbox(now());
    while let Some(t) = pending.pop() {
        sent.record(std::slice::from_ref(&t));
        let acks = t
            .items
            .iter()
            .map(|i| DeliveryAck { key: i.key, outcome: DeliveryOutcome::Accepted { applied_at: 1 } })
            .collect();
        state.outbox_input(now(), Input::Delivered { batch: t.batch, acks });
        pending.extend(state.drain_outbox(now()));
    }
}

#[test]
fn audit_rows_of_another_process_are_picked_up_once_and_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.db");
    let mut state = load(&path);
    let mut cli = Store::open(&path).unwrap();
    let mut sent = Sent::default();

    // The agent's own audit row goes out at once.
    state.audit("tablet-1", "login", &serde_json::json!({"resident": "R1"}), now()).unwrap();
    let first = state.drain_outbox(now());
    sent.record(&first);
    assert_eq!(sent.actions(), ["login"]);

    // The IT CLI, a second handle on the file, turns a lockdown on.
    cli.set_lockdown(&LockdownScope::Facility, true, "it-admin", now()).unwrap();
    assert!(state.drain_outbox(now()).is_empty(), "nothing before the watcher looks");
    let changes = state.poll_external_changes(now()).unwrap();
    assert!(changes.lockdowns.is_some_and(|l| l.contains(&LockdownScope::Facility)));
    let second = state.drain_outbox(now());
    assert_eq!(second.len(), 1, "a Transmit with the CLI's row: {second:?}");
    sent.record(&second);
    assert_eq!(sent.actions(), ["lockdown.on", "login"]);

    // Looking again, or after more of the agent's own writes, feeds nothing twice.
    assert!(state.poll_external_changes(now()).unwrap().lockdowns.is_none());
    assert_eq!(state.feed_committed_outbox(now()).unwrap(), 0);
    assert!(state.drain_outbox(now()).is_empty());

    // A CLI row committed just before one of the agent's is fed with it by
    // the agent's commit; the watcher then finds nothing new.
    cli.audit_append("it-admin", "revoke-device", &serde_json::json!({"device": "t9"}), now()).unwrap();
    state.audit("tablet-1", "logout", &serde_json::json!({}), now()).unwrap();
    state.poll_external_changes(now()).unwrap();

    // Central answers everything; applied items are gone and never come back.
    for t in first.iter().chain(&second) {
        let acks = t
            .items
            .iter()
            .map(|i| DeliveryAck { key: i.key, outcome: DeliveryOutcome::Accepted { applied_at: 1 } })
            .collect();
        state.outbox_input(now(), Input::Delivered { batch: t.batch, acks });
    }
    accept_all(&mut state, &mut sent);
    assert_eq!(sent.actions(), ["lockdown.on", "login", "logout", "revoke-device"]);
    assert!(sent.all_once(), "{:?}", sent.0);
    assert!(state.store.outbox_rows().unwrap().is_empty());
    state.poll_external_changes(now()).unwrap();
    assert!(state.drain_outbox(now()).is_empty(), "an applied item is never fed again");
    assert!(state.outbox.is_empty());
    assert!(state.store.audit_verify().unwrap().is_intact());
}

#[test]
fn cli_rows_written_while_the_agent_was_down_are_restored_not_fed_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.db");
    {
        let mut cli = Store::open(&path).unwrap();
        cli.set_lockdown(&LockdownScope::Facility, true, "it-admin", now()).unwrap();
    }
    let mut state = load(&path);
    assert_eq!(state.outbox.len(), 1);
    assert_eq!(state.poll_external_changes(now()).unwrap(), Default::default());
    let mut sent = Sent::default();
    accept_all(&mut state, &mut sent);
    assert_eq!(sent.actions(), ["lockdown.on"]);
    assert!(sent.all_once());
    assert!(state.store.outbox_rows().unwrap().is_empty());
}
