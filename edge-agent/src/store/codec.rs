//! Conversions between proto values and SQLite column values.
//!
//! Decoding never panics: every helper returns the problem as text, which the
//! caller wraps into [`super::StoreError::Corrupt`] naming the table and key.

use jiff::{civil::Date, Timestamp};
use proto::domain::{AccountStatus, Approval, BlockScope, CallKind, FacilityId, Service};
use rusqlite::{types::ValueRef, Row};

/// A description of why a column could not be decoded.
pub(crate) type Problem = String;

/// SQLite integers are i64; proto ids and cursors are u64. The bit pattern is
/// kept as is so that no u64 is ever refused (which would wedge the sync feed).
pub(crate) fn u64_to_sql(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

pub(crate) fn u64_from_sql(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

pub(crate) fn approval_to_sql(approval: Approval) -> &'static str {
    match approval {
        Approval::Pending => "pending",
        Approval::Approved => "approved",
        Approval::Rejected => "rejected",
    }
}

pub(crate) fn approval_from_sql(text: &str) -> Result<Approval, Problem> {
    match text {
        "pending" => Ok(Approval::Pending),
        "approved" => Ok(Approval::Approved),
        "rejected" => Ok(Approval::Rejected),
        other => Err(format!("unknown approval {other:?}")),
    }
}

pub(crate) fn account_status_to_sql(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "active",
        AccountStatus::Closed => "closed",
    }
}

pub(crate) fn account_status_from_sql(text: &str) -> Result<AccountStatus, Problem> {
    match text {
        "active" => Ok(AccountStatus::Active),
        "closed" => Ok(AccountStatus::Closed),
        other => Err(format!("unknown account status {other:?}")),
    }
}

pub(crate) fn call_kind_to_sql(kind: CallKind) -> &'static str {
    match kind {
        CallKind::Voice => "voice",
        CallKind::Video => "video",
    }
}

pub(crate) fn call_kind_from_sql(text: &str) -> Result<CallKind, Problem> {
    match text {
        "voice" => Ok(CallKind::Voice),
        "video" => Ok(CallKind::Video),
        other => Err(format!("unknown call kind {other:?}")),
    }
}

fn service_to_sql(service: Service) -> &'static str {
    match service {
        Service::Voice => "voice",
        Service::Video => "video",
        Service::Message => "message",
    }
}

/// Services as a comma-separated list, in the order given.
pub(crate) fn services_to_sql(services: &[Service]) -> String {
    services.iter().map(|s| service_to_sql(*s)).collect::<Vec<_>>().join(",")
}

pub(crate) fn services_from_sql(text: &str) -> Result<Vec<Service>, Problem> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|part| match part {
            "voice" => Ok(Service::Voice),
            "video" => Ok(Service::Video),
            "message" => Ok(Service::Message),
            other => Err(format!("unknown service {other:?}")),
        })
        .collect()
}

/// `(scope_kind, scope_facility)` columns of a block.
pub(crate) fn block_scope_to_sql(scope: &BlockScope) -> (&'static str, &str) {
    match scope {
        BlockScope::AllFacilities => ("all", ""),
        BlockScope::Facility(id) => ("facility", id.as_str()),
    }
}

pub(crate) fn block_scope_from_sql(kind: &str, facility: String) -> Result<BlockScope, Problem> {
    match kind {
        "all" => Ok(BlockScope::AllFacilities),
        "facility" => Ok(BlockScope::Facility(FacilityId(facility))),
        other => Err(format!("unknown block scope {other:?}")),
    }
}

pub(crate) fn timestamp_from_sql(text: &str) -> Result<Timestamp, Problem> {
    text.parse::<Timestamp>().map_err(|e| format!("bad timestamp {text:?}: {e}"))
}

pub(crate) fn date_from_sql(text: &str) -> Result<Date, Problem> {
    text.parse::<Date>().map_err(|e| format!("bad date {text:?}: {e}"))
}

/// Column accessors that report problems as text.
pub(crate) fn text(row: &Row<'_>, idx: usize) -> Result<String, Problem> {
    row.get::<_, String>(idx).map_err(|e| format!("column {idx}: {e}"))
}

pub(crate) fn opt_text(row: &Row<'_>, idx: usize) -> Result<Option<String>, Problem> {
    row.get::<_, Option<String>>(idx).map_err(|e| format!("column {idx}: {e}"))
}

pub(crate) fn int(row: &Row<'_>, idx: usize) -> Result<i64, Problem> {
    row.get::<_, i64>(idx).map_err(|e| format!("column {idx}: {e}"))
}

pub(crate) fn narrow<T: TryFrom<i64>>(row: &Row<'_>, idx: usize) -> Result<T, Problem> {
    let value = int(row, idx)?;
    T::try_from(value).map_err(|_| format!("column {idx}: {value} is out of range"))
}

pub(crate) fn boolean(row: &Row<'_>, idx: usize) -> Result<bool, Problem> {
    match int(row, idx)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(format!("column {idx}: {other} is not a boolean")),
    }
}

/// A loose rendering of a key column, for error messages about rows that may
/// be corrupt in any column, the key included.
pub(crate) fn describe(row: &Row<'_>, idx: usize) -> String {
    match row.get_ref(idx) {
        Ok(ValueRef::Null) => "NULL".to_owned(),
        Ok(ValueRef::Integer(i)) => i.to_string(),
        Ok(ValueRef::Real(r)) => r.to_string(),
        Ok(ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
        Ok(ValueRef::Blob(b)) => format!("blob of {} bytes", b.len()),
        Err(e) => format!("unreadable key ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u64_bit_cast_round_trips_extremes() {
        for v in [0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(u64_from_sql(u64_to_sql(v)), v);
        }
    }

    #[test]
    fn services_round_trip() {
        for services in [vec![], vec![Service::Voice], vec![Service::Message, Service::Voice, Service::Video]]
        {
            assert_eq!(services_from_sql(&services_to_sql(&services)).unwrap(), services);
        }
        assert!(services_from_sql("voice,fax").is_err());
    }

    #[test]
    fn unknown_enum_texts_are_problems_not_panics() {
        assert!(approval_from_sql("maybe").is_err());
        assert!(account_status_from_sql("").is_err());
        assert!(call_kind_from_sql("fax").is_err());
        assert!(block_scope_from_sql("planet", String::new()).is_err());
        assert!(timestamp_from_sql("yesterday").is_err());
        assert!(date_from_sql("2024-13-01").is_err());
    }
}
