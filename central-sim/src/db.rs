//! Central's database: a compacted change feed of `proto` entities.
//!
//! Owns: the SQLite schema, the global sequence, and the feed queries that
//! answer `EdgeToCentral::Changes`. Every entity is one row keyed by its
//! [`EntityKey`], holding the entity as JSON and the sequence number of its
//! last change; a deletion keeps the row as a tombstone (no body) with a new
//! sequence number. Because each write replaces the row, the feed is compacted
//! by construction: an entity changed twice appears once, at its latest seq.
//! Must not: know about QUIC or the CLI.
//!
//! Why one document table rather than a table per record type: central-sim is
//! a stand-in whose only consumer is the feed; storing the wire record keeps
//! the feed exactly what the edge will receive, and the admin commands edit
//! records through the same typed structs the edge decodes.
//!
//! Concurrency: `serve` and `admin` run as separate processes on one file, so
//! the database is in WAL mode with a busy timeout, and every write is an
//! IMMEDIATE transaction that bumps the sequence and changes the row together.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::central::{CentralToEdge, Change, ChangeBatch, Entity, EntityKey};
use proto::domain::FacilityId;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use rusqlite_migration::{Migrations, M};

use crate::fixture::Fixture;

pub const DB_FILE: &str = "central.db";

/// Largest page the feed hands out, whatever the edge asks for.
pub const MAX_PAGE: u32 = 5000;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("stored record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("could not encode a record: {0}")]
    Encode(String),
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            "CREATE TABLE meta (
             name  TEXT PRIMARY KEY,
             value INTEGER NOT NULL
         ) STRICT;
         INSERT INTO meta (name, value) VALUES
             ('head', 0),
             ('horizon', 0),
             ('next_suspension_id', 1),
             ('seeded', 0);
         CREATE TABLE entity (
             key      TEXT PRIMARY KEY,
             kind     TEXT NOT NULL,
             facility TEXT,
             seq      INTEGER NOT NULL UNIQUE,
             body     TEXT
         ) STRICT;
         CREATE INDEX entity_by_facility ON entity (facility, seq);
         -- Per audience ('' = every facility): the newest purged tombstone.
         CREATE TABLE horizon (
             audience TEXT PRIMARY KEY,
             seq      INTEGER NOT NULL
         ) STRICT;",
        ),
        // Outbox deliveries (see `crate::deliver`).
        M::up(
            "-- The first final verdict per (facility, idempotency key).
         CREATE TABLE delivery (
             facility     TEXT NOT NULL,
             key          TEXT NOT NULL,
             kind         TEXT NOT NULL,
             payload_hash BLOB NOT NULL,
             verdict      TEXT NOT NULL,
             received     INTEGER NOT NULL,
             PRIMARY KEY (facility, key)
         ) STRICT;
         -- One row per application of an item's effect, deliberately without
         -- a unique key: exactly-once is checked by counting these, not
         -- assumed from the dedup table's primary key.
         CREATE TABLE application (
             id         INTEGER PRIMARY KEY AUTOINCREMENT,
             facility   TEXT NOT NULL,
             key        TEXT NOT NULL,
             kind       TEXT NOT NULL,
             applied_at INTEGER NOT NULL,
             body       TEXT NOT NULL
         ) STRICT;
         CREATE INDEX application_by_key ON application (facility, key);",
        ),
        // Update releases and edge reports (see `crate::releases`).
        M::up(
            "CREATE TABLE release (
             version      TEXT PRIMARY KEY,
             sort_key     TEXT NOT NULL UNIQUE,
             size         INTEGER NOT NULL,
             sha256       TEXT NOT NULL,
             path         TEXT NOT NULL,
             published_at INTEGER NOT NULL
         ) STRICT;
         CREATE TABLE edge_report (
             facility            TEXT PRIMARY KEY,
             agent_version       TEXT NOT NULL,
             version             TEXT,
             slot                TEXT,
             on_trial            INTEGER,
             last_update_failure TEXT,
             reported_at         INTEGER NOT NULL
         ) STRICT;",
        ),
        // The contact's side of calls (see `crate::calls`).
        M::up(
            "CREATE TABLE call_script (
             contact INTEGER PRIMARY KEY,
             script  TEXT NOT NULL
         ) STRICT;
         CREATE TABLE call (
             facility    TEXT NOT NULL,
             call_id     INTEGER NOT NULL,
             ring        TEXT NOT NULL,
             script      TEXT NOT NULL,
             rung_at_ms  INTEGER NOT NULL,
             ended_at_ms INTEGER,
             end_reason  TEXT,
             PRIMARY KEY (facility, call_id)
         ) STRICT;",
        ),
        // What the contact's media leg sent and received (see `crate::contact_media`).
        M::up("ALTER TABLE call ADD COLUMN media TEXT;"),
        // When the contact's timer turned red, and how much time it showed.
        M::up(
            "ALTER TABLE call ADD COLUMN warned_at_ms INTEGER;
             ALTER TABLE call ADD COLUMN warning_remaining_secs INTEGER;",
        ),
        // Contacts' photos and VideoGrams (see `crate::media`).
        M::up(
            "CREATE TABLE media (
             id           INTEGER PRIMARY KEY AUTOINCREMENT,
             facility     TEXT NOT NULL,
             content_type TEXT NOT NULL,
             size         INTEGER NOT NULL,
             sha256       BLOB NOT NULL,
             bytes        BLOB NOT NULL
         ) STRICT;",
        ),
    ])
}

