//! Store benchmarks (issue 2, item 13): applying a 100k-contact snapshot as
//! the change feed delivers it, and applying 1k-change deltas onto it, in a
//! file database with WAL and `synchronous=FULL`. Prints figures, goals and a
//! same-run baseline (raw minimal inserts) so the ratio survives slow machines.
//!
//! Run: `cargo bench -p edge-agent --bench foundation`.

use std::time::{Duration, Instant};

use edge_agent::store::{ApplyMode, Store};
use jiff::Timestamp;
use proto::central::{Change, ChangeBatch, Entity, EntityKey};
use proto::domain::*;

const CONTACTS: u64 = 100_000;
const RESIDENTS: u64 = 2_000;
const UNITS: u64 = 20;
const PAGE: usize = 5_000;
const DELTA: usize = 1_000;
const DELTA_RUNS: usize = 21;

const GOAL_SNAPSHOT: Duration = Duration::from_secs(1);
const GOAL_DELTA: Duration = Duration::from_millis(20);

fn resident_id(i: u64) -> ResidentId {
    ResidentId(format!("CDCR-{i:06}"))
}

fn contact(id: u64, version: u64) -> ContactRecord {
    let approved = if id.is_multiple_of(7) { Approval::Pending } else { Approval::Approved };
    ContactRecord {
        id: ContactId(id),
        resident: resident_id(id % RESIDENTS),
        name: format!("Contact {id} v{version}"),
        account_status: if id.is_multiple_of(50) { AccountStatus::Closed } else { AccountStatus::Active },
        approvals: Approvals { voice: approved, video: approved, message: Approval::Approved },
        numbers: vec![format!("+1555{:07}", id), format!("+1556{:07}", id)],
        video_balance_cents: i64::try_from(id % 5000).unwrap_or(0) + i64::try_from(version).unwrap_or(0),
        video_rate_cents_per_min: 25,
    }
}

fn snapshot_changes() -> Vec<Change> {
    let mut changes = vec![Change::Upsert(Entity::Facility(FacilityRecord::with_defaults(
        FacilityId::new("bench-01"),
        "Bench",
        "America/Los_Angeles",
    )))];
    for u in 0..UNITS {
        changes.push(Change::Upsert(Entity::Unit(HousingUnitRecord {
            id: UnitId(format!("U{u:02}")),
            name: format!("Unit {u}"),
            schedule: (1..=7)
                .flat_map(|weekday| {
                    [(480, 690), (780, 1260)].map(|(start_minute, end_minute)| CallingWindow {
                        weekday,
                        start_minute,
                        end_minute,
                    })
                })
                .collect(),
        })));
    }
    for r in 0..RESIDENTS {
        changes.push(Change::Upsert(Entity::Resident(ResidentRecord {
            id: resident_id(r),
            name: format!("Resident {r}"),
            unit: UnitId(format!("U{:02}", r % UNITS)),
            pin_hash: "$argon2id$v=19$m=19456,t=2,p=1$YmVuY2hzYWx0$aGFzaGhhc2hoYXNoaGFzaA".into(),
            debit_balance_cents: 1000,
            active: true,
        })));
    }
    for c in 1..=CONTACTS {
        changes.push(Change::Upsert(Entity::Contact(contact(c, 0))));
    }
    changes
}

/// Splits changes into feed pages starting at `cursor`, one sequence number
/// per change, as central would number them.
fn pages(changes: Vec<Change>, mut cursor: u64) -> Vec<ChangeBatch> {
    let total = changes.len();
    let mut out = Vec::new();
    let mut sent = 0;
    let mut iter = changes.into_iter().peekable();
    while iter.peek().is_some() {
        let page: Vec<Change> = iter.by_ref().take(PAGE).collect();
        sent += page.len();
        let next_cursor = cursor + page.len() as u64;
        out.push(ChangeBatch { since: cursor, changes: page, next_cursor, more: sent < total });
        cursor = next_cursor;
    }
    out
}

/// 1k mixed changes: 700 updates, 150 deletes, 150 new contacts.
fn delta(run: u64, next_new_id: &mut u64) -> Vec<Change> {
    let base = 1 + run * 997 % (CONTACTS - 2000);
    let mut changes = Vec::with_capacity(DELTA);
    for i in 0..700 {
        changes.push(Change::Upsert(Entity::Contact(contact(base + i, run + 1))));
    }
    for i in 700..850 {
        changes.push(Change::Delete(EntityKey::Contact(ContactId(base + i))));
    }
    for _ in 850..DELTA {
        *next_new_id += 1;
        changes.push(Change::Upsert(Entity::Contact(contact(*next_new_id, run + 1))));
    }
    changes
}

