use std::time::Duration;

use jiff::Timestamp;
use proto::domain::{CallKind, ContactId, LockdownScope, ResidentId, UnitId};
use proto::messaging::CallDetailRecord;
use proto::tablet::{CallDecision, DenyReason, LimitedBy};

use super::sim;
use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn wall() -> Timestamp {
    Timestamp::from_second(1_704_067_200).expect("a valid instant")
}

fn allowed(max: u32) -> CallDecision {
    CallDecision::Allowed {
        max_duration_secs: max,
        warn_at_secs: max.saturating_sub(60),
        limited_by: LimitedBy::CallLength,
    }
}

fn setup(resident: &str, unit: &str, kind: CallKind) -> CallSetup {
    CallSetup {
        resident: ResidentId::new(resident),
        unit: UnitId::new(unit),
        contact: ContactId(7),
        kind,
        number: "+15551234567".into(),
        rate_cents_per_min: 25,
        balance_cents: 1000,
    }
}

fn video(max: u32, at: u64) -> CallSession {
    CallSession::place(
        CallId(1),
        setup("r1", "A", CallKind::Video),
        &allowed(max),
        CallConfig::default(),
        secs(at),
        wall(),
    )
    .expect("an allowed decision places")
}

fn drain(s: &mut CallSession) -> Vec<CallAction> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn cdr(actions: &[CallAction]) -> Option<&CallDetailRecord> {
    actions.iter().find_map(|a| match a {
        CallAction::EmitCdr(cdr) => Some(cdr),
        _ => None,
    })
}

fn ended_view(actions: &[CallAction]) -> Option<EndReason> {
    actions.iter().find_map(|a| match a {
        CallAction::TabletState(CallView::Ended { outcome }) => Some(*outcome),
        _ => None,
    })
}

/// Asserts the end-of-call shape: cut, tablet view, CDR last, same reason.
fn assert_ended(actions: &[CallAction], reason: EndReason, connected: u32, charged: i64) {
    let n = actions.len();
    assert!(n >= 3, "{actions:?}");
    assert_eq!(actions[n - 3], CallAction::CutBothLegs { reason }, "{actions:?}");
    assert_eq!(actions[n - 2], CallAction::TabletState(CallView::Ended { outcome: reason }));
    let Some(CallAction::EmitCdr(cdr)) = actions.last() else { panic!("CDR is not last: {actions:?}") };
    assert_eq!((cdr.connected_secs, cdr.charged_cents), (connected, charged), "{actions:?}");
    assert_eq!(actions.iter().filter(|a| matches!(a, CallAction::EmitCdr(_))).count(), 1);
}

#[test]
fn charging_is_per_started_minute() {
    for (connected, minutes) in [(0, 0), (1, 1), (59, 1), (60, 1), (61, 2), (120, 2), (121, 3), (3600, 60)] {
        assert_eq!(billable_minutes(connected), minutes, "{connected} s");
        assert_eq!(charge_cents(CallKind::Video, connected, 25), i64::from(minutes) * 25, "{connected} s");
        assert_eq!(charge_cents(CallKind::Voice, connected, 25), 0, "voice is free");
    }
    assert_eq!(billable_minutes(u32::MAX), u32::MAX.div_ceil(60), "no overflow");
}

#[test]
fn placing_rings_after_the_checkpoint() {
    let mut s = video(600, 10);
    let actions = drain(&mut s);
    assert!(matches!(&actions[0], CallAction::Checkpoint(cp) if cp.connected_secs.is_none()), "{actions:?}");
    assert_eq!(actions[1..], [CallAction::Ring, CallAction::TabletState(CallView::Ringing)]);
    assert_eq!(s.poll_timeout(), Some(secs(55)), "45 s ring timeout");
}