/// Which facilities see a row in their feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Every,
    Facility(FacilityId),
}

impl Audience {
    fn column(&self) -> Option<&str> {
        match self {
            Audience::Every => None,
            Audience::Facility(f) => Some(f.as_str()),
        }
    }
}

/// A stored row: its key, the seq of its last change, and the entity (None
/// for a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub seq: u64,
    pub facility: Option<String>,
    pub entity: Option<Entity>,
}

/// Head of the feed and its compaction state, as `admin head` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeadInfo {
    pub head: u64,
    pub horizon: u64,
    pub live: u64,
    pub tombstones: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CompactReport {
    pub purged: u64,
    pub horizon: u64,
}

/// The canonical text key of an entity's row.
pub fn row_key(entity: &Entity) -> Result<String, DbError> {
    match entity {
        Entity::Facility(f) => facility_row_key(&f.id),
        other => match other.key() {
            Some(key) => key_text(&key),
            None => Err(DbError::Encode("entity has no key".into())),
        },
    }
}

pub fn facility_row_key(id: &FacilityId) -> Result<String, DbError> {
    serde_json::to_string(&serde_json::json!({ "Facility": id })).map_err(|e| DbError::Encode(e.to_string()))
}

pub fn key_text(key: &EntityKey) -> Result<String, DbError> {
    serde_json::to_string(key).map_err(|e| DbError::Encode(e.to_string()))
}

fn kind_name(entity: &Entity) -> &'static str {
    match entity {
        Entity::Facility(_) => "facility",
        Entity::Unit(_) => "unit",
        Entity::Resident(_) => "resident",
        Entity::Contact(_) => "contact",
        Entity::Block(_) => "block",
        Entity::Privileged(_) => "privileged",
        Entity::Suspension(_) => "suspension",
        Entity::CapUsage(_) => "cap_usage",
        Entity::ECard(_) => "ecard",
        Entity::StampPackage(_) => "stamp_package",
        Entity::StampCount(_) => "stamp_count",
        Entity::Mail(_) => "mail",
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn decode_entity(key: &str, body: &str) -> Result<Entity, DbError> {
    serde_json::from_str(body).map_err(|e| DbError::Corrupt { key: key.to_string(), reason: e.to_string() })
}

fn decode_key(key: &str) -> Result<EntityKey, DbError> {
    serde_json::from_str(key).map_err(|e| DbError::Corrupt { key: key.to_string(), reason: e.to_string() })
}

fn meta(conn: &Connection, name: &str) -> Result<u64, DbError> {
    let v: i64 = conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| r.get(0))?;
    Ok(to_u64(v))
}

fn set_meta(conn: &Connection, name: &str, value: u64) -> Result<(), DbError> {
    conn.execute("UPDATE meta SET value = ?2 WHERE name = ?1", params![name, to_i64(value)])?;
    Ok(())
}

/// One write transaction. Each changed row takes the next global sequence
/// number, so the feed never has two rows at one seq and a page boundary can
/// never split a change.
pub struct Writer<'c> {
    tx: Transaction<'c>,
}

