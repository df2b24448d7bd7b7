//! The contact's side of calls (issue 5), played from test instructions.
//!
//! Owns: the per-contact call scripts the operator sets with `admin
//! call-script` (applied to the next call to that contact, then consumed),
//! the calls edges ring (`RingContact`), the contact events a script
//! produces over time (`CallStatus`), and the edge's end of each call
//! (`EndCall`). Must not: decide anything about the call's policy, limit or
//! charge: the edge does, and bills through the outbox's `CallRecord`.
//!
//! A script is evaluated against the time since the ring, so the answers are
//! stateless: every poll reports every event that has happened so far, and
//! the edge ignores repeats. A contact without a script answers after
//! [`DEFAULT_ANSWER_AFTER_MS`] and stays on the line.

use proto::call::{CallEndReason, CallId, ContactCallEvent, ContactEvent};
use proto::domain::{CallKind, ContactId, FacilityId, PhoneNumber, ResidentId};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::db::{Db, DbError};

/// How soon a contact without a script picks up.
pub const DEFAULT_ANSWER_AFTER_MS: u64 = 2_000;

/// What the contact does when the phone rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pickup {
    AnswerAfterMs(u64),
    DeclineAfterMs(u64),
    NoAnswer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    pub pickup: Pickup,
    /// After answering, hang up this long after the answer.
    pub hangup_after_ms: Option<u64>,
}

impl Default for Script {
    fn default() -> Self {
        Script { pickup: Pickup::AnswerAfterMs(DEFAULT_ANSWER_AFTER_MS), hangup_after_ms: None }
    }
}

impl Script {
    /// Every contact event that has happened `elapsed_ms` after the ring.
    pub fn events_at(&self, elapsed_ms: u64) -> Vec<ContactEvent> {
        match self.pickup {
            Pickup::NoAnswer => Vec::new(),
            Pickup::DeclineAfterMs(at) if elapsed_ms >= at => vec![ContactEvent::Declined],
            Pickup::DeclineAfterMs(_) => Vec::new(),
            Pickup::AnswerAfterMs(at) if elapsed_ms >= at => {
                let mut events = vec![ContactEvent::Answered];
                if self.hangup_after_ms.is_some_and(|h| elapsed_ms >= at.saturating_add(h)) {
                    events.push(ContactEvent::HungUp);
                }
                events
            }
            Pickup::AnswerAfterMs(_) => Vec::new(),
        }
    }
}

/// A ring request, as the edge sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ring {
    pub call_id: CallId,
    pub resident: ResidentId,
    pub caller_name: String,
    pub contact: ContactId,
    pub kind: CallKind,
    pub number: PhoneNumber,
    pub max_duration_secs: u32,
    pub rate_cents_per_min: u32,
    pub balance_cents: i64,
}

fn id_sql(id: CallId) -> i64 {
    i64::from_ne_bytes(id.to_ne_bytes())
}

fn id_from_sql(v: i64) -> CallId {
    u64::from_ne_bytes(v.to_ne_bytes())
}

