//! Edge <-> central messages. One request frame and one response frame per
//! QUIC bidirectional stream.
//!
//! The downlink is a compacted change feed: every entity central holds carries
//! the sequence number of its last change, deletions stay as tombstones for a
//! retention period, and "changes since cursor N" returns every entity and
//! tombstone whose sequence is above N, in sequence order, one page at a time.
//! Asking from cursor 0 therefore yields a full snapshot. A cursor older than
//! the oldest retained tombstone is answered with [`CentralToEdge::CursorExpired`]
//! and the edge resyncs from 0 (see `EdgeToCentral::Changes::resync_floor`
//! for how the pages of that resync avoid expiring themselves).

use serde::{Deserialize, Serialize};

use crate::call::{CallEndReason, CallId, ContactCallEvent};
use crate::domain::*;
use crate::messaging::{
    DeliveryAck, ECardId, ECardRecord, MailRecord, MediaId, MediaInfo, MessageId, OutboxItem, PackageId,
    StampCountRecord, StampPackageRecord,
};

/// One synced entity, in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entity {
    Facility(FacilityRecord),
    Unit(HousingUnitRecord),
    Resident(ResidentRecord),
    Contact(ContactRecord),
    Block(BlockRecord),
    Privileged(PrivilegedNumberRecord),
    Suspension(SuspensionRecord),
    CapUsage(CapUsageRecord),
    ECard(ECardRecord),
    StampPackage(StampPackageRecord),
    StampCount(StampCountRecord),
    Mail(MailRecord),
}

/// The identity of a synced entity, for deletions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntityKey {
    Unit(UnitId),
    Resident(ResidentId),
    Contact(ContactId),
    Block(BlockRecord),
    Privileged(PhoneNumber),
    Suspension(u64),
    CapUsage { resident: ResidentId, kind: CallKind, period_start: jiff::civil::Date },
    ECard(ECardId),
    StampPackage(PackageId),
    StampCount { resident: ResidentId, contact: ContactId },
    Mail(MessageId),
}

