//! Messaging and stamps in the store: the synced catalog, stamp packages,
//! stamp counts and mail; and the edge's own drafts, sent-message history,
//! view flags, outbox rows and ledger entries.
//!
//! Every write that the outbox contract makes durable commits in one
//! transaction with what belongs to it: [`Store::enqueue`] writes the outbox
//! rows of a group (a send or a purchase, or several queued items at once)
//! with their ledger entries, the sent-message row, the consumed draft and
//! the audit row; [`Store::outbox_remove`] deletes an applied row with the
//! ledger's updates for the same verdict. Blobs are postcard; the edge-core
//! types that are not serde (ledger entries, park reasons) go through
//! private mirror types here, so the cores stay free of storage concerns.

use edge_core::ledger::{Confirmed, Entry, EntryKind, EntryState, Funding, LedgerUpdate};
use edge_core::outbox::{ParkReason, StoredItem};
use jiff::Timestamp;
use proto::central::{Entity, EntityKey};
use proto::domain::{Cents, ContactId, ResidentId};
use proto::messaging::{
    Compose, Direction, ECardId, ECardRecord, IdempotencyKey, MailRecord, Message, MessageId, OutboxBody,
    OutboxItem, PackageId, RefusalReason, Review, StampCountRecord, StampPackageRecord,
};
use rusqlite::{params, Connection, Row, Transaction};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::codec::{self, describe, int, narrow, text, u64_from_sql, u64_to_sql};
use super::{audit, optional, Store, StoreError};

/// One outbox item to commit, with everything that must become durable with
/// it.
#[derive(Debug, Clone, Copy)]
pub struct Enqueue<'a> {
    pub item: &'a OutboxItem,
    /// The ledger's entry for a purchase or a spend.
    pub ledger: Option<&'a Entry>,
    /// The resident's own message, kept as history for the Sent folder.
    pub sent: Option<&'a Message>,
    /// The draft this send came from, deleted in the same transaction.
    pub consumed_draft: Option<(&'a ResidentId, MessageId)>,
    pub audit: Option<&'a AuditNote>,
}

impl<'a> Enqueue<'a> {
    /// An item with nothing attached (call records, audit events).
    pub fn item(item: &'a OutboxItem) -> Self {
        Enqueue { item, ledger: None, sent: None, consumed_draft: None, audit: None }
    }
}

/// An audit row written in the same transaction as an enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditNote {
    pub actor: String,
    pub action: &'static str,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRow {
    pub id: MessageId,
    pub compose: Compose,
    pub updated_at: Timestamp,
}

/// A message the resident sent from this edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRow {
    pub message: Message,
    /// The outbox item that carries (or carried) it.
    pub outbox_key: IdempotencyKey,
    pub hidden: bool,
}

/// A message central synced down for a resident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRow {
    pub record: MailRecord,
    pub read: bool,
    pub hidden: bool,
}

#[derive(Serialize, Deserialize)]
enum StoredKind {
    Purchase { stamps: u32, price_cents: Cents },
    Spend { funded_by: Option<IdempotencyKey> },
}

#[derive(Serialize, Deserialize)]
enum StoredState {
    Queued,
    Settled { applied_at: u64 },
    PaymentFailed { reason: RefusalReason },
}

#[derive(Serialize, Deserialize)]
struct StoredEntry {
    kind: StoredKind,
    state: StoredState,
}

#[derive(Serialize, Deserialize)]
enum StoredPark {
    Refused(RefusalReason),
    PaymentFailed { purchase: IdempotencyKey, reason: RefusalReason },
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value).map_err(|e| StoreError::Encode { what, problem: e.to_string() })
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, codec::Problem> {
    postcard::from_bytes(bytes).map_err(|e| format!("bad postcard blob of {} bytes: {e}", bytes.len()))
}

fn blob(row: &Row<'_>, idx: usize) -> Result<Vec<u8>, codec::Problem> {
    row.get::<_, Vec<u8>>(idx).map_err(|e| format!("column {idx}: {e}"))
}