fn ms_sql(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn encode(value: &impl Serialize) -> Result<String, DbError> {
    serde_json::to_string(value).map_err(|e| DbError::Encode(e.to_string()))
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, text: &str) -> Result<T, DbError> {
    serde_json::from_str(text).map_err(|e| DbError::Corrupt { key: key.to_string(), reason: e.to_string() })
}

/// Sets the script for the next call to `contact` (replacing one not used yet).
pub fn set_script(db: &mut Db, contact: ContactId, script: &Script) -> Result<(), DbError> {
    let w = db.writer()?;
    w.connection().execute(
        "INSERT INTO call_script (contact, script) VALUES (?1, ?2)
         ON CONFLICT (contact) DO UPDATE SET script = excluded.script",
        params![ms_sql(contact.0), encode(script)?],
    )?;
    w.commit()
}

/// The edge rings a contact: the call is recorded with the contact's script
/// (consumed). A repeated ring of the same call changes nothing.
pub fn ring(db: &mut Db, facility: &FacilityId, ring: &Ring, now_ms: u64) -> Result<(), DbError> {
    let w = db.writer()?;
    let conn = w.connection();
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM call WHERE facility = ?1 AND call_id = ?2",
            params![facility.as_str(), id_sql(ring.call_id)],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_some() {
        return Ok(());
    }
    let contact = ms_sql(ring.contact.0);
    let script: Option<String> = conn
        .query_row("SELECT script FROM call_script WHERE contact = ?1", [contact], |r| r.get(0))
        .optional()?;
    let script = match script {
        Some(text) => decode::<Script>("call_script", &text)?,
        None => Script::default(),
    };
    conn.execute("DELETE FROM call_script WHERE contact = ?1", [contact])?;
    conn.execute(
        "INSERT INTO call (facility, call_id, ring, script, rung_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![facility.as_str(), id_sql(ring.call_id), encode(ring)?, encode(&script)?, ms_sql(now_ms)],
    )?;
    w.commit()
}

/// The script, ring and ring time of a call, for the contact's media leg.
pub fn script_of(db: &Db, facility: &str, call_id: CallId) -> Result<Option<(Script, Ring, u64)>, DbError> {
    let row: Option<(String, String, i64)> = db
        .connection()
        .query_row(
            "SELECT script, ring, rung_at_ms FROM call WHERE facility = ?1 AND call_id = ?2",
            params![facility, id_sql(call_id)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((script, ring, rung_at)) = row else { return Ok(None) };
    Ok(Some((decode("call", &script)?, decode("call", &ring)?, u64::try_from(rung_at).unwrap_or(0))))
}

/// Records what the contact's media leg of a call sent and received.
pub fn record_media(
    db: &mut Db,
    facility: &str,
    call_id: CallId,
    report: &impl Serialize,
) -> Result<(), DbError> {
    let w = db.writer()?;
    w.connection().execute(
        "UPDATE call SET media = ?3 WHERE facility = ?1 AND call_id = ?2",
        params![facility, id_sql(call_id), encode(report)?],
    )?;
    w.commit()
}

/// The contact events of these calls so far. Ended and unknown calls report
/// nothing.
pub fn status(
    db: &Db,
    facility: &FacilityId,
    call_ids: &[CallId],
    now_ms: u64,
) -> Result<Vec<ContactCallEvent>, DbError> {
    let mut stmt = db.connection().prepare_cached(
        "SELECT script, rung_at_ms FROM call WHERE facility = ?1 AND call_id = ?2 AND end_reason IS NULL",
    )?;
    let mut events = Vec::new();
    for &call_id in call_ids {
        let row: Option<(String, i64)> = stmt
            .query_row(params![facility.as_str(), id_sql(call_id)], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((script, rung_at)) = row else { continue };
        let script: Script = decode("call", &script)?;
        let elapsed = now_ms.saturating_sub(u64::try_from(rung_at).unwrap_or(0));
        events.extend(script.events_at(elapsed).into_iter().map(|event| ContactCallEvent { call_id, event }));
    }
    Ok(events)
}

/// The edge ended the call: the contact's leg is dropped. The first reason
/// stays.
pub fn end(
    db: &mut Db,
    facility: &FacilityId,
    call_id: CallId,
    reason: CallEndReason,
    now_ms: u64,
) -> Result<(), DbError> {
    let w = db.writer()?;
    w.connection().execute(
        "UPDATE call SET end_reason = ?3, ended_at_ms = ?4
         WHERE facility = ?1 AND call_id = ?2 AND end_reason IS NULL",
        params![facility.as_str(), id_sql(call_id), encode(&reason)?, ms_sql(now_ms)],
    )?;
    w.commit()
}

/// The edge warned the call: the contact's timer turns red. The first
/// warning stays.
pub fn warn(
    db: &mut Db,
    facility: &FacilityId,
    call_id: CallId,
    remaining_secs: u32,
    now_ms: u64,
) -> Result<(), DbError> {
    let w = db.writer()?;
    w.connection().execute(
        "UPDATE call SET warned_at_ms = ?3, warning_remaining_secs = ?4
         WHERE facility = ?1 AND call_id = ?2 AND warned_at_ms IS NULL",
        params![facility.as_str(), id_sql(call_id), ms_sql(now_ms), remaining_secs],
    )?;
    w.commit()
}

/// Every call seen, oldest first, with its end reason, and every call
/// record (CDR) the edges delivered with what was collected.
pub fn list(db: &Db) -> Result<Value, DbError> {
    let mut stmt = db.connection().prepare(
        "SELECT facility, call_id, ring, script, rung_at_ms, ended_at_ms, end_reason, media,
                warned_at_ms, warning_remaining_secs FROM call
         ORDER BY rung_at_ms, call_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, Option<i64>>(8)?,
            r.get::<_, Option<i64>>(9)?,
        ))
    })?;
    let mut calls = Vec::new();
    for row in rows {
        let (
            facility,
            call_id,
            ring,
            script,
            rung_at_ms,
            ended_at_ms,
            end_reason,
            media,
            warned_at_ms,
            warning_secs,
        ) = row?;
        let media: Option<Value> = media.map(|text| decode("call", &text)).transpose()?;
        let ring: Ring = decode("call", &ring)?;
        let script: Script = decode("call", &script)?;
        let end_reason: Option<CallEndReason> = end_reason.map(|text| decode("call", &text)).transpose()?;
        calls.push(json!({
            "facility": facility, "call_id": id_from_sql(call_id), "ring": ring, "script": script,
            "rung_at_ms": rung_at_ms, "ended_at_ms": ended_at_ms, "end_reason": end_reason,
            "media": media, "warned_at_ms": warned_at_ms, "warning_remaining_secs": warning_secs,
        }));
    }
    let mut stmt = db
        .connection()
        .prepare("SELECT facility, body FROM application WHERE kind = 'CallRecord' ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut records = Vec::new();
    for row in rows {
        let (facility, body) = row?;
        let body: Value = decode("application", &body)?;
        let cdr = body.pointer("/item/body/CallRecord").cloned().unwrap_or(Value::Null);
        let effect = body.get("effect").cloned().unwrap_or(Value::Null);
        records.push(json!({ "facility": facility, "cdr": cdr, "effect": effect }));
    }
    Ok(json!({ "ok": true, "command": "calls", "calls": calls, "records": records }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_report_everything_that_happened_so_far() {
        let answer = Script { pickup: Pickup::AnswerAfterMs(1000), hangup_after_ms: Some(5000) };
        assert!(answer.events_at(999).is_empty());
        assert_eq!(answer.events_at(1000), vec![ContactEvent::Answered]);
        assert_eq!(answer.events_at(5999), vec![ContactEvent::Answered]);
        assert_eq!(answer.events_at(6000), vec![ContactEvent::Answered, ContactEvent::HungUp]);
        let decline = Script { pickup: Pickup::DeclineAfterMs(2000), hangup_after_ms: None };
        assert!(decline.events_at(1999).is_empty());
        assert_eq!(decline.events_at(2000), vec![ContactEvent::Declined]);
        let silent = Script { pickup: Pickup::NoAnswer, hangup_after_ms: Some(1) };
        assert!(silent.events_at(u64::MAX).is_empty());
    }

    fn ring_of(call_id: CallId, contact: u64) -> Ring {
        Ring {
            call_id,
            resident: ResidentId::new("R1001"),
            caller_name: "Caller".into(),
            contact: ContactId(contact),
            kind: CallKind::Video,
            number: "+15555550100".to_string(),
            max_duration_secs: 70,
            rate_cents_per_min: 25,
            balance_cents: 1000,
        }
    }

    #[test]
    fn a_script_is_used_by_the_next_call_only_and_an_ended_call_goes_quiet() {
        let dir = tempfile::tempdir().unwrap();
        crate::state::init(dir.path(), None).unwrap();
        let mut db = Db::open(dir.path()).unwrap();
        let f = FacilityId::new("demo-ca-01");
        set_script(
            &mut db,
            ContactId(1),
            &Script { pickup: Pickup::DeclineAfterMs(0), hangup_after_ms: None },
        )
        .unwrap();
        let first = u64::MAX - 1; // ids above i64::MAX survive the round trip
        ring(&mut db, &f, &ring_of(first, 1), 10_000).unwrap();
        ring(&mut db, &f, &ring_of(7, 1), 10_000).unwrap();
        let events = status(&db, &f, &[first, 7, 99], 10_500).unwrap();
        assert_eq!(events, vec![ContactCallEvent { call_id: first, event: ContactEvent::Declined }]);
        let events = status(&db, &f, &[7], 12_000).unwrap();
        assert_eq!(events, vec![ContactCallEvent { call_id: 7, event: ContactEvent::Answered }]);
        end(&mut db, &f, 7, CallEndReason::TimeLimit, 13_000).unwrap();
        end(&mut db, &f, 7, CallEndReason::EdgeRestarted, 14_000).unwrap();
        assert!(status(&db, &f, &[7], 20_000).unwrap().is_empty());
        let listed = list(&db).unwrap();
        let calls = listed["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2);
        let seven = calls.iter().find(|c| c["call_id"] == 7).unwrap();
        assert_eq!(seven["end_reason"], "TimeLimit");
        let other = calls.iter().find(|c| c["call_id"] == first).unwrap();
        assert_eq!(other["end_reason"], Value::Null);
    }
}
