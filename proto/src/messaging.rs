//! Electronic messages, stamps and the outbox that carries everything the
//! edge owes central.
//!
//! Owns: the vocabulary of messaging (messages, attachments, the eCard
//! catalog, stamp packages and counts), the items of the edge's outbox with
//! their idempotency keys, the per-item delivery verdicts central returns,
//! and the typed errors a tablet shows when a compose or a purchase is
//! refused.
//!
//! Must not: decide anything. Validation lives in `edge-core::messaging`,
//! balances in `edge-core::ledger`, delivery in `edge-core::outbox`.
//!
//! # Idempotency keys
//!
//! Every outbox item carries a 128-bit key drawn from the operating system's
//! random source by the shell when the item is created, and stored in the
//! same transaction as the item. Central applies each key at most once per
//! facility and answers a repeat with [`DeliveryOutcome::Duplicate`]. A
//! random key needs no counter that must survive a crash, a restore of the
//! edge's data from a backup, or the replacement of the box: a reused
//! `(edge, sequence)` pair after any of those would make central answer
//! "duplicate" for a new item, which deletes it unsent, the one failure
//! the outbox must never have. The order of items is the shell's durable
//! enqueue sequence, kept beside the key, not inside it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{Approval, CallKind, Cents, ContactId, PhoneNumber, ResidentId, Service};
use crate::tablet::DenyReason;

/// Most attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 5;

/// Longest VideoGram a contact may attach, in seconds.
pub const MAX_VIDEOGRAM_SECS: u16 = 30;

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            pub const fn from_u128(n: u128) -> Self {
                Self(n.to_be_bytes())
            }
            pub const fn as_u128(self) -> u128 {
                u128::from_be_bytes(self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:032x}", self.as_u128())
            }
        }
    };
}

random_id!(
    /// Identifies one outbox item to central for deduplication. Drawn at
    /// random by the shell; see the module docs for why.
    IdempotencyKey
);
random_id!(
    /// Identifies one message, draft or sent, for its whole life. Drawn at
    /// random by whoever creates the message (the edge for residents' messages,
    /// central for contacts').
    MessageId
);

/// One card of the facility's eCard catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ECardId(pub u64);

/// One stamp package on sale at the facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PackageId(pub u64);

/// A photo or video held by central (uploaded by a contact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MediaId(pub u64);

macro_rules! display_number {
    ($($name:ident),*) => {$(
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    )*};
}
display_number!(ECardId, PackageId, MediaId);

/// How a media blob is encoded. The tablet decodes photos with an image
/// decoder and VideoGrams with GStreamer (matroskademux + vp8dec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MediaType {
    Png,
    Jpeg,
    /// WebM (Matroska) with VP8 video.
    WebmVp8,
}

impl MediaType {
    /// The MIME type, e.g. for a file written by the tablet CLI.
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Png => "image/png",
            MediaType::Jpeg => "image/jpeg",
            MediaType::WebmVp8 => "video/webm",
        }
    }

    /// The inverse of [`MediaType::mime`].
    pub fn from_mime(mime: &str) -> Option<MediaType> {
        [MediaType::Png, MediaType::Jpeg, MediaType::WebmVp8].into_iter().find(|t| t.mime() == mime)
    }

    pub fn is_video(self) -> bool {
        matches!(self, MediaType::WebmVp8)
    }
}

/// What central says about a media blob: its length, SHA-256 and encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MediaInfo {
    pub size: u64,
    pub sha256: [u8; 32],
    pub content_type: MediaType,
}

impl Attachment {
    /// The media blob the attachment shows, if it is not an eCard.
    pub fn media(&self) -> Option<MediaId> {
        match *self {
            Attachment::ECard(_) => None,
            Attachment::Photo(m) | Attachment::SnapNSend(m) | Attachment::VideoGram { media: m, .. } => {
                Some(m)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Attachment {
    /// A card from the synced catalog; the only kind a resident may attach.
    ECard(ECardId),
    Photo(MediaId),
    /// A photo sent on its own from the contact's phone.
    SnapNSend(MediaId),
    VideoGram {
        media: MediaId,
        duration_secs: u16,
    },
}

/// What a resident writes: the content of a draft or of a message to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compose {
    pub contact: ContactId,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    ResidentToContact,
    ContactToResident,
}

/// A message as sent (either way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub resident: ResidentId,
    pub contact: ContactId,
    pub direction: Direction,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub sent_at: Timestamp,
}

/// Where central's review of a message stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Review {
    Pending,
    Approved,
    /// Shown to the sender with the reviewer's reason. The stamp is not
    /// refunded.
    Rejected {
        reason: String,
    },
}

/// A message central holds for a resident, synced down through the change
/// feed: inbound mail, and the review state of the resident's own sent mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailRecord {
    pub message: Message,
    pub review: Review,
}

