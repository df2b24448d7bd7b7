//! The messaging API driven through `api::handle` on an in-memory (or file)
//! store, without QUIC.

use edge_core::{
    outbox::{Input, OutboxConfig},
    sync::SyncConfig,
};
use jiff::Timestamp;
use proto::{
    central::{Change, ChangeBatch, Entity},
    domain::*,
    messaging::*,
    tablet::*,
};

use crate::{
    api,
    state::{EdgeState, Shared, Transmit},
    store::{ApplyMode, Store},
};

const CONN: u64 = 1;

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn rid(s: &str) -> ResidentId {
    ResidentId::new(s)
}

fn contact(id: u64, resident: &str, message: Approval) -> ContactRecord {
    ContactRecord {
        id: ContactId(id),
        resident: rid(resident),
        name: format!("Contact {id}"),
        account_status: AccountStatus::Active,
        approvals: Approvals { voice: Approval::Approved, video: Approval::Approved, message },
        numbers: vec!["+15551230001".into()],
        video_balance_cents: 0,
        video_rate_cents_per_min: 25,
    }
}

fn seed_changes(debit: Cents) -> Vec<Change> {
    let facility = FacilityRecord::with_defaults(FacilityId::new("f"), "Demo", "America/Los_Angeles");
    [
        Entity::Facility(facility),
        Entity::Unit(HousingUnitRecord { id: UnitId::new("A"), name: "A".into(), schedule: vec![] }),
        Entity::Resident(ResidentRecord {
            id: rid("R1"),
            name: "Resident One".into(),
            unit: UnitId::new("A"),
            pin_hash: "x".into(),
            debit_balance_cents: debit,
            active: true,
        }),
        Entity::Contact(contact(1, "R1", Approval::Approved)),
        Entity::Contact(contact(2, "R1", Approval::Pending)),
        Entity::Contact(contact(3, "R2", Approval::Approved)),
        Entity::ECard(ECardRecord { id: ECardId(7), category: "Birthdays".into(), title: "Cake".into() }),
        Entity::StampPackage(StampPackageRecord { id: PackageId(1), stamps: 5, price_cents: 250 }),
        Entity::StampPackage(StampPackageRecord { id: PackageId(2), stamps: 40, price_cents: 1500 }),
    ]
    .into_iter()
    .map(Change::Upsert)
    .collect()
}

fn load(store: Store) -> EdgeState {
    let (mut state, _) =
        EdgeState::load("f".into(), store, SyncConfig::default(), OutboxConfig::default(), now()).unwrap();
    state.sessions.login(rid("R1"), CONN);
    state
}

fn setup(debit: Cents) -> EdgeState {
    let mut store = Store::open_in_memory().unwrap();
    let batch = ChangeBatch { since: 0, changes: seed_changes(debit), next_cursor: 10, more: false };
    store.apply_batch(&batch, ApplyMode::Normal, now()).unwrap();
    load(store)
}

fn call(state: &mut EdgeState, request: TabletRequest) -> TabletResponse {
    api::handle(state, CONN, request, now())
}

fn refusal(response: TabletResponse) -> MessagingError {
    match response {
        TabletResponse::Error(ApiError::Messaging(e)) => e,
        other => panic!("expected a messaging error, got {other:?}"),
    }
}

fn compose(contact: u64, body: &str) -> Compose {
    Compose { contact: ContactId(contact), subject: "Hello".into(), body: body.into(), attachments: vec![] }
}

fn buy(state: &mut EdgeState, contact: u64, package: u64) -> TabletResponse {
    call(state, TabletRequest::BuyStamps { contact: ContactId(contact), package: PackageId(package) })
}

fn send(state: &mut EdgeState, draft: Option<MessageId>, compose: Compose) -> TabletResponse {
    call(state, TabletRequest::SendMessage { draft, compose })
}

