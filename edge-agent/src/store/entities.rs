//! Synced entities: applying change-feed pages and loading everything back.

use std::collections::HashMap;

use jiff::Timestamp;
use proto::central::{Change, ChangeBatch, Entity, EntityKey};
use proto::domain::*;
use rusqlite::{params, Transaction};

use super::codec::{self, describe, int, narrow, opt_text, text, u64_from_sql, u64_to_sql};
use super::{ApplyMode, Store, StoreError};

/// Persisted progress of the downlink change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    /// The cursor to ask central from next.
    pub cursor: u64,
    /// When a page or an empty poll last succeeded.
    pub last_success: Option<Timestamp>,
    /// Set while a full resync is part-way through.
    pub resync: Option<ResyncMarker>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncMarker {
    pub started_at: Timestamp,
}

/// What one [`Store::apply_batch`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyOutcome {
    /// The stored cursor after the batch.
    pub cursor: u64,
    pub upserts: usize,
    pub deletes: usize,
    /// Entities dropped because a completed resync did not re-send them.
    pub swept: usize,
    /// This batch was the final page of a full resync.
    pub resync_completed: bool,
}

/// Tables whose rows are swept at the end of a resync. The facility row is
/// never deleted (central never deletes it), so it is not listed.
const SWEPT_TABLES: [&str; 11] = [
    "housing_unit",
    "resident",
    "contact",
    "block",
    "privileged_number",
    "suspension",
    "cap_usage",
    "ecard",
    "stamp_package",
    "stamp_count",
    "mail",
];

struct RawSyncState {
    cursor: u64,
    last_success: Option<Timestamp>,
    generation: i64,
    resync_generation: Option<i64>,
    resync_started_at: Option<Timestamp>,
}

fn read_sync_state(tx: &rusqlite::Connection) -> Result<RawSyncState, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT cursor, last_success, generation, resync_generation, resync_started_at \
         FROM sync_state WHERE singleton = 1",
    )?;
    let mut rows = stmt.query([])?;
    let Some(row) = rows.next()? else {
        return Err(StoreError::corrupt("sync_state", "1", "the row is missing"));
    };
    let decode = || -> Result<RawSyncState, codec::Problem> {
        Ok(RawSyncState {
            cursor: u64_from_sql(int(row, 0)?),
            last_success: opt_text(row, 1)?.map(|t| codec::timestamp_from_sql(&t)).transpose()?,
            generation: int(row, 2)?,
            resync_generation: row.get::<_, Option<i64>>(3).map_err(|e| format!("column 3: {e}"))?,
            resync_started_at: opt_text(row, 4)?.map(|t| codec::timestamp_from_sql(&t)).transpose()?,
        })
    };
    decode().map_err(|problem| StoreError::corrupt("sync_state", "1", problem))
}

impl Store {
    pub fn sync_state(&self) -> Result<SyncState, StoreError> {
        let raw = read_sync_state(&self.conn)?;
        let resync = match (raw.resync_generation, raw.resync_started_at) {
            (None, _) => None,
            (Some(_), Some(started_at)) => Some(ResyncMarker { started_at }),
            (Some(_), None) => {
                return Err(StoreError::corrupt(
                    "sync_state",
                    "1",
                    "resync generation set without a start time",
                ))
            }
        };
        Ok(SyncState { cursor: raw.cursor, last_success: raw.last_success, resync })
    }

    /// Records an empty poll: central had nothing new, and said so at `now`.
    pub fn record_sync_success(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        tx.execute("UPDATE sync_state SET last_success = ?1 WHERE singleton = 1", params![now.to_string()])?;
        tx.commit()?;
        Ok(())
    }

