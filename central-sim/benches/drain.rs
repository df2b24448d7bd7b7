//! Drain throughput to central-sim on loopback: outbox items delivered over
//! QUIC with mutual TLS the way the edge's outbox sends them (batches of 64,
//! at most 2 requests in flight), each applied once in central-sim's SQLite.
//! A same-run baseline sends one item per request, one request at a time.
//!
//! Run with `cargo bench -p central-sim --bench drain` (or `cargo xtask bench`).

use std::{sync::Arc, time::Instant};

use central_sim::{server::Server, state};
use jiff::Timestamp;
use net::{quic, rpc};
use proto::{
    central::{CentralToEdge, EdgeToCentral},
    domain::FacilityId,
    messaging::{AuditRecord, DeliveryOutcome, IdempotencyKey, OutboxBody, OutboxItem},
    MAX_CENTRAL_FRAME,
};

const BATCH: usize = 64;
const IN_FLIGHT: usize = 2;
const ITEMS: usize = 2_048;
const BASELINE_ITEMS: usize = 128;

fn audit_item(n: u64) -> OutboxItem {
    let at = Timestamp::from_second(1_800_000_000).unwrap();
    OutboxItem {
        key: IdempotencyKey::from_u128(u128::from(n) | (3 << 120)),
        created_at: at,
        body: OutboxBody::Audit(AuditRecord {
            seq: n,
            at,
            actor: "tablet:T-0001".into(),
            action: "call-decision".into(),
            detail: format!("{{\"resident\":\"R1001\",\"contact\":1,\"n\":{n}}}"),
            prev_hash: [0; 32],
            hash: [1; 32],
        }),
    }
}

async fn deliver(conn: &quinn::Connection, facility: &FacilityId, items: Vec<OutboxItem>) -> usize {
    let sent = items.len();
    let request = EdgeToCentral::Deliver { facility: facility.clone(), items };
    match rpc::call::<_, CentralToEdge>(conn, &request, MAX_CENTRAL_FRAME).await.unwrap() {
        CentralToEdge::Delivered { acks } => {
            assert_eq!(acks.len(), sent);
            acks.iter().filter(|a| matches!(a.outcome, DeliveryOutcome::Accepted { .. })).count()
        }
        other => panic!("unexpected answer {other:?}"),
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    state::init(dir.path(), None).unwrap();
    let facility = FacilityId::new("demo-ca-01");
    let server = Server::bind(dir.path(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let bundle = net::Bundle::load(&state::edge_bundle_path(dir.path(), &facility)).unwrap();
    let endpoint = quic::client_endpoint(&bundle, quic::CENTRAL_ALPN).unwrap();
    let conn = Arc::new(quic::connect(&endpoint, addr, "localhost").await.unwrap());

    let started = Instant::now();
    let mut applied = 0;
    for n in 0..BASELINE_ITEMS as u64 {
        applied += deliver(&conn, &facility, vec![audit_item(n)]).await;
    }
    assert_eq!(applied, BASELINE_ITEMS);
    let baseline = BASELINE_ITEMS as f64 / started.elapsed().as_secs_f64();

    let items: Vec<OutboxItem> = (1_000_000..1_000_000 + ITEMS as u64).map(audit_item).collect();
    let batches: Vec<Vec<OutboxItem>> = items.chunks(BATCH).map(<[OutboxItem]>::to_vec).collect();
    let started = Instant::now();
    let mut applied = 0;
    for wave in batches.chunks(IN_FLIGHT) {
        let calls = wave.iter().cloned().map(|batch| {
            let conn = conn.clone();
            let facility = facility.clone();
            tokio::spawn(async move { deliver(&conn, &facility, batch).await })
        });
        for call in calls.collect::<Vec<_>>() {
            applied += call.await.unwrap();
        }
    }
    assert_eq!(applied, ITEMS, "every item applied exactly once");
    let batched = ITEMS as f64 / started.elapsed().as_secs_f64();

    println!("outbox drain to central-sim over QUIC on loopback (audit items, one SQLite transaction per item at central)");
    println!("  baseline, one item per request:            {baseline:>8.0} items/s ({BASELINE_ITEMS} items)");
    println!("  batches of {BATCH}, {IN_FLIGHT} requests in flight (the edge's way): {batched:>8.0} items/s ({ITEMS} items)");
    println!("  ratio {:.1}x", batched / baseline);

    conn.close(0u32.into(), b"done");
    let _ = stop.send(());
    let _ = serving.await;
}