/// One card of the catalog central syncs down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ECardRecord {
    pub id: ECardId,
    /// e.g. "Holidays", "Birthdays", "Motivational".
    pub category: String,
    pub title: String,
}

/// A stamp package and its price at this facility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampPackageRecord {
    pub id: PackageId,
    pub stamps: u32,
    pub price_cents: Cents,
}

/// How many stamps a resident holds for writing to one contact, as central
/// counts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampCountRecord {
    pub resident: ResidentId,
    pub contact: ContactId,
    pub stamps: u32,
}

/// A resident buys a stamp package for one contact from their debit account.
/// The price is the one the resident saw and agreed to; central refuses the
/// purchase if the package no longer sells at that price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampPurchase {
    pub resident: ResidentId,
    pub contact: ContactId,
    pub package: PackageId,
    pub stamps: u32,
    pub price_cents: Cents,
    pub bought_at: Timestamp,
}

/// A finished call, for billing and the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallDetailRecord {
    pub resident: ResidentId,
    pub contact: ContactId,
    pub kind: CallKind,
    pub number: PhoneNumber,
    pub started_at: Timestamp,
    pub connected_secs: u32,
    pub charged_cents: Cents,
}

/// One row of the edge's hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxBody {
    /// A resident's message. `funded_by` names the queued stamp purchase
    /// whose stamp pays for it, if it was not paid from stamps central had
    /// already confirmed; central refuses it if that purchase was not applied.
    SendMessage {
        message: Message,
        funded_by: Option<IdempotencyKey>,
    },
    BuyStamps(StampPurchase),
    CallRecord(CallDetailRecord),
    Audit(AuditRecord),
}

/// Items that must take effect at central in the order they were queued.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Lane {
    /// One resident writing to one contact: purchases and messages, in order,
    /// so a message never overtakes the purchase that paid for its stamp.
    Conversation { resident: ResidentId, contact: ContactId },
}

impl OutboxBody {
    /// The lane this item is ordered in; `None` for items whose effect does
    /// not depend on order. Call records are independent of each other; audit
    /// rows carry their order in the hash chain (central verifies the chain
    /// whatever order rows arrive in), so neither holds up the other.
    pub fn lane(&self) -> Option<Lane> {
        match self {
            OutboxBody::SendMessage { message, .. } => {
                Some(Lane::Conversation { resident: message.resident.clone(), contact: message.contact })
            }
            OutboxBody::BuyStamps(p) => {
                Some(Lane::Conversation { resident: p.resident.clone(), contact: p.contact })
            }
            OutboxBody::CallRecord(_) | OutboxBody::Audit(_) => None,
        }
    }
}

/// One item of the outbox, exactly as delivered to central.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub key: IdempotencyKey,
    pub created_at: Timestamp,
    pub body: OutboxBody,
}

/// Why central refused an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalReason {
    /// The resident's debit account cannot pay (e.g. it was spent elsewhere
    /// while the edge was offline).
    InsufficientFunds { balance_cents: Cents, price_cents: Cents },
    /// The package is gone or its price changed since the edge synced it.
    PackageUnavailable { package: PackageId },
    /// The message has no stamp to spend at central.
    NoStamps,
    /// The stamp purchase named in `funded_by` was never applied.
    FundingRefused { purchase: IdempotencyKey },
    /// The contact is (no longer) approved for this service, or the contact
    /// or resident is not known.
    NotAllowed { service: Service, detail: String },
    /// The key was already used for an item with different content.
    KeyReused,
    /// The item is malformed.
    Invalid { detail: String },
    /// Central could not take it now; meant with `permanent: false`.
    Unavailable { detail: String },
}

/// Central's verdict on one item. Central records the first final verdict
/// for a key (applied, or refused permanently) and repeats it for every later
/// delivery of that key, so a late or repeated delivery can never turn a
/// refusal into an application or the other way round. Transient refusals
/// are not recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryOutcome {
    /// Applied now. Its effect (a debit, a stamp count) is in the change feed
    /// at sequence `applied_at`.
    Accepted { applied_at: u64 },
    /// Applied earlier under the same key, at feed sequence `applied_at`.
    Duplicate { applied_at: u64 },
    /// Not applied. `permanent` refusals are never retried; others are.
    Refused { reason: RefusalReason, permanent: bool },
}

