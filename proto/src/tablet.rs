//! Tablet <-> edge messages. Each RPC is one QUIC bidirectional stream: one
//! [`TabletRequest`] frame, one [`TabletResponse`] frame. The edge pushes
//! [`ServerEvent`]s on unidirectional streams it opens.
//!
//! The tablet shows; the edge decides. Every refusal carries a typed reason
//! the tablet can put into plain words.

use jiff::{civil::Date, Timestamp};
use serde::{Deserialize, Serialize};

use crate::domain::*;
use crate::messaging::{
    Attachment, Compose, Direction, ECardRecord, IdempotencyKey, MessageId, RefusalReason, StampPackageRecord,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TabletRequest {
    Login {
        resident: ResidentId,
        pin: String,
    },
    Logout,
    Contacts,
    Hours,
    PlaceCall {
        contact: ContactId,
        kind: CallKind,
        number: Option<PhoneNumber>,
    },
    Balances,
    // Messaging (issue 3); appended so earlier variants keep their encoding.
    /// One folder's messages, newest first, with the unread count.
    Mailbox {
        folder: Folder,
    },
    /// One message in full; an inbox message becomes read.
    ReadMessage {
        id: MessageId,
    },
    /// Creates (`draft: None`) or replaces a draft; drafts need no stamps.
    SaveDraft {
        draft: Option<MessageId>,
        compose: Compose,
    },
    DeleteDraft {
        id: MessageId,
    },
    /// Queues a message (from a draft, which is then removed); spends a stamp.
    SendMessage {
        draft: Option<MessageId>,
        compose: Compose,
    },
    /// Hides a sent message from the resident's Sent view; history keeps it.
    HideSent {
        id: MessageId,
    },
    /// The eCard catalog residents may attach.
    ECards,
    /// Stamp packages with prices, and the debit money available to buy them.
    StampPackages,
    BuyStamps {
        contact: ContactId,
        package: crate::messaging::PackageId,
    },
    /// Stamps per contact, and purchases that are queued or failed.
    StampBalance,
    // Calls (issue 5).
    /// Places a call: the policy decides, then the contact's phone rings.
    /// Answered with `CallStarted` or `Call(Denied(..))`; updates follow as
    /// `ServerEvent::Call`.
    StartCall {
        contact: ContactId,
        kind: CallKind,
        number: Option<PhoneNumber>,
    },
    HangUp {
        call_id: crate::call::CallId,
    },
    // Attachments (issue 6).
    /// Bytes of a photo or VideoGram attached to one of the resident's
    /// inbound messages, from `offset`; answered with `MediaChunk`.
    Media {
        media: crate::messaging::MediaId,
        offset: u64,
    },
}

/// Most media bytes one `MediaChunk` carries: well under
/// [`crate::MAX_TABLET_FRAME`] with the rest of the frame.
pub const MAX_TABLET_MEDIA_CHUNK: u32 = 48 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TabletResponse {
    LoggedIn(SessionInfo),
    LoggedOut,
    Contacts(ContactList),
    Hours(HoursView),
    Call(CallDecision),
    Balances(BalancesView),
    Error(ApiError),
    // Messaging (issue 3).
    Mailbox(MailboxView),
    Message(MessageView),
    DraftSaved {
        id: MessageId,
    },
    DraftDeleted {
        id: MessageId,
    },
    MessageQueued(MessageView),
    SentHidden {
        id: MessageId,
    },
    ECards(Vec<ECardRecord>),
    StampPackages(StampShop),
    StampsBought(PurchaseView),
    Stamps(StampBalances),
    // Calls (issue 5).
    CallStarted {
        call_id: crate::call::CallId,
        max_duration_secs: u32,
        /// Seconds after connect at which the warning is due.
        warn_at_secs: u32,
        /// Unset when the edge has no media relay: the call runs without media.
        media: Option<crate::call::CallMedia>,
    },
    HungUp {
        call_id: crate::call::CallId,
    },
    /// Up to [`MAX_TABLET_MEDIA_CHUNK`] bytes of a media blob from `offset`
    /// (fewer only at its end; none when `offset == total`).
    MediaChunk {
        media: crate::messaging::MediaId,
        content_type: crate::messaging::MediaType,
        total: u64,
        offset: u64,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Folder {
    Inbox,
    Sent,
    Drafts,
}

/// Where one message stands, in the words the tablet shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageState {
    Draft,
    /// Waiting in the edge's outbox (e.g. central is unreachable).
    Queued,
    /// The stamp purchase that paid for it was refused; kept, not sent.
    PaymentFailed {
        reason: RefusalReason,
    },
    /// Refused by central on delivery (not a review rejection).
    Refused {
        reason: RefusalReason,
    },
    /// Delivered; the facility is reviewing it.
    InReview,
    Approved,
    /// Rejected by review, with the reviewer's reason; the stamp is spent.
    Rejected {
        reason: String,
    },
    /// Inbound mail.
    Received {
        read: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSummary {
    pub id: MessageId,
    pub contact: ContactId,
    pub contact_name: String,
    pub direction: Direction,
    pub subject: String,
    pub at: Timestamp,
    pub attachments: u32,
    pub state: MessageState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxView {
    pub folder: Folder,
    pub messages: Vec<MessageSummary>,
    /// Unread inbound messages (in the inbox, whatever folder was asked).
    pub unread: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub id: MessageId,
    pub contact: ContactId,
    pub contact_name: String,
    pub direction: Direction,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub at: Timestamp,
    pub state: MessageState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampShop {
    pub packages: Vec<StampPackageRecord>,
    /// Debit money the edge can spend now: central's last confirmed balance
    /// minus purchases still queued.
    pub debit_available_cents: Cents,
    pub freshness: Freshness,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PurchaseState {
    Queued,
    Confirmed,
    PaymentFailed { reason: RefusalReason },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseView {
    pub key: IdempotencyKey,
    pub contact: ContactId,
    pub stamps: u32,
    pub price_cents: Cents,
    pub state: PurchaseState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactStamps {
    pub contact: ContactId,
    pub name: String,
    /// Stamps usable now (confirmed plus bought and queued).
    pub available: u32,
    /// Of those, bought while central was unreachable and not yet confirmed.
    pub awaiting_payment: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampBalances {
    pub contacts: Vec<ContactStamps>,
    pub purchases: Vec<PurchaseView>,
    pub debit_available_cents: Cents,
    pub freshness: Freshness,
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
    /// The resident already has a live call.
    #[error("call {call_id} is still under way")]
    CallInProgress { call_id: crate::call::CallId },
    /// No live call of this resident has this id (it may have just ended).
    #[error("no live call {call_id}")]
    UnknownCall { call_id: crate::call::CallId },
    /// The media is not attached to any message addressed to this resident
    /// (or does not exist).
    #[error("no attachment {media} in your messages")]
    UnknownMedia { media: crate::messaging::MediaId },
    /// The attachment is the resident's, but the edge has not downloaded it
    /// from central yet.
    #[error("attachment {media} is not downloaded yet")]
    MediaNotDownloaded { media: crate::messaging::MediaId },
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
    SessionEnded {
        reason: SessionEndReason,
    },
    LockdownChanged {
        active: Option<LockdownScope>,
    },
    /// New inbound mail, or a review result for the resident's own mail.
    MailChanged {
        id: MessageId,
        unread: u32,
    },
    /// A change of the resident's call (issue 5).
    Call(crate::call::CallUpdate),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::{MediaId, MediaType};
    use crate::{decode_frame, encode_frame, MAX_TABLET_FRAME};

    #[test]
    fn a_full_media_chunk_fits_one_tablet_frame() {
        let chunk = TabletResponse::MediaChunk {
            media: MediaId(u64::MAX),
            content_type: MediaType::WebmVp8,
            total: u64::MAX,
            offset: u64::MAX - 1,
            bytes: vec![0xA5; MAX_TABLET_MEDIA_CHUNK as usize],
        };
        let frame = encode_frame(&chunk, MAX_TABLET_FRAME).unwrap();
        assert_eq!(decode_frame::<TabletResponse>(&frame, MAX_TABLET_FRAME).unwrap(), chunk);
        let request = TabletRequest::Media { media: MediaId(3), offset: 9 };
        let frame = encode_frame(&request, MAX_TABLET_FRAME).unwrap();
        assert_eq!(decode_frame::<TabletRequest>(&frame, MAX_TABLET_FRAME).unwrap(), request);
    }
}
