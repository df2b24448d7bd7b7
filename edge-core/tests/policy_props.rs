//! Properties of allowed calls over random schedules, instants across 2026
//! (biased towards both DST transitions), balances, rates and caps.

mod common;

use common::*;
use jiff::civil::{date, Date};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proto::central::Entity;
use proto::domain::*;
use proto::tablet::{CallDecision, DenyReason, LimitedBy};

fn windows() -> impl Strategy<Value = Vec<CallingWindow>> {
    let one = (1u8..=7, 0u16..1440, 1u16..=720).prop_map(|(weekday, start, len)| CallingWindow {
        weekday,
        start_minute: start,
        end_minute: (start + len).min(1440),
    });
    // Whole-hour windows around 01:00-03:00 make DST gaps and folds common.
    let night = (1u8..=7, 0u16..4, 1u16..4).prop_map(|(weekday, start, len)| CallingWindow {
        weekday,
        start_minute: start * 60,
        end_minute: (start + len) * 60,
    });
    prop::collection::vec(prop_oneof![one, night], 0..16)
}

fn instant() -> impl Strategy<Value = Timestamp> {
    let year_start = utc("2026-01-01T00:00:00Z").as_second();
    let year_end = utc("2027-01-01T00:00:00Z").as_second();
    let spring = utc("2026-03-08T00:00:00Z").as_second();
    let fall = utc("2026-11-01T00:00:00Z").as_second();
    let near = |t: i64| t..t + 2 * 86_400;
    prop_oneof![year_start..year_end, near(spring), near(fall)]
        .prop_flat_map(|s| (Just(s), 0i32..1_000_000_000))
        .prop_map(|(s, ns)| Timestamp::new(s, ns).unwrap())
}

#[derive(Debug, Clone)]
struct Case {
    schedule: Vec<CallingWindow>,
    now: Timestamp,
    kind: CallKind,
    voice_limit: u32,
    video_limit: u32,
    warning: u32,
    balance: i64,
    rate: u32,
    cap_minutes: Option<u32>,
    used: u32,
}

fn case() -> impl Strategy<Value = Case> {
    (
        windows(),
        instant(),
        prop_oneof![Just(CallKind::Voice), Just(CallKind::Video)],
        (1u32..=14_400, 1u32..=14_400, 0u32..=300),
        (-100i64..20_000, prop_oneof![Just(0u32), 1u32..500]),
        (prop::option::of(0u32..=600), 0u32..40_000),
    )
        .prop_map(
            |(
                schedule,
                now,
                kind,
                (voice_limit, video_limit, warning),
                (balance, rate),
                (cap_minutes, used),
            )| Case {
                schedule,
                now,
                kind,
                voice_limit,
                video_limit,
                warning,
                balance,
                rate,
                cap_minutes,
                used,
            },
        )
}

const CAP_ANCHOR: Date = date(2025, 12, 29);
const CAP_DAYS: i64 = 14;

/// The cap period holding `now`, worked out by stepping dates (independent
/// of the policy's arithmetic).
fn period_start(now: Timestamp) -> Date {
    let today = la().to_datetime(now).date();
    let mut start = CAP_ANCHOR;
    while start.checked_add(jiff::Span::new().days(CAP_DAYS)).unwrap() <= today {
        start = start.checked_add(jiff::Span::new().days(CAP_DAYS)).unwrap();
    }
    start
}

fn scenario(c: &Case) -> Scenario {
    let mut s = Scenario::new();
    s.schedule(c.schedule.clone());
    s.now = c.now;
    s.req.kind = c.kind;
    let f = s.facility();
    f.voice_limit_secs = c.voice_limit;
    f.video_limit_secs = c.video_limit;
    f.warning_secs = c.warning;
    if let Some(minutes) = c.cap_minutes {
        f.caps.push(CapRule { kind: c.kind, minutes, period_days: CAP_DAYS as u16, anchor: CAP_ANCHOR });
        s.add(Entity::CapUsage(CapUsageRecord {
            resident: ResidentId::new(RESIDENT),
            kind: c.kind,
            period_start: period_start(c.now),
            used_secs: c.used,
        }));
    }
    s.contact().video_balance_cents = c.balance;
    s.contact().video_rate_cents_per_min = c.rate;
    s
}

