use std::time::Duration;

use jiff::Timestamp;
use proto::central::{CentralError, CentralToEdge, Change, ChangeBatch, EdgeToCentral, Entity, EntityKey};
use proto::domain::{ContactId, FacilityId};

use super::sim::{self, ModelReplica, SimConfig, SimStats};
use super::*;

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(1_704_067_200_000 + ms).unwrap()
}

fn config() -> SyncConfig {
    SyncConfig {
        poll_interval: Duration::from_secs(2),
        page_limit: 100,
        backoff_initial: Duration::from_millis(1000),
        backoff_max: Duration::from_secs(16),
        request_timeout: Duration::from_secs(10),
        jitter_seed: 7,
    }
}

fn facility() -> FacilityId {
    FacilityId::new("f1")
}

fn core_at(cursor: u64) -> SyncCore {
    SyncCore::new(facility(), cursor, false, None, config())
}

fn drain(core: &mut SyncCore) -> Vec<SyncOutput> {
    std::iter::from_fn(|| core.poll()).collect()
}

fn request(since: u64) -> SyncOutput {
    resync_request(since, 0)
}

fn resync_request(since: u64, resync_floor: u64) -> SyncOutput {
    SyncOutput::Send(EdgeToCentral::Changes { facility: facility(), since, limit: 100, resync_floor })
}

fn page(since: u64, next_cursor: u64, more: bool) -> ChangeBatch {
    ChangeBatch {
        since,
        changes: vec![Change::Delete(EntityKey::Contact(ContactId(since + 1)))],
        next_cursor,
        more,
    }
}

fn changes(batch: ChangeBatch) -> SyncInput {
    SyncInput::Response(CentralToEdge::Changes(batch))
}

/// A connected core with its first request (from `cursor`) in flight at t(0).
fn connected(cursor: u64) -> SyncCore {
    let mut core = core_at(cursor);
    core.handle(t(0), SyncInput::UplinkUp);
    let out = drain(&mut core);
    assert_eq!(out, vec![request(cursor), SyncOutput::WakeAt(t(10_000))]);
    core
}

