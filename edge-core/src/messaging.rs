//! May this resident send (or keep as a draft) this message?
//!
//! Owns: the compose rules of `shared/domain/rules.md` ("Electronic
//! messages") as pure functions of the [`Directory`], the stamps the
//! [`Ledger`](crate::ledger::Ledger) says are spendable, and `now`: text
//! limits counted in Unicode scalar values, at most five attachments,
//! residents attach only eCards that are in the synced catalog, the contact
//! must be usable for messaging, and sending needs a stamp.
//!
//! Must not: spend stamps (the ledger does, after this said yes), store
//! drafts, or queue anything.
//!
//! # Order of checks
//!
//! 1. the contact: unknown or another resident's -> `UnknownContact`; not
//!    approved for messaging -> `ContactNotApproved`; any other reason the
//!    policy gives (resident inactive, message suspension, closed account,
//!    facility not synced) -> `NotAllowed(reason)`
//! 2. (send only) no stamp for the contact -> `NoStamps`, before the content,
//!    so a resident without stamps is sent to buy them first
//! 3. subject, then body, longer than the limit -> `TooLong`
//! 4. nothing at all to send -> `Empty`
//! 5. more than five attachments -> `TooManyAttachments`
//! 6. each attachment in order: not an eCard -> `AttachmentNotAllowed`;
//!    not in the catalog -> `UnknownECard`
//!
//! Drafts go through 1 (contact known only), 3, 5 and 6: a draft is kept
//! even when the contact is temporarily unusable or the stamps ran out, so
//! nothing the resident wrote is lost; the send re-checks everything.

use jiff::Timestamp;
use proto::domain::{FacilityRecord, ResidentId, Service};
use proto::messaging::{Attachment, Compose, MessagingError, TextField, MAX_ATTACHMENTS};
use proto::tablet::{Availability, DenyReason};

use crate::directory::{Directory, Lockdowns};
use crate::policy;

/// Default longest subject. The rules set no figure for subjects; this keeps
/// one line on the tablet and a frame well under the tablet frame limit.
pub const DEFAULT_SUBJECT_CHAR_LIMIT: u32 = 120;

/// The text limits in force, from the facility's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComposeLimits {
    pub subject_chars: u32,
    pub body_chars: u32,
}

impl ComposeLimits {
    pub fn for_facility(facility: &FacilityRecord) -> Self {
        Self { subject_chars: DEFAULT_SUBJECT_CHAR_LIMIT, body_chars: facility.message_char_limit }
    }
}

impl Default for ComposeLimits {
    fn default() -> Self {
        Self {
            subject_chars: DEFAULT_SUBJECT_CHAR_LIMIT,
            body_chars: FacilityRecord::DEFAULT_MESSAGE_CHAR_LIMIT,
        }
    }
}

/// Checks a message the resident wants to send now. `stamps_available` is
/// [`Ledger::stamps`](crate::ledger::Ledger::stamps)`.available` for the
/// contact. See the module docs for the order of checks.
pub fn validate_send(
    dir: &Directory,
    lockdowns: &Lockdowns,
    resident: &ResidentId,
    compose: &Compose,
    stamps_available: u32,
    now: Timestamp,
) -> Result<(), MessagingError> {
    check_contact_usable(dir, lockdowns, resident, compose, now)?;
    if stamps_available == 0 {
        return Err(MessagingError::NoStamps { contact: compose.contact });
    }
    check_content(dir, compose)
}

/// Checks a draft before it is saved. See the module docs.
pub fn validate_draft(
    dir: &Directory,
    resident: &ResidentId,
    compose: &Compose,
) -> Result<(), MessagingError> {
    match dir.contact(compose.contact) {
        Some(contact) if &contact.resident == resident => {}
        _ => return Err(MessagingError::UnknownContact { contact: compose.contact }),
    }
    check_content(dir, compose)
}

/// Length in Unicode scalar values, the unit the rules count in: an emoji
/// made of several code points counts as several, as central counts them.
pub fn char_count(text: &str) -> u32 {
    u32::try_from(text.chars().count()).unwrap_or(u32::MAX)
}

fn check_contact_usable(
    dir: &Directory,
    lockdowns: &Lockdowns,
    resident: &ResidentId,
    compose: &Compose,
    now: Timestamp,
) -> Result<(), MessagingError> {
    let contact = match dir.contact(compose.contact) {
        Some(contact) if &contact.resident == resident => contact,
        _ => return Err(MessagingError::UnknownContact { contact: compose.contact }),
    };
    match policy::availability(dir, lockdowns, resident, contact, Service::Message, now) {
        Availability::Available => Ok(()),
        Availability::Unavailable(DenyReason::NotApproved { status, .. }) => {
            Err(MessagingError::ContactNotApproved { status })
        }
        Availability::Unavailable(DenyReason::UnknownContact { contact }) => {
            Err(MessagingError::UnknownContact { contact })
        }
        Availability::Unavailable(reason) => Err(MessagingError::NotAllowed(reason)),
    }
}

fn check_content(dir: &Directory, compose: &Compose) -> Result<(), MessagingError> {
    let limits = dir.facility().map(ComposeLimits::for_facility).unwrap_or_default();
    for (field, text, limit) in [
        (TextField::Subject, &compose.subject, limits.subject_chars),
        (TextField::Body, &compose.body, limits.body_chars),
    ] {
        let chars = char_count(text);
        if chars > limit {
            return Err(MessagingError::TooLong { field, chars, limit });
        }
    }
    if compose.subject.trim().is_empty() && compose.body.trim().is_empty() && compose.attachments.is_empty() {
        return Err(MessagingError::Empty);
    }
    if compose.attachments.len() > MAX_ATTACHMENTS {
        return Err(MessagingError::TooManyAttachments {
            count: u32::try_from(compose.attachments.len()).unwrap_or(u32::MAX),
            max: MAX_ATTACHMENTS as u32,
        });
    }
    for attachment in &compose.attachments {
        match attachment {
            Attachment::ECard(id) if dir.ecard(*id).is_some() => {}
            Attachment::ECard(id) => return Err(MessagingError::UnknownECard(*id)),
            other => return Err(MessagingError::AttachmentNotAllowed(*other)),
        }
    }
    Ok(())
}