impl Writer<'_> {
    fn bump(&self) -> Result<u64, DbError> {
        let seq = meta(&self.tx, "head")? + 1;
        set_meta(&self.tx, "head", seq)?;
        Ok(seq)
    }

    fn write_row(
        &self,
        key: &str,
        kind: &str,
        audience: &Audience,
        body: Option<&str>,
    ) -> Result<u64, DbError> {
        let seq = self.bump()?;
        self.tx.execute(
            "INSERT INTO entity (key, kind, facility, seq, body) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (key) DO UPDATE SET
                 kind = excluded.kind, facility = excluded.facility,
                 seq = excluded.seq, body = excluded.body",
            params![key, kind, audience.column(), to_i64(seq), body],
        )?;
        Ok(seq)
    }

    /// Stores `entity`; returns the new seq, or `None` if the stored live
    /// entity was already identical (nothing changes, no seq is spent).
    pub fn upsert(&self, entity: &Entity, audience: &Audience) -> Result<Option<u64>, DbError> {
        let key = row_key(entity)?;
        if let Some(Row { entity: Some(current), facility, .. }) = row(&self.tx, &key)? {
            if &current == entity && facility.as_deref() == audience.column() {
                return Ok(None);
            }
        }
        let body = serde_json::to_string(entity).map_err(|e| DbError::Encode(e.to_string()))?;
        self.write_row(&key, kind_name(entity), audience, Some(&body)).map(Some)
    }

    /// Turns the entity into a tombstone; returns the new seq, or `None` if
    /// there was no live entity under that key.
    pub fn delete(&self, key: &EntityKey) -> Result<Option<u64>, DbError> {
        let text = key_text(key)?;
        match row(&self.tx, &text)? {
            Some(Row { entity: Some(entity), facility, .. }) => {
                let audience = facility.map_or(Audience::Every, |f| Audience::Facility(FacilityId(f)));
                self.write_row(&text, kind_name(&entity), &audience, None).map(Some)
            }
            _ => Ok(None),
        }
    }

    pub fn row(&self, key: &str) -> Result<Option<Row>, DbError> {
        row(&self.tx, key)
    }

    /// Hands out suspension IDs; kept in the same transaction as the insert.
    pub fn next_suspension_id(&self) -> Result<u64, DbError> {
        let id = meta(&self.tx, "next_suspension_id")?;
        set_meta(&self.tx, "next_suspension_id", id + 1)?;
        Ok(id)
    }

    pub fn head(&self) -> Result<u64, DbError> {
        meta(&self.tx, "head")
    }

    /// See [`Db::facility_head`].
    pub fn facility_head(&self, facility: &FacilityId) -> Result<u64, DbError> {
        facility_head(&self.tx, facility)
    }

    pub fn connection(&self) -> &Connection {
        &self.tx
    }

    pub fn commit(self) -> Result<(), DbError> {
        self.tx.commit()?;
        Ok(())
    }
}

/// The horizon that applies to `facility`'s feed: the newest purged
/// tombstone it could have seen.
fn horizon_for(conn: &Connection, facility: &FacilityId) -> Result<u64, DbError> {
    let seq: Option<i64> = conn.query_row(
        "SELECT MAX(seq) FROM horizon WHERE audience = '' OR audience = ?1",
        [facility.as_str()],
        |r| r.get(0),
    )?;
    Ok(seq.map_or(0, to_u64))
}

fn facility_head(conn: &Connection, facility: &FacilityId) -> Result<u64, DbError> {
    let seq: Option<i64> = conn.query_row(
        "SELECT MAX(seq) FROM entity WHERE facility = ?1 OR facility IS NULL",
        [facility.as_str()],
        |r| r.get(0),
    )?;
    Ok(seq.map_or(0, to_u64).max(horizon_for(conn, facility)?))
}

fn row(conn: &Connection, key: &str) -> Result<Option<Row>, DbError> {
    let found = conn
        .query_row("SELECT seq, facility, body FROM entity WHERE key = ?1", [key], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?))
        })
        .optional()?;
    let Some((seq, facility, body)) = found else { return Ok(None) };
    let entity = body.map(|b| decode_entity(key, &b)).transpose()?;
    Ok(Some(Row { key: key.to_string(), seq: to_u64(seq), facility, entity }))
}

pub struct Db {
    conn: Connection,
}