fn mailbox(state: &mut EdgeState, folder: Folder) -> MailboxView {
    match call(state, TabletRequest::Mailbox { folder }) {
        TabletResponse::Mailbox(view) => view,
        other => panic!("{other:?}"),
    }
}

fn stamps(state: &mut EdgeState) -> StampBalances {
    match call(state, TabletRequest::StampBalance) {
        TabletResponse::Stamps(balances) => balances,
        other => panic!("{other:?}"),
    }
}

/// Plays central: answers every transmit with `verdict` until the outbox
/// has nothing more to send.
fn answer_all(state: &mut EdgeState, mut verdict: impl FnMut(&OutboxItem) -> DeliveryOutcome) -> usize {
    let mut pending: Vec<Transmit> = state.drain_outbox(now());
    let mut answered = 0;
    while let Some(t) = pending.pop() {
        let acks = t.items.iter().map(|i| DeliveryAck { key: i.key, outcome: verdict(i) }).collect();
        answered += t.items.len();
        state.outbox_input(now(), Input::Delivered { batch: t.batch, acks });
        pending.extend(state.drain_outbox(now()));
    }
    answered
}

/// The outbox rows of residents' messages and purchases, without the audit
/// items every audited action also queues.
fn queued(state: &EdgeState) -> Vec<edge_core::outbox::StoredItem> {
    let rows = state.store.outbox_rows().unwrap();
    rows.into_iter().filter(|r| !matches!(r.item.body, OutboxBody::Audit(_))).collect()
}

fn audit_items(state: &EdgeState) -> Vec<AuditRecord> {
    let rows = state.store.outbox_rows().unwrap();
    rows.into_iter()
        .filter_map(|r| match r.item.body {
            OutboxBody::Audit(record) => Some(record),
            _ => None,
        })
        .collect()
}

fn page(state: &mut EdgeState, since: u64, next: u64, changes: Vec<Change>) -> Vec<(u64, ServerEvent)> {
    let batch = ChangeBatch { since, changes, next_cursor: next, more: false };
    let outcome = state.store.apply_batch(&batch, ApplyMode::Normal, now()).unwrap();
    state.directory.apply_all(&batch.changes);
    state.after_page(&batch, &outcome)
}

#[test]
fn composing_needs_a_stamp_and_buying_one_lets_the_message_queue() {
    let mut state = setup(1000);
    assert_eq!(
        refusal(send(&mut state, None, compose(1, "hi"))),
        MessagingError::NoStamps { contact: ContactId(1) }
    );
    assert_eq!(state.outbox.len(), 0);

    let TabletResponse::StampsBought(purchase) = buy(&mut state, 1, 1) else { panic!() };
    assert_eq!(
        (purchase.stamps, purchase.price_cents, purchase.state.clone()),
        (5, 250, PurchaseState::Queued)
    );
    let balances = stamps(&mut state);
    assert_eq!(balances.debit_available_cents, 750);
    let c1 = balances.contacts.iter().find(|c| c.contact == ContactId(1)).unwrap();
    assert_eq!((c1.available, c1.awaiting_payment), (5, 5));
    assert_eq!(balances.purchases, vec![purchase.clone()]);

    let TabletResponse::MessageQueued(view) = send(&mut state, None, compose(1, "hi")) else { panic!() };
    assert_eq!(view.state, MessageState::Queued);
    assert_eq!(stamps(&mut state).contacts.iter().find(|c| c.contact == ContactId(1)).unwrap().available, 4);
    let sent = mailbox(&mut state, Folder::Sent);
    assert_eq!(sent.messages.len(), 1);
    assert_eq!((sent.messages[0].id, sent.messages[0].state.clone()), (view.id, MessageState::Queued));

    // Both are durable, in order, and the message names its purchase.
    let rows = queued(&state);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].item.key, purchase.key);
    match &rows[1].item.body {
        OutboxBody::SendMessage { message, funded_by } => {
            assert_eq!(message.id, view.id);
            assert_eq!(*funded_by, Some(purchase.key));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state.store.ledger_entries().unwrap().len(), 2);
    // Both went to the audit log, and each audit row is queued for central
    // and known to the outbox core.
    assert_eq!(state.store.audit_verify().unwrap().rows_checked, 2);
    let audits = audit_items(&state);
    assert_eq!(audits.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["stamps-buy", "message-send"]);
    assert_eq!(state.outbox.len(), 4);
}

