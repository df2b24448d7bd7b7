//! The tablet's messaging and stamp requests, answered from the agent's
//! state (transport-free, like `api`).
//!
//! Owns: turning each request into core calls and store writes: drafts kept
//! on the edge, the Inbox / Sent / Drafts folders with unread counts, read
//! marks, hiding sent messages (history kept), sends and stamp purchases.
//!
//! Must not: decide the rules itself. Compose checks are
//! `edge_core::messaging`, spendable money and stamps are the single
//! `edge_core::ledger` in the state, delivery is `edge_core::outbox`. A
//! send or a purchase reserves in the ledger and commits the outbox row, the
//! ledger entry, the sent-message row (and the consumed draft) and the audit
//! row in one transaction, all under the state lock, so two tablets racing
//! for one resident are served one after the other and the second sees the
//! first's debit. A reservation whose commit fails is forgotten again.
//!
//! Attachments: a resident may fetch the media of inbound messages addressed
//! to them, and nothing else (anything else is `UnknownMedia`, the same
//! answer as for media that does not exist). Media the prefetcher has not
//! finished is `MediaNotDownloaded`. A blob is hashed against central's
//! SHA-256 when a tablet starts reading it (offset 0); one that fails is
//! dropped from the cache and fetched again.
//!
//! Folders: the Inbox holds inbound mail and the rejection notices of the
//! resident's own mail (with the reviewer's reason); its unread count covers
//! both. Sent holds the resident's messages that are not hidden, queued ones
//! included, with their state. Drafts are newest first.

use std::collections::{HashMap, HashSet};

use edge_core::{
    ledger::{EntryKind, EntryState},
    messaging,
    outbox::{ItemStatus, ParkReason},
    policy,
};
use jiff::Timestamp;
use proto::{
    domain::{ContactId, ResidentId, Service},
    messaging::{
        Compose, Direction, IdempotencyKey, MediaId, Message, MessageId, MessagingError, OutboxBody,
        OutboxItem, PackageId, Review, StampPurchase,
    },
    tablet::{
        ApiError, Availability, ContactStamps, DenyReason, Folder, MailboxView, MessageState, MessageSummary,
        MessageView, PurchaseState, PurchaseView, StampBalances, StampShop, TabletRequest, TabletResponse,
        MAX_TABLET_MEDIA_CHUNK,
    },
};
use rand::{rngs::OsRng, RngCore};
use serde_json::json;
use sha2::Digest;

use crate::{
    api::internal,
    state::EdgeState,
    store::{AuditNote, Enqueue, MailRow, SentRow},
};

/// A refusal is boxed: a `TabletResponse` is large and travels up only on
/// the unhappy path.
type Refusal = Box<TabletResponse>;
type Answer = Result<TabletResponse, Refusal>;

fn refused(error: MessagingError) -> Refusal {
    Box::new(TabletResponse::Error(ApiError::Messaging(error)))
}

fn failed(what: &str, error: &dyn std::fmt::Display) -> Refusal {
    Box::new(internal(what, error))
}

fn malformed(detail: String) -> Refusal {
    Box::new(TabletResponse::Error(ApiError::Malformed(detail)))
}

/// 128 bits from the operating system's random source (see the idempotency
/// key docs in `proto::messaging` for why not a counter).
fn random_id() -> Result<u128, Refusal> {
    let mut bytes = [0u8; 16];
    OsRng.try_fill_bytes(&mut bytes).map_err(|e| failed("random id", &e))?;
    Ok(u128::from_be_bytes(bytes))
}