/// Central's verdict on one delivered item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAck {
    pub key: IdempotencyKey,
    pub outcome: DeliveryOutcome,
}

/// Which part of a compose is too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TextField {
    Subject,
    Body,
}

/// Why the edge refused a compose, a draft or a purchase. Nothing already
/// queued is affected by any of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MessagingError {
    #[error("no stamps left for contact {contact}: buy a stamp package first")]
    NoStamps { contact: ContactId },
    #[error("{field:?} is {chars} characters; the limit is {limit}")]
    TooLong { field: TextField, chars: u32, limit: u32 },
    #[error("{count} attachments; at most {max} are allowed")]
    TooManyAttachments { count: u32, max: u32 },
    #[error("eCard {0} is not in the catalog")]
    UnknownECard(ECardId),
    #[error("residents may attach eCards only")]
    AttachmentNotAllowed(Attachment),
    #[error("the debit account has {available_cents} cents available; the price is {price_cents}")]
    InsufficientFunds { available_cents: Cents, price_cents: Cents },
    #[error("this contact is not approved for messaging ({status:?})")]
    ContactNotApproved { status: Approval },
    #[error("unknown contact {contact}")]
    UnknownContact { contact: ContactId },
    #[error("messaging is not available: {0:?}")]
    NotAllowed(DenyReason),
    #[error("unknown stamp package {0}")]
    UnknownPackage(PackageId),
    #[error("no draft {0}; it was sent or deleted")]
    UnknownDraft(MessageId),
    #[error("a message needs a subject, a body or an attachment")]
    Empty,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::central::{CentralToEdge, EdgeToCentral};
    use crate::domain::FacilityId;
    use crate::{decode_frame, encode_frame, MAX_CENTRAL_FRAME};

    #[test]
    fn existing_variants_keep_their_encoding() {
        // postcard writes the variant index first; appending variants must
        // not move the old ones.
        let changes =
            EdgeToCentral::Changes { facility: FacilityId::new("f"), since: 3, limit: 9, resync_floor: 5 };
        assert_eq!(postcard::to_allocvec(&changes).unwrap(), vec![1, 1, b'f', 3, 9, 5]);
        let deliver = EdgeToCentral::Deliver { facility: FacilityId::new("f"), items: Vec::new() };
        assert_eq!(postcard::to_allocvec(&deliver).unwrap()[0], 2);
        let delivered = CentralToEdge::Delivered { acks: Vec::new() };
        assert_eq!(postcard::to_allocvec(&delivered).unwrap(), vec![4, 0]);
    }

    #[test]
    fn a_delivery_round_trips_through_a_frame() {
        let key = IdempotencyKey::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(key.to_string(), "0123456789abcdef0011223344556677");
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let item = OutboxItem {
            key,
            created_at: at,
            body: OutboxBody::SendMessage {
                message: Message {
                    id: MessageId::from_u128(9),
                    resident: ResidentId::new("R1"),
                    contact: ContactId(4),
                    direction: Direction::ResidentToContact,
                    subject: "Hi".into(),
                    body: "é😀".into(),
                    attachments: vec![Attachment::ECard(ECardId(2))],
                    sent_at: at,
                },
                funded_by: Some(IdempotencyKey::from_u128(1)),
            },
        };
        let request = EdgeToCentral::Deliver { facility: FacilityId::new("f"), items: vec![item] };
        let frame = encode_frame(&request, MAX_CENTRAL_FRAME).unwrap();
        assert_eq!(decode_frame::<EdgeToCentral>(&frame, MAX_CENTRAL_FRAME).unwrap(), request);
        let answer = CentralToEdge::Delivered {
            acks: vec![
                DeliveryAck { key, outcome: DeliveryOutcome::Duplicate { applied_at: 7 } },
                DeliveryAck {
                    key: IdempotencyKey::from_u128(2),
                    outcome: DeliveryOutcome::Refused { reason: RefusalReason::NoStamps, permanent: true },
                },
            ],
        };
        let frame = encode_frame(&answer, MAX_CENTRAL_FRAME).unwrap();
        assert_eq!(decode_frame::<CentralToEdge>(&frame, MAX_CENTRAL_FRAME).unwrap(), answer);
    }
}