    /// Applies one page of the change feed, its cursor and `now` as the last
    /// successful sync, all in one transaction.
    ///
    /// A batch must start at the stored cursor, except that a [`ApplyMode::Resync`]
    /// batch from cursor 0 starts (or restarts) a full resync. Anything else is
    /// refused with [`StoreError::StaleBatch`] or [`StoreError::ModeMismatch`]
    /// and changes nothing. When the final resync page (`more == false`)
    /// commits, every entity the resync did not re-send is deleted in the same
    /// transaction.
    pub fn apply_batch(
        &mut self,
        batch: &ChangeBatch,
        mode: ApplyMode,
        now: Timestamp,
    ) -> Result<ApplyOutcome, StoreError> {
        if batch.next_cursor < batch.since {
            return Err(StoreError::CursorRegression { since: batch.since, next_cursor: batch.next_cursor });
        }
        let tx = self.write_tx()?;
        let state = read_sync_state(&tx)?;
        let check_cursor = || {
            if batch.since == state.cursor {
                Ok(())
            } else {
                Err(StoreError::StaleBatch { since: batch.since, stored: state.cursor })
            }
        };
        let mismatch =
            || StoreError::ModeMismatch { mode, resync_in_progress: state.resync_generation.is_some() };
        let write_gen = match mode {
            ApplyMode::Resync if batch.since == 0 => {
                // A fresh generation even when restarting an interrupted
                // resync: rows the first attempt re-sent may since have been
                // deleted centrally with their tombstones compacted away.
                let generation = state.generation.max(state.resync_generation.unwrap_or(0)) + 1;
                tx.execute(
                    "UPDATE sync_state SET resync_generation = ?1, resync_started_at = ?2 \
                     WHERE singleton = 1",
                    params![generation, now.to_string()],
                )?;
                generation
            }
            ApplyMode::Resync => {
                let generation = state.resync_generation.ok_or_else(mismatch)?;
                check_cursor()?;
                generation
            }
            ApplyMode::Normal => {
                if state.resync_generation.is_some() {
                    return Err(mismatch());
                }
                check_cursor()?;
                state.generation
            }
        };

        let mut outcome = ApplyOutcome { cursor: batch.next_cursor, ..ApplyOutcome::default() };
        for change in &batch.changes {
            match change {
                Change::Upsert(entity) => {
                    upsert(&tx, entity, write_gen)?;
                    outcome.upserts += 1;
                }
                Change::Delete(key) => {
                    delete(&tx, key)?;
                    outcome.deletes += 1;
                }
            }
        }

        if mode == ApplyMode::Resync && !batch.more {
            for table in SWEPT_TABLES {
                outcome.swept +=
                    tx.execute(&format!("DELETE FROM {table} WHERE sync_gen < ?1"), params![write_gen])?;
            }
            tx.execute(
                "UPDATE sync_state SET generation = ?1, resync_generation = NULL, \
                 resync_started_at = NULL WHERE singleton = 1",
                params![write_gen],
            )?;
            outcome.resync_completed = true;
        }
        tx.execute(
            "UPDATE sync_state SET cursor = ?1, last_success = ?2 WHERE singleton = 1",
            params![u64_to_sql(batch.next_cursor), now.to_string()],
        )?;
        super::messaging::advance_ledger_cursor(&tx, batch.next_cursor)?;
        tx.commit()?;
        Ok(outcome)
    }

    /// Everything central synced down that the in-memory directory holds, to
    /// rebuild it at start: the facility first, then units, residents,
    /// contacts, blocks, privileged numbers, suspensions, cap usage, eCards,
    /// stamp packages and stamp counts, each ordered by key. Mail is not
    /// loaded: the store serves it (see `Store::mail_of`).
    pub fn load_entities(&self) -> Result<Vec<Entity>, StoreError> {
        let conn = &self.conn;
        let mut out = Vec::new();
        load_facility(conn, &mut out)?;
        load_units(conn, &mut out)?;
        load_residents(conn, &mut out)?;
        load_contacts(conn, &mut out)?;
        load_simple(conn, &mut out)?;
        super::messaging::load_catalog(conn, &mut out)?;
        Ok(out)
    }
}

fn json<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Encode { what, problem: e.to_string() })
}

