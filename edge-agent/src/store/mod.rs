//! The edge's SQLite store.
//!
//! Owns: the database file (WAL, `synchronous=FULL`, foreign keys on, a busy
//! timeout because the running agent and the facility IT CLI share it), its
//! schema migrations, and every read and write of it: the entities central
//! syncs down ([`Store::apply_batch`], [`Store::load_entities`]), the sync
//! cursor, and the edge's own state (lockdowns, devices, login guards, the
//! hash-chained audit log, call checkpoints, drafts, sent-message history, the outbox, the
//! ledger's entries and the media cache).
//!
//! Must not: decide policy, talk to the network, or read the clock (callers
//! pass `now`). Proto types are the currency in and out; rows that do not
//! decode come back as [`StoreError::Corrupt`] naming the table and key.

mod audit;
mod calls;
mod codec;
mod entities;
mod local;
mod media;
mod messaging;
#[cfg(test)]
mod messaging_tests;
mod schema;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

pub use audit::{AuditBreak, AuditReport};
pub use edge_core::sync::ApplyMode;
pub use entities::{ApplyOutcome, ResyncMarker, SyncState};
pub use local::{DeviceRow, LockdownRow, LoginGuardRow, Revocation};
pub use media::{CachedMedia, InboundMedia};
pub use messaging::{AuditNote, DraftRow, Enqueue, MailRow, SentRow};

/// How long a writer waits for the other process (agent or CLI) to finish its
/// transaction before giving up with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Enough room for every statement the apply path prepares, so none is
/// re-prepared per row.
const STATEMENT_CACHE_CAPACITY: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("schema migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("row {key:?} of table {table} cannot be decoded: {problem}")]
    Corrupt { table: &'static str, key: String, problem: String },
    #[error("cannot encode {what}: {problem}")]
    Encode { what: &'static str, problem: String },
    #[error("the database refused WAL journaling (journal mode is {0:?})")]
    JournalMode(String),
    #[error("change batch from cursor {since} does not follow the stored cursor {stored}")]
    StaleBatch { since: u64, stored: u64 },
    #[error("change batch moves the cursor backwards, from {since} to {next_cursor}")]
    CursorRegression { since: u64, next_cursor: u64 },
    #[error(
        "a {mode:?} batch cannot be applied while the stored resync-in-progress flag is {resync_in_progress}"
    )]
    ModeMismatch { mode: ApplyMode, resync_in_progress: bool },
    #[error("a device named {0:?} is already registered")]
    DeviceNameTaken(String),
    #[error("certificate fingerprint {fingerprint} already belongs to device {device:?}")]
    FingerprintTaken { fingerprint: String, device: String },
    #[error("no device named {0:?}")]
    UnknownDevice(String),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, key: impl Into<String>, problem: impl Into<String>) -> Self {
        StoreError::Corrupt { table, key: key.into(), problem: problem.into() }
    }
}

/// The edge's database. One per process; not shared between threads (wrap it
/// in the shell's own synchronisation if needed).
pub struct Store {
    conn: Connection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.conn.path()).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to
    /// the current schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn, true)
    }

    /// A private in-memory database with the same schema (tests, tools).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory()?;
        Self::init(conn, false)
    }

    fn init(mut conn: Connection, require_wal: bool) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if require_wal && !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::JournalMode(mode));
        }
        // FULL: a committed sync page or audit row survives a power cut.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // 32 MiB of page cache: a 100k-contact snapshot touches its indexes
        // all over, and the default 2 MiB turns that into re-reads.
        conn.pragma_update(None, "cache_size", -32 * 1024)?;
        schema::MIGRATIONS.to_latest(&mut conn)?;
        Ok(Store { conn })
    }

    /// Changes whenever another connection (e.g. the facility IT CLI)
    /// commits to this database, so the agent can reload cheaply on change.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("PRAGMA data_version", [], |row| row.get(0))?)
    }

    /// Starts a write transaction that takes the write lock up front, so two
    /// processes never deadlock upgrading read locks.
    fn write_tx(&mut self) -> Result<Transaction<'_>, StoreError> {
        Ok(self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
    }
}

/// `query_row` that maps "no rows" to `None`.
pub(crate) fn optional<T>(result: rusqlite::Result<T>) -> Result<Option<T>, StoreError> {
    Ok(result.optional()?)
}
