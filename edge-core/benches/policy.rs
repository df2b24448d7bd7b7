//! Policy decision latency with 100k cached contacts, against a 100-contact
//! baseline in the same run. Prints figures; asserts nothing.
//!
//! `cargo bench -p edge-core --bench policy`

use std::hint::black_box;
use std::time::{Duration, Instant};

use edge_core::directory::{Directory, Lockdowns};
use edge_core::policy::{decide_call, CallRequest};
use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use proto::central::{Change, Entity};
use proto::domain::*;
use proto::tablet::CallDecision;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const UNITS: [&str; 3] = ["A", "B", "C"];
const REQUESTS: usize = 200_000;

struct Population {
    residents: usize,
    contacts: usize,
}

fn number(contact: usize, which: usize) -> String {
    format!("+1555{:03}{:04}", which, contact % 10_000 + (contact / 10_000) % 10)
}

fn snapshot(pop: &Population, rng: &mut StdRng) -> Vec<Change> {
    let mut facility =
        FacilityRecord::with_defaults(FacilityId::new("bench-01"), "Bench", "America/Los_Angeles");
    facility.caps.push(CapRule {
        kind: CallKind::Video,
        minutes: 300,
        period_days: 14,
        anchor: date(2026, 1, 4),
    });
    let mut changes = vec![Change::Upsert(Entity::Facility(facility))];
    for (i, unit) in UNITS.iter().enumerate() {
        let open = 7 + i as u16;
        let schedule = (1..=7)
            .flat_map(|weekday| {
                [
                    CallingWindow { weekday, start_minute: open * 60, end_minute: 12 * 60 },
                    CallingWindow { weekday, start_minute: 13 * 60, end_minute: 22 * 60 },
                ]
            })
            .collect();
        changes.push(Change::Upsert(Entity::Unit(HousingUnitRecord {
            id: UnitId::new(*unit),
            name: format!("Unit {unit}"),
            schedule,
        })));
    }
    for r in 0..pop.residents {
        changes.push(Change::Upsert(Entity::Resident(ResidentRecord {
            id: ResidentId::new(format!("R{r:06}")),
            name: format!("Resident {r}"),
            unit: UnitId::new(UNITS[r % UNITS.len()]),
            pin_hash: String::new(),
            debit_balance_cents: 1000,
            active: r % 50 != 0,
        })));
        if r % 20 == 0 {
            changes.push(Change::Upsert(Entity::Suspension(SuspensionRecord {
                id: r as u64,
                resident: ResidentId::new(format!("R{r:06}")),
                services: vec![Service::Video],
                ends_on: date(2026, 6, 30),
                reason: "bench".into(),
            })));
        }
        changes.push(Change::Upsert(Entity::CapUsage(CapUsageRecord {
            resident: ResidentId::new(format!("R{r:06}")),
            kind: CallKind::Video,
            period_start: date(2026, 3, 1),
            used_secs: rng.gen_range(0..20_000),
        })));
    }
    let approval = |rng: &mut StdRng| {
        if rng.gen_bool(0.9) {
            Approval::Approved
        } else {
            Approval::Pending
        }
    };
    for c in 0..pop.contacts {
        let approvals = Approvals { voice: approval(rng), video: approval(rng), message: approval(rng) };
        changes.push(Change::Upsert(Entity::Contact(ContactRecord {
            id: ContactId(c as u64),
            resident: ResidentId::new(format!("R{:06}", c % pop.residents)),
            name: format!("Contact {c}"),
            account_status: if c % 97 == 0 { AccountStatus::Closed } else { AccountStatus::Active },
            approvals,
            numbers: vec![number(c, 0), number(c, 1)],
            video_balance_cents: rng.gen_range(0..5_000),
            video_rate_cents_per_min: 25,
        })));
        if c % 100 == 1 {
            let scope = if c % 200 == 1 {
                BlockScope::AllFacilities
            } else {
                BlockScope::Facility(FacilityId::new("bench-01"))
            };
            changes.push(Change::Upsert(Entity::Block(BlockRecord { number: number(c, 0), scope })));
        }
        if c % 1000 == 3 {
            changes.push(Change::Upsert(Entity::Privileged(PrivilegedNumberRecord {
                number: number(c, 0),
                label: "counsel".into(),
            })));
        }
    }
    changes
}

