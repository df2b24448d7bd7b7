//! One row per rule: the rule's cause makes an otherwise allowed call fail
//! with the right reason, and the same scenario without it is allowed.

mod common;

use common::*;
use jiff::civil::date;
use proto::central::Entity;
use proto::domain::*;
use proto::tablet::{CallDecision, DenyReason, LimitedBy, WindowView};

type Expect = fn(&DenyReason) -> bool;

struct Row {
    name: &'static str,
    video: bool,
    cause: fn(&mut Scenario),
    expect: Expect,
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "facility not synced",
            video: false,
            cause: |s| s.facility = None,
            expect: |r| matches!(r, DenyReason::FacilityMisconfigured { .. }),
        },
        Row {
            name: "facility time zone unknown",
            video: false,
            cause: |s| s.facility().time_zone = "Mars/Olympus_Mons".into(),
            expect: |r| matches!(r, DenyReason::FacilityMisconfigured { detail } if detail.contains("Mars/Olympus_Mons")),
        },
        Row {
            name: "resident unknown",
            video: false,
            cause: |s| s.req.resident = ResidentId::new("R-404"),
            expect: |r| *r == DenyReason::ResidentInactive,
        },
        Row {
            name: "resident inactive",
            video: false,
            cause: |s| s.resident().active = false,
            expect: |r| *r == DenyReason::ResidentInactive,
        },
        Row {
            name: "contact unknown",
            video: false,
            cause: |s| s.req.contact = ContactId(999),
            expect: |r| *r == DenyReason::UnknownContact { contact: ContactId(999) },
        },
        Row {
            name: "contact belongs to another resident",
            video: false,
            cause: |s| {
                s.residents.push(resident_record("R-200", UNIT));
                s.contact().resident = ResidentId::new("R-200");
            },
            expect: |r| *r == DenyReason::UnknownContact { contact: CONTACT },
        },
        Row {
            name: "facility lockdown",
            video: false,
            cause: |s| {
                s.lockdowns.insert(LockdownScope::Facility);
            },
            expect: |r| *r == DenyReason::Lockdown { scope: LockdownScope::Facility },
        },
        Row {
            name: "lockdown of the resident's unit",
            video: false,
            cause: |s| {
                s.lockdowns.insert(LockdownScope::Unit(UnitId::new(UNIT)));
            },
            expect: |r| *r == DenyReason::Lockdown { scope: LockdownScope::Unit(UnitId::new(UNIT)) },
        },
        Row {
            name: "voice suspension",
            video: false,
            cause: |s| {
                s.suspend(&[Service::Voice], date(2026, 3, 12));
            },
            expect: |r| {
                *r == DenyReason::Suspended {
                    services: vec![Service::Voice],
                    ends_on: date(2026, 3, 12),
                    reason: "rule violation".into(),
                }
            },
        },
        Row {
            name: "video suspension",
            video: true,
            cause: |s| {
                s.suspend(&[Service::Message, Service::Video], date(2026, 3, 10));
            },
            expect: |r| matches!(r, DenyReason::Suspended { ends_on, .. } if *ends_on == date(2026, 3, 10)),
        },
        Row {
            name: "account closed",
            video: false,
            cause: |s| s.contact().account_status = AccountStatus::Closed,
            expect: |r| *r == DenyReason::AccountClosed,
        },
        Row {
            name: "voice approval pending",
            video: false,
            cause: |s| s.contact().approvals.voice = Approval::Pending,
            expect: |r| *r == DenyReason::NotApproved { service: Service::Voice, status: Approval::Pending },
        },
        Row {
            name: "video approval rejected",
            video: true,
            cause: |s| s.contact().approvals.video = Approval::Rejected,
            expect: |r| *r == DenyReason::NotApproved { service: Service::Video, status: Approval::Rejected },
        },
        Row {
            name: "no number to dial",
            video: false,
            cause: |s| s.contact().numbers.clear(),
            expect: |r| *r == DenyReason::NoNumber,
        },
        Row {
            name: "privileged number (voice)",
            video: false,
            cause: |s| {
                s.add(privileged(PRIMARY));
            },
            expect: is_legal_notice,
        },
        Row {
            name: "privileged primary number (video)",
            video: true,
            cause: |s| {
                s.add(privileged("+1 (555) 123-0001"));
            },
            expect: is_legal_notice,
        },
        Row {
            name: "barred toll-free number",
            video: false,
            cause: |s| {
                s.contact().numbers.push("+18005551234".into());
                s.dial("+18005551234");
            },
            expect: |r| *r == DenyReason::BarredNumber { number: "+18005551234".into() },
        },
        Row {
            name: "number not among the contact's numbers",
            video: false,
            cause: |s| {
                s.dial("+15559990000");
            },
            expect: |r| *r == DenyReason::NumberNotAuthorized { number: "+15559990000".into() },
        },
        Row {
            name: "number blocked at all facilities",
            video: false,
            cause: |s| {
                s.add(block(PRIMARY, BlockScope::AllFacilities));
            },
            expect: |r| {
                *r == DenyReason::NumberBlocked { number: PRIMARY.into(), scope: BlockScope::AllFacilities }
            },
        },
        Row {
            name: "number blocked at this facility",
            video: false,
            cause: |s| {
                s.add(block(PRIMARY, BlockScope::Facility(FacilityId::new(FACILITY))));
            },
            expect: |r| matches!(r, DenyReason::NumberBlocked { scope: BlockScope::Facility(f), .. } if f.as_str() == FACILITY),
        },
        Row {
            name: "video primary number blocked",
            video: true,
            cause: |s| {
                s.add(block("15551230001", BlockScope::AllFacilities));
            },
            expect: |r| matches!(r, DenyReason::NumberBlocked { .. }),
        },
        Row {
            name: "video balance below one minute",
            video: true,
            cause: |s| s.contact().video_balance_cents = 24,
            expect: |r| *r == DenyReason::InsufficientBalance { balance_cents: 24, rate_cents_per_min: 25 },
        },
        Row {
            name: "outside calling hours",
            video: false,
            cause: |s| s.now = local("2026-03-10T22:00"),
            expect: |r| {
                *r == DenyReason::OutsideCallingHours {
                    next_window: Some(WindowView {
                        starts_at: local("2026-03-11T08:00"),
                        ends_at: local("2026-03-11T22:00"),
                        local_start: "08:00".into(),
                        local_end: "22:00".into(),
                        local_date: date(2026, 3, 11),
                    }),
                }
            },
        },
        Row {
            name: "less than the warning left in the window",
            video: false,
            cause: |s| s.now = local("2026-03-10T21:59:01"),
            expect: |r| matches!(r, DenyReason::OutsideCallingHours { next_window: Some(w) } if w.local_date == date(2026, 3, 11)),
        },
        Row {
            name: "unit has no window today",
            video: false,
            cause: |s| {
                // Tuesday is weekday 2; leave it out.
                s.schedule([1, 3, 4, 5, 6, 7].into_iter().map(|d| window(d, (8, 0), (22, 0))).collect());
            },
            expect: |r| matches!(r, DenyReason::OutsideCallingHours { next_window: Some(w) } if w.starts_at == local("2026-03-11T08:00")),
        },
        Row {
            name: "voice cap exhausted",
            video: false,
            cause: |s| {
                s.facility().caps.push(cap(CallKind::Voice, 100));
                s.add(usage(CallKind::Voice, date(2026, 3, 1), 100 * 60 - 59));
            },
            expect: |r| *r == DenyReason::CapReached { kind: CallKind::Voice, resets_on: date(2026, 3, 15) },
        },
        Row {
            name: "video cap exhausted",
            video: true,
            cause: |s| {
                s.facility().caps.push(cap(CallKind::Video, 10));
                s.add(usage(CallKind::Video, date(2026, 3, 1), 10 * 60));
            },
            expect: |r| *r == DenyReason::CapReached { kind: CallKind::Video, resets_on: date(2026, 3, 15) },
        },
    ]
}