fn id16(row: &Row<'_>, idx: usize) -> Result<[u8; 16], codec::Problem> {
    let bytes = blob(row, idx)?;
    <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| format!("column {idx}: {} bytes, not 16", bytes.len()))
}

fn entry_to_stored(entry: &Entry) -> StoredEntry {
    StoredEntry {
        kind: match entry.kind {
            EntryKind::Purchase { stamps, price_cents } => StoredKind::Purchase { stamps, price_cents },
            EntryKind::Spend { funding } => StoredKind::Spend { funded_by: funding.funded_by() },
        },
        state: match &entry.state {
            EntryState::Queued => StoredState::Queued,
            EntryState::Settled { applied_at } => StoredState::Settled { applied_at: *applied_at },
            EntryState::PaymentFailed { reason } => StoredState::PaymentFailed { reason: reason.clone() },
        },
    }
}

fn park_to_stored(reason: &ParkReason) -> StoredPark {
    match reason {
        ParkReason::Refused(r) => StoredPark::Refused(r.clone()),
        ParkReason::PaymentFailed { purchase, reason } => {
            StoredPark::PaymentFailed { purchase: *purchase, reason: reason.clone() }
        }
    }
}

fn park_from_stored(stored: StoredPark) -> ParkReason {
    match stored {
        StoredPark::Refused(r) => ParkReason::Refused(r),
        StoredPark::PaymentFailed { purchase, reason } => ParkReason::PaymentFailed { purchase, reason },
    }
}

fn write_ledger(tx: &Transaction<'_>, updates: &[LedgerUpdate]) -> Result<(), StoreError> {
    for update in updates {
        match update {
            LedgerUpdate::Upsert(entry) => {
                let stored = encode("ledger entry", &entry_to_stored(entry))?;
                tx.prepare_cached(
                    "INSERT INTO ledger_entry (key, seq, resident_id, contact_id, entry) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key) DO UPDATE SET \
                     seq = excluded.seq, resident_id = excluded.resident_id, \
                     contact_id = excluded.contact_id, entry = excluded.entry",
                )?
                .execute(params![
                    &entry.key.0[..],
                    u64_to_sql(entry.seq),
                    entry.resident.as_str(),
                    u64_to_sql(entry.contact.0),
                    stored
                ])?;
            }
            LedgerUpdate::Forget(key) => {
                tx.prepare_cached("DELETE FROM ledger_entry WHERE key = ?1")?.execute(params![&key.0[..]])?;
            }
        }
    }
    Ok(())
}

/// Keeps the ledger's view of the feed in step with the page just applied,
/// in the page's transaction. Never moves back: a resync restarts the feed
/// from 0 while the old copy keeps serving (as `Ledger::apply_sync` does).
pub(crate) fn advance_ledger_cursor(tx: &Transaction<'_>, cursor: u64) -> Result<(), StoreError> {
    let stored = read_ledger_cursor(tx)?;
    if cursor > stored {
        tx.prepare_cached("UPDATE ledger_state SET cursor = ?1 WHERE singleton = 1")?
            .execute(params![u64_to_sql(cursor)])?;
    }
    Ok(())
}

fn read_ledger_cursor(conn: &Connection) -> Result<u64, StoreError> {
    let cursor: Option<i64> = optional(
        conn.prepare_cached("SELECT cursor FROM ledger_state WHERE singleton = 1")?
            .query_row([], |r| r.get(0)),
    )?;
    cursor.map(u64_from_sql).ok_or_else(|| StoreError::corrupt("ledger_state", "1", "the row is missing"))
}