/// Every window of the schedule near `now`, as instants built through
/// `Zoned` (the documented compatible disambiguation). A schedule means the
/// wall-clock union of its windows, so overlapping or touching windows of
/// one day are joined in local time first: converted one by one, a window
/// whose start falls in the spring-forward gap would be pushed past its own
/// end and lose wall-clock minutes that the overlapping window covers.
fn raw_windows(schedule: &[CallingWindow], now: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    let tz = la();
    let today = tz.to_datetime(now).date();
    let at = |d: Date, minute: u16| -> Timestamp {
        let (d, minute) = if minute == 1440 { (d.tomorrow().unwrap(), 0) } else { (d, minute) };
        d.at((minute / 60) as i8, (minute % 60) as i8, 0, 0).to_zoned(tz.clone()).unwrap().timestamp()
    };
    let mut out = Vec::new();
    for offset in -1..=9i64 {
        let d = today.checked_add(jiff::Span::new().days(offset)).unwrap();
        let weekday = d.weekday().to_monday_one_offset() as u8;
        let mut day: Vec<(u16, u16)> = schedule
            .iter()
            .filter(|w| w.weekday == weekday && w.start_minute < w.end_minute && w.end_minute <= 1440)
            .map(|w| (w.start_minute, w.end_minute))
            .collect();
        day.sort_unstable();
        let mut joined: Vec<(u16, u16)> = Vec::new();
        for (start, end) in day {
            match joined.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => joined.push((start, end)),
            }
        }
        for (start, end) in joined {
            out.push((at(d, start), at(d, end)));
        }
    }
    out
}

fn covered(raw: &[(Timestamp, Timestamp)], t: Timestamp) -> bool {
    raw.iter().any(|(s, e)| *s <= t && t < *e)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn allowed_calls_respect_every_limit(c in case()) {
        let s = scenario(&c);
        let decision = s.decide();
        let raw = raw_windows(&c.schedule, c.now);
        match decision {
            CallDecision::Allowed { max_duration_secs: max, warn_at_secs, limited_by } => {
                let max_dur = SignedDuration::from_secs(i64::from(max));
                // Never outlasts the window: every second of the call lies in
                // some window of the schedule, sampled each 30 s and at the end.
                let mut t = c.now;
                let end = c.now.checked_add(max_dur).unwrap();
                while t < end {
                    prop_assert!(covered(&raw, t), "{t} outside hours, call {c:?} max {max}");
                    t = t.checked_add(SignedDuration::from_secs(30)).unwrap();
                }
                let last = end.checked_sub(SignedDuration::from_nanos(1)).unwrap();
                prop_assert!(max == 0 || covered(&raw, last), "ends outside hours");
                let limit = match c.kind { CallKind::Voice => c.voice_limit, CallKind::Video => c.video_limit };
                prop_assert!(max <= limit);
                if c.kind == CallKind::Video && c.rate > 0 {
                    let cost = i64::from(max.div_ceil(60)) * i64::from(c.rate);
                    prop_assert!(cost <= c.balance, "cost {cost} > balance {}", c.balance);
                }
                if let Some(minutes) = c.cap_minutes {
                    prop_assert!(i64::from(max) <= i64::from(minutes) * 60 - i64::from(c.used));
                }
                // Window and cap refuse a call shorter than the warning; the
                // facility limit and the balance may still allow one.
                if max < c.warning.max(1) {
                    prop_assert!(matches!(limited_by, LimitedBy::CallLength | LimitedBy::Balance), "{limited_by:?}");
                    prop_assert_eq!(warn_at_secs, 0);
                } else {
                    prop_assert_eq!(warn_at_secs + c.warning, max);
                }
            }
            CallDecision::Denied(DenyReason::OutsideCallingHours { next_window }) => {
                // That the refusal was right is the next property's job; the
                // window offered instead must really open later.
                if let Some(w) = next_window {
                    prop_assert!(w.starts_at > c.now);
                    prop_assert!(covered(&raw, w.starts_at));
                }
            }
            CallDecision::Denied(DenyReason::InsufficientBalance { .. }) => {
                prop_assert!(c.kind == CallKind::Video && c.rate > 0 && c.balance < i64::from(c.rate));
            }
            CallDecision::Denied(DenyReason::CapReached { .. }) => {
                let minutes = c.cap_minutes.unwrap();
                prop_assert!(i64::from(minutes) * 60 - i64::from(c.used) < i64::from(c.warning.max(1)));
            }
            CallDecision::Denied(other) => prop_assert!(false, "unexpected denial {other:?}"),
        }
    }

    #[test]
    fn inside_a_window_with_room_left_is_never_refused_for_hours(c in case()) {
        let s = scenario(&c);
        let raw = raw_windows(&c.schedule, c.now);
        let useful = SignedDuration::from_secs(i64::from(c.warning.max(1)) + 1);
        let room = c.now.checked_add(useful).unwrap();
        let all_covered = {
            let mut t = c.now;
            let mut ok = true;
            while t <= room {
                ok &= covered(&raw, t);
                t = t.checked_add(SignedDuration::from_secs(1)).unwrap();
            }
            ok
        };
        if all_covered {
            let hours_denial = matches!(s.decide(), CallDecision::Denied(DenyReason::OutsideCallingHours { .. }));
            prop_assert!(!hours_denial);
        }
    }
}
