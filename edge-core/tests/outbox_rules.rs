//! The outbox state machine, one rule at a time.

use edge_core::outbox::*;
use jiff::{SignedDuration, Timestamp};
use proto::domain::{CallKind, ContactId, ResidentId};
use proto::messaging::*;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn t_ms(ms: i64) -> Timestamp {
    t(0) + SignedDuration::from_millis(ms)
}

fn key(n: u128) -> IdempotencyKey {
    IdempotencyKey::from_u128(n)
}

fn config() -> OutboxConfig {
    OutboxConfig {
        max_batch: 10,
        max_in_flight: 1,
        ack_timeout: SignedDuration::from_secs(30),
        backoff_base: SignedDuration::from_secs(1),
        backoff_max: SignedDuration::from_secs(60),
        seed: 7,
    }
}

fn message(n: u128, contact: u64, funded_by: Option<IdempotencyKey>) -> OutboxItem {
    OutboxItem {
        key: key(n),
        created_at: t(0),
        body: OutboxBody::SendMessage {
            message: Message {
                id: MessageId::from_u128(n),
                resident: ResidentId::new("R1"),
                contact: ContactId(contact),
                direction: Direction::ResidentToContact,
                subject: format!("m{n}"),
                body: String::new(),
                attachments: Vec::new(),
                sent_at: t(0),
            },
            funded_by,
        },
    }
}

fn purchase(n: u128, contact: u64) -> OutboxItem {
    OutboxItem {
        key: key(n),
        created_at: t(0),
        body: OutboxBody::BuyStamps(StampPurchase {
            resident: ResidentId::new("R1"),
            contact: ContactId(contact),
            package: PackageId(5),
            stamps: 5,
            price_cents: 200,
            bought_at: t(0),
        }),
    }
}

fn cdr(n: u128) -> OutboxItem {
    OutboxItem {
        key: key(n),
        created_at: t(0),
        body: OutboxBody::CallRecord(CallDetailRecord {
            resident: ResidentId::new("R1"),
            contact: ContactId(1),
            kind: CallKind::Voice,
            number: "+15551230001".into(),
            started_at: t(0),
            connected_secs: 10,
            charged_cents: 0,
        }),
    }
}

fn drain(o: &mut Outbox) -> Vec<Output> {
    std::iter::from_fn(|| o.poll()).collect()
}

fn transmits(outputs: &[Output]) -> Vec<(BatchId, Vec<IdempotencyKey>)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit { batch, items } => Some((*batch, items.iter().map(|i| i.key).collect())),
            _ => None,
        })
        .collect()
}

fn enqueue_all(o: &mut Outbox, now: Timestamp, items: Vec<OutboxItem>) {
    for (i, item) in items.into_iter().enumerate() {
        o.handle(now, Input::Enqueue { seq: i as u64 + 1, item }).unwrap();
    }
}

fn ack(k: IdempotencyKey, outcome: DeliveryOutcome) -> DeliveryAck {
    DeliveryAck { key: k, outcome }
}

fn accepted(n: u128) -> DeliveryAck {
    ack(key(n), DeliveryOutcome::Accepted { applied_at: 1 })
}

#[test]
fn one_conversation_goes_one_item_at_a_time_others_batch() {
    let mut o = Outbox::new(config(), t(0));
    // Paused by a transport failure so everything is queued before the first batch.
    enqueue_all(
        &mut o,
        t(0),
        vec![message(1, 1, None), message(2, 1, None), message(3, 2, None), cdr(4), cdr(5)],
    );
    let out = drain(&mut o);
    // The first enqueue went out alone (max_in_flight 1); answer it.
    assert_eq!(transmits(&out), vec![(1, vec![key(1)])]);
    o.handle(t(1), Input::Delivered { batch: 1, acks: vec![accepted(1)] }).unwrap();
    let out = drain(&mut o);
    assert_eq!(out[0], Output::Remove { key: key(1), outcome: DeliveryOutcome::Accepted { applied_at: 1 } });
    // Now the heads of both conversations and both call records, oldest first.
    assert_eq!(transmits(&out), vec![(2, vec![key(2), key(3), key(4), key(5)])]);
    assert_eq!(o.status(&key(2)), Some(ItemStatus::Sending));
}