#[test]
fn refused_decisions_never_ring() {
    let no_funds =
        CallDecision::Denied(DenyReason::InsufficientBalance { balance_cents: 0, rate_cents_per_min: 25 });
    let cases: Vec<(CallSetup, CallDecision, PlaceError)> = vec![
        (
            setup("r1", "A", CallKind::Video),
            no_funds.clone(),
            PlaceError::Denied(DenyReason::InsufficientBalance { balance_cents: 0, rate_cents_per_min: 25 }),
        ),
        (
            setup("r1", "A", CallKind::Voice),
            CallDecision::Denied(DenyReason::Lockdown { scope: LockdownScope::Facility }),
            PlaceError::Denied(DenyReason::Lockdown { scope: LockdownScope::Facility }),
        ),
        (
            setup("r1", "A", CallKind::Voice),
            allowed(0),
            PlaceError::InconsistentDecision { max_duration_secs: 0, warn_at_secs: 0 },
        ),
        (
            setup("r1", "A", CallKind::Voice),
            CallDecision::Allowed {
                max_duration_secs: 60,
                warn_at_secs: 61,
                limited_by: LimitedBy::CallLength,
            },
            PlaceError::InconsistentDecision { max_duration_secs: 60, warn_at_secs: 61 },
        ),
        (
            // 1,000 cents at 25/min pay 40 minutes; 41 minutes do not fit.
            setup("r1", "A", CallKind::Video),
            allowed(41 * 60),
            PlaceError::ExceedsBalance { max_duration_secs: 2460, cost_cents: 1025, balance_cents: 1000 },
        ),
        (
            // 40 min + 1 s starts a 41st minute.
            setup("r1", "A", CallKind::Video),
            allowed(40 * 60 + 1),
            PlaceError::ExceedsBalance { max_duration_secs: 2401, cost_cents: 1025, balance_cents: 1000 },
        ),
    ];
    for (setup, decision, expected) in cases {
        let got = CallSession::place(CallId(1), setup, &decision, CallConfig::default(), secs(0), wall())
            .map(|_| ());
        assert_eq!(got, Err(expected));
    }
    // The balance check is video's only: voice is free whatever the balance.
    let mut free = setup("r1", "A", CallKind::Voice);
    free.balance_cents = 0;
    assert!(
        CallSession::place(CallId(1), free, &allowed(3600), CallConfig::default(), secs(0), wall()).is_ok()
    );
    // Exactly the balance is fine.
    assert!(CallSession::place(
        CallId(1),
        setup("r1", "A", CallKind::Video),
        &allowed(40 * 60),
        CallConfig::default(),
        secs(0),
        wall()
    )
    .is_ok());
}

#[test]
fn unanswered_and_refused_calls_all_read_did_not_answer() {
    // (event while ringing, or None for the ring timeout) -> outcome
    let cases = [
        (None, EndReason::DidNotAnswer),
        (Some(CallEvent::Declined), EndReason::DidNotAnswer),
        (Some(CallEvent::ContactHungUp), EndReason::DidNotAnswer),
        (Some(CallEvent::ResidentHungUp), EndReason::ResidentHungUp),
        (Some(CallEvent::ConnectionLost), EndReason::ConnectionLost),
        (Some(CallEvent::Shutdown), EndReason::EdgeShutdown),
        (Some(CallEvent::Revoked(Revocation::Lockdown)), EndReason::Lockdown),
    ];
    for (event, outcome) in cases {
        let mut s = video(600, 100);
        drain(&mut s);
        match event {
            None => {
                s.handle_timeout(secs(144));
                assert!(drain(&mut s).is_empty(), "44 s is not yet the timeout");
                s.handle_timeout(secs(145));
            }
            Some(e) => s.handle_event(secs(120), e),
        }
        let actions = drain(&mut s);
        assert_ended(&actions, outcome, 0, 0);
        assert_eq!(s.poll_timeout(), None);
    }
}

#[test]
fn ring_timeout_is_configurable() {
    let config = CallConfig { ring_timeout: secs(20), ..CallConfig::default() };
    let mut s = CallSession::place(
        CallId(1),
        setup("r1", "A", CallKind::Voice),
        &allowed(600),
        config,
        secs(0),
        wall(),
    )
    .expect("places");
    assert_eq!(s.poll_timeout(), Some(secs(20)));
    drain(&mut s);
    s.handle_timeout(secs(20));
    assert_ended(&drain(&mut s), EndReason::DidNotAnswer, 0, 0);
}