fn backoff_of(outputs: &[SyncOutput]) -> (FailureCause, u32, Timestamp) {
    outputs
        .iter()
        .find_map(|o| match o {
            SyncOutput::Event(SyncEvent::BackingOff { cause, consecutive_failures, retry_at }) => {
                Some((cause.clone(), *consecutive_failures, *retry_at))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no BackingOff in {outputs:?}"))
}

fn sends(outputs: &[SyncOutput]) -> usize {
    outputs.iter().filter(|o| matches!(o, SyncOutput::Send(_))).count()
}

#[test]
fn nothing_is_sent_until_the_uplink_is_up() {
    let mut core = core_at(5);
    core.handle(t(0), SyncInput::Tick);
    core.handle(t(60_000), SyncInput::Tick);
    assert_eq!(drain(&mut core), vec![]);
    assert_eq!(core.next_wakeup(), None);
    connected(5);
}

#[test]
fn a_caught_up_page_is_applied_then_the_next_poll_waits_for_the_interval() {
    let mut core = connected(5);
    core.handle(t(100), changes(page(5, 9, false)));
    assert_eq!(
        drain(&mut core),
        vec![SyncOutput::Apply { batch: page(5, 9, false), mode: ApplyMode::Normal }]
    );
    assert_eq!(core.next_wakeup(), None, "waiting on the shell, not on time");
    core.handle(t(150), SyncInput::Applied { next_cursor: 9 });
    assert_eq!(drain(&mut core), vec![SyncOutput::WakeAt(t(2150))]);
    assert_eq!((core.cursor(), core.last_success()), (9, Some(t(150))));
    core.handle(t(2000), SyncInput::Tick);
    assert_eq!(drain(&mut core), vec![], "poll interval not over yet");
    core.handle(t(2150), SyncInput::Tick);
    assert_eq!(drain(&mut core), vec![request(9), SyncOutput::WakeAt(t(12_150))]);
}

#[test]
fn more_pages_are_fetched_back_to_back() {
    let mut core = connected(5);
    core.handle(t(100), changes(page(5, 7, true)));
    drain(&mut core);
    core.handle(t(120), SyncInput::Applied { next_cursor: 7 });
    assert_eq!(drain(&mut core), vec![request(7), SyncOutput::WakeAt(t(10_120))]);
}

#[test]
fn an_empty_poll_records_success_without_an_apply() {
    let mut core = connected(5);
    let empty = ChangeBatch { since: 5, changes: vec![], next_cursor: 5, more: false };
    core.handle(t(300), changes(empty));
    assert_eq!(drain(&mut core), vec![SyncOutput::RecordSuccess { at: t(300) }, SyncOutput::WakeAt(t(2300))]);
    assert_eq!(core.last_success(), Some(t(300)));
}

#[test]
fn only_one_request_is_ever_in_flight() {
    let mut core = connected(5);
    for ms in [100, 5000, 9999] {
        core.handle(t(ms), SyncInput::Tick);
        core.handle(t(ms), SyncInput::UplinkUp);
    }
    assert_eq!(sends(&drain(&mut core)), 0);
}

#[test]
fn stale_responses_are_ignored_and_the_real_one_still_counts() {
    let mut core = connected(5);
    core.handle(t(100), changes(page(3, 9, false)));
    core.handle(t(100), SyncInput::Response(CentralToEdge::CursorExpired { since: 2, oldest_valid: 4 }));
    let out = drain(&mut core);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| matches!(o, SyncOutput::Event(SyncEvent::Ignored { .. }))));
    assert_eq!((core.cursor(), core.resync_in_progress()), (5, false));
    core.handle(t(200), changes(page(5, 6, false)));
    assert!(matches!(drain(&mut core)[..], [SyncOutput::Apply { .. }]));
}

#[test]
fn answers_and_reports_out_of_turn_are_ignored() {
    let mut core = connected(5);
    core.handle(t(100), changes(page(5, 6, false)));
    drain(&mut core);
    // Applying: a duplicate of the same page and a transport failure do not count.
    core.handle(t(110), changes(page(5, 6, false)));
    core.handle(t(110), SyncInput::RequestFailed { error: "late".into() });
    let out = drain(&mut core);
    assert!(out.iter().all(|o| matches!(o, SyncOutput::Event(SyncEvent::Ignored { .. }))), "{out:?}");
    core.handle(t(120), SyncInput::Applied { next_cursor: 6 });
    drain(&mut core);
    core.handle(t(130), SyncInput::Applied { next_cursor: 99 });
    assert!(matches!(drain(&mut core)[..], [SyncOutput::Event(SyncEvent::Ignored { .. })]));
    assert_eq!(core.cursor(), 6);
}

#[test]
fn cursor_expiry_restarts_from_zero_as_a_resync_until_the_final_page() {
    let mut core = connected(40);
    core.handle(t(100), SyncInput::Response(CentralToEdge::CursorExpired { since: 40, oldest_valid: 55 }));
    assert_eq!(
        drain(&mut core),
        vec![
            SyncOutput::Event(SyncEvent::ResyncStarted { expired_cursor: 40, oldest_valid: 55 }),
            resync_request(0, 55),
            SyncOutput::WakeAt(t(10_100)),
        ]
    );
    assert!(core.resync_in_progress());
    core.handle(t(200), changes(page(0, 30, true)));
    assert!(matches!(drain(&mut core)[..], [SyncOutput::Apply { mode: ApplyMode::Resync, .. }]));
    core.handle(t(210), SyncInput::Applied { next_cursor: 30 });
    // Cursor 30 is below central's compaction point (55): the floor tells
    // central this is a resync page, not an edge that missed tombstones.
    assert_eq!(drain(&mut core)[0], resync_request(30, 55));
    // Even an empty final page goes to the store: it completes the resync.
    let last = ChangeBatch { since: 30, changes: vec![], next_cursor: 30, more: false };
    core.handle(t(300), changes(last.clone()));
    assert_eq!(drain(&mut core), vec![SyncOutput::Apply { batch: last, mode: ApplyMode::Resync }]);
    core.handle(t(310), SyncInput::Applied { next_cursor: 30 });
    assert_eq!(
        drain(&mut core),
        vec![SyncOutput::Event(SyncEvent::ResyncCompleted { cursor: 30 }), SyncOutput::WakeAt(t(2310)),]
    );
    assert!(!core.resync_in_progress());
    core.handle(t(2310), SyncInput::Tick);
    assert_eq!(drain(&mut core)[0], request(30), "floor cleared after the resync");
    core.handle(t(2400), changes(page(30, 31, false)));
    assert!(matches!(drain(&mut core)[..], [SyncOutput::Apply { mode: ApplyMode::Normal, .. }]));
}

#[test]
fn a_first_run_from_cursor_zero_is_applied_as_a_resync() {
    let mut core = connected(0);
    assert!(core.resync_in_progress());
    core.handle(t(10), changes(page(0, 3, false)));
    assert!(matches!(drain(&mut core)[..], [SyncOutput::Apply { mode: ApplyMode::Resync, .. }]));
}

#[test]
fn a_resync_interrupted_by_a_crash_continues_from_the_stored_cursor() {
    let mut core = SyncCore::new(facility(), 30, true, Some(t(0)), config());
    core.handle(t(0), SyncInput::UplinkUp);
    assert_eq!(drain(&mut core)[0], request(30));
    core.handle(t(10), changes(page(30, 40, false)));
    assert!(matches!(drain(&mut core)[..], [SyncOutput::Apply { mode: ApplyMode::Resync, .. }]));
}

#[test]
fn central_errors_back_off_with_jitter_then_retry() {
    let mut core = connected(5);
    core.handle(
        t(100),
        SyncInput::Response(CentralToEdge::Error(CentralError::Unavailable("maintenance".into()))),
    );
    let out = drain(&mut core);
    let (cause, failures, retry_at) = backoff_of(&out);
    assert_eq!(cause, FailureCause::Central(CentralError::Unavailable("maintenance".into())));
    assert_eq!(failures, 1);
    assert!(retry_at >= t(600) && retry_at <= t(1100), "{retry_at}");
    assert_eq!(core.next_wakeup(), Some(retry_at));
    assert_eq!(sends(&out), 0);
    core.handle(retry_at - Duration::from_millis(1), SyncInput::Tick);
    assert_eq!(sends(&drain(&mut core)), 0);
    core.handle(retry_at, SyncInput::Tick);
    assert_eq!(drain(&mut core)[0], request(5));
}

#[test]
fn backoff_doubles_up_to_the_cap_and_success_resets_it() {
    let mut core = connected(5);
    let mut now = t(0);
    let mut ceilings = Vec::new();
    for attempt in 1..=8u32 {
        core.handle(now, SyncInput::RequestFailed { error: "reset".into() });
        let (cause, failures, retry_at) = backoff_of(&drain(&mut core));
        assert_eq!((cause, failures), (FailureCause::Transport("reset".into()), attempt));
        let delay = retry_at.duration_since(now).unsigned_abs();
        let ceiling = Duration::from_millis(1000 * 2u64.pow(attempt - 1)).min(Duration::from_secs(16));
        assert!(delay >= ceiling / 2 && delay <= ceiling, "attempt {attempt}: {delay:?}");
        ceilings.push(ceiling);
        now = retry_at;
        core.handle(now, SyncInput::Tick);
        assert_eq!(sends(&drain(&mut core)), 1);
    }
    assert_eq!(*ceilings.last().unwrap(), Duration::from_secs(16));
    core.handle(now, changes(page(5, 6, false)));
    core.handle(now, SyncInput::Applied { next_cursor: 6 });
    drain(&mut core);
    core.handle(now + Duration::from_secs(2), SyncInput::Tick);
    drain(&mut core);
    core.handle(now + Duration::from_secs(2), SyncInput::RequestFailed { error: "reset".into() });
    let (_, failures, _) = backoff_of(&drain(&mut core));
    assert_eq!(failures, 1, "a success resets the backoff");
}

#[test]
fn jitter_is_deterministic_per_seed_and_differs_between_seeds() {
    let delays = |seed: u64| -> Vec<Timestamp> {
        let mut core =
            SyncCore::new(facility(), 5, false, None, SyncConfig { jitter_seed: seed, ..config() });
        core.handle(t(0), SyncInput::UplinkUp);
        let mut now = t(0);
        let mut out = Vec::new();
        for _ in 0..6 {
            core.handle(now, SyncInput::RequestFailed { error: "x".into() });
            let (_, _, retry_at) = backoff_of(&drain(&mut core));
            out.push(retry_at);
            now = retry_at;
            core.handle(now, SyncInput::Tick);
            drain(&mut core);
        }
        out
    };
    assert_eq!(delays(1), delays(1));
    assert_ne!(delays(1), delays(2));
}

#[test]
fn a_silent_request_times_out() {
    let mut core = connected(5);
    core.handle(t(9_999), SyncInput::Tick);
    assert_eq!(drain(&mut core), vec![]);
    core.handle(t(10_000), SyncInput::Tick);
    let (cause, _, retry_at) = backoff_of(&drain(&mut core));
    assert_eq!(cause, FailureCause::Timeout);
    core.handle(retry_at, SyncInput::Tick);
    assert_eq!(drain(&mut core)[0], request(5));
}

#[test]
fn uplink_loss_cancels_the_request_and_reconnecting_sends_at_once() {
    let mut core = connected(5);
    core.handle(t(100), SyncInput::UplinkDown);
    assert_eq!(core.next_wakeup(), None);
    core.handle(t(200), changes(page(5, 6, false)));
    assert!(matches!(drain(&mut core)[..], [SyncOutput::Event(SyncEvent::Ignored { .. })]));
    core.handle(t(60_000), SyncInput::Tick);
    assert_eq!(sends(&drain(&mut core)), 0);
    core.handle(t(60_001), SyncInput::UplinkUp);
    assert_eq!(drain(&mut core)[0], request(5));
}

#[test]
fn reconnecting_skips_a_pending_backoff() {
    let mut core = connected(5);
    core.handle(t(100), SyncInput::RequestFailed { error: "reset".into() });
    drain(&mut core);
    core.handle(t(150), SyncInput::UplinkDown);
    core.handle(t(200), SyncInput::UplinkUp);
    assert_eq!(drain(&mut core)[0], request(5));
}

#[test]
fn a_failed_apply_backs_off_and_asks_for_the_same_page_again() {
    let mut core = connected(5);
    core.handle(t(100), changes(page(5, 9, false)));
    drain(&mut core);
    core.handle(t(120), SyncInput::ApplyFailed { error: "disk full".into() });
    let (cause, _, retry_at) = backoff_of(&drain(&mut core));
    assert_eq!(cause, FailureCause::Apply("disk full".into()));
    assert_eq!(core.cursor(), 5);
    core.handle(retry_at, SyncInput::Tick);
    assert_eq!(drain(&mut core)[0], request(5));
}

#[test]
fn nonsense_from_central_backs_off() {
    let mut core = connected(5);
    core.handle(t(100), changes(page(5, 4, false)));
    assert!(matches!(backoff_of(&drain(&mut core)).0, FailureCause::BadResponse(_)));
    let mut core = connected(0);
    core.handle(t(100), SyncInput::Response(CentralToEdge::CursorExpired { since: 0, oldest_valid: 3 }));
    assert!(matches!(backoff_of(&drain(&mut core)).0, FailureCause::BadResponse(_)));
}

#[test]
fn freshness_reports_uplink_and_cache_age() {
    let mut core = core_at(5);
    assert_eq!(core.freshness(t(0)), proto::tablet::Freshness { uplink_up: false, cache_age_secs: None });
    core.handle(t(0), SyncInput::UplinkUp);
    core.handle(t(1000), changes(page(5, 6, false)));
    core.handle(t(1000), SyncInput::Applied { next_cursor: 6 });
    assert_eq!(
        core.freshness(t(91_500)),
        proto::tablet::Freshness { uplink_up: true, cache_age_secs: Some(90) }
    );
    core.handle(t(92_000), SyncInput::UplinkDown);
    assert!(!core.freshness(t(92_000)).uplink_up);
    let restored = SyncCore::new(facility(), 6, false, Some(t(1000)), config());
    assert_eq!(restored.freshness(t(11_000)).cache_age_secs, Some(10));
    assert_eq!(restored.freshness(t(0)).cache_age_secs, Some(0), "clock stepped back");
}

#[test]
fn central_feed_model_serves_pages_tombstones_and_expiry() {
    let mut central = sim::CentralFeed::new(facility());
    let contact = |id: u64| {
        Entity::Contact(proto::domain::ContactRecord {
            id: ContactId(id),
            resident: proto::domain::ResidentId::new("R"),
            name: "c".into(),
            account_status: proto::domain::AccountStatus::Active,
            approvals: proto::domain::Approvals {
                voice: proto::domain::Approval::Approved,
                video: proto::domain::Approval::Approved,
                message: proto::domain::Approval::Approved,
            },
            numbers: vec![],
            video_balance_cents: 0,
            video_rate_cents_per_min: 0,
        })
    };
    central.upsert(contact(1));
    central.upsert(contact(2));
    central.delete(EntityKey::Contact(ContactId(1)));
    let ask = |since, limit| EdgeToCentral::Changes { facility: facility(), since, limit, resync_floor: 0 };
    assert_eq!(
        central.answer(&ask(0, 1)),
        CentralToEdge::Changes(ChangeBatch {
            since: 0,
            changes: vec![Change::Upsert(contact(2))],
            next_cursor: 2,
            more: true
        })
    );
    assert_eq!(
        central.answer(&ask(2, 10)),
        CentralToEdge::Changes(ChangeBatch {
            since: 2,
            changes: vec![Change::Delete(EntityKey::Contact(ContactId(1)))],
            next_cursor: 3,
            more: false
        })
    );
    central.compact(3);
    assert!(matches!(
        central.answer(&ask(2, 10)),
        CentralToEdge::CursorExpired { since: 2, oldest_valid: 3 }
    ));
    assert!(matches!(central.answer(&ask(3, 10)), CentralToEdge::Changes(ChangeBatch { more: false, .. })));
    assert!(matches!(
        central.answer(&ask(0, 10)),
        CentralToEdge::Changes(ChangeBatch { next_cursor: 2, .. })
    ));
    // A resync page below the compaction point is served when no tombstone
    // newer than the resync's floor was purged.
    let resync_page =
        |since, resync_floor| EdgeToCentral::Changes { facility: facility(), since, limit: 10, resync_floor };
    assert!(matches!(
        central.answer(&resync_page(2, 3)),
        CentralToEdge::Changes(ChangeBatch { since: 2, .. })
    ));
    assert!(matches!(central.answer(&resync_page(1, 2)), CentralToEdge::CursorExpired { .. }));
    assert_eq!(central.live(), vec![contact(2)]);
}

#[test]
fn simulation_converges_to_central_for_1000_seeds() {
    let mut total = SimStats::default();
    for seed in 0..1000 {
        let mut replica = ModelReplica::default();
        match sim::run(seed, &mut replica, &SimConfig::default()) {
            Ok(stats) => total.add(&stats),
            Err(e) => panic!(
                "{e}\nreplay with: sim::run({seed}, &mut ModelReplica::default(), &SimConfig::default())"
            ),
        }
    }
    // The runs must actually have exercised the hard paths.
    assert!(total.resyncs_started > 50, "{total:?}");
    assert!(total.resyncs_completed > 50, "{total:?}");
    assert!(total.crashes > 300, "{total:?}");
    assert!(total.dropped_requests > 300 && total.failed_requests > 300, "{total:?}");
    assert!(total.injected_apply_failures > 50 && total.ignored > 50, "{total:?}");
    assert!(total.pages_applied > 10_000, "{total:?}");
}