pub(crate) fn upsert_entity(
    tx: &Transaction<'_>,
    entity: &Entity,
    generation: i64,
) -> Result<(), StoreError> {
    match entity {
        Entity::ECard(card) => {
            tx.prepare_cached(
                "INSERT INTO ecard (id, category, title, sync_gen) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO UPDATE SET category = excluded.category, \
                 title = excluded.title, sync_gen = excluded.sync_gen",
            )?
            .execute(params![u64_to_sql(card.id.0), card.category, card.title, generation])?;
        }
        Entity::StampPackage(p) => {
            tx.prepare_cached(
                "INSERT INTO stamp_package (id, stamps, price_cents, sync_gen) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO UPDATE SET stamps = excluded.stamps, \
                 price_cents = excluded.price_cents, sync_gen = excluded.sync_gen",
            )?
            .execute(params![u64_to_sql(p.id.0), p.stamps, p.price_cents, generation])?;
        }
        Entity::StampCount(c) => {
            tx.prepare_cached(
                "INSERT INTO stamp_count (resident_id, contact_id, stamps, sync_gen) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (resident_id, contact_id) DO UPDATE SET \
                 stamps = excluded.stamps, sync_gen = excluded.sync_gen",
            )?
            .execute(params![
                c.resident.as_str(),
                u64_to_sql(c.contact.0),
                c.stamps,
                generation
            ])?;
        }
        Entity::Mail(m) => {
            let inbound = m.message.direction == Direction::ContactToResident;
            let rejected = matches!(m.review, Review::Rejected { .. });
            tx.prepare_cached(
                "INSERT INTO mail (id, resident_id, inbound, rejected, sent_at, record, sync_gen) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET \
                 resident_id = excluded.resident_id, inbound = excluded.inbound, \
                 rejected = excluded.rejected, sent_at = excluded.sent_at, \
                 record = excluded.record, sync_gen = excluded.sync_gen",
            )?
            .execute(params![
                &m.message.id.0[..],
                m.message.resident.as_str(),
                inbound,
                rejected,
                m.message.sent_at.to_string(),
                encode("mail record", m)?,
                generation
            ])?;
        }
        other => {
            return Err(StoreError::Encode {
                what: "messaging entity",
                problem: format!("not a messaging entity: {other:?}"),
            })
        }
    }
    Ok(())
}

pub(crate) fn delete_entity(tx: &Transaction<'_>, key: &EntityKey) -> Result<usize, StoreError> {
    Ok(match key {
        EntityKey::ECard(id) => {
            tx.prepare_cached("DELETE FROM ecard WHERE id = ?1")?.execute(params![u64_to_sql(id.0)])?
        }
        EntityKey::StampPackage(id) => tx
            .prepare_cached("DELETE FROM stamp_package WHERE id = ?1")?
            .execute(params![u64_to_sql(id.0)])?,
        EntityKey::StampCount { resident, contact } => tx
            .prepare_cached("DELETE FROM stamp_count WHERE resident_id = ?1 AND contact_id = ?2")?
            .execute(params![resident.as_str(), u64_to_sql(contact.0)])?,
        EntityKey::Mail(id) => {
            tx.prepare_cached("DELETE FROM mail WHERE id = ?1")?.execute(params![&id.0[..]])?
        }
        _ => 0,
    })
}

/// eCards, stamp packages and stamp counts, for the directory.
pub(crate) fn load_catalog(conn: &Connection, out: &mut Vec<Entity>) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT id, category, title FROM ecard ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let decode = || -> Result<ECardRecord, codec::Problem> {
            Ok(ECardRecord {
                id: ECardId(u64_from_sql(int(row, 0)?)),
                category: text(row, 1)?,
                title: text(row, 2)?,
            })
        };
        out.push(Entity::ECard(decode().map_err(|p| StoreError::corrupt("ecard", describe(row, 0), p))?));
    }
    let mut stmt = conn.prepare("SELECT id, stamps, price_cents FROM stamp_package ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let decode = || -> Result<StampPackageRecord, codec::Problem> {
            Ok(StampPackageRecord {
                id: PackageId(u64_from_sql(int(row, 0)?)),
                stamps: narrow(row, 1)?,
                price_cents: int(row, 2)?,
            })
        };
        out.push(Entity::StampPackage(
            decode().map_err(|p| StoreError::corrupt("stamp_package", describe(row, 0), p))?,
        ));
    }
    for record in stamp_counts(conn)? {
        out.push(Entity::StampCount(record));
    }
    Ok(())
}