#[test]
fn answered_call_warns_sixty_seconds_before_the_exact_cut() {
    let mut s = video(600, 0);
    drain(&mut s);
    s.handle_event(secs(30), CallEvent::Answered);
    let actions = drain(&mut s);
    assert!(matches!(&actions[0], CallAction::Checkpoint(cp) if cp.connected_secs == Some(0)));
    assert_eq!(
        actions[1],
        CallAction::TabletState(CallView::Connected { elapsed_secs: 0, limit_secs: 600, warned: false })
    );
    // The limit counts from the answer, not from placing.
    let mut warned_at = None;
    while let Some(at) = s.poll_timeout() {
        s.handle_timeout(at);
        for action in drain(&mut s) {
            match action {
                CallAction::Warn { remaining_secs } => {
                    assert_eq!(remaining_secs, 60);
                    warned_at = Some(at);
                }
                CallAction::EmitCdr(cdr) => {
                    assert_eq!(at, secs(630), "cut exactly at the limit");
                    assert_eq!((cdr.connected_secs, cdr.charged_cents), (600, 250));
                }
                CallAction::CutBothLegs { reason } => assert_eq!(reason, EndReason::TimeLimit),
                _ => {}
            }
        }
    }
    assert_eq!(warned_at, Some(secs(570)));
    assert!(s.is_ended());
}

#[test]
fn poll_timeout_is_the_exact_next_deadline() {
    let mut s = video(62, 0);
    s.handle_event(secs(1), CallEvent::Answered);
    // warn at 2 s after the answer, checkpoint at 5 s, cut at 62 s.
    assert_eq!(s.poll_timeout(), Some(secs(3)));
    s.handle_timeout(Duration::from_millis(2999));
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(secs(3)), "nothing fires a millisecond early");
    s.handle_timeout(secs(3));
    assert!(drain(&mut s).contains(&CallAction::Warn { remaining_secs: 60 }));
    assert_eq!(s.poll_timeout(), Some(secs(6)), "the checkpoint");
    s.handle_timeout(secs(6));
    let cps: Vec<_> = drain(&mut s)
        .into_iter()
        .filter_map(|a| match a {
            CallAction::Checkpoint(cp) => cp.connected_secs,
            _ => None,
        })
        .collect();
    assert_eq!(cps, [5]);
    assert_eq!(s.poll_timeout(), Some(secs(11)));
}

#[test]
fn mid_call_ends_carry_their_reason_and_bill_connected_time() {
    let cases = [
        (CallEvent::ResidentHungUp, EndReason::ResidentHungUp),
        (CallEvent::ContactHungUp, EndReason::ContactHungUp),
        (CallEvent::Declined, EndReason::ContactHungUp),
        (CallEvent::ConnectionLost, EndReason::ConnectionLost),
        (CallEvent::Shutdown, EndReason::EdgeShutdown),
        (CallEvent::Revoked(Revocation::Lockdown), EndReason::Lockdown),
        (CallEvent::Revoked(Revocation::Suspended), EndReason::Suspended),
        (CallEvent::Revoked(Revocation::Blocked), EndReason::Blocked),
        (CallEvent::Revoked(Revocation::AccountClosed), EndReason::AccountClosed),
    ];
    for (event, reason) in cases {
        let mut s = video(600, 0);
        s.handle_event(secs(10), CallEvent::Answered);
        drain(&mut s);
        // 61.9 s connected: 61 whole seconds, two started minutes.
        s.handle_event(secs(71) + Duration::from_millis(900), event);
        assert_ended(&drain(&mut s), reason, 61, 50);
    }
}

#[test]
fn an_event_after_a_missed_deadline_ends_as_time_limit() {
    let mut s = video(120, 0);
    s.handle_event(secs(0), CallEvent::Answered);
    drain(&mut s);
    // The shell slept through the limit; the hangup comes late.
    s.handle_event(secs(500), CallEvent::ContactHungUp);
    let actions = drain(&mut s);
    assert!(!actions.iter().any(|a| matches!(a, CallAction::Warn { .. })), "no warning after the fact");
    assert_ended(&actions, EndReason::TimeLimit, 120, 50);
}

#[test]
fn a_late_wakeup_warns_with_the_true_remaining_time() {
    let mut s = video(600, 0);
    s.handle_event(secs(0), CallEvent::Answered);
    drain(&mut s);
    s.handle_timeout(secs(570) + Duration::from_millis(500));
    assert!(drain(&mut s).contains(&CallAction::Warn { remaining_secs: 30 }));
}