#[test]
fn a_later_item_waits_for_the_earlier_one_in_its_conversation() {
    let mut cfg = config();
    cfg.max_in_flight = 4;
    let mut o = Outbox::new(cfg, t(0));
    enqueue_all(&mut o, t(0), vec![message(1, 1, None), message(2, 1, None)]);
    assert_eq!(transmits(&drain(&mut o)), vec![(1, vec![key(1)])]);
    assert_eq!(o.status(&key(2)), Some(ItemStatus::Queued { attempts: 0, blocked_by: Some(key(1)) }));
    // A transient refusal of the head keeps the follower waiting too.
    let busy = DeliveryOutcome::Refused {
        reason: RefusalReason::Unavailable { detail: "x".into() },
        permanent: false,
    };
    o.handle(t(1), Input::Delivered { batch: 1, acks: vec![ack(key(1), busy)] }).unwrap();
    assert!(transmits(&drain(&mut o)).is_empty());
    // The head is retried after its backoff (1 s scaled into [0.5, 1] s).
    let due = o.poll_timeout().unwrap();
    assert!(due >= t_ms(1500) && due <= t(2), "{due}");
    o.handle(due, Input::Tick).unwrap();
    assert_eq!(transmits(&drain(&mut o)), vec![(2, vec![key(1)])]);
    o.handle(due, Input::Delivered { batch: 2, acks: vec![accepted(1)] }).unwrap();
    assert_eq!(transmits(&drain(&mut o)), vec![(3, vec![key(2)])]);
}

#[test]
fn a_permanent_refusal_parks_the_item_and_the_messages_its_stamps_paid_for() {
    let mut o = Outbox::new(config(), t(0));
    enqueue_all(
        &mut o,
        t(0),
        vec![purchase(1, 1), message(2, 1, Some(key(1))), message(3, 1, None), message(4, 1, Some(key(1)))],
    );
    assert_eq!(transmits(&drain(&mut o)), vec![(1, vec![key(1)])]);
    let reason = RefusalReason::InsufficientFunds { balance_cents: 10, price_cents: 200 };
    o.handle(
        t(1),
        Input::Delivered {
            batch: 1,
            acks: vec![ack(key(1), DeliveryOutcome::Refused { reason: reason.clone(), permanent: true })],
        },
    )
    .unwrap();
    let out = drain(&mut o);
    let failed = ParkReason::PaymentFailed { purchase: key(1), reason: reason.clone() };
    assert_eq!(out[0], Output::Park { key: key(1), reason: ParkReason::Refused(reason.clone()) });
    assert_eq!(out[1], Output::Park { key: key(2), reason: failed.clone() });
    assert_eq!(out[2], Output::Park { key: key(4), reason: failed.clone() });
    // The message paid from confirmed stamps goes on.
    assert_eq!(transmits(&out), vec![(2, vec![key(3)])]);
    assert_eq!(o.status(&key(4)), Some(ItemStatus::Parked(failed.clone())));
    assert_eq!(o.parked().count(), 3);
    // Parked items are never retried, whatever the clock does.
    o.handle(t(10_000), Input::Delivered { batch: 2, acks: vec![accepted(3)] }).unwrap();
    o.handle(t(20_000), Input::Tick).unwrap();
    assert!(transmits(&drain(&mut o)).is_empty());
    assert_eq!(o.poll_timeout(), None);
    // A message queued later on the failed purchase is parked at once.
    o.handle(t(20_001), Input::Enqueue { seq: 9, item: message(9, 1, Some(key(1))) }).unwrap();
    assert_eq!(drain(&mut o), vec![Output::Park { key: key(9), reason: failed }]);
    // Only parked items can be withdrawn.
    o.handle(t(20_002), Input::Withdraw { key: key(2) }).unwrap();
    assert_eq!(drain(&mut o), vec![Output::Withdrawn { key: key(2) }]);
    assert_eq!(o.handle(t(20_002), Input::Withdraw { key: key(2) }), Err(OutboxError::UnknownItem(key(2))));
}

#[test]
fn a_message_waits_for_its_purchase_even_across_conversations() {
    // Funding is checked on its own, not only through the lane.
    let mut o = Outbox::new(config(), t(0));
    enqueue_all(&mut o, t(0), vec![purchase(1, 1), message(2, 2, Some(key(1)))]);
    assert_eq!(transmits(&drain(&mut o)), vec![(1, vec![key(1)])]);
    assert_eq!(o.status(&key(2)), Some(ItemStatus::Queued { attempts: 0, blocked_by: Some(key(1)) }));
}

#[test]
fn transport_failures_back_off_exponentially_with_jitter_and_uplink_up_resumes() {
    let mut o = Outbox::new(config(), t(0));
    enqueue_all(&mut o, t(0), vec![cdr(1)]);
    let mut batch = transmits(&drain(&mut o))[0].0;
    let mut now = t(0);
    let mut delays = Vec::new();
    for _ in 0..8 {
        o.handle(now, Input::DeliveryFailed { batch }).unwrap();
        assert!(transmits(&drain(&mut o)).is_empty(), "nothing goes out before the backoff");
        let due = o.poll_timeout().unwrap();
        delays.push(due.duration_since(now).as_millis());
        now = due;
        o.handle(now, Input::Tick).unwrap();
        batch = transmits(&drain(&mut o))[0].0;
    }
    let nominal = [1000i128, 2000, 4000, 8000, 16000, 32000, 60000, 60000];
    for (d, n) in delays.iter().zip(nominal) {
        assert!(*d >= n / 2 && *d <= n, "delay {d} ms outside [{}, {n}]", n / 2);
    }
    // The same seed gives the same schedule.
    let mut again = Outbox::new(config(), t(0));
    enqueue_all(&mut again, t(0), vec![cdr(1)]);
    drain(&mut again);
    again.handle(t(0), Input::DeliveryFailed { batch: 1 }).unwrap();
    assert_eq!(again.poll_timeout().unwrap().duration_since(t(0)).as_millis(), delays[0]);
    // A new connection retries at once and resets the backoff.
    o.handle(now, Input::DeliveryFailed { batch }).unwrap();
    o.handle(now, Input::UplinkUp).unwrap();
    assert_eq!(transmits(&drain(&mut o)).len(), 1);
}