fn stamp_counts(conn: &Connection) -> Result<Vec<StampCountRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT resident_id, contact_id, stamps FROM stamp_count ORDER BY resident_id, contact_id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let decode = || -> Result<StampCountRecord, codec::Problem> {
            Ok(StampCountRecord {
                resident: ResidentId(text(row, 0)?),
                contact: ContactId(u64_from_sql(int(row, 1)?)),
                stamps: narrow(row, 2)?,
            })
        };
        out.push(decode().map_err(|p| StoreError::corrupt("stamp_count", describe(row, 0), p))?);
    }
    Ok(out)
}

/// Writes one outbox row inside the caller's transaction; returns its seq.
pub(crate) fn insert_outbox_row(conn: &Connection, item: &OutboxItem) -> Result<u64, StoreError> {
    conn.prepare_cached("INSERT INTO outbox (key, item, parked) VALUES (?1, ?2, NULL)")?
        .execute(params![&item.key.0[..], encode("outbox item", item)?])?;
    Ok(u64_from_sql(conn.last_insert_rowid()))
}

fn decode_outbox_row(row: &Row<'_>) -> Result<StoredItem, codec::Problem> {
    let seq = u64_from_sql(int(row, 0)?);
    let item: OutboxItem = decode(&blob(row, 1)?)?;
    let parked = row
        .get::<_, Option<Vec<u8>>>(2)
        .map_err(|e| format!("column 2: {e}"))?
        .map(|b| decode::<StoredPark>(&b).map(park_from_stored))
        .transpose()?;
    Ok(StoredItem { seq, item, parked })
}

fn decode_entry(row: &Row<'_>) -> Result<Entry, codec::Problem> {
    let key = IdempotencyKey(id16(row, 0)?);
    let stored: StoredEntry = decode(&blob(row, 4)?)?;
    Ok(Entry {
        key,
        seq: u64_from_sql(int(row, 1)?),
        resident: ResidentId(text(row, 2)?),
        contact: ContactId(u64_from_sql(int(row, 3)?)),
        kind: match stored.kind {
            StoredKind::Purchase { stamps, price_cents } => EntryKind::Purchase { stamps, price_cents },
            StoredKind::Spend { funded_by: None } => EntryKind::Spend { funding: Funding::Confirmed },
            StoredKind::Spend { funded_by: Some(p) } => EntryKind::Spend { funding: Funding::Purchase(p) },
        },
        state: match stored.state {
            StoredState::Queued => EntryState::Queued,
            StoredState::Settled { applied_at } => EntryState::Settled { applied_at },
            StoredState::PaymentFailed { reason } => EntryState::PaymentFailed { reason },
        },
    })
}

fn decode_sent(row: &Row<'_>) -> Result<SentRow, codec::Problem> {
    Ok(SentRow {
        message: decode(&blob(row, 0)?)?,
        outbox_key: IdempotencyKey(id16(row, 1)?),
        hidden: codec::boolean(row, 2)?,
    })
}

fn decode_mail(row: &Row<'_>) -> Result<MailRow, codec::Problem> {
    Ok(MailRow {
        record: decode(&blob(row, 0)?)?,
        read: codec::boolean(row, 1)?,
        hidden: codec::boolean(row, 2)?,
    })
}

fn decode_draft(row: &Row<'_>) -> Result<DraftRow, codec::Problem> {
    Ok(DraftRow {
        id: MessageId(id16(row, 0)?),
        compose: decode(&blob(row, 1)?)?,
        updated_at: codec::timestamp_from_sql(&text(row, 2)?)?,
    })
}

const SENT_SELECT: &str = "SELECT s.message, s.outbox_key, COALESCE(f.hidden, 0) FROM sent_message s \
                           LEFT JOIN message_flag f ON f.id = s.id";
const MAIL_SELECT: &str = "SELECT m.record, COALESCE(f.read, 0), COALESCE(f.hidden, 0) FROM mail m \
                           LEFT JOIN message_flag f ON f.id = m.id";