#[test]
fn nothing_happens_after_the_end() {
    let mut s = video(600, 0);
    s.handle_event(secs(1), CallEvent::Answered);
    s.handle_event(secs(2), CallEvent::ResidentHungUp);
    let first = drain(&mut s);
    assert_eq!(cdr(&first).map(|c| c.connected_secs), Some(1));
    for event in [
        CallEvent::Answered,
        CallEvent::ContactHungUp,
        CallEvent::Declined,
        CallEvent::Shutdown,
        CallEvent::Revoked(Revocation::Lockdown),
    ] {
        s.handle_event(secs(3), event);
        s.handle_timeout(secs(10_000));
        assert!(drain(&mut s).is_empty(), "{event:?}");
    }
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.outcome(), Some(EndReason::ResidentHungUp));
}

#[test]
fn a_clock_going_backwards_counts_as_no_time() {
    let mut s = video(600, 100);
    s.handle_event(secs(100), CallEvent::Answered);
    s.handle_timeout(secs(50));
    s.handle_event(secs(40), CallEvent::ResidentHungUp);
    assert_ended(&drain(&mut s)[2..], EndReason::ResidentHungUp, 0, 0);
}

#[test]
fn recovery_bills_the_last_checkpoint_never_beyond_the_limit() {
    let mut s = video(600, 0);
    s.handle_event(secs(0), CallEvent::Answered);
    let mut last = None;
    // Run 2 min 3 s with a punctual shell, keeping every checkpoint.
    while let Some(at) = s.poll_timeout().filter(|at| *at <= secs(123)) {
        s.handle_timeout(at);
        for a in drain(&mut s) {
            if let CallAction::Checkpoint(cp) = a {
                last = Some(cp);
            }
        }
    }
    let cp = last.expect("checkpoints were written");
    assert_eq!(cp.connected_secs, Some(120));
    let json = serde_json::to_string(&cp).expect("serializes");
    let cp: Checkpoint = serde_json::from_str(&json).expect("round-trips");

    // (connected in the checkpoint, max) -> connected billed
    let cases =
        [(cp.connected_secs, 600, 120), (None, 600, 0), (Some(900), 600, 600), (Some(u32::MAX), 60, 60)];
    for (connected, max, billed) in cases {
        let cp = Checkpoint { connected_secs: connected, max_duration_secs: max, ..cp.clone() };
        let mut r = CallSession::recover(&cp, CallConfig::default());
        let actions = drain(&mut r);
        assert_ended(&actions, EndReason::EdgeRestarted, billed, charge_cents(CallKind::Video, billed, 25));
        assert_eq!(cdr(&actions).map(|c| c.started_at), Some(wall()));
        r.handle_event(secs(1), CallEvent::Answered);
        assert!(drain(&mut r).is_empty());
    }
}

#[test]
fn revocation_from_a_fresh_denial() {
    let cases = [
        (DenyReason::Lockdown { scope: LockdownScope::Facility }, Some(Revocation::Lockdown)),
        (DenyReason::AccountClosed, Some(Revocation::AccountClosed)),
        (
            DenyReason::NumberBlocked {
                number: "+1555".into(),
                scope: proto::domain::BlockScope::AllFacilities,
            },
            Some(Revocation::Blocked),
        ),
        // The running call itself is inside the window, balance and cap.
        (DenyReason::OutsideCallingHours { next_window: None }, None),
        (DenyReason::InsufficientBalance { balance_cents: 0, rate_cents_per_min: 25 }, None),
    ];
    for (deny, expected) in cases {
        assert_eq!(Revocation::from_deny(&deny), expected, "{deny:?}");
    }
}

fn drain_table(t: &mut CallTable) -> Vec<(CallId, CallAction)> {
    std::iter::from_fn(|| t.poll_action()).collect()
}

#[test]
fn table_allows_one_live_call_per_resident() {
    let mut t = CallTable::new(CallConfig::default());
    t.place(CallId(1), setup("r1", "A", CallKind::Voice), &allowed(600), secs(0), wall())
        .expect("first call");
    assert_eq!(
        t.place(CallId(2), setup("r1", "A", CallKind::Video), &allowed(600), secs(1), wall()),
        Err(PlaceError::ResidentBusy { existing: CallId(1) })
    );
    assert_eq!(
        t.place(CallId(1), setup("r2", "A", CallKind::Voice), &allowed(600), secs(1), wall()),
        Err(PlaceError::DuplicateId(CallId(1)))
    );
    t.place(CallId(3), setup("r2", "A", CallKind::Voice), &allowed(600), secs(1), wall())
        .expect("other resident");
    t.handle_event(CallId(1), secs(2), CallEvent::ResidentHungUp);
    // Ended: the resident may call again even before the actions are out.
    t.place(CallId(4), setup("r1", "A", CallKind::Voice), &allowed(600), secs(3), wall())
        .expect("after the end");
    let actions = drain_table(&mut t);
    assert_eq!(
        actions.iter().filter(|(id, a)| *id == CallId(1) && matches!(a, CallAction::EmitCdr(_))).count(),
        1
    );
    assert!(t.get(CallId(1)).is_none(), "dropped once drained");
    assert_eq!(t.len(), 2);
    // Late events for a dropped call are ignored.
    t.handle_event(CallId(1), secs(4), CallEvent::ContactHungUp);
    assert!(drain_table(&mut t).is_empty());
}

