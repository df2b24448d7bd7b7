use edge_core::ledger::{Entry, EntryKind, EntryState, Funding, Ledger, LedgerUpdate};
use edge_core::outbox::ParkReason;
use jiff::Timestamp;
use proto::central::{Change, ChangeBatch, Entity, EntityKey};
use proto::domain::*;
use proto::messaging::*;

use super::*;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn rid(s: &str) -> ResidentId {
    ResidentId::new(s)
}

fn resident(id: &str, debit: Cents) -> ResidentRecord {
    ResidentRecord {
        id: rid(id),
        name: format!("Resident {id}"),
        unit: UnitId::new("A"),
        pin_hash: "x".into(),
        debit_balance_cents: debit,
        active: true,
    }
}

fn mail(id: u128, resident: &str, direction: Direction, review: Review, at: i64) -> MailRecord {
    MailRecord {
        message: Message {
            id: MessageId::from_u128(id),
            resident: rid(resident),
            contact: ContactId(1),
            direction,
            subject: format!("subject {id}"),
            body: "body é😀".into(),
            attachments: vec![Attachment::ECard(ECardId(7))],
            sent_at: ts(at),
        },
        review,
    }
}

fn batch(since: u64, next_cursor: u64, changes: Vec<Change>, more: bool) -> ChangeBatch {
    ChangeBatch { since, changes, next_cursor, more }
}

fn catalog() -> Vec<Change> {
    vec![
        Change::Upsert(Entity::Resident(resident("R1", 1000))),
        Change::Upsert(Entity::ECard(ECardRecord {
            id: ECardId(7),
            category: "Birthdays".into(),
            title: "Cake".into(),
        })),
        Change::Upsert(Entity::StampPackage(StampPackageRecord {
            id: PackageId(1),
            stamps: 5,
            price_cents: 250,
        })),
        Change::Upsert(Entity::StampCount(StampCountRecord {
            resident: rid("R1"),
            contact: ContactId(1),
            stamps: 3,
        })),
        Change::Upsert(Entity::Mail(mail(10, "R1", Direction::ContactToResident, Review::Approved, 5))),
    ]
}

fn purchase_item(key: u128, resident: &str) -> OutboxItem {
    OutboxItem {
        key: IdempotencyKey::from_u128(key),
        created_at: ts(1),
        body: OutboxBody::BuyStamps(StampPurchase {
            resident: rid(resident),
            contact: ContactId(1),
            package: PackageId(1),
            stamps: 5,
            price_cents: 250,
            bought_at: ts(1),
        }),
    }
}

fn purchase_entry(key: u128, seq: u64) -> Entry {
    Entry {
        key: IdempotencyKey::from_u128(key),
        seq,
        resident: rid("R1"),
        contact: ContactId(1),
        kind: EntryKind::Purchase { stamps: 5, price_cents: 250 },
        state: EntryState::Queued,
    }
}

fn cdr_item(key: u128) -> OutboxItem {
    OutboxItem {
        key: IdempotencyKey::from_u128(key),
        created_at: ts(2),
        body: OutboxBody::CallRecord(CallDetailRecord {
            resident: rid("R1"),
            contact: ContactId(1),
            kind: CallKind::Voice,
            number: "+15551230001".into(),
            started_at: ts(0),
            connected_secs: 61,
            charged_cents: 0,
        }),
    }
}

