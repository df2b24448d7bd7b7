//! Calling hours across both 2026 DST transitions in Los Angeles, the hours
//! view, and contact-list availability.

mod common;

use common::*;
use edge_core::policy::{availability, hours};
use jiff::civil::date;
use jiff::SignedDuration;
use proto::central::Entity;
use proto::domain::*;
use proto::tablet::{Availability, CallDecision, DenyReason, LimitedBy};

const SPRING_FORWARD: (i16, i8, i8) = (2026, 3, 8);
const FALL_BACK: (i16, i8, i8) = (2026, 11, 1);

fn hours_on(s: &Scenario, now: jiff::Timestamp) -> proto::tablet::HoursView {
    hours(&s.directory(), &s.lockdowns, &UnitId::new(UNIT), now).unwrap()
}

#[test]
fn day_window_opens_and_closes_on_local_time_on_both_dst_days() {
    let s = Scenario::new(); // 08:00-22:00 daily
                             // Spring forward: PDT (UTC-7) from 03:00, so 08:00 is 15:00Z.
    let v = hours_on(&s, utc("2026-03-08T19:00:00Z"));
    assert_eq!(v.local_date, date(SPRING_FORWARD.0, SPRING_FORWARD.1, SPRING_FORWARD.2));
    assert_eq!(v.today.len(), 1);
    assert_eq!(v.today[0].starts_at, utc("2026-03-08T15:00:00Z"));
    assert_eq!(v.today[0].ends_at, utc("2026-03-09T05:00:00Z"));
    assert_eq!((v.today[0].local_start.as_str(), v.today[0].local_end.as_str()), ("08:00", "22:00"));
    assert!(v.open_now);
    assert!(
        matches!(s.decide_at(utc("2026-03-08T14:59:59Z")), CallDecision::Denied(DenyReason::OutsideCallingHours { next_window: Some(w) }) if w.starts_at == utc("2026-03-08T15:00:00Z"))
    );
    assert!(matches!(s.decide_at(utc("2026-03-08T15:00:00Z")), CallDecision::Allowed { .. }));
    // Ten real minutes before 22:00 PDT.
    assert_eq!(allowed(&s.decide_at(utc("2026-03-09T04:50:00Z"))), (600, 540, LimitedBy::CallingWindow));
    assert!(matches!(
        s.decide_at(utc("2026-03-09T05:00:00Z")),
        CallDecision::Denied(DenyReason::OutsideCallingHours { .. })
    ));

    // Fall back: PST (UTC-8) from 01:00 (second time), so 08:00 is 16:00Z.
    let v = hours_on(&s, utc("2026-11-01T20:00:00Z"));
    assert_eq!(v.local_date, date(FALL_BACK.0, FALL_BACK.1, FALL_BACK.2));
    assert_eq!(v.today[0].starts_at, utc("2026-11-01T16:00:00Z"));
    assert_eq!(v.today[0].ends_at, utc("2026-11-02T06:00:00Z"));
    assert_eq!((v.today[0].local_start.as_str(), v.today[0].local_end.as_str()), ("08:00", "22:00"));
    assert!(matches!(
        s.decide_at(utc("2026-11-01T15:59:59Z")),
        CallDecision::Denied(DenyReason::OutsideCallingHours { .. })
    ));
    assert!(matches!(s.decide_at(utc("2026-11-01T16:00:00Z")), CallDecision::Allowed { .. }));
    assert_eq!(allowed(&s.decide_at(utc("2026-11-02T05:50:00Z"))), (600, 540, LimitedBy::CallingWindow));
    assert!(matches!(
        s.decide_at(utc("2026-11-02T06:00:00Z")),
        CallDecision::Denied(DenyReason::OutsideCallingHours { .. })
    ));
}

fn night_scenario() -> Scenario {
    let mut s = Scenario::new();
    s.schedule(daily((1, 0), (3, 0)));
    s.facility().voice_limit_secs = 4 * 3600;
    s
}