#[test]
fn bad_input_gets_typed_errors_and_loses_nothing_queued() {
    let mut state = setup(1000);
    let TabletResponse::StampsBought(_) = buy(&mut state, 1, 1) else { panic!() };
    let TabletResponse::MessageQueued(_) = send(&mut state, None, compose(1, "first")) else { panic!() };
    let before = queued(&state);

    let too_long = "😀".repeat(4001);
    assert_eq!(
        refusal(send(&mut state, None, compose(1, &too_long))),
        MessagingError::TooLong { field: TextField::Body, chars: 4001, limit: 4000 }
    );
    // Exactly at the limit in characters (16,000 bytes) is fine.
    let TabletResponse::MessageQueued(_) = send(&mut state, None, compose(1, &"😀".repeat(4000))) else {
        panic!()
    };
    let before = {
        let mut rows = before;
        rows.push(queued(&state).pop().unwrap());
        rows
    };
    let everything_before = state.store.outbox_rows().unwrap();
    let mut six = compose(1, "cards");
    six.attachments = vec![Attachment::ECard(ECardId(7)); 6];
    assert_eq!(refusal(send(&mut state, None, six)), MessagingError::TooManyAttachments { count: 6, max: 5 });
    let mut unknown_card = compose(1, "card");
    unknown_card.attachments = vec![Attachment::ECard(ECardId(8))];
    assert_eq!(refusal(send(&mut state, None, unknown_card)), MessagingError::UnknownECard(ECardId(8)));
    assert_eq!(
        refusal(send(&mut state, None, compose(2, "pending"))),
        MessagingError::ContactNotApproved { status: Approval::Pending }
    );
    assert_eq!(
        refusal(send(&mut state, None, compose(3, "not mine"))),
        MessagingError::UnknownContact { contact: ContactId(3) }
    );
    assert_eq!(
        refusal(buy(&mut state, 2, 1)),
        MessagingError::ContactNotApproved { status: Approval::Pending }
    );
    assert_eq!(refusal(buy(&mut state, 1, 9)), MessagingError::UnknownPackage(PackageId(9)));
    assert_eq!(
        refusal(buy(&mut state, 1, 2)),
        MessagingError::InsufficientFunds { available_cents: 750, price_cents: 1500 }
    );
    let stale = MessageId::from_u128(42);
    assert_eq!(refusal(send(&mut state, Some(stale), compose(1, "x"))), MessagingError::UnknownDraft(stale));
    assert_eq!(
        refusal(call(&mut state, TabletRequest::SaveDraft { draft: Some(stale), compose: compose(1, "x") })),
        MessagingError::UnknownDraft(stale)
    );
    assert_eq!(
        refusal(call(&mut state, TabletRequest::DeleteDraft { id: stale })),
        MessagingError::UnknownDraft(stale)
    );
    assert_eq!(queued(&state), before);
    assert_eq!(state.store.outbox_rows().unwrap(), everything_before, "refusals queue no audit item");
    assert_eq!(state.outbox.len(), everything_before.len());
    assert_eq!(stamps(&mut state).debit_available_cents, 750);
}