fn now() -> Timestamp {
    Timestamp::constant(1_704_067_200, 0)
}

/// Raw rusqlite: `rows` minimal rows in one transaction, same pragmas.
fn baseline_insert(path: &std::path::Path, rows: u64) -> Duration {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)").unwrap();
    let offset: u64 = conn
        .query_row("SELECT coalesce(max(id), 0) FROM t", [], |r| r.get::<_, i64>(0))
        .unwrap()
        .try_into()
        .unwrap();
    let started = Instant::now();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut stmt = tx.prepare("INSERT INTO t (id, name) VALUES (?1, ?2)").unwrap();
        for i in 1..=rows {
            let id = i64::try_from(offset + i).unwrap();
            stmt.execute(rusqlite::params![id, "x"]).unwrap();
        }
    }
    tx.commit().unwrap();
    started.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("edge.sqlite");
    let mut store = Store::open(&db).unwrap();

    let snapshot = pages(snapshot_changes(), 0);
    let page_count = snapshot.len();
    let change_count: usize = snapshot.iter().map(|p| p.changes.len()).sum();
    let started = Instant::now();
    for page in &snapshot {
        store.apply_batch(page, ApplyMode::Resync, now()).unwrap();
    }
    let snapshot_time = started.elapsed();
    let mut cursor = snapshot.last().map_or(0, |p| p.next_cursor);
    drop(snapshot);

    let started = Instant::now();
    let loaded = store.load_entities().unwrap();
    let load_time = started.elapsed();
    assert_eq!(loaded.len(), change_count, "snapshot fully stored");
    drop(loaded);

    let mut next_new_id = CONTACTS;
    let mut delta_times = Vec::with_capacity(DELTA_RUNS);
    for run in 0..DELTA_RUNS as u64 {
        let changes = delta(run, &mut next_new_id);
        let batch =
            ChangeBatch { since: cursor, next_cursor: cursor + changes.len() as u64, changes, more: false };
        let started = Instant::now();
        store.apply_batch(&batch, ApplyMode::Normal, now()).unwrap();
        delta_times.push(started.elapsed());
        cursor = batch.next_cursor;
    }
    delta_times.sort();
    let delta_p50 = delta_times[delta_times.len() / 2];

    let baseline_db = dir.path().join("baseline.sqlite");
    let baseline_snapshot = baseline_insert(&baseline_db, CONTACTS);
    let mut baseline_deltas: Vec<Duration> =
        (0..DELTA_RUNS).map(|_| baseline_insert(&baseline_db, DELTA as u64)).collect();
    baseline_deltas.sort();
    let baseline_delta_p50 = baseline_deltas[baseline_deltas.len() / 2];

    let verdict = |time: Duration, goal: Duration| if time <= goal { "met" } else { "MISSED" };
    println!("store benchmarks (file DB, WAL, synchronous=FULL)");
    println!(
        "  snapshot: {change_count} changes ({CONTACTS} contacts x 2 numbers, {RESIDENTS} residents, {UNITS} units) \
         in {page_count} pages of {PAGE}, one transaction per page"
    );
    println!(
        "    total {:.1} ms   goal <= {:.0} ms ({})   baseline {} minimal rows in one tx: {:.1} ms   ratio {:.1}x",
        ms(snapshot_time),
        ms(GOAL_SNAPSHOT),
        verdict(snapshot_time, GOAL_SNAPSHOT),
        CONTACTS,
        ms(baseline_snapshot),
        snapshot_time.as_secs_f64() / baseline_snapshot.as_secs_f64()
    );
    println!(
        "  delta: {DELTA} changes (700 updates, 150 deletes, 150 inserts), {DELTA_RUNS} runs onto the snapshot"
    );
    println!(
        "    p50 {:.2} ms  min {:.2} ms  max {:.2} ms   goal <= {:.0} ms ({})   baseline {DELTA} minimal rows p50: {:.2} ms   ratio {:.1}x",
        ms(delta_p50),
        ms(delta_times[0]),
        ms(delta_times[delta_times.len() - 1]),
        ms(GOAL_DELTA),
        verdict(delta_p50, GOAL_DELTA),
        ms(baseline_delta_p50),
        delta_p50.as_secs_f64() / baseline_delta_p50.as_secs_f64()
    );
    println!("  load_entities (agent start): {:.1} ms for {change_count} entities", ms(load_time));
}