fn upsert(tx: &Transaction<'_>, entity: &Entity, generation: i64) -> Result<(), StoreError> {
    match entity {
        Entity::Facility(f) => {
            tx.prepare_cached(
                "INSERT INTO facility (singleton, id, name, time_zone, voice_limit_secs, \
                 video_limit_secs, warning_secs, caps_json, barred_prefixes_json, \
                 legal_call_notice, message_char_limit, login_max_failures, \
                 login_lockout_secs, sync_gen) \
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                 ON CONFLICT (singleton) DO UPDATE SET id = excluded.id, name = excluded.name, \
                 time_zone = excluded.time_zone, voice_limit_secs = excluded.voice_limit_secs, \
                 video_limit_secs = excluded.video_limit_secs, \
                 warning_secs = excluded.warning_secs, caps_json = excluded.caps_json, \
                 barred_prefixes_json = excluded.barred_prefixes_json, \
                 legal_call_notice = excluded.legal_call_notice, \
                 message_char_limit = excluded.message_char_limit, \
                 login_max_failures = excluded.login_max_failures, \
                 login_lockout_secs = excluded.login_lockout_secs, sync_gen = excluded.sync_gen",
            )?
            .execute(params![
                f.id.as_str(),
                f.name,
                f.time_zone,
                f.voice_limit_secs,
                f.video_limit_secs,
                f.warning_secs,
                json("facility caps", &f.caps)?,
                json("barred prefixes", &f.barred_prefixes)?,
                f.legal_call_notice,
                f.message_char_limit,
                f.login_max_failures,
                f.login_lockout_secs,
                generation,
            ])?;
        }
        Entity::Unit(u) => {
            tx.prepare_cached(
                "INSERT INTO housing_unit (id, name, sync_gen) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, sync_gen = excluded.sync_gen",
            )?
            .execute(params![u.id.as_str(), u.name, generation])?;
            tx.prepare_cached("DELETE FROM calling_window WHERE unit_id = ?1")?
                .execute(params![u.id.as_str()])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO calling_window (unit_id, position, weekday, start_minute, end_minute) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (position, w) in u.schedule.iter().enumerate() {
                insert.execute(params![u.id.as_str(), position, w.weekday, w.start_minute, w.end_minute])?;
            }
        }
        Entity::Resident(r) => {
            tx.prepare_cached(
                "INSERT INTO resident (id, name, unit_id, pin_hash, debit_balance_cents, active, \
                 sync_gen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, unit_id = excluded.unit_id, \
                 pin_hash = excluded.pin_hash, debit_balance_cents = excluded.debit_balance_cents, \
                 active = excluded.active, sync_gen = excluded.sync_gen",
            )?
            .execute(params![
                r.id.as_str(),
                r.name,
                r.unit.as_str(),
                r.pin_hash,
                r.debit_balance_cents,
                r.active,
                generation
            ])?;
        }
        Entity::Contact(c) => {
            tx.prepare_cached(
                "INSERT INTO contact (id, resident_id, name, account_status, approval_voice, \
                 approval_video, approval_message, video_balance_cents, \
                 video_rate_cents_per_min, numbers_json, sync_gen) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT (id) DO UPDATE SET resident_id = excluded.resident_id, \
                 name = excluded.name, account_status = excluded.account_status, \
                 approval_voice = excluded.approval_voice, \
                 approval_video = excluded.approval_video, \
                 approval_message = excluded.approval_message, \
                 video_balance_cents = excluded.video_balance_cents, \
                 video_rate_cents_per_min = excluded.video_rate_cents_per_min, \
                 numbers_json = excluded.numbers_json, sync_gen = excluded.sync_gen",
            )?
            .execute(params![
                u64_to_sql(c.id.0),
                c.resident.as_str(),
                c.name,
                codec::account_status_to_sql(c.account_status),
                codec::approval_to_sql(c.approvals.voice),
                codec::approval_to_sql(c.approvals.video),
                codec::approval_to_sql(c.approvals.message),
                c.video_balance_cents,
                c.video_rate_cents_per_min,
                json("contact numbers", &c.numbers)?,
                generation
            ])?;
        }
        Entity::Block(b) => {
            let (kind, facility) = codec::block_scope_to_sql(&b.scope);
            tx.prepare_cached(
                "INSERT INTO block (number, scope_kind, scope_facility, sync_gen) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (number, scope_kind, scope_facility) \
                 DO UPDATE SET sync_gen = excluded.sync_gen",
            )?
            .execute(params![b.number, kind, facility, generation])?;
        }
        Entity::Privileged(p) => {
            tx.prepare_cached(
                "INSERT INTO privileged_number (number, label, sync_gen) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (number) DO UPDATE SET label = excluded.label, \
                 sync_gen = excluded.sync_gen",
            )?
            .execute(params![p.number, p.label, generation])?;
        }
        Entity::Suspension(s) => {
            tx.prepare_cached(
                "INSERT INTO suspension (id, resident_id, services, ends_on, reason, sync_gen) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET \
                 resident_id = excluded.resident_id, services = excluded.services, \
                 ends_on = excluded.ends_on, reason = excluded.reason, \
                 sync_gen = excluded.sync_gen",
            )?
            .execute(params![
                u64_to_sql(s.id),
                s.resident.as_str(),
                codec::services_to_sql(&s.services),
                s.ends_on.to_string(),
                s.reason,
                generation
            ])?;
        }
        Entity::CapUsage(c) => {
            tx.prepare_cached(
                "INSERT INTO cap_usage (resident_id, kind, period_start, used_secs, sync_gen) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (resident_id, kind, period_start) \
                 DO UPDATE SET used_secs = excluded.used_secs, sync_gen = excluded.sync_gen",
            )?
            .execute(params![
                c.resident.as_str(),
                codec::call_kind_to_sql(c.kind),
                c.period_start.to_string(),
                c.used_secs,
                generation
            ])?;
        }
        Entity::ECard(_) | Entity::StampPackage(_) | Entity::StampCount(_) | Entity::Mail(_) => {
            super::messaging::upsert_entity(tx, entity, generation)?;
        }
    }
    Ok(())
}

