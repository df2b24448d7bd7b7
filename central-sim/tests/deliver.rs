//! Outbox deliveries against a seeded database, without sockets: dedup by
//! key, purchases, messages and stamps, call records, review, inbound mail.

use std::time::Duration;

use central_sim::admin::{self, AdminCommand, VerdictArgs};
use central_sim::db::Db;
use central_sim::deliver::{deliver, deliver_one};
use central_sim::fixture::{demo_ids as ids, Fixture};
use jiff::Timestamp;
use proto::central::{CentralToEdge, Change, Entity, EntityKey};
use proto::domain::*;
use proto::messaging::*;
use serde_json::Value;

fn demo() -> FacilityId {
    FacilityId::new(ids::FACILITY)
}

fn r1001() -> ResidentId {
    ResidentId::new(ids::RESIDENT)
}

fn seeded() -> Db {
    let mut db = Db::open_in_memory().unwrap();
    db.seed(&Fixture::embedded().unwrap()).unwrap();
    db
}

fn at() -> Timestamp {
    "2025-04-01T18:00:00Z".parse().unwrap()
}

fn item(key: u128, body: OutboxBody) -> OutboxItem {
    OutboxItem { key: IdempotencyKey::from_u128(key), created_at: at(), body }
}

fn purchase(key: u128, contact: u64, package: u64) -> OutboxItem {
    let (_, stamps, price_cents) = ids::PACKAGES.iter().copied().find(|p| p.0 == package).unwrap();
    item(
        key,
        OutboxBody::BuyStamps(StampPurchase {
            resident: r1001(),
            contact: ContactId(contact),
            package: PackageId(package),
            stamps,
            price_cents,
            bought_at: at(),
        }),
    )
}

fn message(id: u128, contact: u64, body: &str) -> Message {
    Message {
        id: MessageId::from_u128(id),
        resident: r1001(),
        contact: ContactId(contact),
        direction: Direction::ResidentToContact,
        subject: "Hello".into(),
        body: body.into(),
        attachments: vec![Attachment::ECard(ECardId(ids::ECARD_FIRST))],
        sent_at: at(),
    }
}

fn send(key: u128, message: Message, funded_by: Option<u128>) -> OutboxItem {
    item(key, OutboxBody::SendMessage { message, funded_by: funded_by.map(IdempotencyKey::from_u128) })
}

fn call(key: u128, contact: u64, kind: CallKind, connected_secs: u32, charged_cents: Cents) -> OutboxItem {
    item(
        key,
        OutboxBody::CallRecord(CallDetailRecord {
            resident: r1001(),
            contact: ContactId(contact),
            kind,
            number: ids::NUMBER_APPROVED.into(),
            started_at: at(),
            connected_secs,
            charged_cents,
        }),
    )
}

fn refused(reason: RefusalReason) -> DeliveryOutcome {
    DeliveryOutcome::Refused { reason, permanent: true }
}

