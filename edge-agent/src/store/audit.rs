//! The append-only, hash-chained audit log.
//!
//! Each row's hash covers the previous row's hash and the row's own fields,
//! so editing, deleting or reordering any row breaks the chain from that row
//! on; `audit_head` remembers the newest link so cutting rows off the end is
//! caught too. Triggers refuse UPDATE and DELETE on the table. This detects
//! tampering by anyone who cannot also recompute the whole chain; it is not a
//! defence against someone rewriting every row.
//!
//! Every row also becomes an outbox item (`OutboxBody::Audit`, with its own
//! random idempotency key) in the same transaction, whichever process wrote
//! it, so central gets each audit event once and a crash can never leave a
//! row without its item or an item without its row.

use jiff::Timestamp;
use proto::messaging::{AuditRecord, IdempotencyKey, OutboxBody, OutboxItem};
use rand::{rngs::OsRng, RngCore};
use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

use super::{messaging::insert_outbox_row, optional, Store, StoreError};

/// Domain separation, so an audit hash is never mistaken for any other.
const HASH_DOMAIN: &[u8] = b"facility-edge audit v1\0";

/// The `prev_hash` of the first row.
const GENESIS_HASH: [u8; 32] = [0; 32];

/// What [`Store::audit_verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Rows whose link verified, before the first break (all rows if none).
    pub rows_checked: u64,
    pub first_break: Option<AuditBreak>,
}

impl AuditReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// The first place the chain does not hold, by sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditBreak {
    #[error("row {seq} is missing (next row present is {found})")]
    Missing { seq: u64, found: u64 },
    #[error("row {seq} does not link to the row before it")]
    PrevHashMismatch { seq: u64 },
    #[error("row {seq} was altered: its hash does not match its contents")]
    HashMismatch { seq: u64 },
    #[error("row {seq} is malformed: {problem}")]
    Malformed { seq: u64, problem: String },
    #[error("rows from {seq} on were removed (the log's head is row {head_seq})")]
    Truncated { seq: u64, head_seq: u64 },
    #[error("the log's head record does not match its last row {seq}")]
    HeadMismatch { seq: u64 },
}

impl AuditBreak {
    pub fn seq(&self) -> u64 {
        match self {
            AuditBreak::Missing { seq, .. }
            | AuditBreak::PrevHashMismatch { seq }
            | AuditBreak::HashMismatch { seq }
            | AuditBreak::Malformed { seq, .. }
            | AuditBreak::Truncated { seq, .. }
            | AuditBreak::HeadMismatch { seq } => *seq,
        }
    }
}