#[test]
fn messaging_entities_apply_load_delete_and_sweep() {
    let mut store = Store::open_in_memory().unwrap();
    store.apply_batch(&batch(0, 5, catalog(), false), ApplyMode::Normal, ts(0)).unwrap();
    let loaded = store.load_entities().unwrap();
    assert!(loaded.contains(&Entity::ECard(ECardRecord {
        id: ECardId(7),
        category: "Birthdays".into(),
        title: "Cake".into()
    })));
    assert!(loaded.contains(&Entity::StampPackage(StampPackageRecord {
        id: PackageId(1),
        stamps: 5,
        price_cents: 250
    })));
    assert!(loaded.contains(&Entity::StampCount(StampCountRecord {
        resident: rid("R1"),
        contact: ContactId(1),
        stamps: 3
    })));
    let inbox = store.mail_of(&rid("R1")).unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].record, mail(10, "R1", Direction::ContactToResident, Review::Approved, 5));
    assert_eq!(store.ledger_cursor().unwrap(), 5);

    // A review result replaces the record; a delete removes it.
    let rejected = Review::Rejected { reason: "contraband talk".into() };
    let own = mail(11, "R1", Direction::ResidentToContact, rejected.clone(), 6);
    store
        .apply_batch(
            &batch(
                5,
                7,
                vec![Change::Upsert(Entity::Mail(own.clone())), Change::Delete(EntityKey::ECard(ECardId(7)))],
                false,
            ),
            ApplyMode::Normal,
            ts(1),
        )
        .unwrap();
    assert_eq!(store.mail(&rid("R1"), own.message.id).unwrap().unwrap().record.review, rejected);
    assert!(!store.load_entities().unwrap().iter().any(|e| matches!(e, Entity::ECard(_))));
    // Inbound unread plus the rejection notice.
    assert_eq!(store.unread_count(&rid("R1")).unwrap(), 2);

    // A resync that re-sends only the resident sweeps every messaging row.
    let outcome = store
        .apply_batch(
            &batch(0, 9, vec![Change::Upsert(Entity::Resident(resident("R1", 900)))], false),
            ApplyMode::Resync,
            ts(2),
        )
        .unwrap();
    assert_eq!(outcome.swept, 4, "package, stamp count and two mails");
    assert!(store.mail_of(&rid("R1")).unwrap().is_empty());
    assert!(store.ledger_confirmed().unwrap().iter().all(|c| !matches!(c, ledger::Confirmed::Stamps { .. })));
    // The ledger's cursor never goes back, even though the resync restarted at 0.
    assert_eq!(store.ledger_cursor().unwrap(), 9);
}

use edge_core::ledger;

#[test]
fn a_group_commits_its_items_entries_message_draft_and_audit_together() {
    let mut store = Store::open_in_memory().unwrap();
    let r1 = rid("R1");
    let draft_id = MessageId::from_u128(99);
    let compose =
        Compose { contact: ContactId(1), subject: "s".into(), body: "b".into(), attachments: vec![] };
    store.save_draft(&r1, draft_id, &compose, ts(0)).unwrap();

    let purchase = purchase_item(1, "R1");
    let purchase_entry = purchase_entry(1, 0);
    let message = Message {
        id: draft_id,
        resident: r1.clone(),
        contact: ContactId(1),
        direction: Direction::ResidentToContact,
        subject: "s".into(),
        body: "b".into(),
        attachments: vec![],
        sent_at: ts(1),
    };
    let send = OutboxItem {
        key: IdempotencyKey::from_u128(2),
        created_at: ts(1),
        body: OutboxBody::SendMessage { message: message.clone(), funded_by: Some(purchase.key) },
    };
    let spend = Entry {
        key: send.key,
        seq: 1,
        resident: r1.clone(),
        contact: ContactId(1),
        kind: EntryKind::Spend { funding: Funding::Purchase(purchase.key) },
        state: EntryState::Queued,
    };
    let cdr = cdr_item(3);
    let note = AuditNote { actor: "tab".into(), action: "message-send", detail: serde_json::json!({"k": 1}) };
    let seqs = store
        .enqueue(
            &[
                Enqueue { ledger: Some(&purchase_entry), ..Enqueue::item(&purchase) },
                Enqueue {
                    ledger: Some(&spend),
                    sent: Some(&message),
                    consumed_draft: Some((&r1, draft_id)),
                    audit: Some(&note),
                    ..Enqueue::item(&send)
                },
                Enqueue::item(&cdr),
            ],
            ts(1),
        )
        .unwrap();
    assert!(seqs[0] < seqs[1] && seqs[1] < seqs[2], "{seqs:?}");
    let rows = store.outbox_rows().unwrap();
    // The send's audit row is an outbox item of its own, committed right
    // after the send.
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[2].seq, seqs[1] + 1);
    match &rows[2].item.body {
        OutboxBody::Audit(record) => {
            assert_eq!(
                (record.seq, record.actor.as_str(), record.action.as_str()),
                (1, "tab", "message-send")
            );
            assert_eq!(record.detail, r#"{"k":1}"#);
        }
        other => panic!("{other:?}"),
    }
    let items: Vec<OutboxItem> =
        rows.iter().filter(|r| r.seq != rows[2].seq).map(|r| r.item.clone()).collect();
    assert_eq!(items, vec![purchase, send.clone(), cdr]);
    assert!(rows.iter().all(|r| r.parked.is_none()));
    assert_eq!(store.ledger_entries().unwrap(), vec![purchase_entry, spend]);
    assert!(store.draft(&r1, draft_id).unwrap().is_none(), "the draft became the message");
    let sent = store.sent_messages(&r1).unwrap();
    assert_eq!(sent, vec![SentRow { message, outbox_key: send.key, hidden: false }]);
    assert_eq!(store.audit_verify().unwrap().rows_checked, 1);
}