fn is_legal_notice(r: &DenyReason) -> bool {
    let notice = FacilityRecord::with_defaults(FacilityId::new(FACILITY), "", LA).legal_call_notice;
    *r == DenyReason::PrivilegedNumber { notice }
}

pub fn privileged(number: &str) -> Entity {
    Entity::Privileged(PrivilegedNumberRecord { number: number.into(), label: "Public defender".into() })
}

pub fn block(number: &str, scope: BlockScope) -> Entity {
    Entity::Block(BlockRecord { number: number.into(), scope })
}

/// A 14-day cap anchored on Sunday 2026-03-01.
pub fn cap(kind: CallKind, minutes: u32) -> CapRule {
    CapRule { kind, minutes, period_days: 14, anchor: date(2026, 3, 1) }
}

pub fn usage(kind: CallKind, period_start: jiff::civil::Date, used_secs: u32) -> Entity {
    Entity::CapUsage(CapUsageRecord { resident: ResidentId::new(RESIDENT), kind, period_start, used_secs })
}

#[test]
fn every_rule_denies_with_its_reason_and_allows_without_its_cause() {
    for row in rows() {
        let base = if row.video { Scenario::video() } else { Scenario::new() };
        assert!(
            matches!(base.decide(), CallDecision::Allowed { .. }),
            "{}: the scenario without the cause must be allowed, got {:?}",
            row.name,
            base.decide()
        );
        let mut broken = base.clone();
        (row.cause)(&mut broken);
        let decision = broken.decide();
        match &decision {
            CallDecision::Denied(reason) => {
                assert!((row.expect)(reason), "{}: wrong reason {reason:?}", row.name)
            }
            other => panic!("{}: expected a denial, got {other:?}", row.name),
        }
    }
}

