//! The store's schema, as an ordered list of embedded SQL migrations.
//!
//! Append new migrations at the end; never edit one that has shipped, since
//! `rusqlite_migration` tracks progress in `PRAGMA user_version`.

use rusqlite_migration::{Migrations, M};

/// Version 1: synced entities, sync state, local tables and the audit log.
///
/// Synced rows carry `sync_gen`, the sync generation that last wrote them. A
/// full resync writes a fresh generation and, on its final page, deletes every
/// row still carrying an older one: that is how deletions whose tombstones
/// central has already compacted away reach the edge.
///
/// Synced tables have no foreign keys between entities: the feed arrives in
/// central's sequence order, so a resident may legitimately arrive before its
/// unit. Foreign keys only tie an entity to its own child rows (a unit's
/// calling windows).
const V1_FOUNDATION: &str = r#"
CREATE TABLE facility (
    singleton           INTEGER PRIMARY KEY CHECK (singleton = 1),
    id                  TEXT NOT NULL,
    name                TEXT NOT NULL,
    time_zone           TEXT NOT NULL,
    voice_limit_secs    INTEGER NOT NULL,
    video_limit_secs    INTEGER NOT NULL,
    warning_secs        INTEGER NOT NULL,
    caps_json           TEXT NOT NULL,
    barred_prefixes_json TEXT NOT NULL,
    legal_call_notice   TEXT NOT NULL,
    message_char_limit  INTEGER NOT NULL,
    login_max_failures  INTEGER NOT NULL,
    login_lockout_secs  INTEGER NOT NULL,
    sync_gen            INTEGER NOT NULL
);

CREATE TABLE housing_unit (
    id       TEXT PRIMARY KEY NOT NULL,
    name     TEXT NOT NULL,
    sync_gen INTEGER NOT NULL
);