#[test]
fn drafts_are_kept_listed_updated_and_become_the_sent_message() {
    let mut state = setup(1000);
    // Drafts need no stamps.
    let TabletResponse::DraftSaved { id } =
        call(&mut state, TabletRequest::SaveDraft { draft: None, compose: compose(1, "v1") })
    else {
        panic!()
    };
    let TabletResponse::DraftSaved { id: same } =
        call(&mut state, TabletRequest::SaveDraft { draft: Some(id), compose: compose(1, "v2") })
    else {
        panic!()
    };
    assert_eq!(same, id);
    let drafts = mailbox(&mut state, Folder::Drafts);
    assert_eq!(drafts.messages.len(), 1);
    assert_eq!(drafts.messages[0].state, MessageState::Draft);
    let TabletResponse::Message(view) = call(&mut state, TabletRequest::ReadMessage { id }) else { panic!() };
    assert_eq!(view.body, "v2");

    // Sending from the draft without a stamp keeps the draft.
    assert!(matches!(refusal(send(&mut state, Some(id), compose(1, "v3"))), MessagingError::NoStamps { .. }));
    assert_eq!(mailbox(&mut state, Folder::Drafts).messages.len(), 1);

    let TabletResponse::StampsBought(_) = buy(&mut state, 1, 1) else { panic!() };
    let TabletResponse::MessageQueued(sent) = send(&mut state, Some(id), compose(1, "v3")) else { panic!() };
    assert_eq!(sent.id, id, "a message keeps its id from draft to sent");
    assert!(mailbox(&mut state, Folder::Drafts).messages.is_empty());
    assert_eq!(mailbox(&mut state, Folder::Sent).messages[0].id, id);
}

#[test]
fn delivery_review_and_inbound_mail_reach_the_folders_and_the_live_session() {
    let mut state = setup(1000);
    let TabletResponse::StampsBought(purchase) = buy(&mut state, 1, 1) else { panic!() };
    let TabletResponse::MessageQueued(sent) = send(&mut state, None, compose(1, "hi")) else { panic!() };

    // Central applies both (the lane sends them one after the other).
    let mut feed_seq = 10;
    let applied = answer_all(&mut state, |_| {
        feed_seq += 1;
        DeliveryOutcome::Accepted { applied_at: feed_seq }
    });
    assert_eq!(applied, 4, "the purchase, the message and their two audit items");
    assert!(state.store.outbox_rows().unwrap().is_empty());
    assert_eq!(mailbox(&mut state, Folder::Sent).messages[0].state, MessageState::InReview);
    // Until the feed shows the debit, it still counts.
    assert_eq!(stamps(&mut state).debit_available_cents, 750);

    // The feed confirms the debit and the stamps, and a review rejects the message.
    let mut record = MailRecord {
        message: Message {
            id: sent.id,
            resident: rid("R1"),
            contact: ContactId(1),
            direction: Direction::ResidentToContact,
            subject: "Hello".into(),
            body: "hi".into(),
            attachments: vec![],
            sent_at: now(),
        },
        review: Review::Rejected { reason: "names a staff member".into() },
    };
    let resident = match state.directory.resident(&rid("R1")).cloned() {
        Some(r) => ResidentRecord { debit_balance_cents: 750, ..r },
        None => panic!(),
    };
    let events = page(
        &mut state,
        10,
        20,
        vec![
            Change::Upsert(Entity::Resident(resident)),
            Change::Upsert(Entity::StampCount(StampCountRecord {
                resident: rid("R1"),
                contact: ContactId(1),
                stamps: 4,
            })),
            Change::Upsert(Entity::Mail(record.clone())),
        ],
    );
    assert_eq!(events, vec![(CONN, ServerEvent::MailChanged { id: sent.id, unread: 1 })]);
    assert!(state.store.ledger_entries().unwrap().is_empty(), "the feed now shows both");
    let balances = stamps(&mut state);
    assert_eq!(balances.debit_available_cents, 750);
    assert_eq!(balances.contacts.iter().find(|c| c.contact == ContactId(1)).unwrap().available, 4);
    assert!(balances.purchases.iter().all(|p| p.key != purchase.key));
    let reason = "names a staff member".to_string();
    assert_eq!(
        mailbox(&mut state, Folder::Sent).messages[0].state,
        MessageState::Rejected { reason: reason.clone() }
    );
    let inbox = mailbox(&mut state, Folder::Inbox);
    assert_eq!(inbox.unread, 1);
    assert_eq!(inbox.messages[0].state, MessageState::Rejected { reason });

    // Inbound mail from the contact.
    record.message.id = MessageId::from_u128(777);
    record.message.direction = Direction::ContactToResident;
    record.message.attachments = vec![Attachment::SnapNSend(MediaId(3))];
    record.review = Review::Approved;
    let events = page(&mut state, 20, 21, vec![Change::Upsert(Entity::Mail(record.clone()))]);
    assert_eq!(events, vec![(CONN, ServerEvent::MailChanged { id: record.message.id, unread: 2 })]);
    let inbox = mailbox(&mut state, Folder::Inbox);
    assert_eq!(inbox.messages.len(), 2);
    assert!(inbox.messages.iter().any(|m| m.state == MessageState::Received { read: false }));
    let TabletResponse::Message(view) =
        call(&mut state, TabletRequest::ReadMessage { id: record.message.id })
    else {
        panic!()
    };
    assert_eq!(view.state, MessageState::Received { read: true });
    assert_eq!(mailbox(&mut state, Folder::Inbox).unread, 1);

    // Hiding a sent message removes it from Sent only; it stays readable.
    assert_eq!(
        call(&mut state, TabletRequest::HideSent { id: sent.id }),
        TabletResponse::SentHidden { id: sent.id }
    );
    assert!(mailbox(&mut state, Folder::Sent).messages.is_empty());
    assert!(matches!(
        call(&mut state, TabletRequest::ReadMessage { id: sent.id }),
        TabletResponse::Message(_)
    ));
    assert_eq!(state.store.sent_messages(&rid("R1")).unwrap().len(), 1, "history keeps it");

    // No live session, no push.
    state.sessions.end_connection(CONN);
    record.message.id = MessageId::from_u128(778);
    assert!(page(&mut state, 21, 22, vec![Change::Upsert(Entity::Mail(record))]).is_empty());
}