/// Answers the messaging requests of `resident`'s session.
pub fn handle(
    state: &mut EdgeState,
    resident: &ResidentId,
    device: &str,
    request: TabletRequest,
    now: Timestamp,
) -> TabletResponse {
    let answer = match request {
        TabletRequest::Mailbox { folder } => mailbox(state, resident, folder),
        TabletRequest::ReadMessage { id } => read_message(state, resident, id),
        TabletRequest::SaveDraft { draft, compose } => save_draft(state, resident, draft, compose, now),
        TabletRequest::DeleteDraft { id } => match state.store.delete_draft(resident, id) {
            Ok(true) => Ok(TabletResponse::DraftDeleted { id }),
            Ok(false) => Err(refused(MessagingError::UnknownDraft(id))),
            Err(e) => Err(failed("drafts", &e)),
        },
        TabletRequest::SendMessage { draft, compose } => send(state, resident, device, draft, compose, now),
        TabletRequest::HideSent { id } => hide_sent(state, resident, device, id, now),
        TabletRequest::ECards => Ok(TabletResponse::ECards(state.directory.ecards().cloned().collect())),
        TabletRequest::StampPackages => Ok(TabletResponse::StampPackages(StampShop {
            packages: state.directory.stamp_packages().cloned().collect(),
            debit_available_cents: state.ledger.debit_available(resident),
            freshness: state.freshness_at(now),
        })),
        TabletRequest::BuyStamps { contact, package } => buy(state, resident, device, contact, package, now),
        TabletRequest::StampBalance => Ok(stamp_balance(state, resident, now)),
        TabletRequest::Media { media, offset } => media_chunk(state, resident, media, offset),
        other => Err(malformed(format!("not a messaging request: {other:?}"))),
    };
    answer.unwrap_or_else(|refusal| *refusal)
}

fn contact_name(state: &EdgeState, contact: ContactId) -> String {
    state.directory.contact(contact).map(|c| c.name.clone()).unwrap_or_default()
}

fn review_state(mail: Option<&MailRow>) -> MessageState {
    match mail.map(|m| &m.record.review) {
        Some(Review::Approved) => MessageState::Approved,
        Some(Review::Rejected { reason }) => MessageState::Rejected { reason: reason.clone() },
        // Delivered (or not yet in the feed): under review.
        Some(Review::Pending) | None => MessageState::InReview,
    }
}

/// A sent message's state: the outbox's while it holds the item, then the
/// review's.
fn sent_state(state: &EdgeState, key: &IdempotencyKey, mail: Option<&MailRow>) -> MessageState {
    match state.outbox.status(key) {
        Some(ItemStatus::Queued { .. } | ItemStatus::Sending) => MessageState::Queued,
        Some(ItemStatus::Parked(ParkReason::PaymentFailed { reason, .. })) => {
            MessageState::PaymentFailed { reason }
        }
        Some(ItemStatus::Parked(ParkReason::Refused(reason))) => MessageState::Refused { reason },
        None => review_state(mail),
    }
}

fn summary(state: &EdgeState, message: &Message, at: Timestamp, msg_state: MessageState) -> MessageSummary {
    MessageSummary {
        id: message.id,
        contact: message.contact,
        contact_name: contact_name(state, message.contact),
        direction: message.direction,
        subject: message.subject.clone(),
        at,
        attachments: u32::try_from(message.attachments.len()).unwrap_or(u32::MAX),
        state: msg_state,
    }
}

fn view(state: &EdgeState, message: Message, at: Timestamp, msg_state: MessageState) -> MessageView {
    MessageView {
        id: message.id,
        contact: message.contact,
        contact_name: contact_name(state, message.contact),
        direction: message.direction,
        subject: message.subject,
        body: message.body,
        attachments: message.attachments,
        at,
        state: msg_state,
    }
}

fn draft_message(resident: &ResidentId, id: MessageId, compose: Compose, at: Timestamp) -> Message {
    Message {
        id,
        resident: resident.clone(),
        contact: compose.contact,
        direction: Direction::ResidentToContact,
        subject: compose.subject,
        body: compose.body,
        attachments: compose.attachments,
        sent_at: at,
    }
}

