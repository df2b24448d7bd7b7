//! Outbox deliveries: applies the items edge boxes deliver, each at most once
//! per `(facility, idempotency key)`, and answers with one verdict per item.
//!
//! Owns: the dedup table (`delivery`: the first final verdict per key with a
//! hash of the item it was given for), the application log (`application`:
//! one row per applied effect, counted by `admin deliveries` to prove
//! exactly-once), and what each item does to central's records:
//! - `BuyStamps` debits the resident's debit balance and adds the package's
//!   stamps to the resident's count for that contact;
//! - `SendMessage` spends one stamp and publishes the message as a `Mail`
//!   entity with `Review::Pending`;
//! - `CallRecord` charges the contact's video balance (never below zero; the
//!   shortfall is recorded) and adds the connected time to the resident's
//!   cap usage for the period the call started in;
//! - `Audit` is stored.
//!
//! Must not: know about QUIC, or decide anything the edge decides. Central
//! checks again only what it alone can know for sure (balances, stamps,
//! approvals, the catalog), because the edge decided on a copy that may be
//! stale.
//!
//! # Verdicts
//!
//! Each item is one IMMEDIATE transaction. The first final verdict for a key
//! (applied, or refused permanently) is stored with the item's hash in the
//! same transaction as the effect, and every later delivery of the key gets
//! it again: `Accepted { applied_at }` comes back as `Duplicate` with the
//! same `applied_at`, a refusal as the same refusal. The same key with
//! different content gets `KeyReused` (and the stored verdict stays). A
//! failure of the database itself (busy, I/O) rolls the item back and is
//! answered `Unavailable` with `permanent: false`; nothing is recorded, so the
//! edge's retry is treated as a first delivery.
//!
//! `applied_at` is the highest feed sequence the item's effect wrote, so an
//! edge whose feed cursor has reached it sees the effect (e.g. the new debit
//! balance and stamp count). An item whose effect is not in the feed (an
//! audit row, a free voice call at a facility without voice caps) gets the
//! facility's feed head at that moment: there is nothing further to wait for.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::SignedDuration;
use proto::central::{Entity, EntityKey};
use proto::domain::*;
use proto::messaging::{
    Attachment, CallDetailRecord, DeliveryAck, DeliveryOutcome, Direction, IdempotencyKey, MailRecord,
    Message, OutboxBody, OutboxItem, RefusalReason, Review, StampCountRecord, StampPurchase, MAX_ATTACHMENTS,
};
use rusqlite::{params, OptionalExtension};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::db::{key_text, Audience, Db, DbError, Writer};

/// The kind name stored per key (and printed by `admin deliveries`).
pub fn kind_name(body: &OutboxBody) -> &'static str {
    match body {
        OutboxBody::SendMessage { .. } => "SendMessage",
        OutboxBody::BuyStamps(_) => "BuyStamps",
        OutboxBody::CallRecord(_) => "CallRecord",
        OutboxBody::Audit(_) => "Audit",
    }
}

/// What identifies an item's content for `KeyReused`: everything but the key.
fn payload_hash(item: &OutboxItem) -> Result<Vec<u8>, DbError> {
    let text =
        serde_json::to_vec(&(&item.created_at, &item.body)).map_err(|e| DbError::Encode(e.to_string()))?;
    Ok(Sha256::digest(&text).to_vec())
}

/// Applies a batch, one transaction per item, in the order given; returns
/// one ack per item in the same order.
pub fn deliver(db: &mut Db, facility: &FacilityId, items: &[OutboxItem]) -> Vec<DeliveryAck> {
    items.iter().map(|item| DeliveryAck { key: item.key, outcome: deliver_one(db, facility, item) }).collect()
}