#[test]
fn an_unanswered_batch_times_out_and_an_item_left_out_of_an_answer_is_resent() {
    let mut o = Outbox::new(config(), t(0));
    enqueue_all(&mut o, t(0), vec![cdr(1), cdr(2)]);
    let _ = drain(&mut o);
    assert_eq!(o.poll_timeout(), Some(t(30)));
    o.handle(t(30), Input::Tick).unwrap();
    assert!(transmits(&drain(&mut o)).is_empty(), "a timeout is a transport failure: back off first");
    let due = o.poll_timeout().unwrap();
    o.handle(due, Input::Tick).unwrap();
    let out = transmits(&drain(&mut o));
    assert_eq!(out[0].1, vec![key(1), key(2)]);
    // The answer covers only one item; the other goes again, the late answer
    // for the first batch is harmless.
    o.handle(due, Input::Delivered { batch: out[0].0, acks: vec![accepted(1)] }).unwrap();
    let again = drain(&mut o);
    assert_eq!(transmits(&again)[0].1, vec![key(2)]);
    o.handle(
        due,
        Input::Delivered {
            batch: 1,
            acks: vec![accepted(1), ack(key(2), DeliveryOutcome::Duplicate { applied_at: 1 })],
        },
    )
    .unwrap();
    assert_eq!(
        drain(&mut o),
        vec![Output::Remove { key: key(2), outcome: DeliveryOutcome::Duplicate { applied_at: 1 } }]
    );
    assert!(o.is_empty());
}

#[test]
fn restore_resends_what_was_not_acked_and_keeps_parked_items_parked() {
    let reason = RefusalReason::NoStamps;
    let rows = vec![
        StoredItem { seq: 3, item: message(3, 1, None), parked: None },
        StoredItem { seq: 1, item: purchase(1, 1), parked: Some(ParkReason::Refused(reason.clone())) },
        // Parked purchase, but the crash came before its dependent was parked.
        StoredItem { seq: 2, item: message(2, 1, Some(key(1))), parked: None },
        StoredItem { seq: 4, item: cdr(4), parked: None },
    ];
    let mut o = Outbox::restore(config(), t(0), rows);
    let out = drain(&mut o);
    assert_eq!(
        out[0],
        Output::Park { key: key(2), reason: ParkReason::PaymentFailed { purchase: key(1), reason } }
    );
    assert_eq!(transmits(&out), vec![(1, vec![key(3), key(4)])]);
    assert_eq!(o.len(), 4);
    assert_eq!(o.live_len(), 2);
}

#[test]
fn a_clock_jumping_back_does_not_stall_the_outbox() {
    let mut o = Outbox::new(config(), t(1_000_000));
    enqueue_all(&mut o, t(1_000_000), vec![cdr(1)]);
    let batch = transmits(&drain(&mut o))[0].0;
    o.handle(t(1_000_000), Input::DeliveryFailed { batch }).unwrap();
    // The clock is corrected back by a week.
    o.handle(t(0), Input::Tick).unwrap();
    let due = o.poll_timeout().unwrap();
    assert!(due <= t(60), "waits at most the largest backoff from the new now: {due}");
    o.handle(due, Input::Tick).unwrap();
    assert_eq!(transmits(&drain(&mut o)).len(), 1);
}

#[test]
fn batches_respect_the_size_and_in_flight_limits() {
    let mut cfg = config();
    cfg.max_batch = 3;
    cfg.max_in_flight = 2;
    let mut o = Outbox::new(cfg, t(0));
    // Enqueue while a transport backoff holds everything back.
    o.handle(t(0), Input::Enqueue { seq: 100, item: cdr(100) }).unwrap();
    let b = transmits(&drain(&mut o))[0].0;
    o.handle(t(0), Input::DeliveryFailed { batch: b }).unwrap();
    for n in 1..=10 {
        o.handle(t(0), Input::Enqueue { seq: n as u64, item: cdr(n) }).unwrap();
    }
    o.handle(t(0), Input::UplinkUp).unwrap();
    let out = transmits(&drain(&mut o));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].1, vec![key(1), key(2), key(3)]);
    assert_eq!(out[1].1, vec![key(4), key(5), key(6)]);
}
