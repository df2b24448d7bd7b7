//! The calls shell against a real store: what the core asks for becomes
//! durable in the right transactions, and central hears of each end.

use std::time::Duration;

use edge_core::call::{CallEvent, CallId, CallSetup, Checkpoint, EndReason};
use edge_core::{outbox::OutboxConfig, sync::SyncConfig};
use jiff::Timestamp;
use proto::domain::{CallKind, ContactId, ResidentId, UnitId};
use proto::messaging::OutboxBody;
use proto::tablet::{CallDecision, LimitedBy};

use super::CentralOp;
use crate::state::EdgeState;
use crate::store::Store;

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn setup() -> CallSetup {
    CallSetup {
        resident: ResidentId::new("R1001"),
        unit: UnitId::new("A"),
        contact: ContactId(1),
        kind: CallKind::Video,
        number: "+15555550100".into(),
        rate_cents_per_min: 25,
        balance_cents: 1000,
    }
}

fn load(path: &std::path::Path) -> EdgeState {
    let store = Store::open(path).unwrap();
    EdgeState::load("f".into(), store, SyncConfig::default(), OutboxConfig::default(), now()).unwrap().0
}

fn call_records(state: &EdgeState) -> Vec<proto::messaging::CallDetailRecord> {
    state
        .store
        .outbox_rows()
        .unwrap()
        .into_iter()
        .filter_map(|row| match row.item.body {
            OutboxBody::CallRecord(cdr) => Some(cdr),
            _ => None,
        })
        .collect()
}

#[test]
fn a_call_left_behind_is_recorded_to_its_last_checkpoint_and_ended_at_central() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.db");
    {
        let mut store = Store::open(&path).unwrap();
        let checkpoint = Checkpoint {
            id: CallId(7),
            setup: setup(),
            started_at: now(),
            max_duration_secs: 600,
            connected_secs: Some(65),
        };
        store.save_call_checkpoint(&checkpoint).unwrap();
    }
    let mut state = load(&path);
    let mut ops = state.call_ops_rx.take().unwrap();
    assert_eq!(state.recover_calls(now()).unwrap(), 1);
    let records = call_records(&state);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].connected_secs, 65);
    assert_eq!(records[0].charged_cents, 50, "two started minutes at 25");
    assert!(state.store.call_checkpoints().unwrap().is_empty());
    assert!(state.calls.is_empty());
    assert_eq!(
        ops.try_recv().unwrap(),
        CentralOp::End { call_id: CallId(7), reason: EndReason::EdgeRestarted }
    );

    // Nothing is recorded twice by a second start.
    drop(state);
    let mut again = load(&path);
    assert_eq!(again.recover_calls(now()).unwrap(), 0);
    assert_eq!(call_records(&again).len(), 1);
}

#[test]
fn a_placed_call_rings_checkpoints_and_leaves_one_record_when_hung_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = load(&dir.path().join("edge.db"));
    let mut ops = state.call_ops_rx.take().unwrap();
    let decision =
        CallDecision::Allowed { max_duration_secs: 120, warn_at_secs: 60, limited_by: LimitedBy::CallLength };
    let start = state.call_now();
    state.calls.place(CallId(9), setup(), &decision, start, now()).unwrap();
    state.call_limits.insert(CallId(9), 120);
    state.drain_calls(now());
    let Ok(CentralOp::Ring { call_id, request }) = ops.try_recv() else { panic!("no ring") };
    assert_eq!(call_id, CallId(9));
    assert!(matches!(request, proto::central::EdgeToCentral::RingContact { max_duration_secs: 120, .. }));
    let saved = state.store.call_checkpoints().unwrap();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].connected_secs, None);

    state.call_event(CallId(9), CallEvent::Answered, now());
    assert_eq!(state.store.call_checkpoints().unwrap()[0].connected_secs, Some(0));
    std::thread::sleep(Duration::from_millis(10));
    state.call_event(CallId(9), CallEvent::ResidentHungUp, now());
    assert_eq!(
        ops.try_recv().unwrap(),
        CentralOp::End { call_id: CallId(9), reason: EndReason::ResidentHungUp }
    );
    assert!(state.store.call_checkpoints().unwrap().is_empty());
    let records = call_records(&state);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].connected_secs, 0);
    assert_eq!(records[0].charged_cents, 0);
    assert!(state.calls.is_empty());
    // A late event for the ended call changes nothing.
    state.call_event(CallId(9), CallEvent::ContactHungUp, now());
    assert_eq!(call_records(&state).len(), 1);
    assert!(ops.try_recv().is_err());
}