fn applied_at(outcome: &DeliveryOutcome) -> u64 {
    match outcome {
        DeliveryOutcome::Accepted { applied_at } => *applied_at,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

fn debit(db: &Db) -> Cents {
    match db.entity(&EntityKey::Resident(r1001())).unwrap() {
        Some(Entity::Resident(r)) => r.debit_balance_cents,
        other => panic!("{other:?}"),
    }
}

fn stamps(db: &Db, contact: u64) -> Option<u32> {
    match db.entity(&EntityKey::StampCount { resident: r1001(), contact: ContactId(contact) }).unwrap() {
        Some(Entity::StampCount(s)) => Some(s.stamps),
        None => None,
        other => panic!("{other:?}"),
    }
}

fn mail(db: &Db, id: u128) -> Option<MailRecord> {
    match db.entity(&EntityKey::Mail(MessageId::from_u128(id))).unwrap() {
        Some(Entity::Mail(m)) => Some(m),
        None => None,
        other => panic!("{other:?}"),
    }
}

fn head(db: &Db) -> u64 {
    db.head_info().unwrap().head
}

/// The feed after `since`, as the edge would page it (one big page).
fn feed_after(db: &mut Db, since: u64) -> (Vec<Change>, u64) {
    match db.changes(&demo(), since, 5000, 0).unwrap() {
        CentralToEdge::Changes(batch) => (batch.changes, batch.next_cursor),
        other => panic!("{other:?}"),
    }
}

fn deliveries(db: &mut Db, key: Option<u128>) -> Value {
    admin::run(db, &AdminCommand::Deliveries { key: key.map(|k| format!("{k:032x}")) }).unwrap()
}

#[test]
fn a_purchase_debits_once_and_its_repeat_is_a_duplicate_at_the_same_seq() {
    let mut db = seeded();
    let cursor = head(&db);
    let buy = purchase(0xB1, ids::CONTACT_APPROVED, 2);
    let first = deliver_one(&mut db, &demo(), &buy);
    let seq = applied_at(&first);
    assert_eq!(debit(&db), 2500 - 225);
    assert_eq!(stamps(&db, ids::CONTACT_APPROVED), Some(ids::STAMPS_CONTACT_APPROVED + 5));
    assert_eq!(seq, head(&db), "applied_at is the last seq the effect wrote");

    // The edge's feed reaches applied_at with both changes in it.
    let (changes, next_cursor) = feed_after(&mut db, cursor);
    assert_eq!(next_cursor, seq);
    assert_eq!(changes.len(), 2);
    assert!(changes
        .iter()
        .any(|c| matches!(c, Change::Upsert(Entity::Resident(r)) if r.debit_balance_cents == 2275)));
    assert!(changes.iter().any(|c| matches!(c, Change::Upsert(Entity::StampCount(s)) if s.stamps == 8)));

    // Retries, alone and inside a later batch, apply nothing more.
    for _ in 0..3 {
        assert_eq!(deliver_one(&mut db, &demo(), &buy), DeliveryOutcome::Duplicate { applied_at: seq });
    }
    let acks = deliver(&mut db, &demo(), &[buy.clone(), buy.clone()]);
    assert!(acks
        .iter()
        .all(|a| a.key == buy.key && a.outcome == DeliveryOutcome::Duplicate { applied_at: seq }));
    assert_eq!(debit(&db), 2275);
    assert_eq!(head(&db), seq, "a duplicate spends no seq");

    let report = deliveries(&mut db, Some(0xB1));
    assert_eq!(report["items"][0]["received"], 6);
    assert_eq!(report["items"][0]["applied"], 1);
    assert_eq!(report["items"][0]["kind"], "BuyStamps");
    assert_eq!(report["applied_more_than_once"], Value::Array(vec![]));
}

#[test]
fn the_same_key_with_other_content_is_key_reused_and_the_first_verdict_stays() {
    let mut db = seeded();
    let buy = purchase(0xB2, ids::CONTACT_APPROVED, 1);
    let seq = applied_at(&deliver_one(&mut db, &demo(), &buy));
    let mut other = purchase(0xB2, ids::CONTACT_APPROVED, 3);
    assert_eq!(deliver_one(&mut db, &demo(), &other), refused(RefusalReason::KeyReused));
    other.created_at = Timestamp::from_second(0).unwrap();
    other.body = buy.body.clone();
    assert_eq!(
        deliver_one(&mut db, &demo(), &other),
        refused(RefusalReason::KeyReused),
        "a different created_at is different content"
    );
    assert_eq!(deliver_one(&mut db, &demo(), &buy), DeliveryOutcome::Duplicate { applied_at: seq });
    assert_eq!(debit(&db), 2500 - 50);
    assert_eq!(deliveries(&mut db, Some(0xB2))["items"][0]["applied"], 1);
}

#[test]
fn keys_are_per_facility() {
    let mut db = seeded();
    // Another facility's edge using the same key does not see this verdict:
    // it is answered as a delivery of its own (here: its resident is unknown).
    let buy = purchase(0xB3, ids::CONTACT_APPROVED, 1);
    applied_at(&deliver_one(&mut db, &demo(), &buy));
    let elsewhere = FacilityId::new("other-ca-02");
    assert!(matches!(
        deliver_one(&mut db, &elsewhere, &buy),
        DeliveryOutcome::Refused {
            reason: RefusalReason::NotAllowed { service: Service::Message, .. },
            permanent: true
        }
    ));
    assert_eq!(debit(&db), 2450);
}

#[test]
fn a_purchase_over_the_balance_is_refused_for_good_and_the_refusal_replayed() {
    let mut db = seeded();
    let set_debit = |db: &mut Db, cents| {
        let cmd = AdminCommand::Resident {
            id: ids::RESIDENT.into(),
            active: None,
            debit_cents: Some(cents),
            pin: None,
        };
        admin::run(db, &cmd).unwrap();
    };
    set_debit(&mut db, 1000);
    let before = db.all_rows().unwrap();
    let buy = purchase(0xB4, ids::CONTACT_APPROVED, ids::PACKAGE_FORTY_STAMPS);
    let expected = refused(RefusalReason::InsufficientFunds { balance_cents: 1000, price_cents: 1400 });
    assert_eq!(deliver_one(&mut db, &demo(), &buy), expected);
    assert_eq!(db.all_rows().unwrap(), before, "a refusal changes nothing in the feed");

    // Money arrives later; the same key still gets the first verdict, so a
    // late retry can never turn a refusal the edge acted on into a debit.
    set_debit(&mut db, 5000);
    assert_eq!(deliver_one(&mut db, &demo(), &buy), expected);
    assert_eq!(debit(&db), 5000);
    assert_eq!(stamps(&db, ids::CONTACT_APPROVED), Some(ids::STAMPS_CONTACT_APPROVED));
    let report = deliveries(&mut db, Some(0xB4));
    assert_eq!(
        (report["items"][0]["received"].as_i64(), report["items"][0]["applied"].as_i64()),
        (Some(2), Some(0))
    );

    // Exactly the balance is fine and leaves zero.
    set_debit(&mut db, 1400);
    applied_at(&deliver_one(
        &mut db,
        &demo(),
        &purchase(0xB5, ids::CONTACT_APPROVED, ids::PACKAGE_FORTY_STAMPS),
    ));
    assert_eq!(debit(&db), 0);
    assert_eq!(stamps(&db, ids::CONTACT_APPROVED), Some(ids::STAMPS_CONTACT_APPROVED + 40));
}

#[test]
fn unknown_packages_and_stale_prices_are_unavailable() {
    let mut db = seeded();
    let mut stale = purchase(0xC1, ids::CONTACT_APPROVED, 2);
    if let OutboxBody::BuyStamps(p) = &mut stale.body {
        p.price_cents = 200;
    }
    assert_eq!(
        deliver_one(&mut db, &demo(), &stale),
        refused(RefusalReason::PackageUnavailable { package: PackageId(2) })
    );
    let mut unknown = purchase(0xC2, ids::CONTACT_APPROVED, 2);
    if let OutboxBody::BuyStamps(p) = &mut unknown.body {
        p.package = PackageId(99);
    }
    assert_eq!(
        deliver_one(&mut db, &demo(), &unknown),
        refused(RefusalReason::PackageUnavailable { package: PackageId(99) })
    );
    // Stamps for a contact not approved for messaging (contact 2 is; make it not).
    let cmd = AdminCommand::Approve {
        contact: ids::CONTACT_VOICE_PENDING,
        service: admin::ServiceArg::Message,
        status: admin::ApprovalArg::Pending,
    };
    admin::run(&mut db, &cmd).unwrap();
    assert!(matches!(
        deliver_one(&mut db, &demo(), &purchase(0xC3, ids::CONTACT_VOICE_PENDING, 1)),
        DeliveryOutcome::Refused {
            reason: RefusalReason::NotAllowed { service: Service::Message, .. },
            permanent: true
        }
    ));
    assert_eq!(debit(&db), 2500);
}

#[test]
fn a_message_spends_one_stamp_and_is_published_pending_review() {
    let mut db = seeded();
    let cursor = head(&db);
    let msg = message(0xA1, ids::CONTACT_APPROVED, "See you Sunday");
    let seq = applied_at(&deliver_one(&mut db, &demo(), &send(0xD1, msg.clone(), None)));
    assert_eq!(stamps(&db, ids::CONTACT_APPROVED), Some(ids::STAMPS_CONTACT_APPROVED - 1));
    let (changes, next_cursor) = feed_after(&mut db, cursor);
    assert_eq!(next_cursor, seq);
    assert!(changes.contains(&Change::Upsert(Entity::Mail(MailRecord {
        message: msg.clone(),
        review: Review::Pending
    }))));

    // A retry spends nothing more.
    assert_eq!(
        deliver_one(&mut db, &demo(), &send(0xD1, msg.clone(), None)),
        DeliveryOutcome::Duplicate { applied_at: seq }
    );
    assert_eq!(stamps(&db, ids::CONTACT_APPROVED), Some(ids::STAMPS_CONTACT_APPROVED - 1));

    // A new key reusing the message id is not a second message.
    assert!(matches!(
        deliver_one(&mut db, &demo(), &send(0xD2, msg, None)),
        DeliveryOutcome::Refused { reason: RefusalReason::Invalid { .. }, permanent: true }
    ));
    assert_eq!(stamps(&db, ids::CONTACT_APPROVED), Some(ids::STAMPS_CONTACT_APPROVED - 1));
}

#[test]
fn without_a_stamp_a_message_is_refused_and_nothing_is_published() {
    let mut db = seeded();
    let before = db.all_rows().unwrap();
    let msg = message(0xA2, ids::CONTACT_VOICE_PENDING, "no stamps here");
    assert_eq!(
        deliver_one(&mut db, &demo(), &send(0xD3, msg.clone(), None)),
        refused(RefusalReason::NoStamps)
    );
    assert_eq!(db.all_rows().unwrap(), before);
    assert_eq!(mail(&db, 0xA2), None);
    // The last stamp can be spent, then none is left.
    let last = message(0xA3, ids::CONTACT_VIDEO_REJECTED, "last one");
    applied_at(&deliver_one(&mut db, &demo(), &send(0xD4, last, None)));
    assert_eq!(stamps(&db, ids::CONTACT_VIDEO_REJECTED), Some(0));
    let next = message(0xA4, ids::CONTACT_VIDEO_REJECTED, "one too many");
    assert_eq!(deliver_one(&mut db, &demo(), &send(0xD5, next, None)), refused(RefusalReason::NoStamps));
}

#[test]
fn a_message_funded_by_a_purchase_needs_that_purchase_applied() {
    let mut db = seeded();
    let never_seen = send(0xE1, message(0xA5, ids::CONTACT_VOICE_PENDING, "a"), Some(0xF1));
    assert_eq!(
        deliver_one(&mut db, &demo(), &never_seen),
        refused(RefusalReason::FundingRefused { purchase: IdempotencyKey::from_u128(0xF1) })
    );

    // A purchase central refused funds nothing.
    let cmd =
        AdminCommand::Resident { id: ids::RESIDENT.into(), active: None, debit_cents: Some(10), pin: None };
    admin::run(&mut db, &cmd).unwrap();
    assert!(matches!(
        deliver_one(&mut db, &demo(), &purchase(0xF2, ids::CONTACT_VOICE_PENDING, 1)),
        DeliveryOutcome::Refused { reason: RefusalReason::InsufficientFunds { .. }, .. }
    ));
    let unpaid = send(0xE2, message(0xA6, ids::CONTACT_VOICE_PENDING, "b"), Some(0xF2));
    assert_eq!(
        deliver_one(&mut db, &demo(), &unpaid),
        refused(RefusalReason::FundingRefused { purchase: IdempotencyKey::from_u128(0xF2) })
    );
    assert_eq!(mail(&db, 0xA6), None);

    // An applied purchase for another contact does not fund this conversation.
    let cmd =
        AdminCommand::Resident { id: ids::RESIDENT.into(), active: None, debit_cents: Some(2500), pin: None };
    admin::run(&mut db, &cmd).unwrap();
    applied_at(&deliver_one(&mut db, &demo(), &purchase(0xF3, ids::CONTACT_APPROVED, 1)));
    let crossed = send(0xE3, message(0xA7, ids::CONTACT_VOICE_PENDING, "c"), Some(0xF3));
    assert_eq!(
        deliver_one(&mut db, &demo(), &crossed),
        refused(RefusalReason::FundingRefused { purchase: IdempotencyKey::from_u128(0xF3) })
    );

    // The purchase and the message it pays for, in one batch, in lane order.
    let batch = [
        purchase(0xF4, ids::CONTACT_VOICE_PENDING, 1),
        send(0xE4, message(0xA8, ids::CONTACT_VOICE_PENDING, "d"), Some(0xF4)),
    ];
    let acks = deliver(&mut db, &demo(), &batch);
    assert_eq!(acks.len(), 2);
    let (bought, sent) = (applied_at(&acks[0].outcome), applied_at(&acks[1].outcome));
    assert!(bought < sent);
    assert_eq!(stamps(&db, ids::CONTACT_VOICE_PENDING), Some(0), "bought one, spent one");
    assert_eq!(mail(&db, 0xA8).unwrap().review, Review::Pending);
    assert_eq!(debit(&db), 2500 - 50 - 50);
}

#[test]
fn a_resident_cannot_send_what_the_edge_should_have_refused() {
    let mut db = seeded();
    let mut contacts_message = message(0xA9, ids::CONTACT_APPROVED, "x");
    contacts_message.direction = Direction::ContactToResident;
    let mut too_long = message(0xAA, ids::CONTACT_APPROVED, &"é".repeat(4001));
    let mut photo = message(0xAB, ids::CONTACT_APPROVED, "x");
    photo.attachments = vec![Attachment::Photo(MediaId(1))];
    let mut unknown_card = message(0xAC, ids::CONTACT_APPROVED, "x");
    unknown_card.attachments = vec![Attachment::ECard(ECardId(999))];
    let mut six = message(0xAD, ids::CONTACT_APPROVED, "x");
    six.attachments = vec![Attachment::ECard(ECardId(1)); 6];
    for (key, m) in [
        (0x101, contacts_message),
        (0x102, too_long.clone()),
        (0x103, photo),
        (0x104, unknown_card),
        (0x105, six),
    ] {
        let outcome = deliver_one(&mut db, &demo(), &send(key, m, None));
        assert!(
            matches!(
                outcome,
                DeliveryOutcome::Refused { reason: RefusalReason::Invalid { .. }, permanent: true }
            ),
            "{key:x}: {outcome:?}"
        );
    }
    // 4,000 characters (8,000 bytes) is within the limit.
    too_long.body = "é".repeat(4000);
    applied_at(&deliver_one(&mut db, &demo(), &send(0x106, too_long, None)));
    assert_eq!(stamps(&db, ids::CONTACT_APPROVED), Some(ids::STAMPS_CONTACT_APPROVED - 1));
}

#[test]
fn review_reaches_the_feed_and_refunds_no_stamp() {
    let mut db = seeded();
    let msg = message(0xB0B, ids::CONTACT_APPROVED, "hello");
    applied_at(&deliver_one(&mut db, &demo(), &send(0x201, msg, None)));
    let stamps_after_send = stamps(&db, ids::CONTACT_APPROVED);
    let cursor = head(&db);
    let reject = AdminCommand::Review {
        message: format!("{:032x}", 0xB0B),
        verdict: VerdictArgs { approve: false, reject: Some("Contains a phone number".into()) },
    };
    let out = admin::run(&mut db, &reject).unwrap();
    assert_eq!(out["changed"], true);
    let (changes, _) = feed_after(&mut db, cursor);
    assert_eq!(changes.len(), 1);
    let Change::Upsert(Entity::Mail(m)) = &changes[0] else { panic!("{changes:?}") };
    assert_eq!(m.message.id, MessageId::from_u128(0xB0B));
    assert_eq!(m.review, Review::Rejected { reason: "Contains a phone number".into() });
    assert_eq!(stamps(&db, ids::CONTACT_APPROVED), stamps_after_send, "no refund on rejection");

    let approve = AdminCommand::Review {
        message: format!("{:x}", ids::MAIL_SENT_REJECTED),
        verdict: VerdictArgs { approve: true, reject: None },
    };
    admin::run(&mut db, &approve).unwrap();
    assert_eq!(mail(&db, ids::MAIL_SENT_REJECTED).unwrap().review, Review::Approved);
}

#[test]
fn inbound_mail_from_a_contact_shows_in_the_feed() {
    let mut db = seeded();
    let cursor = head(&db);
    let cmd = AdminCommand::SendMail {
        contact: ids::CONTACT_APPROVED,
        subject: "Good news".into(),
        body: "Your sister had the baby!".into(),
        attach_ecard: vec![ids::ECARD_BIRTHDAY, 11],
        attach_photo: vec![],
        attach_snap: vec![],
        attach_videogram: None,
        videogram_secs: None,
        pending: false,
    };
    let out = admin::run(&mut db, &cmd).unwrap();
    assert_eq!(out["changed"], true);
    let (changes, next_cursor) = feed_after(&mut db, cursor);
    assert_eq!(next_cursor, out["seq"].as_u64().unwrap());
    let [Change::Upsert(Entity::Mail(m))] = changes.as_slice() else { panic!("{changes:?}") };
    assert_eq!(m.message.direction, Direction::ContactToResident);
    assert_eq!(m.message.resident, r1001());
    assert_eq!(m.message.contact, ContactId(ids::CONTACT_APPROVED));
    assert_eq!(m.message.body, "Your sister had the baby!");
    assert_eq!(
        m.message.attachments,
        vec![Attachment::ECard(ECardId(ids::ECARD_BIRTHDAY)), Attachment::ECard(ECardId(11))]
    );
    assert_eq!(m.review, Review::Approved);
}

#[test]
fn a_video_call_record_charges_the_contact_and_counts_toward_the_cap() {
    let mut db = seeded();
    let cursor = head(&db);
    let seq = applied_at(&deliver_one(
        &mut db,
        &demo(),
        &call(0x301, ids::CONTACT_APPROVED, CallKind::Video, 600, 200),
    ));
    let contact = |db: &Db, id| match db.entity(&EntityKey::Contact(ContactId(id))).unwrap() {
        Some(Entity::Contact(c)) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(contact(&db, ids::CONTACT_APPROVED).video_balance_cents, 2500 - 200);
    // 2025-04-01 lies in the 14-day period from 2025-03-31 (anchor 2025-01-06).
    let usage_key = EntityKey::CapUsage {
        resident: r1001(),
        kind: CallKind::Video,
        period_start: jiff::civil::date(2025, 3, 31),
    };
    let Some(Entity::CapUsage(usage)) = db.entity(&usage_key).unwrap() else { panic!("no cap usage") };
    assert_eq!(usage.used_secs, 600);
    let (changes, next_cursor) = feed_after(&mut db, cursor);
    assert_eq!((changes.len(), next_cursor), (2, seq));
    assert_eq!(
        deliver_one(&mut db, &demo(), &call(0x301, ids::CONTACT_APPROVED, CallKind::Video, 600, 200)),
        DeliveryOutcome::Duplicate { applied_at: seq }
    );
    applied_at(&deliver_one(&mut db, &demo(), &call(0x302, ids::CONTACT_APPROVED, CallKind::Video, 60, 20)));
    let Some(Entity::CapUsage(usage)) = db.entity(&usage_key).unwrap() else { panic!() };
    assert_eq!(usage.used_secs, 660);

    // A charge beyond the balance takes what is there and never goes negative.
    applied_at(&deliver_one(
        &mut db,
        &demo(),
        &call(0x303, ids::CONTACT_APPROVED, CallKind::Video, 60, 5000),
    ));
    assert_eq!(contact(&db, ids::CONTACT_APPROVED).video_balance_cents, 0);

    // Phone calls are free; a free one is recorded without touching the feed.
    let before = head(&db);
    let free = applied_at(&deliver_one(
        &mut db,
        &demo(),
        &call(0x304, ids::CONTACT_APPROVED, CallKind::Voice, 300, 0),
    ));
    assert_eq!((free, head(&db)), (before, before));
    assert!(matches!(
        deliver_one(&mut db, &demo(), &call(0x305, ids::CONTACT_APPROVED, CallKind::Voice, 300, 15)),
        DeliveryOutcome::Refused { reason: RefusalReason::Invalid { .. }, permanent: true }
    ));
    let report = deliveries(&mut db, None);
    assert_eq!(report["keys"], 5);
    assert_eq!(report["applied"], 4);
}

#[test]
fn an_audit_row_is_stored_once_at_the_current_head() {
    let mut db = seeded();
    let audit = item(
        0x401,
        OutboxBody::Audit(AuditRecord {
            seq: 1,
            at: at(),
            actor: "resident R1001".into(),
            action: "login".into(),
            detail: "tablet T7".into(),
            prev_hash: [0; 32],
            hash: [1; 32],
        }),
    );
    let seq = applied_at(&deliver_one(&mut db, &demo(), &audit));
    assert_eq!(seq, db.facility_head(&demo()).unwrap());
    assert_eq!(deliver_one(&mut db, &demo(), &audit), DeliveryOutcome::Duplicate { applied_at: seq });
    let report = deliveries(&mut db, Some(0x401));
    assert_eq!(report["items"][0]["applied"], 1);
    assert_eq!(report["items"][0]["received"], 2);
}

#[test]
fn a_busy_database_is_a_transient_refusal_that_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    central_sim::state::init(dir.path(), None).unwrap();
    let mut db = Db::open(dir.path()).unwrap();
    db.set_busy_timeout(Duration::from_millis(50)).unwrap();
    let other = rusqlite::Connection::open(dir.path().join(central_sim::db::DB_FILE)).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let buy = purchase(0x501, ids::CONTACT_APPROVED, 1);
    let outcome = deliver_one(&mut db, &demo(), &buy);
    assert!(
        matches!(
            outcome,
            DeliveryOutcome::Refused { reason: RefusalReason::Unavailable { .. }, permanent: false }
        ),
        "{outcome:?}"
    );
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(deliveries(&mut db, Some(0x501))["keys"], 0, "a transient refusal is not recorded");
    assert_eq!(debit(&db), 2500);
    // The retry is a first delivery.
    applied_at(&deliver_one(&mut db, &demo(), &buy));
    assert_eq!(debit(&db), 2450);
}