#[test]
fn default_limits_and_one_minute_warning() {
    let voice = Scenario::new().decide();
    assert_eq!(allowed(&voice), (15 * 60, 14 * 60, LimitedBy::CallLength));
    let video = Scenario::video().decide();
    assert_eq!(allowed(&video), (30 * 60, 29 * 60, LimitedBy::CallLength));
}

#[test]
fn facility_settings_replace_the_defaults() {
    let mut s = Scenario::new();
    s.facility().voice_limit_secs = 20 * 60;
    s.facility().warning_secs = 120;
    assert_eq!(allowed(&s.decide()), (1200, 1080, LimitedBy::CallLength));
}

#[test]
fn window_end_limits_the_call() {
    let mut s = Scenario::new();
    s.now = local("2026-03-10T21:50");
    assert_eq!(allowed(&s.decide()), (600, 540, LimitedBy::CallingWindow));
    // Sub-second precision never lets the call run past the window.
    s.now = local("2026-03-10T21:50").checked_add(jiff::SignedDuration::from_millis(500)).unwrap();
    assert_eq!(allowed(&s.decide()).0, 599);
    // Exactly the warning left: still useful (one minute, warned at connect).
    s.now = local("2026-03-10T21:59");
    assert_eq!(allowed(&s.decide()), (60, 0, LimitedBy::CallingWindow));
}

#[test]
fn ties_prefer_call_length_then_window_then_balance_then_cap() {
    let mut s = Scenario::video();
    s.now = local("2026-03-10T21:30"); // 1800 s of window left = video limit
    s.contact().video_balance_cents = 30 * 25; // 30 paid minutes = 1800 s
    s.facility().caps.push(cap(CallKind::Video, 30));
    assert_eq!(allowed(&s.decide()).2, LimitedBy::CallLength);
    s.facility().video_limit_secs = 1801;
    assert_eq!(allowed(&s.decide()).2, LimitedBy::CallingWindow);
    s.now = local("2026-03-10T21:29");
    assert_eq!(allowed(&s.decide()).2, LimitedBy::Balance);
    s.contact().video_balance_cents += 25;
    assert_eq!(allowed(&s.decide()), (1800, 1740, LimitedBy::PeriodicCap));
}

#[test]
fn balance_limits_video_to_whole_paid_minutes() {
    let mut s = Scenario::video();
    s.contact().video_balance_cents = 260; // 10 minutes at 25, 10 cents spare
    assert_eq!(allowed(&s.decide()), (600, 540, LimitedBy::Balance));
    s.contact().video_balance_cents = 25;
    assert_eq!(allowed(&s.decide()), (60, 0, LimitedBy::Balance));
    s.contact().video_rate_cents_per_min = 0; // free video ignores the balance
    s.contact().video_balance_cents = 0;
    assert_eq!(allowed(&s.decide()), (1800, 1740, LimitedBy::CallLength));
    s.contact().video_balance_cents = -500;
    assert!(matches!(s.decide(), CallDecision::Allowed { .. }));
}

#[test]
fn voice_ignores_the_video_balance() {
    let mut s = Scenario::new();
    s.contact().video_balance_cents = 0;
    assert_eq!(allowed(&s.decide()).0, 900);
}

#[test]
fn cap_remaining_limits_the_call() {
    let mut s = Scenario::new();
    s.facility().caps.push(cap(CallKind::Voice, 100));
    s.add(usage(CallKind::Voice, date(2026, 3, 1), 100 * 60 - 300));
    assert_eq!(allowed(&s.decide()), (300, 240, LimitedBy::PeriodicCap));
    // Usage in another period, or of the other kind, does not count.
    let mut other = Scenario::new();
    other.facility().caps.push(cap(CallKind::Voice, 100));
    other.add(usage(CallKind::Voice, date(2026, 2, 15), 100 * 60));
    other.add(usage(CallKind::Video, date(2026, 3, 1), 100 * 60));
    assert_eq!(allowed(&other.decide()), (900, 840, LimitedBy::CallLength));
}

