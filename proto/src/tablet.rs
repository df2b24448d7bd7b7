//! Tablet <-> edge messages. Each RPC is one QUIC bidirectional stream: one
//! [`TabletRequest`] frame, one [`TabletResponse`] frame. The edge pushes
//! [`ServerEvent`]s on unidirectional streams it opens.
//!
//! The tablet shows; the edge decides. Every refusal carries a typed reason
//! the tablet can put into plain words.

use jiff::{civil::Date, Timestamp};
use serde::{Deserialize, Serialize};

use crate::domain::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TabletRequest {
    Login { resident: ResidentId, pin: String },
    Logout,
    Contacts,
    Hours,
    PlaceCall { contact: ContactId, kind: CallKind, number: Option<PhoneNumber> },
    Balances,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TabletResponse {
    LoggedIn(SessionInfo),
    LoggedOut,
    Contacts(ContactList),
    Hours(HoursView),
    Call(CallDecision),
    Balances(BalancesView),
    Error(ApiError),
}

/// How fresh the edge's cached copy of central's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freshness {
    pub uplink_up: bool,
    /// Seconds since the last successful sync; `None` if never synced.
    pub cache_age_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub resident: ResidentId,
    pub name: String,
    pub unit: UnitId,
    pub session_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Availability {
    Available,
    Unavailable(DenyReason),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    pub id: ContactId,
    pub name: String,
    pub numbers: Vec<PhoneNumber>,
    pub voice: Availability,
    pub video: Availability,
    pub message: Availability,
    pub video_balance_cents: Cents,
    pub video_rate_cents_per_min: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactList {
    pub contacts: Vec<ContactView>,
    pub freshness: Freshness,
}

/// A calling window as concrete instants plus the local wall-clock labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowView {
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// `HH:MM` in the facility's time zone.
    pub local_start: String,
    pub local_end: String,
    pub local_date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoursView {
    pub time_zone: String,
    pub local_date: Date,
    pub today: Vec<WindowView>,
    pub open_now: bool,
    pub next_window: Option<WindowView>,
    pub lockdown: Option<LockdownScope>,
}

/// What the call was limited by: the smallest of the candidates wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitedBy {
    CallLength,
    CallingWindow,
    Balance,
    PeriodicCap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallDecision {
    Allowed {
        max_duration_secs: u32,
        /// Seconds after connect at which the one-minute warning is due.
        warn_at_secs: u32,
        limited_by: LimitedBy,
    },
    Denied(DenyReason),
}

/// Why a communication is refused. Each variant is shown to the resident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DenyReason {
    OutsideCallingHours {
        next_window: Option<WindowView>,
    },
    Lockdown {
        scope: LockdownScope,
    },
    Suspended {
        services: Vec<Service>,
        ends_on: Date,
        reason: String,
    },
    NotApproved {
        service: Service,
        status: Approval,
    },
    NumberBlocked {
        number: PhoneNumber,
        scope: BlockScope,
    },
    AccountClosed,
    PrivilegedNumber {
        notice: String,
    },
    BarredNumber {
        number: PhoneNumber,
    },
    NumberNotAuthorized {
        number: PhoneNumber,
    },
    NoNumber,
    InsufficientBalance {
        balance_cents: Cents,
        rate_cents_per_min: u32,
    },
    CapReached {
        kind: CallKind,
        resets_on: Date,
    },
    ResidentInactive,
    UnknownContact {
        contact: ContactId,
    },
    /// The facility's settings are missing or invalid (e.g. unknown time zone);
    /// nothing is allowed until they are fixed.
    FacilityMisconfigured {
        detail: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactBalance {
    pub contact: ContactId,
    pub name: String,
    pub video_balance_cents: Cents,
    pub video_rate_cents_per_min: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancesView {
    pub debit_balance_cents: Cents,
    pub contacts: Vec<ContactBalance>,
    pub freshness: Freshness,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    #[error("log in first")]
    NotLoggedIn,
    /// Wrong PIN or unknown resident ID (not told apart, so IDs cannot be probed).
    #[error("resident ID or PIN is wrong; {remaining_attempts} attempts left")]
    BadCredentials { remaining_attempts: u32 },
    #[error("this ID is locked until {until}")]
    LockedOut { until: Timestamp },
    #[error("this session has ended: {reason:?}")]
    SessionEnded { reason: SessionEndReason },
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The edge cannot answer this for a reason the resident should see
    /// (e.g. the facility's settings have not been synced yet).
    #[error("unavailable: {reason:?}")]
    Unavailable { reason: DenyReason },
    #[error("the edge could not answer: {0}")]
    Internal(String),
    #[error(transparent)]
    Messaging(crate::messaging::MessagingError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionEndReason {
    LoggedOut,
    LoggedInElsewhere,
    DeviceDisconnected,
    ResidentInactive,
}

/// Pushed by the edge on a unidirectional stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerEvent {
    SessionEnded { reason: SessionEndReason },
    LockdownChanged { active: Option<LockdownScope> },
}