impl Store {
    /// Commits a group of outbox items in one durable transaction (group
    /// commit) and returns their enqueue sequence numbers, in order. Each
    /// item's ledger entry, sent-message row, consumed draft and audit row
    /// (with the audit row's own outbox item, right after the item's) commit
    /// with it, or nothing does.
    pub fn enqueue(&mut self, group: &[Enqueue<'_>], now: Timestamp) -> Result<Vec<u64>, StoreError> {
        let tx = self.write_tx()?;
        let mut seqs = Vec::with_capacity(group.len());
        for e in group {
            let key = &e.item.key.0[..];
            seqs.push(insert_outbox_row(&tx, e.item)?);
            if let Some(entry) = e.ledger {
                write_ledger(&tx, std::slice::from_ref(&LedgerUpdate::Upsert(entry.clone())))?;
            }
            if let Some(message) = e.sent {
                tx.prepare_cached(
                    "INSERT INTO sent_message (id, resident_id, outbox_key, sent_at, message) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    &message.id.0[..],
                    message.resident.as_str(),
                    key,
                    message.sent_at.to_string(),
                    encode("sent message", message)?
                ])?;
            }
            if let Some((resident, draft)) = e.consumed_draft {
                tx.prepare_cached("DELETE FROM draft WHERE id = ?1 AND resident_id = ?2")?
                    .execute(params![&draft.0[..], resident.as_str()])?;
            }
            if let Some(note) = e.audit {
                audit::append(&tx, &note.actor, note.action, &note.detail, now)?;
            }
        }
        tx.commit()?;
        Ok(seqs)
    }