/// Deleting something the edge never had is not an error: tombstones may
/// outlive what they delete, and a resync may replay them.
fn delete(tx: &Transaction<'_>, key: &EntityKey) -> Result<(), StoreError> {
    match key {
        EntityKey::Unit(id) => {
            tx.prepare_cached("DELETE FROM housing_unit WHERE id = ?1")?.execute(params![id.as_str()])?
        }
        EntityKey::Resident(id) => {
            tx.prepare_cached("DELETE FROM resident WHERE id = ?1")?.execute(params![id.as_str()])?
        }
        EntityKey::Contact(id) => {
            tx.prepare_cached("DELETE FROM contact WHERE id = ?1")?.execute(params![u64_to_sql(id.0)])?
        }
        EntityKey::Block(b) => {
            let (kind, facility) = codec::block_scope_to_sql(&b.scope);
            tx.prepare_cached(
                "DELETE FROM block WHERE number = ?1 AND scope_kind = ?2 AND scope_facility = ?3",
            )?
            .execute(params![b.number, kind, facility])?
        }
        EntityKey::Privileged(number) => {
            tx.prepare_cached("DELETE FROM privileged_number WHERE number = ?1")?.execute(params![number])?
        }
        EntityKey::Suspension(id) => {
            tx.prepare_cached("DELETE FROM suspension WHERE id = ?1")?.execute(params![u64_to_sql(*id)])?
        }
        EntityKey::CapUsage { resident, kind, period_start } => tx
            .prepare_cached(
                "DELETE FROM cap_usage WHERE resident_id = ?1 AND kind = ?2 AND period_start = ?3",
            )?
            .execute(params![resident.as_str(), codec::call_kind_to_sql(*kind), period_start.to_string()])?,
        EntityKey::ECard(_)
        | EntityKey::StampPackage(_)
        | EntityKey::StampCount { .. }
        | EntityKey::Mail(_) => super::messaging::delete_entity(tx, key)?,
    };
    Ok(())
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, codec::Problem> {
    serde_json::from_str(text).map_err(|e| format!("bad JSON {text:?}: {e}"))
}

fn load_facility(conn: &rusqlite::Connection, out: &mut Vec<Entity>) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, time_zone, voice_limit_secs, video_limit_secs, warning_secs, \
         caps_json, barred_prefixes_json, legal_call_notice, message_char_limit, \
         login_max_failures, login_lockout_secs FROM facility",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let decode = || -> Result<FacilityRecord, codec::Problem> {
            Ok(FacilityRecord {
                id: FacilityId(text(row, 0)?),
                name: text(row, 1)?,
                time_zone: text(row, 2)?,
                voice_limit_secs: narrow(row, 3)?,
                video_limit_secs: narrow(row, 4)?,
                warning_secs: narrow(row, 5)?,
                caps: from_json(&text(row, 6)?)?,
                barred_prefixes: from_json(&text(row, 7)?)?,
                legal_call_notice: text(row, 8)?,
                message_char_limit: narrow(row, 9)?,
                login_max_failures: narrow(row, 10)?,
                login_lockout_secs: narrow(row, 11)?,
            })
        };
        let record = decode().map_err(|p| StoreError::corrupt("facility", describe(row, 0), p))?;
        out.push(Entity::Facility(record));
    }
    Ok(())
}

fn load_units(conn: &rusqlite::Connection, out: &mut Vec<Entity>) -> Result<(), StoreError> {
    let mut windows: HashMap<String, Vec<CallingWindow>> = HashMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT unit_id, weekday, start_minute, end_minute FROM calling_window \
             ORDER BY unit_id, position",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let decode = || -> Result<(String, CallingWindow), codec::Problem> {
                Ok((
                    text(row, 0)?,
                    CallingWindow {
                        weekday: narrow(row, 1)?,
                        start_minute: narrow(row, 2)?,
                        end_minute: narrow(row, 3)?,
                    },
                ))
            };
            let (unit, window) =
                decode().map_err(|p| StoreError::corrupt("calling_window", describe(row, 0), p))?;
            windows.entry(unit).or_default().push(window);
        }
    }
    let mut stmt = conn.prepare("SELECT id, name FROM housing_unit ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let mut decode = || -> Result<HousingUnitRecord, codec::Problem> {
            let id = text(row, 0)?;
            Ok(HousingUnitRecord {
                schedule: windows.remove(&id).unwrap_or_default(),
                id: UnitId(id),
                name: text(row, 1)?,
            })
        };
        let unit = decode().map_err(|p| StoreError::corrupt("housing_unit", describe(row, 0), p))?;
        out.push(Entity::Unit(unit));
    }
    Ok(())
}