#[test]
fn cap_periods_roll_over_in_local_days() {
    let mut s = Scenario::new();
    s.facility().caps.push(cap(CallKind::Voice, 10));
    s.add(usage(CallKind::Voice, date(2026, 3, 1), 10 * 60));
    s.schedule(daily((0, 0), (24, 0)));
    // 2026-03-14 is the last day of the period that started 03-01.
    s.now = local("2026-03-14T23:59:00");
    assert_eq!(
        *denied(&s.decide()),
        DenyReason::CapReached { kind: CallKind::Voice, resets_on: date(2026, 3, 15) }
    );
    // 23:59 local is already the 15th in UTC, yet the period has not reset.
    assert!(s.now.to_string().starts_with("2026-03-15"));
    s.now = local("2026-03-15T00:00:00");
    assert_eq!(allowed(&s.decide()), (600, 540, LimitedBy::PeriodicCap));
}

#[test]
fn suspension_ends_at_the_following_local_midnight() {
    let mut s = Scenario::new();
    s.schedule(daily((0, 0), (24, 0)));
    s.suspend(&[Service::Voice], date(2026, 3, 10));
    assert!(matches!(
        s.decide_at(local("2026-03-10T23:59:59")),
        CallDecision::Denied(DenyReason::Suspended { .. })
    ));
    assert!(matches!(s.decide_at(local("2026-03-11T00:00:01")), CallDecision::Allowed { .. }));
}

#[test]
fn suspension_expiry_follows_dst() {
    // Ends on the spring-forward day (23 hours long): expires at 00:00 PDT.
    let mut s = Scenario::new();
    s.schedule(daily((0, 0), (24, 0)));
    s.suspend(&[Service::Voice, Service::Video], date(2026, 3, 8));
    assert!(matches!(
        s.decide_at(utc("2026-03-09T06:59:59Z")),
        CallDecision::Denied(DenyReason::Suspended { .. })
    ));
    assert!(matches!(s.decide_at(utc("2026-03-09T07:00:01Z")), CallDecision::Allowed { .. }));
    // Ends on the fall-back day (25 hours long): expires at 00:00 PST.
    let mut s = Scenario::new();
    s.schedule(daily((0, 0), (24, 0)));
    s.suspend(&[Service::Voice], date(2026, 11, 1));
    assert!(matches!(
        s.decide_at(utc("2026-11-02T07:59:59Z")),
        CallDecision::Denied(DenyReason::Suspended { .. })
    ));
    assert!(matches!(s.decide_at(utc("2026-11-02T08:00:01Z")), CallDecision::Allowed { .. }));
}

#[test]
fn suspension_of_another_service_does_not_apply() {
    let mut s = Scenario::new();
    s.suspend(&[Service::Video, Service::Message], date(2026, 12, 31));
    assert!(matches!(s.decide(), CallDecision::Allowed { .. }));
}

#[test]
fn unit_lockdown_applies_only_to_that_unit() {
    let mut s = Scenario::new();
    s.lockdowns.insert(LockdownScope::Unit(UnitId::new("B")));
    assert!(matches!(s.decide(), CallDecision::Allowed { .. }));
    s.lockdowns.insert(LockdownScope::Unit(UnitId::new(UNIT)));
    assert_eq!(*denied(&s.decide()), DenyReason::Lockdown { scope: LockdownScope::Unit(UnitId::new(UNIT)) });
    // The facility lockdown is reported when both are in force.
    s.lockdowns.insert(LockdownScope::Facility);
    assert_eq!(*denied(&s.decide()), DenyReason::Lockdown { scope: LockdownScope::Facility });
}

#[test]
fn block_scope_other_facility_does_not_apply() {
    let mut s = Scenario::new();
    s.add(block(PRIMARY, BlockScope::Facility(FacilityId::new("other-facility"))));
    assert!(matches!(s.decide(), CallDecision::Allowed { .. }));
    // A block on the second number does not stop the primary...
    s.add(block(SECOND, BlockScope::AllFacilities));
    assert!(matches!(s.decide(), CallDecision::Allowed { .. }));
    // ...but does stop dialling the second number.
    s.dial(SECOND);
    assert!(matches!(denied(&s.decide()), DenyReason::NumberBlocked { .. }));
}