/// SHA-256 over the domain tag, the previous hash, the sequence number and
/// each text field prefixed by its length, so no two different rows can feed
/// the hash the same bytes.
fn link_hash(prev: &[u8; 32], seq: u64, at: &str, actor: &str, action: &str, detail: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(prev);
    hasher.update(seq.to_be_bytes());
    for field in [at, actor, action, detail] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.finalize().into()
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// A fresh idempotency key from the operating system's random source (see
/// the outbox's key rules: never a counter).
fn random_key() -> Result<IdempotencyKey, StoreError> {
    let mut key = [0u8; 16];
    OsRng.try_fill_bytes(&mut key).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(IdempotencyKey(key))
}

/// Appends one row, and the outbox item that carries it to central, inside
/// the caller's transaction; returns the row's seq.
pub(crate) fn append(
    conn: &Connection,
    actor: &str,
    action: &str,
    detail: &serde_json::Value,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let detail = serde_json::to_string(detail)
        .map_err(|e| StoreError::Encode { what: "audit detail", problem: e.to_string() })?;
    let head: Option<(i64, String)> =
        optional(conn.query_row("SELECT seq, hash FROM audit_head WHERE singleton = 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        }))?;
    let (prev_seq, prev_hash) = match head {
        None => (0u64, GENESIS_HASH),
        Some((seq, hash)) => {
            let seq = u64::try_from(seq)
                .map_err(|_| StoreError::corrupt("audit_head", "1", format!("negative seq {seq}")))?;
            let hash = decode_hash(&hash)
                .ok_or_else(|| StoreError::corrupt("audit_head", "1", "hash is not 32 bytes of hex"))?;
            (seq, hash)
        }
    };
    let seq = prev_seq + 1;
    let at = now.to_string();
    let hash = link_hash(&prev_hash, seq, &at, actor, action, &detail);
    let seq_sql =
        i64::try_from(seq).map_err(|_| StoreError::corrupt("audit_head", "1", "sequence exhausted"))?;
    let hash_hex = hex::encode(hash);
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at, actor, action, detail, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![seq_sql, at, actor, action, detail, hex::encode(prev_hash), hash_hex])?;
    conn.prepare_cached(
        "INSERT INTO audit_head (singleton, seq, hash) VALUES (1, ?1, ?2) \
         ON CONFLICT (singleton) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )?
    .execute(params![seq_sql, hash_hex])?;
    let item = OutboxItem {
        key: random_key()?,
        created_at: now,
        body: OutboxBody::Audit(AuditRecord {
            seq,
            at: now,
            actor: actor.to_owned(),
            action: action.to_owned(),
            detail,
            prev_hash,
            hash,
        }),
    };
    insert_outbox_row(conn, &item)?;
    Ok(seq)
}

impl Store {
    /// Appends an audit row and its outbox item in one transaction; returns
    /// the row's seq.
    pub fn audit_append(
        &mut self,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let tx = self.write_tx()?;
        let seq = append(&tx, actor, action, detail, now)?;
        tx.commit()?;
        Ok(seq)
    }

    /// The newest `limit` rows whose actor starts with `prefix`, oldest
    /// first, as JSON (for `edge-agent status`).
    pub fn audit_recent_by_actor(
        &self,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, actor, action, detail FROM audit_log \
             WHERE substr(actor, 1, length(?1)) = ?1 ORDER BY seq DESC LIMIT ?2",
        )?;
        let mut rows = stmt.query(rusqlite::params![prefix, limit])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let detail: String = row.get(4)?;
            out.push(serde_json::json!({
                "seq": row.get::<_, i64>(0)?,
                "at": row.get::<_, String>(1)?,
                "actor": row.get::<_, String>(2)?,
                "action": row.get::<_, String>(3)?,
                "detail": serde_json::from_str::<serde_json::Value>(&detail).unwrap_or(serde_json::Value::String(detail)),
            }));
        }
        out.reverse();
        Ok(out)
    }

    /// Walks the whole chain and reports the first row that does not verify.
    pub fn audit_verify(&self) -> Result<AuditReport, StoreError> {
        // One read transaction, so a concurrent append cannot make the head
        // and the rows disagree.
        let tx = self.conn.unchecked_transaction()?;
        let mut report = AuditReport { rows_checked: 0, first_break: None };
        let mut expected_seq = 1u64;
        let mut prev_hash = GENESIS_HASH;
        {
            let mut stmt = tx.prepare(
                "SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log ORDER BY seq",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let seq = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
                if seq != expected_seq {
                    report.first_break = Some(AuditBreak::Missing { seq: expected_seq, found: seq });
                    break;
                }
                let fields = (|| -> rusqlite::Result<[String; 6]> {
                    Ok([row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?])
                })();
                let [at, actor, action, detail, stored_prev, stored_hash] = match fields {
                    Ok(fields) => fields,
                    Err(e) => {
                        report.first_break = Some(AuditBreak::Malformed { seq, problem: e.to_string() });
                        break;
                    }
                };
                if decode_hash(&stored_prev) != Some(prev_hash) {
                    report.first_break = Some(AuditBreak::PrevHashMismatch { seq });
                    break;
                }
                let hash = link_hash(&prev_hash, seq, &at, &actor, &action, &detail);
                if decode_hash(&stored_hash) != Some(hash) {
                    report.first_break = Some(AuditBreak::HashMismatch { seq });
                    break;
                }
                report.rows_checked += 1;
                prev_hash = hash;
                expected_seq += 1;
            }
        }
        if report.first_break.is_none() {
            let last_seq = expected_seq - 1;
            let head: Option<(i64, String)> =
                optional(tx.query_row("SELECT seq, hash FROM audit_head WHERE singleton = 1", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                }))?;
            report.first_break = match head {
                None if last_seq == 0 => None,
                None => Some(AuditBreak::HeadMismatch { seq: last_seq }),
                Some((head_seq, head_hash)) => {
                    let head_seq = u64::try_from(head_seq).unwrap_or(0);
                    if head_seq > last_seq {
                        Some(AuditBreak::Truncated { seq: last_seq + 1, head_seq })
                    } else if head_seq != last_seq || decode_hash(&head_hash) != Some(prev_hash) {
                        Some(AuditBreak::HeadMismatch { seq: last_seq })
                    } else {
                        None
                    }
                }
            };
        }
        Ok(report)
    }
}

#[cfg(test)]
pub(crate) fn tests_link_hash(
    prev: &[u8; 32],
    seq: u64,
    at: &str,
    actor: &str,
    action: &str,
    detail: &str,
) -> [u8; 32] {
    link_hash(prev, seq, at, actor, action, detail)
}