fn load_residents(conn: &rusqlite::Connection, out: &mut Vec<Entity>) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, unit_id, pin_hash, debit_balance_cents, active FROM resident ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let decode = || -> Result<ResidentRecord, codec::Problem> {
            Ok(ResidentRecord {
                id: ResidentId(text(row, 0)?),
                name: text(row, 1)?,
                unit: UnitId(text(row, 2)?),
                pin_hash: text(row, 3)?,
                debit_balance_cents: int(row, 4)?,
                active: codec::boolean(row, 5)?,
            })
        };
        let record = decode().map_err(|p| StoreError::corrupt("resident", describe(row, 0), p))?;
        out.push(Entity::Resident(record));
    }
    Ok(())
}

fn load_contacts(conn: &rusqlite::Connection, out: &mut Vec<Entity>) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, resident_id, name, account_status, approval_voice, approval_video, \
         approval_message, video_balance_cents, video_rate_cents_per_min, numbers_json \
         FROM contact ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let decode = || -> Result<ContactRecord, codec::Problem> {
            Ok(ContactRecord {
                id: ContactId(u64_from_sql(int(row, 0)?)),
                resident: ResidentId(text(row, 1)?),
                name: text(row, 2)?,
                account_status: codec::account_status_from_sql(&text(row, 3)?)?,
                approvals: Approvals {
                    voice: codec::approval_from_sql(&text(row, 4)?)?,
                    video: codec::approval_from_sql(&text(row, 5)?)?,
                    message: codec::approval_from_sql(&text(row, 6)?)?,
                },
                video_balance_cents: int(row, 7)?,
                video_rate_cents_per_min: narrow(row, 8)?,
                numbers: from_json(&text(row, 9)?)?,
            })
        };
        let record = decode().map_err(|p| StoreError::corrupt("contact", describe(row, 0), p))?;
        out.push(Entity::Contact(record));
    }
    Ok(())
}

/// Blocks, privileged numbers, suspensions and cap usage: single-row entities.
fn load_simple(conn: &rusqlite::Connection, out: &mut Vec<Entity>) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT number, scope_kind, scope_facility FROM block \
         ORDER BY number, scope_kind, scope_facility",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let decode = || -> Result<BlockRecord, codec::Problem> {
            Ok(BlockRecord {
                number: text(row, 0)?,
                scope: codec::block_scope_from_sql(&text(row, 1)?, text(row, 2)?)?,
            })
        };
        let record = decode().map_err(|p| StoreError::corrupt("block", describe(row, 0), p))?;
        out.push(Entity::Block(record));
    }

    let mut stmt = conn.prepare("SELECT number, label FROM privileged_number ORDER BY number")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let decode = || -> Result<PrivilegedNumberRecord, codec::Problem> {
            Ok(PrivilegedNumberRecord { number: text(row, 0)?, label: text(row, 1)? })
        };
        let record = decode().map_err(|p| StoreError::corrupt("privileged_number", describe(row, 0), p))?;
        out.push(Entity::Privileged(record));
    }

    let mut stmt =
        conn.prepare("SELECT id, resident_id, services, ends_on, reason FROM suspension ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let decode = || -> Result<SuspensionRecord, codec::Problem> {
            Ok(SuspensionRecord {
                id: u64_from_sql(int(row, 0)?),
                resident: ResidentId(text(row, 1)?),
                services: codec::services_from_sql(&text(row, 2)?)?,
                ends_on: codec::date_from_sql(&text(row, 3)?)?,
                reason: text(row, 4)?,
            })
        };
        let record = decode().map_err(|p| StoreError::corrupt("suspension", describe(row, 0), p))?;
        out.push(Entity::Suspension(record));
    }

    let mut stmt = conn.prepare(
        "SELECT resident_id, kind, period_start, used_secs FROM cap_usage \
         ORDER BY resident_id, kind, period_start",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let decode = || -> Result<CapUsageRecord, codec::Problem> {
            Ok(CapUsageRecord {
                resident: ResidentId(text(row, 0)?),
                kind: codec::call_kind_from_sql(&text(row, 1)?)?,
                period_start: codec::date_from_sql(&text(row, 2)?)?,
                used_secs: narrow(row, 3)?,
            })
        };
        let record = decode().map_err(|p| StoreError::corrupt("cap_usage", describe(row, 0), p))?;
        out.push(Entity::CapUsage(record));
    }
    Ok(())
}