    /// Every outbox row, parked ones included, in enqueue order.
    pub fn outbox_rows(&self) -> Result<Vec<StoredItem>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT seq, item, parked FROM outbox ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode_outbox_row(row).map_err(|p| StoreError::corrupt("outbox", describe(row, 0), p))?);
        }
        Ok(out)
    }

    /// Outbox rows with a seq above `seq`, in enqueue order: what was
    /// committed since the caller last looked, by this process or another
    /// (the seq is AUTOINCREMENT and writers take the write lock in turn, so
    /// a row committed later never gets a smaller seq).
    pub fn outbox_rows_after(&self, seq: u64) -> Result<Vec<StoredItem>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT seq, item, parked FROM outbox WHERE seq > ?1 ORDER BY seq")?;
        let mut rows = stmt.query(params![u64_to_sql(seq)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode_outbox_row(row).map_err(|p| StoreError::corrupt("outbox", describe(row, 0), p))?);
        }
        Ok(out)
    }

    /// Central applied the item: deletes its row with the ledger's updates
    /// for that verdict. Returns whether the row existed.
    pub fn outbox_remove(
        &mut self,
        key: &IdempotencyKey,
        ledger: &[LedgerUpdate],
    ) -> Result<bool, StoreError> {
        let tx = self.write_tx()?;
        let removed =
            tx.prepare_cached("DELETE FROM outbox WHERE key = ?1")?.execute(params![&key.0[..]])? > 0;
        write_ledger(&tx, ledger)?;
        tx.commit()?;
        Ok(removed)
    }

    /// Records that an item is parked (never sent again), with the ledger's
    /// updates and an audit row. Returns whether the row existed.
    ///
    /// Parking an audit item writes no audit row: that row would be one more
    /// audit item, and a central refusing audit items would turn the pair
    /// into an endless chain. The reason stays on the parked row.
    pub fn outbox_park(
        &mut self,
        key: &IdempotencyKey,
        reason: &ParkReason,
        ledger: &[LedgerUpdate],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let tx = self.write_tx()?;
        let item: Option<Vec<u8>> = optional(
            tx.prepare_cached("SELECT item FROM outbox WHERE key = ?1")?
                .query_row(params![&key.0[..]], |row| row.get(0)),
        )?;
        let is_audit = match &item {
            Some(bytes) => matches!(
                decode::<OutboxItem>(bytes)
                    .map_err(|p| StoreError::corrupt("outbox", key.to_string(), p))?
                    .body,
                OutboxBody::Audit(_)
            ),
            None => false,
        };
        let parked = tx
            .prepare_cached("UPDATE outbox SET parked = ?2 WHERE key = ?1")?
            .execute(params![&key.0[..], encode("park reason", &park_to_stored(reason))?])?
            > 0;
        write_ledger(&tx, ledger)?;
        if !is_audit {
            let detail = serde_json::json!({"key": key.to_string(), "reason": format!("{reason:?}")});
            audit::append(&tx, "uplink", "outbox-parked", &detail, now)?;
        }
        tx.commit()?;
        Ok(parked)
    }

    /// Deletes a withdrawn parked item with the ledger's updates.
    pub fn outbox_withdraw(
        &mut self,
        key: &IdempotencyKey,
        ledger: &[LedgerUpdate],
    ) -> Result<bool, StoreError> {
        self.outbox_remove(key, ledger)
    }

    /// Writes ledger updates that come without an outbox change (e.g. from
    /// a change-feed page).
    pub fn write_ledger(&mut self, updates: &[LedgerUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let tx = self.write_tx()?;
        write_ledger(&tx, updates)?;
        tx.commit()?;
        Ok(())
    }

    pub fn ledger_entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, seq, resident_id, contact_id, entry FROM ledger_entry ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(
                decode_entry(row).map_err(|p| StoreError::corrupt("ledger_entry", describe(row, 1), p))?,
            );
        }
        Ok(out)
    }

    /// How far the feed was complete when the ledger last heard of it.
    pub fn ledger_cursor(&self) -> Result<u64, StoreError> {
        read_ledger_cursor(&self.conn)
    }

    /// The figures central last confirmed: each resident's debit balance and
    /// each stamp count, for `Ledger::restore`.
    pub fn ledger_confirmed(&self) -> Result<Vec<Confirmed>, StoreError> {
        let mut out = Vec::new();
        let mut stmt = self.conn.prepare("SELECT id, debit_balance_cents FROM resident ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let decode = || -> Result<Confirmed, codec::Problem> {
                Ok(Confirmed::Debit { resident: ResidentId(text(row, 0)?), balance_cents: int(row, 1)? })
            };
            out.push(decode().map_err(|p| StoreError::corrupt("resident", describe(row, 0), p))?);
        }
        for c in stamp_counts(&self.conn)? {
            out.push(Confirmed::Stamps { resident: c.resident, contact: c.contact, stamps: c.stamps });
        }
        Ok(out)
    }

    /// Creates or replaces a draft.
    pub fn save_draft(
        &mut self,
        resident: &ResidentId,
        id: MessageId,
        compose: &Compose,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        tx.prepare_cached(
            "INSERT INTO draft (id, resident_id, compose, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET compose = excluded.compose, updated_at = excluded.updated_at \
             WHERE draft.resident_id = excluded.resident_id",
        )?
        .execute(params![
            &id.0[..],
            resident.as_str(),
            encode("draft", compose)?,
            now.to_string()
        ])?;
        tx.commit()?;
        Ok(())
    }

    pub fn draft(&self, resident: &ResidentId, id: MessageId) -> Result<Option<DraftRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, compose, updated_at FROM draft WHERE id = ?1 AND resident_id = ?2")?;
        let mut rows = stmt.query(params![&id.0[..], resident.as_str()])?;
        match rows.next()? {
            None => Ok(None),
            Some(row) => {
                decode_draft(row).map(Some).map_err(|p| StoreError::corrupt("draft", id.to_string(), p))
            }
        }
    }

    /// A resident's drafts, newest first.
    pub fn drafts(&self, resident: &ResidentId) -> Result<Vec<DraftRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, compose, updated_at FROM draft WHERE resident_id = ?1 ORDER BY updated_at DESC, id",
        )?;
        let mut rows = stmt.query(params![resident.as_str()])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode_draft(row).map_err(|p| StoreError::corrupt("draft", describe(row, 0), p))?);
        }
        Ok(out)
    }

    /// Returns whether the draft existed.
    pub fn delete_draft(&mut self, resident: &ResidentId, id: MessageId) -> Result<bool, StoreError> {
        let tx = self.write_tx()?;
        let deleted = tx
            .prepare_cached("DELETE FROM draft WHERE id = ?1 AND resident_id = ?2")?
            .execute(params![&id.0[..], resident.as_str()])?
            > 0;
        tx.commit()?;
        Ok(deleted)
    }

    /// Messages the resident sent from this edge, newest first, hidden ones
    /// included (flagged).
    pub fn sent_messages(&self, resident: &ResidentId) -> Result<Vec<SentRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SENT_SELECT} WHERE s.resident_id = ?1 ORDER BY s.sent_at DESC, s.id"
        ))?;
        let mut rows = stmt.query(params![resident.as_str()])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode_sent(row).map_err(|p| StoreError::corrupt("sent_message", describe(row, 1), p))?);
        }
        Ok(out)
    }

    pub fn sent_message(&self, resident: &ResidentId, id: MessageId) -> Result<Option<SentRow>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached(&format!("{SENT_SELECT} WHERE s.id = ?1 AND s.resident_id = ?2"))?;
        let mut rows = stmt.query(params![&id.0[..], resident.as_str()])?;
        match rows.next()? {
            None => Ok(None),
            Some(row) => {
                decode_sent(row).map(Some).map_err(|p| StoreError::corrupt("sent_message", id.to_string(), p))
            }
        }
    }

    /// Mail central synced for the resident (both directions), newest first.
    pub fn mail_of(&self, resident: &ResidentId) -> Result<Vec<MailRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{MAIL_SELECT} WHERE m.resident_id = ?1 ORDER BY m.sent_at DESC, m.id"
        ))?;
        let mut rows = stmt.query(params![resident.as_str()])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode_mail(row).map_err(|p| StoreError::corrupt("mail", describe(row, 0), p))?);
        }
        Ok(out)
    }

    pub fn mail(&self, resident: &ResidentId, id: MessageId) -> Result<Option<MailRow>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached(&format!("{MAIL_SELECT} WHERE m.id = ?1 AND m.resident_id = ?2"))?;
        let mut rows = stmt.query(params![&id.0[..], resident.as_str()])?;
        match rows.next()? {
            None => Ok(None),
            Some(row) => {
                decode_mail(row).map(Some).map_err(|p| StoreError::corrupt("mail", id.to_string(), p))
            }
        }
    }

    /// Unread items of the inbox: inbound mail and rejection notices of the
    /// resident's own mail not yet opened.
    pub fn unread_count(&self, resident: &ResidentId) -> Result<u32, StoreError> {
        let count: i64 = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM mail m LEFT JOIN message_flag f ON f.id = m.id \
             WHERE m.resident_id = ?1 AND (m.inbound = 1 OR m.rejected = 1) AND COALESCE(f.read, 0) = 0",
            )?
            .query_row(params![resident.as_str()], |row| row.get(0))?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    pub fn mark_read(&mut self, resident: &ResidentId, id: MessageId) -> Result<(), StoreError> {
        self.set_flag(resident, id, "read")
    }

    /// Hides a sent message from the resident's Sent view; its history rows
    /// stay.
    pub fn hide_sent(&mut self, resident: &ResidentId, id: MessageId) -> Result<(), StoreError> {
        self.set_flag(resident, id, "hidden")
    }

    fn set_flag(
        &mut self,
        resident: &ResidentId,
        id: MessageId,
        column: &'static str,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        tx.prepare_cached(&format!(
            "INSERT INTO message_flag (id, resident_id, {column}) VALUES (?1, ?2, 1) \
             ON CONFLICT (id) DO UPDATE SET {column} = 1"
        ))?
        .execute(params![&id.0[..], resident.as_str()])?;
        tx.commit()?;
        Ok(())
    }
}