#[test]
fn night_window_holds_three_real_hours_on_fall_back_day() {
    let s = night_scenario();
    let v = hours_on(&s, utc("2026-11-01T20:00:00Z"));
    let w = &v.today[0];
    assert_eq!(w.starts_at, utc("2026-11-01T08:00:00Z")); // 01:00 PDT, first occurrence
    assert_eq!(w.ends_at, utc("2026-11-01T11:00:00Z")); // 03:00 PST
    assert_eq!(w.ends_at.duration_since(w.starts_at), SignedDuration::from_hours(3));
    // At the first 01:50 (PDT) 130 real minutes remain, not the 70 the wall
    // clock suggests; at the second 01:50 (PST) 70 remain.
    assert_eq!(allowed(&s.decide_at(utc("2026-11-01T08:50:00Z"))), (7800, 7740, LimitedBy::CallingWindow));
    assert_eq!(allowed(&s.decide_at(utc("2026-11-01T09:50:00Z"))), (4200, 4140, LimitedBy::CallingWindow));
    assert_eq!(allowed(&s.decide_at(utc("2026-11-01T10:59:00Z"))), (60, 0, LimitedBy::CallingWindow));
}

#[test]
fn night_window_holds_one_real_hour_on_spring_forward_day() {
    let s = night_scenario();
    let v = hours_on(&s, utc("2026-03-08T20:00:00Z"));
    let w = &v.today[0];
    assert_eq!(w.starts_at, utc("2026-03-08T09:00:00Z")); // 01:00 PST
    assert_eq!(w.ends_at, utc("2026-03-08T10:00:00Z")); // 03:00 PDT
    assert_eq!(w.ends_at.duration_since(w.starts_at), SignedDuration::from_hours(1));
    assert_eq!((w.local_start.as_str(), w.local_end.as_str()), ("01:00", "03:00"));
    // 01:50 PST: ten real minutes left although 03:00 is 70 wall minutes away.
    assert_eq!(allowed(&s.decide_at(utc("2026-03-08T09:50:00Z"))), (600, 540, LimitedBy::CallingWindow));
    // The day before, the same wall-clock time leaves 70 real minutes.
    assert_eq!(allowed(&s.decide_at(local("2026-03-07T01:50"))), (4200, 4140, LimitedBy::CallingWindow));
}

#[test]
fn hours_view_lists_today_and_the_next_window() {
    let mut s = Scenario::new();
    s.schedule(vec![window(2, (8, 0), (11, 0)), window(2, (13, 0), (22, 0)), window(4, (9, 30), (10, 0))]);
    // Tuesday 12:00: between two windows.
    let v = hours_on(&s, local("2026-03-10T12:00"));
    assert_eq!(v.time_zone, LA);
    assert_eq!(v.local_date, date(2026, 3, 10));
    let labels: Vec<_> = v.today.iter().map(|w| (w.local_start.as_str(), w.local_end.as_str())).collect();
    assert_eq!(labels, [("08:00", "11:00"), ("13:00", "22:00")]);
    assert!(!v.open_now);
    assert_eq!(v.next_window.unwrap().starts_at, local("2026-03-10T13:00"));
    assert_eq!(v.lockdown, None);
    // Tuesday 23:00: next is Thursday 09:30.
    let v = hours_on(&s, local("2026-03-10T23:00"));
    let next = v.next_window.unwrap();
    assert_eq!(
        (next.local_date, next.local_start.as_str(), next.local_end.as_str()),
        (date(2026, 3, 12), "09:30", "10:00")
    );
    // Inside a window the next one is the one after it.
    let v = hours_on(&s, local("2026-03-12T09:45"));
    assert!(v.open_now);
    assert_eq!(v.next_window.unwrap().local_date, date(2026, 3, 17));
}

#[test]
fn hours_view_reports_lockdown_and_unknown_units() {
    let mut s = Scenario::new();
    s.lockdowns.insert(LockdownScope::Unit(UnitId::new(UNIT)));
    let v = hours_on(&s, local("2026-03-10T12:00"));
    assert!(v.open_now);
    assert_eq!(v.lockdown, Some(LockdownScope::Unit(UnitId::new(UNIT))));
    s.lockdowns.insert(LockdownScope::Facility);
    assert_eq!(hours_on(&s, local("2026-03-10T12:00")).lockdown, Some(LockdownScope::Facility));
    let err =
        hours(&s.directory(), &s.lockdowns, &UnitId::new("nope"), local("2026-03-10T12:00")).unwrap_err();
    assert!(matches!(err, DenyReason::FacilityMisconfigured { .. }));
    s.facility = None;
    assert!(hours(&s.directory(), &s.lockdowns, &UnitId::new(UNIT), local("2026-03-10T12:00")).is_err());
}

