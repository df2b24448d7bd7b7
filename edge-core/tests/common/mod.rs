//! A small builder for a [`Directory`] and a call scenario, so each test
//! states only what differs from an ordinary allowed call.
#![allow(dead_code)]

use edge_core::directory::{Directory, Lockdowns};
use edge_core::policy::{decide_call, CallRequest};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use proto::central::Entity;
use proto::domain::*;
use proto::tablet::CallDecision;

pub const LA: &str = "America/Los_Angeles";
pub const FACILITY: &str = "demo-ca-01";
pub const UNIT: &str = "A";
pub const RESIDENT: &str = "R-100";
pub const CONTACT: ContactId = ContactId(1);
pub const PRIMARY: &str = "+15551230001";
pub const SECOND: &str = "+15551230002";

pub fn la() -> TimeZone {
    TimeZone::get(LA).unwrap()
}

/// The instant of a local wall-clock time in Los Angeles (`2026-03-10T12:00`).
pub fn local(s: &str) -> Timestamp {
    la().to_timestamp(s.parse::<DateTime>().unwrap()).unwrap()
}

pub fn utc(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub fn window(weekday: u8, start: (u16, u16), end: (u16, u16)) -> CallingWindow {
    CallingWindow { weekday, start_minute: start.0 * 60 + start.1, end_minute: end.0 * 60 + end.1 }
}

/// The same window on all seven days.
pub fn daily(start: (u16, u16), end: (u16, u16)) -> Vec<CallingWindow> {
    (1..=7).map(|d| window(d, start, end)).collect()
}

pub fn approved() -> Approvals {
    Approvals { voice: Approval::Approved, video: Approval::Approved, message: Approval::Approved }
}

pub fn contact_record(id: u64, resident: &str, name: &str, numbers: &[&str]) -> ContactRecord {
    ContactRecord {
        id: ContactId(id),
        resident: ResidentId::new(resident),
        name: name.into(),
        account_status: AccountStatus::Active,
        approvals: approved(),
        numbers: numbers.iter().map(|n| n.to_string()).collect(),
        video_balance_cents: 10_000,
        video_rate_cents_per_min: 25,
    }
}

pub fn resident_record(id: &str, unit: &str) -> ResidentRecord {
    ResidentRecord {
        id: ResidentId::new(id),
        name: format!("Resident {id}"),
        unit: UnitId::new(unit),
        pin_hash: String::new(),
        debit_balance_cents: 0,
        active: true,
    }
}

/// An ordinary allowed voice call: LA facility with default settings, unit A
/// open 08:00-22:00 every day, one active resident, one fully approved
/// contact with two numbers and a healthy video balance, on a Tuesday noon.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub facility: Option<FacilityRecord>,
    pub units: Vec<HousingUnitRecord>,
    pub residents: Vec<ResidentRecord>,
    pub contacts: Vec<ContactRecord>,
    pub extra: Vec<Entity>,
    pub lockdowns: Lockdowns,
    pub req: CallRequest,
    pub now: Timestamp,
}

impl Default for Scenario {
    fn default() -> Self {
        Self::new()
    }
}

impl Scenario {
    pub fn new() -> Self {
        Scenario {
            facility: Some(FacilityRecord::with_defaults(FacilityId::new(FACILITY), "Demo", LA)),
            units: vec![HousingUnitRecord {
                id: UnitId::new(UNIT),
                name: "Unit A".into(),
                schedule: daily((8, 0), (22, 0)),
            }],
            residents: vec![resident_record(RESIDENT, UNIT)],
            contacts: vec![contact_record(1, RESIDENT, "Alice", &[PRIMARY, SECOND])],
            extra: Vec::new(),
            lockdowns: Lockdowns::new(),
            req: CallRequest {
                resident: ResidentId::new(RESIDENT),
                contact: CONTACT,
                kind: CallKind::Voice,
                number: None,
            },
            now: local("2026-03-10T12:00"),
        }
    }

    pub fn video() -> Self {
        let mut s = Self::new();
        s.req.kind = CallKind::Video;
        s
    }

    pub fn facility(&mut self) -> &mut FacilityRecord {
        self.facility.as_mut().unwrap()
    }

    pub fn contact(&mut self) -> &mut ContactRecord {
        &mut self.contacts[0]
    }

    pub fn resident(&mut self) -> &mut ResidentRecord {
        &mut self.residents[0]
    }

    pub fn schedule(&mut self, windows: Vec<CallingWindow>) -> &mut Self {
        self.units[0].schedule = windows;
        self
    }

    pub fn dial(&mut self, number: &str) -> &mut Self {
        self.req.number = Some(number.into());
        self
    }

    pub fn add(&mut self, entity: Entity) -> &mut Self {
        self.extra.push(entity);
        self
    }

    pub fn suspend(&mut self, services: &[Service], ends_on: Date) -> &mut Self {
        let id = self.extra.len() as u64 + 1;
        self.add(Entity::Suspension(SuspensionRecord {
            id,
            resident: ResidentId::new(RESIDENT),
            services: services.to_vec(),
            ends_on,
            reason: "rule violation".into(),
        }))
    }

    pub fn directory(&self) -> Directory {
        let mut dir = Directory::new();
        if let Some(f) = &self.facility {
            dir.upsert(Entity::Facility(f.clone()));
        }
        for u in &self.units {
            dir.upsert(Entity::Unit(u.clone()));
        }
        for r in &self.residents {
            dir.upsert(Entity::Resident(r.clone()));
        }
        for c in &self.contacts {
            dir.upsert(Entity::Contact(c.clone()));
        }
        for e in &self.extra {
            dir.upsert(e.clone());
        }
        dir
    }

    pub fn decide(&self) -> CallDecision {
        decide_call(&self.directory(), &self.lockdowns, &self.req, self.now)
    }

    pub fn decide_at(&self, now: Timestamp) -> CallDecision {
        decide_call(&self.directory(), &self.lockdowns, &self.req, now)
    }
}

/// `(max_duration_secs, warn_at_secs, limited_by)` of an allowed decision.
pub fn allowed(d: &CallDecision) -> (u32, u32, proto::tablet::LimitedBy) {
    match d {
        CallDecision::Allowed { max_duration_secs, warn_at_secs, limited_by } => {
            (*max_duration_secs, *warn_at_secs, *limited_by)
        }
        CallDecision::Denied(r) => panic!("expected an allowed call, got denied: {r:?}"),
    }
}

pub fn denied(d: &CallDecision) -> &proto::tablet::DenyReason {
    match d {
        CallDecision::Denied(r) => r,
        CallDecision::Allowed { .. } => panic!("expected a denial, got {d:?}"),
    }
}