#[test]
fn a_purchase_central_refuses_shows_payment_failed_on_it_and_its_messages() {
    let mut state = setup(1000);
    let TabletResponse::StampsBought(purchase) = buy(&mut state, 1, 1) else { panic!() };
    let TabletResponse::MessageQueued(sent) = send(&mut state, None, compose(1, "hi")) else { panic!() };
    let reason = RefusalReason::InsufficientFunds { balance_cents: 100, price_cents: 250 };
    let r = reason.clone();
    answer_all(&mut state, move |item| match item.body {
        OutboxBody::Audit(_) => DeliveryOutcome::Accepted { applied_at: 10 },
        _ => DeliveryOutcome::Refused { reason: r.clone(), permanent: true },
    });

    let balances = stamps(&mut state);
    assert_eq!(balances.debit_available_cents, 1000, "a refused purchase took no money");
    assert_eq!(balances.purchases[0].state, PurchaseState::PaymentFailed { reason: reason.clone() });
    let sent_view = mailbox(&mut state, Folder::Sent);
    assert_eq!(sent_view.messages[0].id, sent.id);
    assert!(
        matches!(&sent_view.messages[0].state, MessageState::PaymentFailed { .. }),
        "{:?}",
        sent_view.messages[0].state
    );
    // Both rows stay, parked, and nothing else is ever sent for them.
    let rows = state.store.outbox_rows().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.parked.is_some()));
    assert!(state.drain_outbox(now()).is_empty());
    assert!(rows.iter().any(|r| r.item.key == purchase.key));
}