impl Entity {
    /// The key a later deletion of this entity would carry (`None` for the
    /// facility itself, which is never deleted).
    pub fn key(&self) -> Option<EntityKey> {
        Some(match self {
            Entity::Facility(_) => return None,
            Entity::Unit(u) => EntityKey::Unit(u.id.clone()),
            Entity::Resident(r) => EntityKey::Resident(r.id.clone()),
            Entity::Contact(c) => EntityKey::Contact(c.id),
            Entity::Block(b) => EntityKey::Block(b.clone()),
            Entity::Privileged(p) => EntityKey::Privileged(p.number.clone()),
            Entity::Suspension(s) => EntityKey::Suspension(s.id),
            Entity::CapUsage(c) => EntityKey::CapUsage {
                resident: c.resident.clone(),
                kind: c.kind,
                period_start: c.period_start,
            },
            Entity::ECard(e) => EntityKey::ECard(e.id),
            Entity::StampPackage(p) => EntityKey::StampPackage(p.id),
            Entity::StampCount(s) => {
                EntityKey::StampCount { resident: s.resident.clone(), contact: s.contact }
            }
            Entity::Mail(m) => EntityKey::Mail(m.message.id),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Upsert(Entity),
    Delete(EntityKey),
}

/// One page of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBatch {
    /// The cursor the edge asked from.
    pub since: u64,
    pub changes: Vec<Change>,
    /// The cursor to ask from next; store it in the same transaction as the
    /// changes.
    pub next_cursor: u64,
    /// More pages are waiting beyond `next_cursor`.
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EdgeToCentral {
    /// Checks that central knows this facility and says what the box runs;
    /// answered with `Welcome`, which may offer a newer release.
    Hello { facility: FacilityId, agent_version: String, running: Option<RunningImage> },
    /// Asks for the change feed after `since`, at most `limit` changes.
    ///
    /// `resync_floor` is 0 outside a resync. During a resync it is the
    /// `oldest_valid` of the `CursorExpired` that started it. Central answers
    /// `CursorExpired` only when `since != 0` and its oldest valid cursor is
    /// above `max(since, resync_floor)`: the pages of a resync walk through
    /// old sequence numbers below the compaction point, and only tombstones
    /// purged after the resync began can hide a deletion from it.
    Changes { facility: FacilityId, since: u64, limit: u32, resync_floor: u64 },
    /// Delivers a batch of outbox items; answered with `Delivered`, one ack
    /// per item in any order. Central applies each key at most once.
    Deliver { facility: FacilityId, items: Vec<OutboxItem> },
    /// Asks for `len` bytes (at most [`MAX_RELEASE_CHUNK`]) of the bundle of
    /// release `version` from `offset`; answered with `ReleaseChunk` or
    /// `Error`. The edge resumes an interrupted download by asking from the
    /// length it already holds.
    FetchRelease { facility: FacilityId, version: String, offset: u64, len: u32 },
    /// Rings the contact (issue 5); answered with `Ringing`. The contact
    /// sees who calls, the limit, the rate and their balance before
    /// accepting.
    RingContact {
        facility: FacilityId,
        call_id: CallId,
        resident: ResidentId,
        caller_name: String,
        contact: ContactId,
        kind: CallKind,
        number: PhoneNumber,
        max_duration_secs: u32,
        rate_cents_per_min: u32,
        balance_cents: Cents,
    },
    /// Polled while calls ring or run; answered with `CallEvents`: every
    /// contact-side event of these calls so far.
    CallStatus { facility: FacilityId, call_ids: Vec<CallId> },
    /// The edge ended the call: central drops the contact's leg. Answered
    /// with `CallEnded`.
    EndCall { facility: FacilityId, call_id: CallId, reason: CallEndReason },
    /// The edge warned the resident: the contact's timer turns red too,
    /// `remaining_secs` before the cut. Answered with `CallWarned`.
    WarnCall { facility: FacilityId, call_id: CallId, remaining_secs: u32 },
    /// Asks for `len` bytes (at most [`MAX_MEDIA_CHUNK`]) of a contact's
    /// photo or VideoGram from `offset`; answered with `MediaChunk` or
    /// `Error(UnknownMedia)`. Every chunk carries the media's size, hash and
    /// type, so the first chunk is also the metadata; the edge resumes an
    /// interrupted download by asking from the length it already holds.
    FetchMedia { facility: FacilityId, media: MediaId, offset: u64, len: u32 },
}

/// Largest chunk of a media blob central sends in one `MediaChunk`.
pub const MAX_MEDIA_CHUNK: u32 = 1 << 20;

/// Largest chunk of a release bundle central sends in one `ReleaseChunk`
/// (well under the 8 MiB frame limit, so one chunk is one frame).
pub const MAX_RELEASE_CHUNK: u32 = 1 << 20;

/// What the edge box runs, as its boot entries and kernel command line say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningImage {
    /// `IMAGE_VERSION` of the running root (X.Y.Z).
    pub version: String,
    /// `a` or `b`.
    pub slot: String,
    /// The running slot has not passed its boot health check yet.
    pub on_trial: bool,
    /// Why the last update did not take (a rolled-back slot, a refused
    /// bundle), in words for central's operators.
    pub last_update_failure: Option<String>,
}

/// A release central wants the edge to run: a signed bundle of `size` bytes
/// whose SHA-256 is `sha256`. The hash only guards the transfer; the edge
/// installs nothing whose signature its own trusted keys do not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseOffer {
    pub version: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CentralToEdge {
    Welcome {
        facility: FacilityId,
        head_cursor: u64,
        /// The newest published release, when it is newer than what the
        /// edge reported running in `Hello`.
        release: Option<ReleaseOffer>,
    },
    Changes(ChangeBatch),
    /// `since` is older than the oldest retained tombstone: resync from 0.
    CursorExpired {
        since: u64,
        oldest_valid: u64,
    },
    Error(CentralError),
    /// Verdicts on a `Deliver` batch. An item without an ack is treated as
    /// not delivered and sent again.
    Delivered {
        acks: Vec<DeliveryAck>,
    },
    /// Bytes of a release bundle from `offset`: fewer than asked only at the
    /// end of the file.
    ReleaseChunk {
        version: String,
        offset: u64,
        bytes: Vec<u8>,
    },
    Ringing {
        call_id: CallId,
    },
    CallEvents {
        events: Vec<ContactCallEvent>,
    },
    CallEnded {
        call_id: CallId,
    },
    CallWarned {
        call_id: CallId,
    },
    /// Bytes of a media blob from `offset`: fewer than asked only at the
    /// end of the blob.
    MediaChunk {
        media: MediaId,
        info: MediaInfo,
        offset: u64,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CentralError {
    #[error("unknown facility {0}")]
    UnknownFacility(FacilityId),
    #[error("this connection's certificate is not for facility {0}")]
    WrongFacility(FacilityId),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("central is temporarily unable to answer: {0}")]
    Unavailable(String),
    #[error("central has no release {0}")]
    UnknownRelease(String),
    #[error("central has no media {0} for this facility")]
    UnknownMedia(MediaId),
}