fn mailbox(state: &EdgeState, resident: &ResidentId, folder: Folder) -> Answer {
    let store_error = |e: crate::store::StoreError| failed("mailbox", &e);
    let mut messages = match folder {
        Folder::Inbox => {
            let mail = state.store.mail_of(resident).map_err(store_error)?;
            mail.iter()
                .filter_map(|row| {
                    let m = &row.record.message;
                    let msg_state = match (&m.direction, &row.record.review) {
                        (Direction::ContactToResident, _) => MessageState::Received { read: row.read },
                        (Direction::ResidentToContact, Review::Rejected { reason }) => {
                            MessageState::Rejected { reason: reason.clone() }
                        }
                        _ => return None,
                    };
                    Some(summary(state, m, m.sent_at, msg_state))
                })
                .collect::<Vec<_>>()
        }
        Folder::Sent => {
            let mail = state.store.mail_of(resident).map_err(store_error)?;
            let own: HashMap<MessageId, &MailRow> = mail
                .iter()
                .filter(|row| row.record.message.direction == Direction::ResidentToContact)
                .map(|row| (row.record.message.id, row))
                .collect();
            let sent: Vec<SentRow> = state.store.sent_messages(resident).map_err(store_error)?;
            let local: HashSet<MessageId> = sent.iter().map(|s| s.message.id).collect();
            let mut out: Vec<MessageSummary> = sent
                .iter()
                .filter(|s| !s.hidden)
                .map(|s| {
                    let msg_state = sent_state(state, &s.outbox_key, own.get(&s.message.id).copied());
                    summary(state, &s.message, s.message.sent_at, msg_state)
                })
                .collect();
            // Mail this edge has no local copy of (e.g. sent before the box
            // was replaced) still belongs in Sent.
            out.extend(
                own.values().filter(|row| !row.hidden && !local.contains(&row.record.message.id)).map(
                    |row| {
                        let m = &row.record.message;
                        summary(state, m, m.sent_at, review_state(Some(row)))
                    },
                ),
            );
            out
        }
        Folder::Drafts => {
            let drafts = state.store.drafts(resident).map_err(store_error)?;
            drafts
                .into_iter()
                .map(|d| {
                    let message = draft_message(resident, d.id, d.compose, d.updated_at);
                    summary(state, &message, d.updated_at, MessageState::Draft)
                })
                .collect()
        }
    };
    messages.sort_by(|a, b| b.at.cmp(&a.at).then(a.id.cmp(&b.id)));
    let unread = state.store.unread_count(resident).map_err(store_error)?;
    Ok(TabletResponse::Mailbox(MailboxView { folder, messages, unread }))
}

fn read_message(state: &mut EdgeState, resident: &ResidentId, id: MessageId) -> Answer {
    let store_error = |e: crate::store::StoreError| failed("messages", &e);
    let mail = state.store.mail(resident, id).map_err(store_error)?;
    let sent = state.store.sent_message(resident, id).map_err(store_error)?;
    if let Some(row) = &mail {
        let notice = row.record.message.direction == Direction::ContactToResident
            || matches!(row.record.review, Review::Rejected { .. });
        if notice && !row.read {
            state.store.mark_read(resident, id).map_err(store_error)?;
        }
    }
    if let Some(sent) = sent {
        let msg_state = sent_state(state, &sent.outbox_key, mail.as_ref());
        let at = sent.message.sent_at;
        return Ok(TabletResponse::Message(view(state, sent.message, at, msg_state)));
    }
    if let Some(row) = mail {
        let msg_state = match row.record.message.direction {
            Direction::ContactToResident => MessageState::Received { read: true },
            Direction::ResidentToContact => review_state(Some(&row)),
        };
        let at = row.record.message.sent_at;
        return Ok(TabletResponse::Message(view(state, row.record.message, at, msg_state)));
    }
    match state.store.draft(resident, id).map_err(store_error)? {
        Some(d) => {
            let message = draft_message(resident, d.id, d.compose, d.updated_at);
            Ok(TabletResponse::Message(view(state, message, d.updated_at, MessageState::Draft)))
        }
        None => Err(malformed(format!("no message {id}"))),
    }
}

fn save_draft(
    state: &mut EdgeState,
    resident: &ResidentId,
    draft: Option<MessageId>,
    compose: Compose,
    now: Timestamp,
) -> Answer {
    messaging::validate_draft(&state.directory, resident, &compose).map_err(refused)?;
    let id = match draft {
        Some(id) => match state.store.draft(resident, id) {
            Ok(Some(_)) => id,
            Ok(None) => return Err(refused(MessagingError::UnknownDraft(id))),
            Err(e) => return Err(failed("drafts", &e)),
        },
        None => MessageId::from_u128(random_id()?),
    };
    state.store.save_draft(resident, id, &compose, now).map_err(|e| failed("drafts", &e))?;
    Ok(TabletResponse::DraftSaved { id })
}