#[test]
fn outbox_and_ledger_are_restored_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.db");
    let (purchase_key, message_id) = {
        let mut store = Store::open(&path).unwrap();
        let batch = ChangeBatch { since: 0, changes: seed_changes(1000), next_cursor: 10, more: false };
        store.apply_batch(&batch, ApplyMode::Normal, now()).unwrap();
        let mut state = load(store);
        let TabletResponse::StampsBought(p) = buy(&mut state, 1, 1) else { panic!() };
        let TabletResponse::MessageQueued(m) = send(&mut state, None, compose(1, "hi")) else { panic!() };
        // The purchase goes out, and the purchase's audit item beside it
        // (audit items have no lane); the message waits for the purchase.
        // The process dies before any answer.
        let transmits = state.drain_outbox(now());
        let sent: Vec<&OutboxItem> = transmits.iter().flat_map(|t| &t.items).collect();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0].key, p.key);
        assert!(matches!(sent[1].body, OutboxBody::Audit(_)));
        (p.key, m.id)
    };
    let mut state = load(Store::open(&path).unwrap());
    assert_eq!(state.outbox.len(), 4);
    let balances = stamps(&mut state);
    assert_eq!(balances.debit_available_cents, 750);
    assert_eq!(balances.purchases[0].key, purchase_key);
    assert_eq!(balances.contacts.iter().find(|c| c.contact == ContactId(1)).unwrap().available, 4);
    assert_eq!(mailbox(&mut state, Folder::Sent).messages[0].id, message_id);
    // The purchase is sent again first (central deduplicates it by key).
    let transmits = state.drain_outbox(now());
    assert_eq!(transmits.len(), 1);
    assert_eq!(transmits[0].items[0].key, purchase_key);
}

#[test]
fn two_tablets_racing_never_spend_more_than_the_balance() {
    // 1000 cents, packages of 250: exactly four purchases fit.
    let shared = Shared::new(setup(1000), Default::default());
    let handles: Vec<_> = ["tablet-a", "tablet-b"]
        .into_iter()
        .map(|device| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let mut bought = 0;
                let mut refused = 0;
                for _ in 0..20 {
                    let request = TabletRequest::BuyStamps { contact: ContactId(1), package: PackageId(1) };
                    let mut state = shared.lock();
                    match crate::messaging_api::handle(&mut state, &rid("R1"), device, request, now()) {
                        TabletResponse::StampsBought(_) => bought += 1,
                        TabletResponse::Error(ApiError::Messaging(MessagingError::InsufficientFunds {
                            available_cents,
                            price_cents,
                        })) => {
                            assert!(available_cents < price_cents);
                            refused += 1;
                        }
                        other => panic!("{other:?}"),
                    }
                    drop(state);
                    std::thread::yield_now();
                }
                (bought, refused)
            })
        })
        .collect();
    let results: Vec<(u32, u32)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let bought: u32 = results.iter().map(|r| r.0).sum();
    assert_eq!(bought, 4, "{results:?}");
    let state = shared.lock();
    assert_eq!(state.ledger.debit_available(&rid("R1")), 0);
    assert_eq!(queued(&state).len(), 4);
    assert_eq!(audit_items(&state).len(), 4, "one audit item per purchase");
    let spent: Cents = state
        .store
        .outbox_rows()
        .unwrap()
        .iter()
        .map(|r| match &r.item.body {
            OutboxBody::BuyStamps(p) => p.price_cents,
            _ => 0,
        })
        .sum();
    assert_eq!(spent, 1000);
}

fn inbound_with_media(id: u128, resident: &str, contact: u64, attachments: Vec<Attachment>) -> Change {
    Change::Upsert(Entity::Mail(MailRecord {
        message: Message {
            id: MessageId::from_u128(id),
            resident: rid(resident),
            contact: ContactId(contact),
            direction: Direction::ContactToResident,
            subject: "Pictures".into(),
            body: "From the park".into(),
            attachments,
            sent_at: now(),
        },
        review: Review::Approved,
    }))
}

fn cache_media(state: &mut EdgeState, media: MediaId, bytes: &[u8], complete: bool) -> MediaInfo {
    use sha2::Digest;
    let info = MediaInfo {
        size: bytes.len() as u64,
        sha256: sha2::Sha256::digest(bytes).into(),
        content_type: MediaType::Png,
    };
    state.store.media_begin(media, &info, now()).unwrap();
    let held = if complete { bytes } else { &bytes[..bytes.len() / 2] };
    state.store.media_append(media, 0, held).unwrap();
    if complete {
        state.store.media_complete(media, now()).unwrap();
    }
    info
}