#[test]
fn a_failing_item_rolls_back_its_whole_group() {
    let mut store = Store::open_in_memory().unwrap();
    let first = cdr_item(1);
    store.enqueue(&[Enqueue::item(&first)], ts(0)).unwrap();
    let fresh = purchase_item(2, "R1");
    let entry = purchase_entry(2, 0);
    // The second item reuses a key already queued: the UNIQUE constraint
    // refuses it, and the first of the group (with its audit row and that
    // row's outbox item) must not survive alone.
    let note = AuditNote { actor: "tab".into(), action: "stamps-buy", detail: serde_json::json!({}) };
    let error = store.enqueue(
        &[
            Enqueue { ledger: Some(&entry), audit: Some(&note), ..Enqueue::item(&fresh) },
            Enqueue::item(&first),
        ],
        ts(1),
    );
    assert!(error.is_err());
    let rows = store.outbox_rows().unwrap();
    assert_eq!(rows.iter().map(|r| r.item.clone()).collect::<Vec<_>>(), vec![first]);
    assert!(store.ledger_entries().unwrap().is_empty());
    assert_eq!(store.audit_verify().unwrap().rows_checked, 0);
}

#[test]
fn remove_park_and_sequence_survive_a_reopen_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.db");
    let r1 = rid("R1");
    let (a, b, c) = (purchase_item(1, "R1"), cdr_item(2), cdr_item(3));
    let c_seq = {
        let mut store = Store::open(&path).unwrap();
        store.apply_batch(&batch(0, 4, catalog(), false), ApplyMode::Normal, ts(0)).unwrap();
        let entry = purchase_entry(1, 0);
        store
            .enqueue(
                &[
                    Enqueue { ledger: Some(&entry), ..Enqueue::item(&a) },
                    Enqueue::item(&b),
                    Enqueue::item(&c),
                ],
                ts(1),
            )
            .unwrap();
        // The newest row is applied and deleted; its seq must not come back.
        let c_seq = store.outbox_rows().unwrap().last().unwrap().seq;
        assert!(store.outbox_remove(&c.key, &[]).unwrap());
        let refused = RefusalReason::InsufficientFunds { balance_cents: 10, price_cents: 250 };
        let failed = Entry { state: EntryState::PaymentFailed { reason: refused.clone() }, ..entry };
        assert!(store
            .outbox_park(&a.key, &ParkReason::Refused(refused), &[LedgerUpdate::Upsert(failed)], ts(2))
            .unwrap());
        // Dropped without any orderly shutdown, as after kill -9.
        c_seq
    };
    let mut store = Store::open(&path).unwrap();
    let rows = store.outbox_rows().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].item, a);
    let refused = RefusalReason::InsufficientFunds { balance_cents: 10, price_cents: 250 };
    assert_eq!(rows[0].parked, Some(ParkReason::Refused(refused.clone())));
    assert_eq!(rows[1].item, b);
    assert_eq!(rows[1].parked, None);
    let entries = store.ledger_entries().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].state, EntryState::PaymentFailed { reason: refused });
    // The parking's audit row is queued too, with a seq the deleted row
    // never had.
    match &rows[2].item.body {
        OutboxBody::Audit(record) => assert_eq!(record.action, "outbox-parked"),
        other => panic!("{other:?}"),
    }
    assert!(rows[2].seq > c_seq, "seq {} reuses the deleted row's {c_seq}", rows[2].seq);
    let seqs = store.enqueue(&[Enqueue::item(&cdr_item(4))], ts(3)).unwrap();
    assert!(seqs[0] > rows[2].seq, "seq {} goes backwards", seqs[0]);

    // The ledger rebuilt from the file: the refused purchase counts for nothing.
    let ledger = Ledger::restore(
        store.ledger_cursor().unwrap(),
        store.ledger_confirmed().unwrap(),
        store.ledger_entries().unwrap(),
    );
    assert_eq!(ledger.debit_available(&r1), 1000);
    assert_eq!(ledger.stamps(&r1, ContactId(1)).available, 3);
}