fn send(
    state: &mut EdgeState,
    resident: &ResidentId,
    device: &str,
    draft: Option<MessageId>,
    compose: Compose,
    now: Timestamp,
) -> Answer {
    if let Some(id) = draft {
        match state.store.draft(resident, id) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(refused(MessagingError::UnknownDraft(id))),
            Err(e) => return Err(failed("drafts", &e)),
        }
    }
    let contact = compose.contact;
    let stamps = state.ledger.stamps(resident, contact).available;
    messaging::validate_send(&state.directory, &state.lockdowns, resident, &compose, stamps, now)
        .map_err(refused)?;
    let key = IdempotencyKey::from_u128(random_id()?);
    let id = match draft {
        Some(id) => id,
        None => MessageId::from_u128(random_id()?),
    };
    let entry = state.ledger.spend(resident, contact, key).map_err(refused)?;
    let funded_by = match &entry.kind {
        EntryKind::Spend { funding } => funding.funded_by(),
        EntryKind::Purchase { .. } => None,
    };
    let message = draft_message(resident, id, compose, now);
    let item = OutboxItem {
        key,
        created_at: now,
        body: OutboxBody::SendMessage { message: message.clone(), funded_by },
    };
    let note = AuditNote {
        actor: device.to_owned(),
        action: "message-send",
        detail: json!({
            "resident": resident, "contact": contact, "message": id.to_string(), "key": key.to_string(),
            "funded_by": funded_by.map(|k| k.to_string()), "chars": messaging::char_count(&message.body),
            "attachments": message.attachments.len(),
        }),
    };
    let enqueue = Enqueue {
        item: &item,
        ledger: Some(&entry),
        sent: Some(&message),
        consumed_draft: draft.map(|d| (resident, d)),
        audit: Some(&note),
    };
    if let Err(error) = state.commit_and_enqueue(&[enqueue], now) {
        state.ledger.forget(&key);
        return Err(failed("outbox", &error));
    }
    tracing::info!(%resident, %contact, message = %id, %key, "message queued");
    let msg_state = sent_state(state, &key, None);
    Ok(TabletResponse::MessageQueued(view(state, message, now, msg_state)))
}

fn hide_sent(
    state: &mut EdgeState,
    resident: &ResidentId,
    device: &str,
    id: MessageId,
    now: Timestamp,
) -> Answer {
    let store_error = |e: crate::store::StoreError| failed("messages", &e);
    let local = state.store.sent_message(resident, id).map_err(store_error)?.is_some();
    let own_mail = state
        .store
        .mail(resident, id)
        .map_err(store_error)?
        .is_some_and(|row| row.record.message.direction == Direction::ResidentToContact);
    if !local && !own_mail {
        return Err(malformed(format!("no sent message {id}")));
    }
    state.store.hide_sent(resident, id).map_err(store_error)?;
    if let Err(error) =
        state.audit(device, "message-hide", &json!({"resident": resident, "message": id.to_string()}), now)
    {
        tracing::error!(%error, "audit append failed");
    }
    Ok(TabletResponse::SentHidden { id })
}

/// The contact must be the resident's and usable for messaging: stamps for
/// a contact the resident cannot write to would be money spent for nothing.
fn check_contact(
    state: &EdgeState,
    resident: &ResidentId,
    contact: ContactId,
    now: Timestamp,
) -> Result<(), Refusal> {
    let record = match state.directory.contact(contact) {
        Some(c) if &c.resident == resident => c,
        _ => return Err(refused(MessagingError::UnknownContact { contact })),
    };
    match policy::availability(&state.directory, &state.lockdowns, resident, record, Service::Message, now) {
        Availability::Available => Ok(()),
        Availability::Unavailable(DenyReason::NotApproved { status, .. }) => {
            Err(refused(MessagingError::ContactNotApproved { status }))
        }
        Availability::Unavailable(DenyReason::UnknownContact { contact }) => {
            Err(refused(MessagingError::UnknownContact { contact }))
        }
        Availability::Unavailable(reason) => Err(refused(MessagingError::NotAllowed(reason))),
    }
}