fn requests(pop: &Population, rng: &mut StdRng) -> Vec<(CallRequest, Timestamp)> {
    let tz = TimeZone::get("America/Los_Angeles").unwrap();
    // Two weeks around the spring-forward change.
    let first_day = date(2026, 3, 2);
    (0..REQUESTS)
        .map(|_| {
            let contact = rng.gen_range(0..pop.contacts);
            // Mostly the contact's own resident; sometimes someone else's.
            let resident =
                if rng.gen_bool(0.97) { contact % pop.residents } else { rng.gen_range(0..pop.residents) };
            let kind = if rng.gen_bool(0.5) { CallKind::Voice } else { CallKind::Video };
            let number = match rng.gen_range(0..10) {
                0 => Some(number(contact, 1)),
                1 => Some("+18005550100".to_string()),
                _ => None,
            };
            // Mostly inside calling hours, where every check runs.
            let hour = if rng.gen_bool(0.85) { rng.gen_range(9..21) } else { rng.gen_range(0..24) };
            let day = first_day.checked_add(jiff::Span::new().days(rng.gen_range(0..14))).unwrap();
            let now = tz.to_timestamp(day.at(hour, rng.gen_range(0..60), rng.gen_range(0..60), 0)).unwrap();
            let req = CallRequest {
                resident: ResidentId::new(format!("R{resident:06}")),
                contact: ContactId(contact as u64),
                kind,
                number,
            };
            (req, now)
        })
        .collect()
}

struct Figures {
    p50: f64,
    p99: f64,
    max: f64,
    allowed: usize,
}

fn run(label: &str, pop: Population) -> Figures {
    let mut rng = StdRng::seed_from_u64(0xFAC1_u64 ^ pop.contacts as u64);
    let changes = snapshot(&pop, &mut rng);
    let started = Instant::now();
    let mut dir = Directory::new();
    dir.apply_all(&changes);
    let build = started.elapsed();
    let reqs = requests(&pop, &mut rng);
    let mut lockdowns = Lockdowns::new();
    lockdowns.insert(LockdownScope::Unit(UnitId::new("C")));

    // Warm caches and the allocator before measuring.
    for (req, now) in reqs.iter().take(20_000) {
        black_box(decide_call(&dir, &lockdowns, req, *now));
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(reqs.len());
    let mut allowed = 0;
    for (req, now) in &reqs {
        let t = Instant::now();
        let decision = decide_call(black_box(&dir), &lockdowns, black_box(req), *now);
        samples.push(t.elapsed());
        if matches!(black_box(decision), CallDecision::Allowed { .. }) {
            allowed += 1;
        }
    }
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pick = |q: f64| us(samples[((samples.len() - 1) as f64 * q) as usize]);
    let figures = Figures { p50: pick(0.50), p99: pick(0.99), max: us(*samples.last().unwrap()), allowed };
    let counts = dir.counts();
    println!(
        "{label:>5}: {} contacts ({} residents, {} blocks, {} privileged, {} suspensions): \
         directory built in {:.1} ms; {} decisions ({} allowed): p50 {:.2} us, p99 {:.2} us, max {:.1} us",
        counts.contacts,
        counts.residents,
        counts.blocks,
        counts.privileged,
        counts.suspensions,
        build.as_secs_f64() * 1e3,
        samples.len(),
        figures.allowed,
        figures.p50,
        figures.p99,
        figures.max,
    );
    figures
}

fn main() {
    let small = run("100", Population { residents: 20, contacts: 100 });
    let large = run("100k", Population { residents: 2_000, contacts: 100_000 });
    println!(
        "p99 ratio 100k/100: {:.2} (goal: p99 <= 20 us at 100k: {})",
        large.p99 / small.p99,
        if large.p99 <= 20.0 { "met" } else { "NOT met" }
    );
}