#[test]
fn drafts_belong_to_their_resident() {
    let mut store = Store::open_in_memory().unwrap();
    let (r1, r2) = (rid("R1"), rid("R2"));
    let id = MessageId::from_u128(5);
    let mut compose =
        Compose { contact: ContactId(1), subject: "a".into(), body: "b".into(), attachments: vec![] };
    store.save_draft(&r1, id, &compose, ts(0)).unwrap();
    compose.body = "changed".into();
    store.save_draft(&r1, id, &compose, ts(1)).unwrap();
    // Another resident cannot overwrite, read or delete it.
    store.save_draft(&r2, id, &Compose { body: "theirs".into(), ..compose.clone() }, ts(2)).unwrap();
    assert!(store.draft(&r2, id).unwrap().is_none());
    assert!(!store.delete_draft(&r2, id).unwrap());
    assert_eq!(store.draft(&r1, id).unwrap().unwrap(), DraftRow { id, compose, updated_at: ts(1) });
    assert_eq!(store.drafts(&r1).unwrap().len(), 1);
    assert!(store.delete_draft(&r1, id).unwrap());
    assert!(store.drafts(&r1).unwrap().is_empty());
}

#[test]
fn read_marks_and_hidden_flags() {
    let mut store = Store::open_in_memory().unwrap();
    let r1 = rid("R1");
    store.apply_batch(&batch(0, 5, catalog(), false), ApplyMode::Normal, ts(0)).unwrap();
    assert_eq!(store.unread_count(&r1).unwrap(), 1);
    let id = MessageId::from_u128(10);
    store.mark_read(&r1, id).unwrap();
    assert_eq!(store.unread_count(&r1).unwrap(), 0);
    let row = store.mail(&r1, id).unwrap().unwrap();
    assert!(row.read && !row.hidden);
    store.hide_sent(&r1, id).unwrap();
    let row = store.mail(&r1, id).unwrap().unwrap();
    assert!(row.read && row.hidden, "hiding keeps the read mark");
    assert!(store.mail(&rid("R2"), id).unwrap().is_none());
}

#[test]
fn parking_an_audit_item_writes_no_further_audit_item() {
    let mut store = Store::open_in_memory().unwrap();
    let purchase = purchase_item(1, "R1");
    store.enqueue(&[Enqueue::item(&purchase)], ts(0)).unwrap();
    let refused = ParkReason::Refused(RefusalReason::NoStamps);
    // A parked purchase is audited, and that row is an item of its own.
    assert!(store.outbox_park(&purchase.key, &refused, &[], ts(1)).unwrap());
    let rows = store.outbox_rows().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(matches!(rows[1].item.body, OutboxBody::Audit(_)));
    // Central refusing that audit item ends there: no row, no item about it,
    // or a central refusing audit items would keep the pair going forever.
    assert!(store.outbox_park(&rows[1].item.key, &refused, &[], ts(2)).unwrap());
    let after = store.outbox_rows().unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(after[1].parked, Some(refused));
    assert_eq!(store.audit_verify().unwrap().rows_checked, 1);
}