#[test]
fn a_unit_lockdown_cuts_only_that_units_calls_at_once() {
    let mut t = CallTable::new(CallConfig::default());
    for (id, resident, unit) in [(1, "r1", "A"), (2, "r2", "A"), (3, "r3", "B")] {
        t.place(CallId(id), setup(resident, unit, CallKind::Voice), &allowed(600), secs(0), wall())
            .expect("places");
    }
    t.handle_event(CallId(1), secs(1), CallEvent::Answered);
    drain_table(&mut t);
    let cut =
        t.on_policy_change(secs(11), |s| (s.setup().unit.as_str() == "A").then_some(Revocation::Lockdown));
    assert_eq!(cut, 2);
    let ended: Vec<_> = drain_table(&mut t)
        .into_iter()
        .filter_map(|(id, a)| match a {
            CallAction::EmitCdr(cdr) => Some((id, cdr.connected_secs)),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [(CallId(1), 10), (CallId(2), 0)]);
    assert_eq!(t.live().map(CallSession::id).collect::<Vec<_>>(), [CallId(3)]);
}

#[test]
fn table_poll_timeout_is_the_earliest_and_recovery_ends_everything() {
    let mut t = CallTable::new(CallConfig::default());
    t.place(CallId(1), setup("r1", "A", CallKind::Voice), &allowed(600), secs(10), wall()).expect("places");
    t.place(CallId(2), setup("r2", "A", CallKind::Voice), &allowed(600), secs(0), wall()).expect("places");
    assert_eq!(t.poll_timeout(), Some(secs(45)));
    let checkpoints: Vec<Checkpoint> = drain_table(&mut t)
        .into_iter()
        .filter_map(|(_, a)| match a {
            CallAction::Checkpoint(cp) => Some(cp),
            _ => None,
        })
        .collect();
    let mut r = CallTable::recover(CallConfig::default(), &checkpoints);
    assert_eq!(r.poll_timeout(), None);
    let outcomes: Vec<_> = drain_table(&mut r)
        .into_iter()
        .filter_map(|(id, a)| match a {
            CallAction::TabletState(CallView::Ended { outcome }) => Some((id, outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes, [(CallId(1), EndReason::EdgeRestarted), (CallId(2), EndReason::EdgeRestarted)]);
    assert!(r.is_empty());
}

#[test]
fn ended_view_helper_reads_the_outcome() {
    let mut s = video(600, 0);
    s.handle_event(secs(1), CallEvent::Declined);
    assert_eq!(ended_view(&drain(&mut s)), Some(EndReason::DidNotAnswer));
    assert_eq!(s.view(secs(2)), CallView::Ended { outcome: EndReason::DidNotAnswer });
}

#[test]
fn simulation() {
    let seeds: Vec<u64> = match std::env::var("CALL_SEED") {
        Ok(one) => vec![one.trim().parse().expect("CALL_SEED must be a number")],
        Err(_) => {
            let count =
                std::env::var("CALL_SEEDS").ok().and_then(|n| n.trim().parse().ok()).unwrap_or(1000u64);
            (0..count).collect()
        }
    };
    let mut totals = sim::SimStats::default();
    for seed in &seeds {
        match sim::run(*seed) {
            Ok(stats) => totals.add(&stats),
            Err(failure) => panic!(
                "{failure}\nreplay with: CALL_SEED={seed} cargo test -p edge-core --lib call::tests::simulation"
            ),
        }
    }
    // The interesting paths must actually have been taken.
    if seeds.len() >= 100 {
        for (what, n) in totals.coverage() {
            assert!(n > 0, "no {what} in {} seeds: {totals:?}", seeds.len());
        }
    }
    eprintln!("call simulation: {totals:?}");
}
