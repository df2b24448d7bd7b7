//! Durable outbox enqueue throughput: group commit (many items per SQLite
//! transaction, one fsync) against a commit-per-item baseline measured in the
//! same run, on a file database with WAL and `synchronous=FULL`.
//!
//! Run with `cargo bench -p edge-agent --bench outbox` (or `cargo xtask bench`).

use std::time::{Duration, Instant};

use edge_agent::store::{Enqueue, Store};
use jiff::Timestamp;
use proto::{
    domain::{ContactId, ResidentId},
    messaging::{Direction, IdempotencyKey, Message, MessageId, OutboxBody, OutboxItem},
};

const GROUP: usize = 64;
const GROUPED_ITEMS: usize = 20_000;
const BASELINE_ITEMS: usize = 500;

fn message_item(n: u64) -> OutboxItem {
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let message = Message {
        id: MessageId::from_u128(u128::from(n) | (1 << 100)),
        resident: ResidentId::new(format!("R{}", 1000 + n % 50)),
        contact: ContactId(1 + n % 200),
        direction: Direction::ResidentToContact,
        subject: format!("Letter {n}"),
        body: "Hello from inside. The weather turned and the yard is open again. ".repeat(4),
        attachments: Vec::new(),
        sent_at: now,
    };
    OutboxItem {
        key: IdempotencyKey::from_u128(u128::from(n) | (7 << 120)),
        created_at: now,
        body: OutboxBody::SendMessage { message, funded_by: None },
    }
}

fn rate(items: usize, took: Duration) -> f64 {
    items as f64 / took.as_secs_f64()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp::from_second(1_800_000_000).unwrap();

    let mut store = Store::open(&dir.path().join("baseline.db")).unwrap();
    let items: Vec<OutboxItem> = (0..BASELINE_ITEMS as u64).map(message_item).collect();
    let started = Instant::now();
    for item in &items {
        store.enqueue(&[Enqueue::item(item)], now).unwrap();
    }
    let baseline = rate(BASELINE_ITEMS, started.elapsed());
    drop(store);

    let mut store = Store::open(&dir.path().join("grouped.db")).unwrap();
    let items: Vec<OutboxItem> = (0..GROUPED_ITEMS as u64).map(message_item).collect();
    let started = Instant::now();
    for chunk in items.chunks(GROUP) {
        let group: Vec<Enqueue<'_>> = chunk.iter().map(Enqueue::item).collect();
        store.enqueue(&group, now).unwrap();
    }
    let grouped = rate(GROUPED_ITEMS, started.elapsed());
    assert_eq!(store.outbox_rows().unwrap().len(), GROUPED_ITEMS, "every item is durable");

    println!("outbox enqueue (file DB, WAL, synchronous=FULL, ~300-byte messages)");
    println!("  baseline, one commit per item: {baseline:>9.0} items/s ({BASELINE_ITEMS} items)");
    println!("  group commit, {GROUP} per commit:  {grouped:>9.0} items/s ({GROUPED_ITEMS} items)");
    let ratio = grouped / baseline;
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "  ratio {ratio:.1}x   goals: >= 5000 items/s ({}), >= 10x baseline ({})",
        met(grouped >= 5000.0),
        met(ratio >= 10.0)
    );
}