#[test]
fn hours_view_with_no_windows_has_no_next_window() {
    let mut s = Scenario::new();
    s.schedule(Vec::new());
    let v = hours_on(&s, local("2026-03-10T12:00"));
    assert!(v.today.is_empty() && !v.open_now && v.next_window.is_none());
}

fn avail(s: &Scenario, service: Service) -> Availability {
    let dir = s.directory();
    let contact = dir.contact(CONTACT).unwrap().clone();
    availability(&dir, &s.lockdowns, &ResidentId::new(RESIDENT), &contact, service, s.now)
}

#[test]
fn availability_matches_decide_for_calls() {
    let mut s = Scenario::new();
    assert_eq!(avail(&s, Service::Voice), Availability::Available);
    assert_eq!(avail(&s, Service::Video), Availability::Available);
    s.contact().video_balance_cents = 0;
    assert_eq!(
        avail(&s, Service::Video),
        Availability::Unavailable(DenyReason::InsufficientBalance {
            balance_cents: 0,
            rate_cents_per_min: 25
        })
    );
    assert_eq!(avail(&s, Service::Voice), Availability::Available);
    s.now = local("2026-03-10T23:00");
    assert!(matches!(
        avail(&s, Service::Voice),
        Availability::Unavailable(DenyReason::OutsideCallingHours { .. })
    ));
    assert_eq!(avail(&s, Service::Message), Availability::Available);
}

#[test]
fn messaging_ignores_lockdown_but_not_its_own_rules() {
    let mut s = Scenario::new();
    s.lockdowns.insert(LockdownScope::Facility);
    assert!(matches!(avail(&s, Service::Voice), Availability::Unavailable(DenyReason::Lockdown { .. })));
    assert_eq!(avail(&s, Service::Message), Availability::Available);

    let mut s = Scenario::new();
    s.suspend(&[Service::Voice], date(2026, 3, 20));
    assert_eq!(avail(&s, Service::Message), Availability::Available);
    s.suspend(&[Service::Message], date(2026, 3, 20));
    assert!(matches!(avail(&s, Service::Message), Availability::Unavailable(DenyReason::Suspended { .. })));

    let mut s = Scenario::new();
    s.contact().approvals.message = Approval::Pending;
    assert_eq!(
        avail(&s, Service::Message),
        Availability::Unavailable(DenyReason::NotApproved {
            service: Service::Message,
            status: Approval::Pending
        })
    );
    s.contact().account_status = AccountStatus::Closed;
    assert_eq!(avail(&s, Service::Message), Availability::Unavailable(DenyReason::AccountClosed));
    s.resident().active = false;
    assert_eq!(avail(&s, Service::Message), Availability::Unavailable(DenyReason::ResidentInactive));
}

#[test]
fn availability_refuses_another_residents_contact() {
    let mut s = Scenario::new();
    s.residents.push(resident_record("R-200", UNIT));
    s.contacts.push(contact_record(2, "R-200", "Bob", &["+15551239999"]));
    let dir = s.directory();
    let bob = dir.contact(ContactId(2)).unwrap().clone();
    for service in [Service::Voice, Service::Video, Service::Message] {
        assert_eq!(
            availability(&dir, &s.lockdowns, &ResidentId::new(RESIDENT), &bob, service, s.now),
            Availability::Unavailable(DenyReason::UnknownContact { contact: ContactId(2) })
        );
    }
}

#[test]
fn later_sync_changes_take_effect_at_once() {
    let s = Scenario::new();
    let mut dir = s.directory();
    let req = s.req.clone();
    let lockdowns = s.lockdowns.clone();
    let decide =
        |dir: &edge_core::directory::Directory| edge_core::policy::decide_call(dir, &lockdowns, &req, s.now);
    assert!(matches!(decide(&dir), CallDecision::Allowed { .. }));
    let blocked = BlockRecord { number: PRIMARY.into(), scope: BlockScope::AllFacilities };
    dir.apply(&proto::central::Change::Upsert(Entity::Block(blocked.clone())));
    assert!(matches!(decide(&dir), CallDecision::Denied(DenyReason::NumberBlocked { .. })));
    dir.apply(&proto::central::Change::Delete(proto::central::EntityKey::Block(blocked)));
    assert!(matches!(decide(&dir), CallDecision::Allowed { .. }));
}