/// Applies one item (see the module docs for the verdicts).
pub fn deliver_one(db: &mut Db, facility: &FacilityId, item: &OutboxItem) -> DeliveryOutcome {
    match try_deliver(db, facility, item) {
        Ok(outcome) => {
            tracing::info!(%facility, key = %item.key, kind = kind_name(&item.body), ?outcome, "delivery");
            outcome
        }
        Err(error) => {
            tracing::warn!(%facility, key = %item.key, %error, "delivery not applied (transient)");
            DeliveryOutcome::Refused {
                reason: RefusalReason::Unavailable { detail: error.to_string() },
                permanent: false,
            }
        }
    }
}

fn try_deliver(db: &mut Db, facility: &FacilityId, item: &OutboxItem) -> Result<DeliveryOutcome, DbError> {
    let hash = payload_hash(item)?;
    let key = item.key.to_string();
    let w = db.writer()?;
    let conn = w.connection();
    let stored: Option<(Vec<u8>, String)> = conn
        .query_row(
            "SELECT payload_hash, verdict FROM delivery WHERE facility = ?1 AND key = ?2",
            params![facility.as_str(), key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((stored_hash, verdict)) = stored {
        conn.execute(
            "UPDATE delivery SET received = received + 1 WHERE facility = ?1 AND key = ?2",
            params![facility.as_str(), key],
        )?;
        let outcome = if stored_hash != hash {
            DeliveryOutcome::Refused { reason: RefusalReason::KeyReused, permanent: true }
        } else {
            match serde_json::from_str(&verdict)
                .map_err(|e| DbError::Corrupt { key: key.clone(), reason: e.to_string() })?
            {
                DeliveryOutcome::Accepted { applied_at } => DeliveryOutcome::Duplicate { applied_at },
                other => other,
            }
        };
        w.commit()?;
        return Ok(outcome);
    }

    // A refusal found half-way must leave no effect behind: the checks come
    // before the writes, and the savepoint makes sure of it.
    conn.execute_batch("SAVEPOINT apply")?;
    let outcome = match apply(&w, facility, item)? {
        Ok(Applied { applied_at, effect }) => {
            let body = json!({ "item": item, "effect": effect }).to_string();
            w.connection().execute(
                "INSERT INTO application (facility, key, kind, applied_at, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![facility.as_str(), key, kind_name(&item.body), to_i64(applied_at), body],
            )?;
            w.connection().execute_batch("RELEASE apply")?;
            DeliveryOutcome::Accepted { applied_at }
        }
        Err(reason) => {
            w.connection().execute_batch("ROLLBACK TO apply; RELEASE apply")?;
            DeliveryOutcome::Refused { reason, permanent: true }
        }
    };
    let verdict = serde_json::to_string(&outcome).map_err(|e| DbError::Encode(e.to_string()))?;
    w.connection().execute(
        "INSERT INTO delivery (facility, key, kind, payload_hash, verdict, received)
         VALUES (?1, ?2, ?3, ?4, ?5, 1)",
        params![facility.as_str(), key, kind_name(&item.body), hash, verdict],
    )?;
    w.commit()?;
    Ok(outcome)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An applied effect: where it shows in the feed, and what to record beside
/// the item.
struct Applied {
    applied_at: u64,
    effect: serde_json::Value,
}

/// The outcome of applying: `Err` is a permanent refusal.
type Applying = Result<Applied, RefusalReason>;

fn apply(w: &Writer<'_>, facility: &FacilityId, item: &OutboxItem) -> Result<Applying, DbError> {
    let mut effect = Effect { w, facility, here: Audience::Facility(facility.clone()), highest: None };
    let result = match &item.body {
        OutboxBody::BuyStamps(purchase) => effect.buy_stamps(purchase)?,
        OutboxBody::SendMessage { message, funded_by } => effect.send_message(message, *funded_by)?,
        OutboxBody::CallRecord(cdr) => effect.call_record(cdr)?,
        OutboxBody::Audit(_) => Ok(json!({})),
    };
    let effect_json = match result {
        Ok(json) => json,
        Err(reason) => return Ok(Err(reason)),
    };
    let applied_at = match effect.highest {
        Some(seq) => seq,
        None => w.facility_head(facility)?,
    };
    Ok(Ok(Applied { applied_at, effect: effect_json }))
}

/// The writes of one item, remembering the highest seq they took.
struct Effect<'a, 'c> {
    w: &'a Writer<'c>,
    facility: &'a FacilityId,
    here: Audience,
    highest: Option<u64>,
}

type Checked<T> = Result<Result<T, RefusalReason>, DbError>;

fn not_allowed(service: Service, detail: String) -> RefusalReason {
    RefusalReason::NotAllowed { service, detail }
}

fn invalid(detail: impl Into<String>) -> RefusalReason {
    RefusalReason::Invalid { detail: detail.into() }
}

impl Effect<'_, '_> {
    /// The live entity under `key` if it belongs to this facility.
    fn local(&self, key: &EntityKey) -> Result<Option<Entity>, DbError> {
        let row = self.w.row(&key_text(key)?)?;
        Ok(row.filter(|r| r.facility.as_deref() == Some(self.facility.as_str())).and_then(|r| r.entity))
    }

    fn upsert(&mut self, entity: &Entity) -> Result<(), DbError> {
        if let Some(seq) = self.w.upsert(entity, &self.here)? {
            self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        }
        Ok(())
    }

    fn facility_record(&self) -> Result<FacilityRecord, DbError> {
        match self.w.row(&crate::db::facility_row_key(self.facility)?)? {
            Some(crate::db::Row { entity: Some(Entity::Facility(f)), .. }) => Ok(f),
            _ => Err(DbError::Corrupt {
                key: self.facility.to_string(),
                reason: "facility row missing".into(),
            }),
        }
    }

    fn resident(&self, id: &ResidentId, service: Service) -> Checked<ResidentRecord> {
        Ok(match self.local(&EntityKey::Resident(id.clone()))? {
            Some(Entity::Resident(r)) => Ok(r),
            _ => Err(not_allowed(service, format!("resident {id} is not known at {}", self.facility))),
        })
    }

    fn contact_of(&self, resident: &ResidentId, id: ContactId, service: Service) -> Checked<ContactRecord> {
        Ok(match self.local(&EntityKey::Contact(id))? {
            Some(Entity::Contact(c)) if &c.resident == resident => Ok(c),
            _ => Err(not_allowed(service, format!("contact {id} is not a contact of {resident}"))),
        })
    }

    /// Resident active, contact theirs, open and approved for messaging.
    fn messaging_pair(
        &self,
        resident: &ResidentId,
        contact: ContactId,
    ) -> Checked<(ResidentRecord, ContactRecord)> {
        let r = match self.resident(resident, Service::Message)? {
            Ok(r) => r,
            Err(reason) => return Ok(Err(reason)),
        };
        if !r.active {
            return Ok(Err(not_allowed(Service::Message, format!("resident {resident} is inactive"))));
        }
        let c = match self.contact_of(resident, contact, Service::Message)? {
            Ok(c) => c,
            Err(reason) => return Ok(Err(reason)),
        };
        if c.account_status == AccountStatus::Closed {
            return Ok(Err(not_allowed(Service::Message, format!("contact {contact}'s account is closed"))));
        }
        if c.approvals.message != Approval::Approved {
            return Ok(Err(not_allowed(
                Service::Message,
                format!("contact {contact} is {:?} for messaging", c.approvals.message),
            )));
        }
        Ok(Ok((r, c)))
    }

    fn stamps(&self, resident: &ResidentId, contact: ContactId) -> Result<u32, DbError> {
        let key = EntityKey::StampCount { resident: resident.clone(), contact };
        Ok(match self.local(&key)? {
            Some(Entity::StampCount(s)) => s.stamps,
            _ => 0,
        })
    }

    fn buy_stamps(&mut self, p: &StampPurchase) -> Checked<serde_json::Value> {
        let (mut resident, _) = match self.messaging_pair(&p.resident, p.contact)? {
            Ok(pair) => pair,
            Err(reason) => return Ok(Err(reason)),
        };
        let on_sale = match self.local(&EntityKey::StampPackage(p.package))? {
            Some(Entity::StampPackage(pkg)) => pkg.stamps == p.stamps && pkg.price_cents == p.price_cents,
            _ => false,
        };
        if !on_sale {
            return Ok(Err(RefusalReason::PackageUnavailable { package: p.package }));
        }
        let balance_cents = resident.debit_balance_cents;
        if balance_cents < p.price_cents {
            return Ok(Err(RefusalReason::InsufficientFunds { balance_cents, price_cents: p.price_cents }));
        }
        let held = self.stamps(&p.resident, p.contact)?;
        let Some(stamps) = held.checked_add(p.stamps) else {
            return Ok(Err(invalid(format!("{held} + {} stamps overflows", p.stamps))));
        };
        resident.debit_balance_cents = balance_cents - p.price_cents;
        let debit_after = resident.debit_balance_cents;
        self.upsert(&Entity::Resident(resident))?;
        self.upsert(&Entity::StampCount(StampCountRecord {
            resident: p.resident.clone(),
            contact: p.contact,
            stamps,
        }))?;
        Ok(Ok(json!({ "debit_balance_cents": debit_after, "stamps": stamps })))
    }

    /// The purchase named by `funded_by` was applied here, for this pair.
    fn funding_applied(&self, purchase: IdempotencyKey, message: &Message) -> Result<bool, DbError> {
        let conn = self.w.connection();
        let verdict: Option<String> = conn
            .query_row(
                "SELECT verdict FROM delivery WHERE facility = ?1 AND key = ?2 AND kind = 'BuyStamps'",
                params![self.facility.as_str(), purchase.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        let applied = verdict
            .and_then(|v| serde_json::from_str::<DeliveryOutcome>(&v).ok())
            .is_some_and(|v| matches!(v, DeliveryOutcome::Accepted { .. }));
        if !applied {
            return Ok(false);
        }
        let body: Option<String> = conn
            .query_row(
                "SELECT body FROM application WHERE facility = ?1 AND key = ?2 ORDER BY id LIMIT 1",
                params![self.facility.as_str(), purchase.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        let bought = body
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| serde_json::from_value::<OutboxItem>(v["item"].clone()).ok());
        Ok(matches!(bought, Some(OutboxItem { body: OutboxBody::BuyStamps(p), .. })
            if p.resident == message.resident && p.contact == message.contact))
    }

    fn send_message(&mut self, m: &Message, funded_by: Option<IdempotencyKey>) -> Checked<serde_json::Value> {
        if m.direction != Direction::ResidentToContact {
            return Ok(Err(invalid("an edge sends residents' messages only")));
        }
        if let Err(reason) = self.messaging_pair(&m.resident, m.contact)? {
            return Ok(Err(reason));
        }
        let limit = self.facility_record()?.message_char_limit;
        for (field, text) in [("subject", &m.subject), ("body", &m.body)] {
            let chars = text.chars().count();
            if chars > limit as usize {
                return Ok(Err(invalid(format!("the {field} is {chars} characters; the limit is {limit}"))));
            }
        }
        if m.subject.trim().is_empty() && m.body.trim().is_empty() && m.attachments.is_empty() {
            return Ok(Err(invalid("the message is empty")));
        }
        if m.attachments.len() > MAX_ATTACHMENTS {
            return Ok(Err(invalid(format!(
                "{} attachments; at most {MAX_ATTACHMENTS}",
                m.attachments.len()
            ))));
        }
        for attachment in &m.attachments {
            let Attachment::ECard(card) = attachment else {
                return Ok(Err(invalid("residents may attach eCards only")));
            };
            if !matches!(self.local(&EntityKey::ECard(*card))?, Some(Entity::ECard(_))) {
                return Ok(Err(invalid(format!("eCard {card} is not in the catalog"))));
            }
        }
        if self.w.row(&key_text(&EntityKey::Mail(m.id))?)?.is_some() {
            return Ok(Err(invalid(format!("message id {} is already used", m.id))));
        }
        if let Some(purchase) = funded_by {
            if !self.funding_applied(purchase, m)? {
                return Ok(Err(RefusalReason::FundingRefused { purchase }));
            }
        }
        let held = self.stamps(&m.resident, m.contact)?;
        let Some(left) = held.checked_sub(1) else {
            return Ok(Err(RefusalReason::NoStamps));
        };
        self.upsert(&Entity::StampCount(StampCountRecord {
            resident: m.resident.clone(),
            contact: m.contact,
            stamps: left,
        }))?;
        self.upsert(&Entity::Mail(MailRecord { message: m.clone(), review: Review::Pending }))?;
        Ok(Ok(json!({ "stamps": left })))
    }

    fn call_record(&mut self, cdr: &CallDetailRecord) -> Checked<serde_json::Value> {
        let service = Service::from(cdr.kind);
        if let Err(reason) = self.resident(&cdr.resident, service)? {
            return Ok(Err(reason));
        }
        let mut contact = match self.contact_of(&cdr.resident, cdr.contact, service)? {
            Ok(c) => c,
            Err(reason) => return Ok(Err(reason)),
        };
        if cdr.charged_cents < 0 {
            return Ok(Err(invalid("a negative charge")));
        }
        if cdr.kind == CallKind::Voice && cdr.charged_cents > 0 {
            return Ok(Err(invalid("phone calls are free in this state; a voice call cannot be charged")));
        }
        let facility = self.facility_record()?;
        let local_day = TimeZone::get(&facility.time_zone)
            .map(|tz| cdr.started_at.to_zoned(tz).date())
            .map_err(|e| DbError::Corrupt { key: facility.id.to_string(), reason: e.to_string() })?;

        // The call happened: it is always recorded and charged as far as the
        // balance goes; a shortfall (a race the edge could not see) is kept
        // beside the record rather than pushing a prepaid balance negative.
        let collected = cdr.charged_cents.min(contact.video_balance_cents.max(0));
        if collected > 0 {
            contact.video_balance_cents -= collected;
            self.upsert(&Entity::Contact(contact))?;
        }
        let mut counted_in = None;
        for rule in facility.caps.iter().filter(|rule| rule.kind == cdr.kind) {
            let Some(period_start) = cap_period_start(rule.anchor, rule.period_days, local_day) else {
                continue;
            };
            if counted_in == Some(period_start) {
                continue;
            }
            counted_in = Some(period_start);
            let key = EntityKey::CapUsage { resident: cdr.resident.clone(), kind: cdr.kind, period_start };
            let used = match self.local(&key)? {
                Some(Entity::CapUsage(u)) => u.used_secs,
                _ => 0,
            };
            self.upsert(&Entity::CapUsage(CapUsageRecord {
                resident: cdr.resident.clone(),
                kind: cdr.kind,
                period_start,
                used_secs: used.saturating_add(cdr.connected_secs),
            }))?;
        }
        Ok(Ok(json!({ "collected_cents": collected, "uncollected_cents": cdr.charged_cents - collected })))
    }
}

/// The first day of the cap period holding `day`: periods are consecutive
/// blocks of `period_days` days from `anchor` (also before it), as the edge
/// counts them.
pub fn cap_period_start(anchor: Date, period_days: u16, day: Date) -> Option<Date> {
    if period_days == 0 {
        return None;
    }
    let days_since = day.duration_since(anchor).as_hours() / 24;
    let index = days_since.div_euclid(i64::from(period_days));
    let hours = index.checked_mul(i64::from(period_days))?.checked_mul(24)?;
    anchor.checked_add(SignedDuration::from_hours(hours)).ok()
}
