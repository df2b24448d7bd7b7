//! Domain vocabulary shared by every party: identifiers, services, approvals,
//! and the records central syncs down to the edge.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A facility, e.g. `"demo-ca-01"`.
    FacilityId
);
string_id!(
    /// A housing unit inside a facility, e.g. `"A"`.
    UnitId
);
string_id!(
    /// The number a resident types at login (state resident ID).
    ResidentId
);

/// A resident's contact (one approved relationship between a resident and a
/// person outside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContactId(pub u64);

impl std::fmt::Display for ContactId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A telephone number in E.164 form (`+15551234567`), or a short code (`911`).
pub type PhoneNumber = String;

/// Amount of money in US cents. Signed so that a ledger can show a debt
/// instead of wrapping.
pub type Cents = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CallKind {
    Voice,
    Video,
}

/// A communication service that a contact is approved for separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Service {
    Voice,
    Video,
    Message,
}

impl From<CallKind> for Service {
    fn from(kind: CallKind) -> Self {
        match kind {
            CallKind::Voice => Service::Voice,
            CallKind::Video => Service::Video,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Approval {
    Pending,
    Approved,
    Rejected,
}

/// Facility approval of one contact, per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Approvals {
    pub voice: Approval,
    pub video: Approval,
    pub message: Approval,
}

impl Approvals {
    pub fn get(&self, service: Service) -> Approval {
        match service {
            Service::Voice => self.voice,
            Service::Video => self.video,
            Service::Message => self.message,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccountStatus {
    Active,
    Closed,
}

/// Where a contact's block on a number applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BlockScope {
    AllFacilities,
    Facility(FacilityId),
}

/// ISO weekday, Monday = 1 .. Sunday = 7.
pub type IsoWeekday = u8;

/// One calling window on one weekday, in the facility's local wall-clock time.
/// `start_minute < end_minute`, both minutes after local midnight (end may be
/// 1440 = midnight). A window across midnight is two windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallingWindow {
    pub weekday: IsoWeekday,
    pub start_minute: u16,
    pub end_minute: u16,
}

/// A periodic cap on call minutes, e.g. 300 video minutes per 14 days.
/// Periods are consecutive blocks of `period_days` local days starting at
/// `anchor`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CapRule {
    pub kind: CallKind,
    pub minutes: u32,
    pub period_days: u16,
    pub anchor: Date,
}

/// Facility-wide settings. Every number the rules give is a setting here with
/// the rule's figure as its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacilityRecord {
    pub id: FacilityId,
    pub name: String,
    /// IANA time zone name, e.g. `America/Los_Angeles`.
    pub time_zone: String,
    pub voice_limit_secs: u32,
    pub video_limit_secs: u32,
    pub warning_secs: u32,
    pub caps: Vec<CapRule>,
    /// Dialled-number prefixes (national significant number, no `+1`) and
    /// short codes that can never be called, e.g. `800`, `900`, `911`, `411`.
    pub barred_prefixes: Vec<String>,
    /// Shown when a resident tries a privileged (attorney) number.
    pub legal_call_notice: String,
    pub message_char_limit: u32,
    pub login_max_failures: u32,
    pub login_lockout_secs: u32,
}

impl FacilityRecord {
    pub const DEFAULT_VOICE_LIMIT_SECS: u32 = 15 * 60;
    pub const DEFAULT_VIDEO_LIMIT_SECS: u32 = 30 * 60;
    pub const DEFAULT_WARNING_SECS: u32 = 60;
    pub const DEFAULT_MESSAGE_CHAR_LIMIT: u32 = 4000;
    pub const DEFAULT_LOGIN_MAX_FAILURES: u32 = 5;
    pub const DEFAULT_LOGIN_LOCKOUT_SECS: u32 = 15 * 60;

    pub fn default_barred_prefixes() -> Vec<String> {
        ["800", "833", "844", "855", "866", "877", "888", "900", "911", "411"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// A facility with the rules' default figures.
    pub fn with_defaults(id: FacilityId, name: impl Into<String>, time_zone: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            time_zone: time_zone.into(),
            voice_limit_secs: Self::DEFAULT_VOICE_LIMIT_SECS,
            video_limit_secs: Self::DEFAULT_VIDEO_LIMIT_SECS,
            warning_secs: Self::DEFAULT_WARNING_SECS,
            caps: Vec::new(),
            barred_prefixes: Self::default_barred_prefixes(),
            legal_call_notice: "Calls to attorneys cannot use this system. Ask your counselor to \
                                schedule a legal call."
                .into(),
            message_char_limit: Self::DEFAULT_MESSAGE_CHAR_LIMIT,
            login_max_failures: Self::DEFAULT_LOGIN_MAX_FAILURES,
            login_lockout_secs: Self::DEFAULT_LOGIN_LOCKOUT_SECS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HousingUnitRecord {
    pub id: UnitId,
    pub name: String,
    pub schedule: Vec<CallingWindow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidentRecord {
    pub id: ResidentId,
    pub name: String,
    pub unit: UnitId,
    /// argon2 PHC string.
    pub pin_hash: String,
    pub debit_balance_cents: Cents,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    pub id: ContactId,
    pub resident: ResidentId,
    pub name: String,
    pub account_status: AccountStatus,
    pub approvals: Approvals,
    /// Numbers the facility authorized for voice calls to this contact; the
    /// first one is the contact's primary number.
    pub numbers: Vec<PhoneNumber>,
    pub video_balance_cents: Cents,
    pub video_rate_cents_per_min: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlockRecord {
    pub number: PhoneNumber,
    pub scope: BlockScope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegedNumberRecord {
    pub number: PhoneNumber,
    pub label: String,
}

/// A resident's loss of some services. In force through the end of `ends_on`
/// (facility local date); it expires at the following local midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspensionRecord {
    pub id: u64,
    pub resident: ResidentId,
    pub services: Vec<Service>,
    pub ends_on: Date,
    pub reason: String,
}

/// Minutes a resident used in one cap period, as central counted them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapUsageRecord {
    pub resident: ResidentId,
    pub kind: CallKind,
    pub period_start: Date,
    pub used_secs: u32,
}

/// Where a lockdown applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockdownScope {
    Facility,
    Unit(UnitId),
}