fn buy(
    state: &mut EdgeState,
    resident: &ResidentId,
    device: &str,
    contact: ContactId,
    package: PackageId,
    now: Timestamp,
) -> Answer {
    check_contact(state, resident, contact, now)?;
    let Some(package) = state.directory.stamp_package(package).cloned() else {
        return Err(refused(MessagingError::UnknownPackage(package)));
    };
    let key = IdempotencyKey::from_u128(random_id()?);
    let entry = state.ledger.buy(resident, contact, &package, key).map_err(refused)?;
    let purchase = StampPurchase {
        resident: resident.clone(),
        contact,
        package: package.id,
        stamps: package.stamps,
        price_cents: package.price_cents,
        bought_at: now,
    };
    let item = OutboxItem { key, created_at: now, body: OutboxBody::BuyStamps(purchase) };
    let note = AuditNote {
        actor: device.to_owned(),
        action: "stamps-buy",
        detail: json!({
            "resident": resident, "contact": contact, "package": package.id, "stamps": package.stamps,
            "price_cents": package.price_cents, "key": key.to_string(),
        }),
    };
    let enqueue =
        Enqueue { item: &item, ledger: Some(&entry), sent: None, consumed_draft: None, audit: Some(&note) };
    if let Err(error) = state.commit_and_enqueue(&[enqueue], now) {
        state.ledger.forget(&key);
        return Err(failed("outbox", &error));
    }
    tracing::info!(%resident, %contact, package = %package.id, %key, "stamps bought");
    Ok(TabletResponse::StampsBought(PurchaseView {
        key,
        contact,
        stamps: package.stamps,
        price_cents: package.price_cents,
        state: PurchaseState::Queued,
    }))
}

fn stamp_balance(state: &EdgeState, resident: &ResidentId, now: Timestamp) -> TabletResponse {
    let contacts = state
        .directory
        .contacts_of(resident)
        .map(|c| {
            let view = state.ledger.stamps(resident, c.id);
            ContactStamps {
                contact: c.id,
                name: c.name.clone(),
                available: view.available,
                awaiting_payment: view.awaiting_payment,
            }
        })
        .collect();
    let purchases = state
        .ledger
        .entries()
        .filter(|e| &e.resident == resident)
        .filter_map(|e| match e.kind {
            EntryKind::Purchase { stamps, price_cents } => Some(PurchaseView {
                key: e.key,
                contact: e.contact,
                stamps,
                price_cents,
                state: match &e.state {
                    EntryState::Queued => PurchaseState::Queued,
                    EntryState::Settled { .. } => PurchaseState::Confirmed,
                    EntryState::PaymentFailed { reason } => {
                        PurchaseState::PaymentFailed { reason: reason.clone() }
                    }
                },
            }),
            EntryKind::Spend { .. } => None,
        })
        .collect();
    TabletResponse::Stamps(StampBalances {
        contacts,
        purchases,
        debit_available_cents: state.ledger.debit_available(resident),
        freshness: state.freshness_at(now),
    })
}

#[cfg(test)]
#[path = "messaging_api_tests.rs"]
mod tests;

fn media_chunk(state: &mut EdgeState, resident: &ResidentId, media: MediaId, offset: u64) -> Answer {
    let store_error = |e: crate::store::StoreError| failed("media", &e);
    let unknown = || Box::new(TabletResponse::Error(ApiError::UnknownMedia { media }));
    let not_yet = || Box::new(TabletResponse::Error(ApiError::MediaNotDownloaded { media }));
    let mail = state.store.mail_of(resident).map_err(store_error)?;
    let theirs = mail.iter().any(|row| {
        let m = &row.record.message;
        m.direction == Direction::ContactToResident
            && m.resident == *resident
            && m.attachments.iter().any(|a| a.media() == Some(media))
    });
    if !theirs {
        return Err(unknown());
    }
    let Some(entry) = state.store.media_entry(media).map_err(store_error)? else { return Err(not_yet()) };
    if !entry.complete {
        return Err(not_yet());
    }
    if offset > entry.info.size {
        return Err(malformed(format!(
            "offset {offset} is past the end of media {media} ({} bytes)",
            entry.info.size
        )));
    }
    if offset == 0 {
        let bytes = state.store.media_bytes(media).map_err(store_error)?.unwrap_or_default();
        let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        if let Err(error) = crate::media_core::verify(&entry.info, bytes.len() as u64, &digest) {
            tracing::error!(%media, %error, "cached media is damaged; dropping it for a fresh download");
            state.store.media_delete(&[media]).map_err(store_error)?;
            return Err(not_yet());
        }
    }
    let bytes = state
        .store
        .media_slice(media, offset, MAX_TABLET_MEDIA_CHUNK)
        .map_err(store_error)?
        .unwrap_or_default();
    Ok(TabletResponse::MediaChunk {
        media,
        content_type: entry.info.content_type,
        total: entry.info.size,
        offset,
        bytes,
    })
}
