//! State the edge owns itself (never synced, never swept by a resync):
//! lockdowns, provisioned tablet devices and login-guard counters.

use std::collections::{BTreeSet, HashSet};

use jiff::Timestamp;
use proto::domain::{LockdownScope, ResidentId, UnitId};
use rusqlite::{params, Row};

use super::codec::{self, describe, narrow, opt_text, text};
use super::{audit, optional, Store, StoreError};

/// A tablet provisioned with a facility certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub name: String,
    /// SHA-256 of the device certificate (DER), lowercase hex.
    pub fingerprint: String,
    pub issued_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl DeviceRow {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// Result of [`Store::revoke_device`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub device: DeviceRow,
    /// False if the device was already revoked (its first revocation time is kept).
    pub newly_revoked: bool,
}

/// Persisted PIN-failure state of one resident ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginGuardRow {
    pub resident: ResidentId,
    pub failures: u32,
    pub locked_until: Option<Timestamp>,
}

/// A lockdown in force, with who set it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockdownRow {
    pub scope: LockdownScope,
    pub since: Timestamp,
    pub actor: String,
}

fn lockdown_scope_to_sql(scope: &LockdownScope) -> (&'static str, &str) {
    match scope {
        LockdownScope::Facility => ("facility", ""),
        LockdownScope::Unit(unit) => ("unit", unit.as_str()),
    }
}

fn decode_lockdown(row: &Row<'_>) -> Result<LockdownRow, codec::Problem> {
    let scope = match text(row, 0)?.as_str() {
        "facility" => LockdownScope::Facility,
        "unit" => LockdownScope::Unit(UnitId(text(row, 1)?)),
        other => return Err(format!("unknown lockdown scope {other:?}")),
    };
    Ok(LockdownRow { scope, since: codec::timestamp_from_sql(&text(row, 2)?)?, actor: text(row, 3)? })
}

fn decode_device(row: &Row<'_>) -> Result<DeviceRow, codec::Problem> {
    Ok(DeviceRow {
        name: text(row, 0)?,
        fingerprint: text(row, 1)?,
        issued_at: codec::timestamp_from_sql(&text(row, 2)?)?,
        revoked_at: opt_text(row, 3)?.map(|t| codec::timestamp_from_sql(&t)).transpose()?,
    })
}

const DEVICE_COLUMNS: &str = "name, fingerprint, issued_at, revoked_at";

impl Store {
    /// Lockdowns in force.
    pub fn lockdowns(&self) -> Result<BTreeSet<LockdownScope>, StoreError> {
        Ok(self.lockdown_rows()?.into_iter().map(|row| row.scope).collect())
    }