#[test]
fn privileged_beats_every_later_check() {
    let mut s = Scenario::new();
    let attorney = "+18005550100"; // also barred
    s.add(privileged(attorney));
    s.dial(attorney); // also not one of the contact's numbers
    s.add(block(attorney, BlockScope::AllFacilities));
    s.facility().caps.push(cap(CallKind::Voice, 1));
    s.add(usage(CallKind::Voice, date(2026, 3, 1), 60));
    s.now = local("2026-03-10T23:00"); // also outside hours
    assert!(is_legal_notice(denied(&s.decide())));

    let mut v = Scenario::video();
    v.add(privileged(PRIMARY));
    v.contact().video_balance_cents = 0;
    v.add(block(PRIMARY, BlockScope::AllFacilities));
    v.now = local("2026-03-10T23:00");
    v.req.number = Some(SECOND.into()); // ignored for video
    assert!(is_legal_notice(denied(&v.decide())));
}

#[test]
fn privileged_matches_any_spelling_of_the_number() {
    for spelling in ["+15551230001", "15551230001", "5551230001", "(555) 123-0001", "+1 555 123 0001"] {
        let mut s = Scenario::new();
        s.add(privileged(spelling));
        assert!(is_legal_notice(denied(&s.decide())), "{spelling}");
    }
}

#[test]
fn barred_numbers() {
    for number in [
        "+18005551234",
        "18005551234",
        "8005551234",
        "1-800-555-1234",
        "+1 (900) 555-1234",
        "911",
        "411",
        "+1911",
        "+18885550000",
    ] {
        let mut s = Scenario::new();
        s.contact().numbers.push(number.into());
        s.dial(number);
        assert_eq!(*denied(&s.decide()), DenyReason::BarredNumber { number: number.into() }, "{number}");
    }
    for number in ["+15558001234", "+448001234567", "+15559110000"] {
        let mut s = Scenario::new();
        s.contact().numbers.push(number.into());
        s.dial(number);
        assert!(matches!(s.decide(), CallDecision::Allowed { .. }), "{number} must not be barred");
    }
    // Configurable: a facility may bar its own prefixes, or none.
    let mut s = Scenario::new();
    s.facility().barred_prefixes = vec!["555123".into()];
    assert_eq!(*denied(&s.decide()), DenyReason::BarredNumber { number: PRIMARY.into() });
    s.facility().barred_prefixes = vec![String::new()];
    assert!(matches!(s.decide(), CallDecision::Allowed { .. }));
}

#[test]
fn dialling_the_second_authorized_number_in_another_spelling() {
    let mut s = Scenario::new();
    s.dial("1 (555) 123-0002");
    assert!(matches!(s.decide(), CallDecision::Allowed { .. }));
}

#[test]
fn unknown_unit_is_a_misconfiguration() {
    let mut s = Scenario::new();
    s.resident().unit = UnitId::new("Z");
    assert!(matches!(denied(&s.decide()), DenyReason::FacilityMisconfigured { .. }));
}

#[test]
fn windows_touching_over_midnight_let_a_call_run_on() {
    let mut s = Scenario::new();
    s.schedule(vec![window(2, (22, 0), (24, 0)), window(3, (0, 0), (1, 0))]);
    s.facility().voice_limit_secs = 3 * 3600;
    s.now = local("2026-03-10T23:30");
    assert_eq!(allowed(&s.decide()), (5400, 5340, LimitedBy::CallingWindow));
}

#[test]
fn overlapping_windows_merge() {
    let mut s = Scenario::new();
    s.schedule(vec![window(2, (9, 0), (12, 0)), window(2, (11, 0), (12, 30)), window(2, (12, 30), (13, 0))]);
    s.facility().voice_limit_secs = 3 * 3600;
    s.now = local("2026-03-10T12:00");
    assert_eq!(allowed(&s.decide()), (3600, 3540, LimitedBy::CallingWindow));
}

#[test]
fn malformed_windows_open_nothing() {
    let mut s = Scenario::new();
    s.schedule(vec![
        window(2, (13, 0), (12, 0)),
        window(0, (0, 0), (24, 0)),
        window(8, (0, 0), (24, 0)),
        CallingWindow { weekday: 2, start_minute: 600, end_minute: 1500 },
    ]);
    assert_eq!(*denied(&s.decide()), DenyReason::OutsideCallingHours { next_window: None });
}

#[test]
fn zero_day_cap_period_is_a_misconfiguration() {
    let mut s = Scenario::new();
    let mut rule = cap(CallKind::Voice, 100);
    rule.period_days = 0;
    s.facility().caps.push(rule);
    assert!(matches!(denied(&s.decide()), DenyReason::FacilityMisconfigured { .. }));
    // A broken video cap does not stop voice calls.
    s.facility().caps[0].kind = CallKind::Video;
    assert!(matches!(s.decide(), CallDecision::Allowed { .. }));
}