impl Db {
    /// Opens (creating if needed) the database in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Db, DbError> {
        Self::from_connection(Connection::open(state_dir.join(DB_FILE))?)
    }

    /// The directory holding the database file (`None` in memory).
    pub fn state_dir(&self) -> Option<PathBuf> {
        let path = self.conn.path().filter(|p| !p.is_empty())?;
        Path::new(path).parent().map(Path::to_path_buf)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Db, DbError> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut conn: Connection) -> Result<Db, DbError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations().to_latest(&mut conn)?;
        Ok(Db { conn })
    }

    /// Starts a write transaction (IMMEDIATE, so a concurrent writer waits on
    /// the busy timeout instead of failing half-way).
    pub fn writer(&mut self) -> Result<Writer<'_>, DbError> {
        Ok(Writer { tx: self.conn.transaction_with_behavior(TransactionBehavior::Immediate)? })
    }

    pub fn is_seeded(&self) -> Result<bool, DbError> {
        Ok(meta(&self.conn, "seeded")? != 0)
    }

    /// Loads a fixture into an empty database, in one transaction. Returns
    /// false (and changes nothing) if the database was already seeded.
    pub fn seed(&mut self, fixture: &Fixture) -> Result<bool, DbError> {
        let w = self.writer()?;
        if meta(&w.tx, "seeded")? != 0 {
            return Ok(false);
        }
        let mut max_suspension = 0;
        for f in &fixture.facilities {
            let here = Audience::Facility(f.facility.id.clone());
            w.upsert(&Entity::Facility(f.facility.clone()), &here)?;
            for u in &f.units {
                w.upsert(&Entity::Unit(u.clone()), &here)?;
            }
            for r in &f.residents {
                w.upsert(&Entity::Resident(r.clone()), &here)?;
            }
            for c in &f.contacts {
                w.upsert(&Entity::Contact(c.clone()), &here)?;
            }
            for s in &f.suspensions {
                max_suspension = max_suspension.max(s.id);
                w.upsert(&Entity::Suspension(s.clone()), &here)?;
            }
            for u in &f.cap_usage {
                w.upsert(&Entity::CapUsage(u.clone()), &here)?;
            }
            for e in &f.ecards {
                w.upsert(&Entity::ECard(e.clone()), &here)?;
            }
            for p in &f.stamp_packages {
                w.upsert(&Entity::StampPackage(p.clone()), &here)?;
            }
            for s in &f.stamp_counts {
                w.upsert(&Entity::StampCount(s.clone()), &here)?;
            }
            for m in &f.mail {
                w.upsert(&Entity::Mail(m.clone()), &here)?;
            }
        }
        for b in &fixture.blocks {
            w.upsert(&Entity::Block(b.clone()), &Audience::Every)?;
        }
        for p in &fixture.privileged {
            w.upsert(&Entity::Privileged(p.clone()), &Audience::Every)?;
        }
        set_meta(&w.tx, "next_suspension_id", max_suspension + 1)?;
        set_meta(&w.tx, "seeded", 1)?;
        w.commit()?;
        Ok(true)
    }

    pub fn row(&self, key: &str) -> Result<Option<Row>, DbError> {
        row(&self.conn, key)
    }

    /// The live entity under `key`, if any.
    pub fn entity(&self, key: &EntityKey) -> Result<Option<Entity>, DbError> {
        Ok(self.row(&key_text(key)?)?.and_then(|r| r.entity))
    }

    pub fn facility_exists(&self, id: &FacilityId) -> Result<bool, DbError> {
        Ok(matches!(self.row(&facility_row_key(id)?)?, Some(Row { entity: Some(_), .. })))
    }

    /// Every row, live or tombstone, in seq order (for `show`-style dumps
    /// and for tests that check what a command touched).
    pub fn all_rows(&self) -> Result<Vec<Row>, DbError> {
        let mut stmt = self.conn.prepare("SELECT key, seq, facility, body FROM entity ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        rows.map(|r| {
            let (key, seq, facility, body) = r?;
            let entity = body.map(|b| decode_entity(&key, &b)).transpose()?;
            Ok(Row { key, seq: to_u64(seq), facility, entity })
        })
        .collect()
    }

    /// Live entities of one kind ("contact", "resident", ...), in seq order.
    pub fn live_of_kind(&self, kind: &str) -> Result<Vec<Entity>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, body FROM entity WHERE kind = ?1 AND body IS NOT NULL ORDER BY seq")?;
        let rows = stmt.query_map([kind], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|r| {
            let (key, body) = r?;
            decode_entity(&key, &body)
        })
        .collect()
    }

    pub fn head_info(&self) -> Result<HeadInfo, DbError> {
        let (live, tombstones): (i64, i64) =
            self.conn.query_row("SELECT COUNT(body), COUNT(*) - COUNT(body) FROM entity", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(HeadInfo {
            head: meta(&self.conn, "head")?,
            horizon: meta(&self.conn, "horizon")?,
            live: to_u64(live),
            tombstones: to_u64(tombstones),
        })
    }

    /// The highest seq a facility's feed can show (what `Welcome` reports):
    /// the edge is up to date when its cursor reaches it.
    pub fn facility_head(&self, facility: &FacilityId) -> Result<u64, DbError> {
        facility_head(&self.conn, facility)
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// How long a write waits for another process's lock before failing
    /// with "database is busy" (10 s by default).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<(), DbError> {
        self.conn.busy_timeout(timeout)?;
        Ok(())
    }

    /// Purges all tombstones except the newest `keep_last`, and raises the
    /// horizon to the newest purged seq: a cursor below it may have missed a
    /// deletion that is no longer in the feed. Horizons are kept per audience
    /// so that purging one facility's tombstones never expires another
    /// facility's cursor (its cursor only advances over rows it can see).
    pub fn compact(&mut self, keep_last: u64) -> Result<CompactReport, DbError> {
        let w = self.writer()?;
        let newest_purged: Option<i64> =
            w.tx.query_row(
                "SELECT seq FROM entity WHERE body IS NULL ORDER BY seq DESC LIMIT 1 OFFSET ?1",
                [to_i64(keep_last)],
                |r| r.get(0),
            )
            .optional()?;
        let mut horizon = meta(&w.tx, "horizon")?;
        let mut purged = 0;
        if let Some(cut) = newest_purged {
            w.tx.execute(
                "INSERT INTO horizon (audience, seq)
                     SELECT COALESCE(facility, ''), MAX(seq) FROM entity
                     WHERE body IS NULL AND seq <= ?1 GROUP BY COALESCE(facility, '')
                 ON CONFLICT (audience) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                [cut],
            )?;
            purged = w.tx.execute("DELETE FROM entity WHERE body IS NULL AND seq <= ?1", [cut])?;
            horizon = horizon.max(to_u64(cut));
            set_meta(&w.tx, "horizon", horizon)?;
        }
        w.commit()?;
        Ok(CompactReport { purged: purged as u64, horizon })
    }

    /// One page of `facility`'s change feed after `since`: see
    /// `proto::central`. `since == 0` is a snapshot of live entities (no
    /// tombstones: the edge starts from empty); any other cursor gets
    /// upserts and tombstones. A cursor gets `CursorExpired` only when the
    /// facility's horizon is above both `since` and `resync_floor`: a resync
    /// that began when the horizon was `resync_floor` pages through seqs
    /// below it legitimately (its sweep removes what it never saw), and only
    /// a purge after the resync began can hide a deletion from it. Outside a
    /// resync `resync_floor` is 0. The page is read in one transaction so it
    /// is a consistent cut even while admin commands write.
    pub fn changes(
        &mut self,
        facility: &FacilityId,
        since: u64,
        limit: u32,
        resync_floor: u64,
    ) -> Result<CentralToEdge, DbError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let tx = self.conn.transaction()?;
        let horizon = horizon_for(&tx, facility)?;
        if since != 0 && horizon > since.max(resync_floor) {
            return Ok(CentralToEdge::CursorExpired { since, oldest_valid: horizon });
        }
        let mut changes = Vec::new();
        let mut next_cursor = since;
        let mut more = false;
        {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, key, body FROM entity
                 WHERE seq > ?1 AND (facility = ?2 OR facility IS NULL) AND (?3 OR body IS NOT NULL)
                 ORDER BY seq LIMIT ?4",
            )?;
            let mut rows =
                stmt.query(params![to_i64(since), facility.as_str(), since != 0, i64::from(limit) + 1])?;
            while let Some(r) = rows.next()? {
                if changes.len() == limit as usize {
                    more = true;
                    break;
                }
                let seq: i64 = r.get(0)?;
                let key: String = r.get(1)?;
                let body: Option<String> = r.get(2)?;
                changes.push(match body {
                    Some(body) => Change::Upsert(decode_entity(&key, &body)?),
                    None => Change::Delete(decode_key(&key)?),
                });
                next_cursor = to_u64(seq);
            }
        }
        tx.finish()?;
        Ok(CentralToEdge::Changes(ChangeBatch { since, changes, next_cursor, more }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::domain::*;

    fn facility() -> FacilityId {
        FacilityId::new("f1")
    }

    fn unit(id: &str, name: &str) -> Entity {
        Entity::Unit(HousingUnitRecord { id: UnitId::new(id), name: name.into(), schedule: vec![] })
    }

    fn block(number: &str) -> Entity {
        Entity::Block(BlockRecord { number: number.into(), scope: BlockScope::AllFacilities })
    }

    /// A database with a facility row and `units` units, each its own write.
    fn db_with_units(units: usize) -> Db {
        let mut db = Db::open_in_memory().unwrap();
        let here = Audience::Facility(facility());
        let w = db.writer().unwrap();
        w.upsert(&Entity::Facility(FacilityRecord::with_defaults(facility(), "F", "UTC")), &here).unwrap();
        for i in 0..units {
            w.upsert(&unit(&format!("U{i}"), "unit"), &here).unwrap();
        }
        w.commit().unwrap();
        db
    }

    fn batch(answer: CentralToEdge) -> ChangeBatch {
        match answer {
            CentralToEdge::Changes(b) => b,
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    fn all_pages(db: &mut Db, mut since: u64, limit: u32) -> Vec<ChangeBatch> {
        let mut pages = Vec::new();
        loop {
            let page = batch(db.changes(&facility(), since, limit, 0).unwrap());
            since = page.next_cursor;
            let more = page.more;
            pages.push(page);
            if !more {
                return pages;
            }
        }
    }

    #[test]
    fn since_zero_is_a_full_snapshot_of_live_entities() {
        let mut db = db_with_units(5);
        let w = db.writer().unwrap();
        w.delete(&EntityKey::Unit(UnitId::new("U1"))).unwrap().unwrap();
        w.commit().unwrap();
        let page = batch(db.changes(&facility(), 0, 100, 0).unwrap());
        assert_eq!(page.since, 0);
        assert!(!page.more);
        assert_eq!(page.changes.len(), 5, "facility + 4 live units, no tombstone");
        assert!(page.changes.iter().all(|c| matches!(c, Change::Upsert(_))));
        assert!(!page.changes.contains(&Change::Upsert(unit("U1", "unit"))));
        assert_eq!(page.next_cursor, 6, "last returned seq (U4 written at seq 6)");
    }

    #[test]
    fn paging_returns_every_change_once_in_seq_order() {
        let mut db = db_with_units(10);
        let pages = all_pages(&mut db, 0, 3);
        assert_eq!(pages.len(), 4);
        assert_eq!(pages.iter().map(|p| p.changes.len()).collect::<Vec<_>>(), vec![3, 3, 3, 2]);
        assert!(pages[..3].iter().all(|p| p.more));
        assert!(!pages[3].more);
        for pair in pages.windows(2) {
            assert_eq!(pair[1].since, pair[0].next_cursor);
        }
        assert_eq!(pages[3].next_cursor, 11);
        let units: Vec<_> = pages
            .iter()
            .flat_map(|p| &p.changes)
            .filter_map(|c| match c {
                Change::Upsert(Entity::Unit(u)) => Some(u.id.0.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(units, (0..10).map(|i| format!("U{i}")).collect::<Vec<_>>());
        // Exactly `limit` remaining: the page is full but nothing is beyond it.
        let last = batch(db.changes(&facility(), 8, 3, 0).unwrap());
        assert_eq!(last.changes.len(), 3);
        assert!(!last.more);
    }

    #[test]
    fn an_empty_page_keeps_the_cursor() {
        let mut db = db_with_units(2);
        let page = batch(db.changes(&facility(), 3, 10, 0).unwrap());
        assert_eq!(page, ChangeBatch { since: 3, changes: vec![], next_cursor: 3, more: false });
        let page = batch(db.changes(&facility(), 99, 10, 0).unwrap());
        assert_eq!(page.next_cursor, 99);
    }

    #[test]
    fn limit_is_clamped() {
        let mut db = db_with_units(3);
        let page = batch(db.changes(&facility(), 0, 0, 0).unwrap());
        assert_eq!(page.changes.len(), 1, "limit 0 is treated as 1");
        assert!(page.more);
        let page = batch(db.changes(&facility(), 0, u32::MAX, 0).unwrap());
        assert_eq!(page.changes.len(), 4);
    }

    #[test]
    fn deletion_shows_as_a_tombstone_after_the_cursor() {
        let mut db = db_with_units(3);
        let cursor = db.head_info().unwrap().head;
        let w = db.writer().unwrap();
        let seq = w.delete(&EntityKey::Unit(UnitId::new("U0"))).unwrap().unwrap();
        assert_eq!(w.delete(&EntityKey::Unit(UnitId::new("U0"))).unwrap(), None, "already deleted");
        assert_eq!(w.delete(&EntityKey::Unit(UnitId::new("nope"))).unwrap(), None);
        w.commit().unwrap();
        let page = batch(db.changes(&facility(), cursor, 10, 0).unwrap());
        assert_eq!(page.changes, vec![Change::Delete(EntityKey::Unit(UnitId::new("U0")))]);
        assert_eq!(page.next_cursor, seq);
        assert_eq!(db.head_info().unwrap().tombstones, 1);
    }

    #[test]
    fn an_entity_changed_twice_appears_once_at_its_latest_seq() {
        let mut db = db_with_units(3);
        let cursor = db.head_info().unwrap().head;
        let here = Audience::Facility(facility());
        let w = db.writer().unwrap();
        w.upsert(&unit("U1", "first rename"), &here).unwrap().unwrap();
        w.upsert(&unit("U2", "other"), &here).unwrap().unwrap();
        let latest = w.upsert(&unit("U1", "second rename"), &here).unwrap().unwrap();
        assert_eq!(
            w.upsert(&unit("U1", "second rename"), &here).unwrap(),
            None,
            "identical upsert is a no-op"
        );
        w.commit().unwrap();
        let page = batch(db.changes(&facility(), cursor, 10, 0).unwrap());
        assert_eq!(
            page.changes,
            vec![Change::Upsert(unit("U2", "other")), Change::Upsert(unit("U1", "second rename"))]
        );
        assert_eq!(page.next_cursor, latest);
        let snapshot = batch(db.changes(&facility(), 0, 100, 0).unwrap());
        assert_eq!(snapshot.changes.len(), 4);
    }

    #[test]
    fn compaction_expires_cursors_below_the_horizon() {
        let mut db = db_with_units(6);
        let w = db.writer().unwrap();
        let s1 = w.delete(&EntityKey::Unit(UnitId::new("U0"))).unwrap().unwrap();
        let s2 = w.delete(&EntityKey::Unit(UnitId::new("U1"))).unwrap().unwrap();
        let s3 = w.delete(&EntityKey::Unit(UnitId::new("U2"))).unwrap().unwrap();
        w.commit().unwrap();

        let report = db.compact(1).unwrap();
        assert_eq!(report, CompactReport { purged: 2, horizon: s2 });
        assert_eq!(db.head_info().unwrap().tombstones, 1);

        assert_eq!(
            db.changes(&facility(), s1, 10, 0).unwrap(),
            CentralToEdge::CursorExpired { since: s1, oldest_valid: s2 }
        );
        assert_eq!(
            db.changes(&facility(), 3, 10, 0).unwrap(),
            CentralToEdge::CursorExpired { since: 3, oldest_valid: s2 }
        );
        // A cursor at the horizon saw every purged deletion.
        let page = batch(db.changes(&facility(), s2, 10, 0).unwrap());
        assert_eq!(page.changes, vec![Change::Delete(EntityKey::Unit(UnitId::new("U2")))]);
        assert_eq!(page.next_cursor, s3);
        // Snapshot still works and holds only live units.
        let snapshot = batch(db.changes(&facility(), 0, 100, 0).unwrap());
        assert_eq!(snapshot.changes.len(), 4);

        // Compacting again with nothing to purge keeps the horizon.
        assert_eq!(db.compact(5).unwrap(), CompactReport { purged: 0, horizon: s2 });
        assert_eq!(db.compact(0).unwrap(), CompactReport { purged: 1, horizon: s3 });
        assert_eq!(db.head_info().unwrap().horizon, s3);
    }

    /// Pages a resync from 0 with `resync_floor`, until the last page or
    /// the first answer that is not a batch.
    fn resync_pages(db: &mut Db, limit: u32, resync_floor: u64) -> (Vec<ChangeBatch>, Option<CentralToEdge>) {
        let mut pages = Vec::new();
        let mut since = 0;
        loop {
            match db.changes(&facility(), since, limit, resync_floor).unwrap() {
                CentralToEdge::Changes(page) => {
                    since = page.next_cursor;
                    let more = page.more;
                    pages.push(page);
                    if !more {
                        return (pages, None);
                    }
                }
                other => return (pages, Some(other)),
            }
        }
    }

    fn unit_ids(pages: &[ChangeBatch]) -> Vec<String> {
        pages
            .iter()
            .flat_map(|p| &p.changes)
            .filter_map(|c| match c {
                Change::Upsert(Entity::Unit(u)) => Some(u.id.0.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_resync_after_compaction_pages_below_the_horizon_with_its_floor() {
        let mut db = db_with_units(8);
        let w = db.writer().unwrap();
        w.delete(&EntityKey::Unit(UnitId::new("U6"))).unwrap().unwrap();
        let last_delete = w.delete(&EntityKey::Unit(UnitId::new("U7"))).unwrap().unwrap();
        w.commit().unwrap();
        let horizon = db.compact(0).unwrap().horizon;
        assert_eq!(horizon, last_delete);

        // The edge's old cursor expires and tells it where the horizon is.
        let oldest_valid = match db.changes(&facility(), 2, 10, 0).unwrap() {
            CentralToEdge::CursorExpired { since: 2, oldest_valid } => oldest_valid,
            other => panic!("expected CursorExpired, got {other:?}"),
        };
        assert_eq!(oldest_valid, horizon);

        // Pages of 2 from 0: every cursor after the first page is below the
        // horizon (the live units sit at seqs 2..=7, the horizon is 10).
        let (pages, stopped) = resync_pages(&mut db, 2, oldest_valid);
        assert_eq!(stopped, None, "no page of the resync may expire");
        assert_eq!(pages.len(), 4);
        let below: Vec<u64> = pages.iter().map(|p| p.since).filter(|&s| s != 0 && s < horizon).collect();
        assert_eq!(below, vec![2, 4, 6], "the resync walked through cursors below the horizon");
        assert_eq!(unit_ids(&pages), (0..6).map(|i| format!("U{i}")).collect::<Vec<_>>());
        assert_eq!(pages.iter().map(|p| p.changes.len()).sum::<usize>(), 7, "facility + 6 live units");
        assert!(pages.iter().flat_map(|p| &p.changes).all(|c| matches!(c, Change::Upsert(_))));

        // The same walk without the floor expires on its first non-zero cursor.
        let (pages, stopped) = resync_pages(&mut db, 2, 0);
        assert_eq!(pages.len(), 1);
        assert_eq!(stopped, Some(CentralToEdge::CursorExpired { since: 2, oldest_valid: horizon }));
    }

    #[test]
    fn a_compaction_during_a_resync_expires_its_next_page() {
        let mut db = db_with_units(8);
        let w = db.writer().unwrap();
        let first_delete = w.delete(&EntityKey::Unit(UnitId::new("U7"))).unwrap().unwrap();
        w.commit().unwrap();
        let floor = db.compact(0).unwrap().horizon;
        assert_eq!(floor, first_delete);

        let first = batch(db.changes(&facility(), 0, 3, floor).unwrap());
        assert!(first.more);
        let second = batch(db.changes(&facility(), first.next_cursor, 3, floor).unwrap());
        assert!(second.more);
        assert!(second.next_cursor < floor);

        // While the edge is between pages, a unit it has already received is
        // deleted and the tombstone purged: the rest of this resync could
        // never tell the edge, so the next page must restart it.
        let w = db.writer().unwrap();
        let hidden_delete = w.delete(&EntityKey::Unit(UnitId::new("U0"))).unwrap().unwrap();
        w.commit().unwrap();
        let raised = db.compact(0).unwrap().horizon;
        assert_eq!(raised, hidden_delete);
        assert!(raised > floor);
        assert_eq!(
            db.changes(&facility(), second.next_cursor, 3, floor).unwrap(),
            CentralToEdge::CursorExpired { since: second.next_cursor, oldest_valid: raised }
        );

        // The restarted resync, floored at the new horizon, completes and no
        // longer holds the deleted unit.
        let (pages, stopped) = resync_pages(&mut db, 3, raised);
        assert_eq!(stopped, None);
        assert_eq!(unit_ids(&pages), (1..7).map(|i| format!("U{i}")).collect::<Vec<_>>());
    }

    #[test]
    fn a_zero_floor_keeps_expiry_at_the_horizon() {
        let mut db = db_with_units(4);
        let w = db.writer().unwrap();
        w.delete(&EntityKey::Unit(UnitId::new("U0"))).unwrap().unwrap();
        w.delete(&EntityKey::Unit(UnitId::new("U1"))).unwrap().unwrap();
        w.commit().unwrap();
        let horizon = db.compact(0).unwrap().horizon;
        let head = db.head_info().unwrap().head;
        assert_eq!(horizon, head);

        for since in 1..horizon {
            assert_eq!(
                db.changes(&facility(), since, 10, 0).unwrap(),
                CentralToEdge::CursorExpired { since, oldest_valid: horizon },
                "cursor {since} is below the horizon"
            );
            // A floor below the horizon (a resync that began before a later
            // purge) does not save it either.
            assert_eq!(
                db.changes(&facility(), since, 10, horizon - 1).unwrap(),
                CentralToEdge::CursorExpired { since, oldest_valid: horizon },
                "cursor {since} with a stale floor"
            );
        }
        assert!(batch(db.changes(&facility(), horizon, 10, 0).unwrap()).changes.is_empty());
        let snapshot = batch(db.changes(&facility(), 0, 10, 0).unwrap());
        assert_eq!(snapshot.changes.len(), 3, "facility + U2 + U3");
    }

    #[test]
    fn feed_is_filtered_by_facility_and_global_rows_reach_everyone() {
        let mut db = db_with_units(1);
        let other = FacilityId::new("f2");
        let w = db.writer().unwrap();
        w.upsert(
            &Entity::Facility(FacilityRecord::with_defaults(other.clone(), "G", "UTC")),
            &Audience::Facility(other.clone()),
        )
        .unwrap();
        w.upsert(&unit("G1", "theirs"), &Audience::Facility(other.clone())).unwrap();
        let block_seq = w.upsert(&block("+15555550100"), &Audience::Every).unwrap().unwrap();
        w.commit().unwrap();

        let mine = batch(db.changes(&facility(), 0, 100, 0).unwrap());
        assert_eq!(mine.changes.len(), 3);
        assert!(mine.changes.contains(&Change::Upsert(block("+15555550100"))));
        assert!(!mine.changes.contains(&Change::Upsert(unit("G1", "theirs"))));
        assert_eq!(db.facility_head(&facility()).unwrap(), block_seq);

        let theirs = batch(db.changes(&other, 0, 100, 0).unwrap());
        assert_eq!(theirs.changes.len(), 3);
        assert!(db.facility_exists(&other).unwrap());
        assert!(!db.facility_exists(&FacilityId::new("f3")).unwrap());
    }

    #[test]
    fn purging_another_facilitys_tombstones_keeps_this_cursor_valid() {
        let mut db = db_with_units(2);
        let other = FacilityId::new("f2");
        let theirs = Audience::Facility(other.clone());
        let w = db.writer().unwrap();
        w.upsert(&unit("G1", "theirs"), &theirs).unwrap();
        w.commit().unwrap();
        let my_cursor = batch(db.changes(&facility(), 0, 100, 0).unwrap()).next_cursor;
        let w = db.writer().unwrap();
        let their_delete = w.delete(&EntityKey::Unit(UnitId::new("G1"))).unwrap().unwrap();
        w.commit().unwrap();
        assert!(their_delete > my_cursor);
        assert_eq!(db.compact(0).unwrap().horizon, their_delete);

        let page = batch(db.changes(&facility(), my_cursor, 10, 0).unwrap());
        assert!(page.changes.is_empty());
        assert_eq!(
            db.changes(&other, my_cursor, 10, 0).unwrap(),
            CentralToEdge::CursorExpired { since: my_cursor, oldest_valid: their_delete }
        );
    }

    #[test]
    fn seeding_is_one_shot() {
        let fixture = crate::fixture::Fixture::embedded().unwrap();
        let mut db = Db::open_in_memory().unwrap();
        assert!(db.seed(&fixture).unwrap());
        let head = db.head_info().unwrap();
        // 1 facility + 3 units + 50 residents + 200 contacts + 2 suspensions + 12 eCards
        // + 4 packages + 4 mails + stamp counts + blocks + privileged.
        let f = &fixture.facilities[0];
        let per_list = f.stamp_counts.len() + fixture.blocks.len() + fixture.privileged.len();
        assert_eq!(head.live, 256 + 12 + 4 + 4 + per_list as u64);
        assert_eq!(head.head, head.live);
        assert!(!db.seed(&fixture).unwrap());
        assert_eq!(db.head_info().unwrap(), head);
        let snapshot = batch(db.changes(&FacilityId::new("demo-ca-01"), 0, MAX_PAGE, 0).unwrap());
        assert_eq!(snapshot.changes.len() as u64, head.live);
        assert!(!snapshot.more);
    }
}