CREATE TABLE calling_window (
    unit_id      TEXT NOT NULL REFERENCES housing_unit(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    weekday      INTEGER NOT NULL,
    start_minute INTEGER NOT NULL,
    end_minute   INTEGER NOT NULL,
    PRIMARY KEY (unit_id, position)
) WITHOUT ROWID;

CREATE TABLE resident (
    id                  TEXT PRIMARY KEY NOT NULL,
    name                TEXT NOT NULL,
    unit_id             TEXT NOT NULL,
    pin_hash            TEXT NOT NULL,
    debit_balance_cents INTEGER NOT NULL,
    active              INTEGER NOT NULL,
    sync_gen            INTEGER NOT NULL
);
CREATE INDEX resident_by_unit ON resident(unit_id);

CREATE TABLE contact (
    id                       INTEGER PRIMARY KEY NOT NULL,
    resident_id              TEXT NOT NULL,
    name                     TEXT NOT NULL,
    account_status           TEXT NOT NULL,
    approval_voice           TEXT NOT NULL,
    approval_video           TEXT NOT NULL,
    approval_message         TEXT NOT NULL,
    video_balance_cents      INTEGER NOT NULL,
    video_rate_cents_per_min INTEGER NOT NULL,
    -- Authorized numbers, a JSON array, primary first. Only the in-memory
    -- directory looks inside, and one row per contact keeps a 100k-contact
    -- snapshot within its time budget (child rows doubled its cost).
    numbers_json             TEXT NOT NULL,
    sync_gen                 INTEGER NOT NULL
);
CREATE INDEX contact_by_resident ON contact(resident_id);

-- scope_facility is '' when scope_kind = 'all'.
CREATE TABLE block (
    number         TEXT NOT NULL,
    scope_kind     TEXT NOT NULL CHECK (scope_kind IN ('all', 'facility')),
    scope_facility TEXT NOT NULL,
    sync_gen       INTEGER NOT NULL,
    PRIMARY KEY (number, scope_kind, scope_facility)
) WITHOUT ROWID;

CREATE TABLE privileged_number (
    number   TEXT PRIMARY KEY NOT NULL,
    label    TEXT NOT NULL,
    sync_gen INTEGER NOT NULL
);

CREATE TABLE suspension (
    id          INTEGER PRIMARY KEY NOT NULL,
    resident_id TEXT NOT NULL,
    services    TEXT NOT NULL,
    ends_on     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    sync_gen    INTEGER NOT NULL
);
CREATE INDEX suspension_by_resident ON suspension(resident_id);

CREATE TABLE cap_usage (
    resident_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    period_start TEXT NOT NULL,
    used_secs    INTEGER NOT NULL,
    sync_gen     INTEGER NOT NULL,
    PRIMARY KEY (resident_id, kind, period_start)
) WITHOUT ROWID;

-- resync_generation is non-NULL while a full resync is in progress.
CREATE TABLE sync_state (
    singleton         INTEGER PRIMARY KEY CHECK (singleton = 1),
    cursor            INTEGER NOT NULL,
    last_success      TEXT,
    generation        INTEGER NOT NULL,
    resync_generation INTEGER,
    resync_started_at TEXT
);
INSERT INTO sync_state (singleton, cursor, last_success, generation, resync_generation, resync_started_at)
VALUES (1, 0, NULL, 0, NULL, NULL);

-- Local state: never synced, never swept.
CREATE TABLE lockdown (
    scope_kind TEXT NOT NULL CHECK (scope_kind IN ('facility', 'unit')),
    unit_id    TEXT NOT NULL,
    since      TEXT NOT NULL,
    actor      TEXT NOT NULL,
    PRIMARY KEY (scope_kind, unit_id)
) WITHOUT ROWID;

CREATE TABLE device (
    name        TEXT PRIMARY KEY NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    issued_at   TEXT NOT NULL,
    revoked_at  TEXT
);

CREATE TABLE login_guard (
    resident_id  TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL,
    locked_until TEXT
);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY NOT NULL,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- The newest link of the chain, so that cutting rows off the end is caught.
CREATE TABLE audit_head (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL
);
"#;

/// Version 2: messaging and stamps (issue 3).
///
/// Synced (carry `sync_gen`, swept by a completed resync like the V1 tables):
/// the eCard catalog, stamp packages, stamp counts and mail (inbound mail and
/// the review state of residents' own mail). Mail keeps the whole record as
/// a postcard blob; the columns beside it are what the folders filter on.
///
/// Local (never synced, never swept): drafts, the resident's own sent
/// messages (history; hiding only sets a flag), per-message view flags, the
/// outbox, the ledger's entries and the feed cursor the ledger has seen.
///
/// The outbox's `seq` is AUTOINCREMENT so it is never reused, even for the
/// newest row after it is deleted: it is the enqueue order the outbox core
/// keeps each conversation in.
const V2_MESSAGING: &str = r#"
CREATE TABLE ecard (
    id       INTEGER PRIMARY KEY NOT NULL,
    category TEXT NOT NULL,
    title    TEXT NOT NULL,
    sync_gen INTEGER NOT NULL
);

CREATE TABLE stamp_package (
    id          INTEGER PRIMARY KEY NOT NULL,
    stamps      INTEGER NOT NULL,
    price_cents INTEGER NOT NULL,
    sync_gen    INTEGER NOT NULL
);

CREATE TABLE stamp_count (
    resident_id TEXT NOT NULL,
    contact_id  INTEGER NOT NULL,
    stamps      INTEGER NOT NULL,
    sync_gen    INTEGER NOT NULL,
    PRIMARY KEY (resident_id, contact_id)
) WITHOUT ROWID;

CREATE TABLE mail (
    id          BLOB PRIMARY KEY NOT NULL,
    resident_id TEXT NOT NULL,
    inbound     INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    sent_at     TEXT NOT NULL,
    record      BLOB NOT NULL,
    sync_gen    INTEGER NOT NULL
);
CREATE INDEX mail_by_resident ON mail(resident_id, sent_at);

CREATE TABLE draft (
    id          BLOB PRIMARY KEY NOT NULL,
    resident_id TEXT NOT NULL,
    compose     BLOB NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX draft_by_resident ON draft(resident_id, updated_at);

CREATE TABLE sent_message (
    id          BLOB PRIMARY KEY NOT NULL,
    resident_id TEXT NOT NULL,
    outbox_key  BLOB NOT NULL UNIQUE,
    sent_at     TEXT NOT NULL,
    message     BLOB NOT NULL
);
CREATE INDEX sent_by_resident ON sent_message(resident_id, sent_at);

CREATE TABLE message_flag (
    id          BLOB PRIMARY KEY NOT NULL,
    resident_id TEXT NOT NULL,
    read        INTEGER NOT NULL DEFAULT 0,
    hidden      INTEGER NOT NULL DEFAULT 0
);

-- parked is NULL while the item is live, else a postcard ParkReason blob.
CREATE TABLE outbox (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    key    BLOB NOT NULL UNIQUE,
    item   BLOB NOT NULL,
    parked BLOB
);

CREATE TABLE ledger_entry (
    key         BLOB PRIMARY KEY NOT NULL,
    seq         INTEGER NOT NULL,
    resident_id TEXT NOT NULL,
    contact_id  INTEGER NOT NULL,
    entry       BLOB NOT NULL
);

CREATE TABLE ledger_state (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    cursor    INTEGER NOT NULL
);
INSERT INTO ledger_state (singleton, cursor) SELECT 1, cursor FROM sync_state WHERE singleton = 1;
"#;

/// Calls (issue 5): the crash checkpoint of each live call, deleted in the
/// transaction that commits the call's record to the outbox.
const V3_CALLS: &str = r#"
CREATE TABLE call_checkpoint (
    call_id    INTEGER PRIMARY KEY NOT NULL,
    checkpoint TEXT NOT NULL
);
"#;

/// Attachments (issue 6): the media cache. `bytes` grows chunk by chunk;
/// `complete` is set once the whole blob matched `sha256`. `stored_at` is
/// unix seconds. Local: never synced, never swept (the prefetcher evicts).
const V4_MEDIA: &str = r#"
CREATE TABLE media_cache (
    id           INTEGER PRIMARY KEY NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       BLOB NOT NULL,
    bytes        BLOB NOT NULL,
    complete     INTEGER NOT NULL,
    stored_at    INTEGER NOT NULL
);
"#;

const MIGRATION_LIST: &[M<'static>] =
    &[M::up(V1_FOUNDATION), M::up(V2_MESSAGING), M::up(V3_CALLS), M::up(V4_MEDIA)];

pub(crate) const MIGRATIONS: Migrations<'static> = Migrations::from_slice(MIGRATION_LIST);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS.validate().unwrap();
    }
}