#[test]
fn a_resident_fetches_only_their_own_cached_media_in_chunks() {
    let mut state = setup(1000);
    page(
        &mut state,
        10,
        11,
        vec![
            inbound_with_media(
                0x51,
                "R1",
                1,
                vec![
                    Attachment::Photo(MediaId(1)),
                    Attachment::VideoGram { media: MediaId(2), duration_secs: 3 },
                ],
            ),
            // Another resident's message.
            inbound_with_media(0x52, "R2", 3, vec![Attachment::SnapNSend(MediaId(3))]),
        ],
    );
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let info = cache_media(&mut state, MediaId(1), &bytes, true);
    cache_media(&mut state, MediaId(3), b"not yours", true);

    let mut got = Vec::new();
    loop {
        match call(&mut state, TabletRequest::Media { media: MediaId(1), offset: got.len() as u64 }) {
            TabletResponse::MediaChunk { media, content_type, total, offset, bytes } => {
                assert_eq!(
                    (media, content_type, total, offset),
                    (MediaId(1), MediaType::Png, info.size, got.len() as u64)
                );
                assert!(bytes.len() <= MAX_TABLET_MEDIA_CHUNK as usize);
                if bytes.is_empty() {
                    break;
                }
                got.extend(bytes);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, bytes);
    // Attached to R1's message but not downloaded yet: a distinct answer.
    assert_eq!(
        call(&mut state, TabletRequest::Media { media: MediaId(2), offset: 0 }),
        TabletResponse::Error(ApiError::MediaNotDownloaded { media: MediaId(2) })
    );
    // R2's media, cached or not, and media nobody sent, are all unknown to R1.
    for media in [MediaId(3), MediaId(99)] {
        assert_eq!(
            call(&mut state, TabletRequest::Media { media, offset: 0 }),
            TabletResponse::Error(ApiError::UnknownMedia { media })
        );
    }
    assert!(matches!(
        call(&mut state, TabletRequest::Media { media: MediaId(1), offset: info.size + 1 }),
        TabletResponse::Error(ApiError::Malformed(_))
    ));
    // Logged out: nothing.
    state.sessions.end_connection(CONN);
    assert_eq!(
        call(&mut state, TabletRequest::Media { media: MediaId(1), offset: 0 }),
        TabletResponse::Error(ApiError::NotLoggedIn)
    );
}

#[test]
fn partial_or_damaged_media_is_not_served() {
    let mut state = setup(1000);
    page(&mut state, 10, 11, vec![inbound_with_media(0x51, "R1", 1, vec![Attachment::Photo(MediaId(1))])]);
    let bytes = vec![9u8; 1000];
    cache_media(&mut state, MediaId(1), &bytes, false);
    assert_eq!(
        call(&mut state, TabletRequest::Media { media: MediaId(1), offset: 0 }),
        TabletResponse::Error(ApiError::MediaNotDownloaded { media: MediaId(1) })
    );
    // Complete by length, but the bytes are not the ones central hashed.
    let mut info = cache_media(&mut state, MediaId(1), &bytes, true);
    info.sha256[0] ^= 1;
    state.store.media_begin(MediaId(1), &info, now()).unwrap();
    state.store.media_append(MediaId(1), 0, &bytes).unwrap();
    state.store.media_complete(MediaId(1), now()).unwrap();
    assert_eq!(
        call(&mut state, TabletRequest::Media { media: MediaId(1), offset: 0 }),
        TabletResponse::Error(ApiError::MediaNotDownloaded { media: MediaId(1) })
    );
    assert_eq!(
        state.store.media_entry(MediaId(1)).unwrap(),
        None,
        "the damaged blob is dropped for a refetch"
    );
}