    /// Lockdowns in force with who set them and since when (for `status`).
    pub fn lockdown_rows(&self) -> Result<Vec<LockdownRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT scope_kind, unit_id, since, actor FROM lockdown ORDER BY scope_kind, unit_id")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let key = format!("{}/{}", describe(row, 0), describe(row, 1));
            out.push(decode_lockdown(row).map_err(|p| StoreError::corrupt("lockdown", key, p))?);
        }
        Ok(out)
    }

    /// Turns a lockdown on or off; returns whether anything changed. Every
    /// call is audited in the same transaction, including no-op repeats, so
    /// the log shows who asked for what.
    pub fn set_lockdown(
        &mut self,
        scope: &LockdownScope,
        on: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (kind, unit) = lockdown_scope_to_sql(scope);
        let tx = self.write_tx()?;
        let changed = if on {
            tx.execute(
                "INSERT INTO lockdown (scope_kind, unit_id, since, actor) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (scope_kind, unit_id) DO NOTHING",
                params![kind, unit, now.to_string(), actor],
            )?
        } else {
            tx.execute("DELETE FROM lockdown WHERE scope_kind = ?1 AND unit_id = ?2", params![kind, unit])?
        } > 0;
        let detail = serde_json::json!({
            "scope": kind,
            "unit": match scope { LockdownScope::Unit(u) => Some(u.as_str()), LockdownScope::Facility => None },
            "changed": changed,
        });
        let action = if on { "lockdown.on" } else { "lockdown.off" };
        audit::append(&tx, actor, action, &detail, now)?;
        tx.commit()?;
        Ok(changed)
    }

    /// Records a newly provisioned device. Names are unique forever, revoked
    /// ones included, so the history of a name never becomes ambiguous.
    pub fn register_device(
        &mut self,
        name: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<DeviceRow, StoreError> {
        let tx = self.write_tx()?;
        let by_name: Option<i64> =
            optional(tx.query_row("SELECT 1 FROM device WHERE name = ?1", params![name], |row| row.get(0)))?;
        if by_name.is_some() {
            return Err(StoreError::DeviceNameTaken(name.to_owned()));
        }
        let by_fingerprint: Option<String> = optional(tx.query_row(
            "SELECT name FROM device WHERE fingerprint = ?1",
            params![fingerprint],
            |row| row.get(0),
        ))?;
        if let Some(device) = by_fingerprint {
            return Err(StoreError::FingerprintTaken { fingerprint: fingerprint.to_owned(), device });
        }
        tx.execute(
            "INSERT INTO device (name, fingerprint, issued_at, revoked_at) VALUES (?1, ?2, ?3, NULL)",
            params![name, fingerprint, now.to_string()],
        )?;
        tx.commit()?;
        Ok(DeviceRow {
            name: name.to_owned(),
            fingerprint: fingerprint.to_owned(),
            issued_at: now,
            revoked_at: None,
        })
    }

    /// Revokes a device; revoking it again keeps the first revocation time.
    pub fn revoke_device(&mut self, name: &str, now: Timestamp) -> Result<Revocation, StoreError> {
        let tx = self.write_tx()?;
        let newly_revoked = tx.execute(
            "UPDATE device SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            params![name, now.to_string()],
        )? > 0;
        let device = device_where(&tx, "name = ?1", name)?
            .ok_or_else(|| StoreError::UnknownDevice(name.to_owned()))?;
        tx.commit()?;
        Ok(Revocation { device, newly_revoked })
    }

    pub fn device_by_fingerprint(&self, fingerprint: &str) -> Result<Option<DeviceRow>, StoreError> {
        device_where(&self.conn, "fingerprint = ?1", fingerprint)
    }

    /// Every device ever provisioned, by name.
    pub fn devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        let mut stmt = self.conn.prepare(&format!("SELECT {DEVICE_COLUMNS} FROM device ORDER BY name"))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode_device(row).map_err(|p| StoreError::corrupt("device", describe(row, 0), p))?);
        }
        Ok(out)
    }

    /// Fingerprints of devices that are not revoked: the handshake allow-list.
    pub fn admitted_fingerprints(&self) -> Result<HashSet<String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT fingerprint FROM device WHERE revoked_at IS NULL")?;
        let mut rows = stmt.query([])?;
        let mut out = HashSet::new();
        while let Some(row) = rows.next()? {
            out.insert(text(row, 0).map_err(|p| StoreError::corrupt("device", describe(row, 0), p))?);
        }
        Ok(out)
    }

    pub fn login_guard(&self, resident: &ResidentId) -> Result<Option<LoginGuardRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT resident_id, failures, locked_until FROM login_guard WHERE resident_id = ?1",
        )?;
        let mut rows = stmt.query(params![resident.as_str()])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        let decode = || -> Result<LoginGuardRow, codec::Problem> {
            Ok(LoginGuardRow {
                resident: ResidentId(text(row, 0)?),
                failures: narrow(row, 1)?,
                locked_until: opt_text(row, 2)?.map(|t| codec::timestamp_from_sql(&t)).transpose()?,
            })
        };
        decode().map(Some).map_err(|p| StoreError::corrupt("login_guard", resident.as_str(), p))
    }

    /// Saves a resident's failure count and lockout; a clean slate (no
    /// failures, no lockout) removes the row.
    pub fn save_login_guard(
        &mut self,
        resident: &ResidentId,
        failures: u32,
        locked_until: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        if failures == 0 && locked_until.is_none() {
            tx.prepare_cached("DELETE FROM login_guard WHERE resident_id = ?1")?
                .execute(params![resident.as_str()])?;
        } else {
            tx.prepare_cached(
                "INSERT INTO login_guard (resident_id, failures, locked_until) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (resident_id) DO UPDATE SET failures = excluded.failures, \
                 locked_until = excluded.locked_until",
            )?
            .execute(params![
                resident.as_str(),
                failures,
                locked_until.map(|t| t.to_string())
            ])?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn device_where(
    conn: &rusqlite::Connection,
    condition: &str,
    value: &str,
) -> Result<Option<DeviceRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM device WHERE {condition}"))?;
    let mut rows = stmt.query(params![value])?;
    match rows.next()? {
        None => Ok(None),
        Some(row) => {
            decode_device(row).map(Some).map_err(|p| StoreError::corrupt("device", describe(row, 0), p))
        }
    }
}
