//! Compose rules: limits in characters, attachments, catalog, approval,
//! stamps, and the order in which refusals are reported.

mod common;

use common::*;
use edge_core::directory::{Directory, Lockdowns};
use edge_core::messaging::{char_count, validate_draft, validate_send, DEFAULT_SUBJECT_CHAR_LIMIT};
use jiff::Timestamp;
use proto::central::Entity;
use proto::domain::*;
use proto::messaging::*;
use proto::tablet::DenyReason;

const CARD: ECardId = ECardId(7);

fn now() -> Timestamp {
    utc("2026-03-10T20:00:00Z")
}

fn dir_with(limit: u32, message_approval: Approval) -> Directory {
    let mut dir = Directory::new();
    let mut facility = FacilityRecord::with_defaults(FacilityId::new(FACILITY), "Demo", LA);
    facility.message_char_limit = limit;
    dir.upsert(Entity::Facility(facility));
    dir.upsert(Entity::Unit(HousingUnitRecord {
        id: UnitId::new(UNIT),
        name: "A".into(),
        schedule: daily((7, 0), (22, 0)),
    }));
    dir.upsert(Entity::Resident(resident_record(RESIDENT, UNIT)));
    let mut contact = contact_record(CONTACT.0, RESIDENT, "Ada", &[PRIMARY]);
    contact.approvals.message = message_approval;
    dir.upsert(Entity::Contact(contact));
    dir.upsert(Entity::Contact(contact_record(2, "R-other", "Bob", &[SECOND])));
    dir.upsert(Entity::ECard(ECardRecord { id: CARD, category: "Birthdays".into(), title: "Cake".into() }));
    dir
}

fn dir() -> Directory {
    dir_with(FacilityRecord::DEFAULT_MESSAGE_CHAR_LIMIT, Approval::Approved)
}

fn compose(body: &str) -> Compose {
    Compose { contact: CONTACT, subject: "Hi".into(), body: body.into(), attachments: Vec::new() }
}

fn send(dir: &Directory, c: &Compose, stamps: u32) -> Result<(), MessagingError> {
    validate_send(dir, &Lockdowns::new(), &ResidentId::new(RESIDENT), c, stamps, now())
}

#[test]
fn the_limit_counts_characters_not_bytes() {
    // 4,000 two-byte characters (8,000 bytes) fit; one more does not.
    let at_limit = "é".repeat(4000);
    assert_eq!(char_count(&at_limit), 4000);
    assert_eq!(send(&dir(), &compose(&at_limit), 1), Ok(()));
    let over = "é".repeat(4001);
    assert_eq!(
        send(&dir(), &compose(&over), 1),
        Err(MessagingError::TooLong { field: TextField::Body, chars: 4001, limit: 4000 })
    );
    // Four-byte scalars count one each too.
    assert_eq!(char_count("😀😀"), 2);
}

#[test]
fn the_limit_is_the_facilitys_setting() {
    let dir = dir_with(10, Approval::Approved);
    assert_eq!(send(&dir, &compose("0123456789"), 1), Ok(()));
    assert_eq!(
        send(&dir, &compose("0123456789x"), 1),
        Err(MessagingError::TooLong { field: TextField::Body, chars: 11, limit: 10 })
    );
    let mut long_subject = compose("ok");
    long_subject.subject = "s".repeat(DEFAULT_SUBJECT_CHAR_LIMIT as usize + 1);
    assert!(matches!(
        send(&dir, &long_subject, 1),
        Err(MessagingError::TooLong { field: TextField::Subject, .. })
    ));
}

#[test]
fn five_ecards_from_the_catalog_and_nothing_else() {
    let mut c = compose("cards");
    c.attachments = vec![Attachment::ECard(CARD); 5];
    assert_eq!(send(&dir(), &c, 1), Ok(()));
    c.attachments.push(Attachment::ECard(CARD));
    assert_eq!(send(&dir(), &c, 1), Err(MessagingError::TooManyAttachments { count: 6, max: 5 }));

    c.attachments = vec![Attachment::ECard(ECardId(99))];
    assert_eq!(send(&dir(), &c, 1), Err(MessagingError::UnknownECard(ECardId(99))));
    c.attachments = vec![Attachment::Photo(MediaId(1))];
    assert_eq!(send(&dir(), &c, 1), Err(MessagingError::AttachmentNotAllowed(Attachment::Photo(MediaId(1)))));

    // A card withdrawn from the catalog can no longer be attached.
    let mut dir = dir();
    dir.delete(&proto::central::EntityKey::ECard(CARD));
    c.attachments = vec![Attachment::ECard(CARD)];
    assert_eq!(send(&dir, &c, 1), Err(MessagingError::UnknownECard(CARD)));
}

#[test]
fn the_contact_must_be_approved_and_the_residents_own() {
    for status in [Approval::Pending, Approval::Rejected] {
        assert_eq!(
            send(&dir_with(4000, status), &compose("x"), 1),
            Err(MessagingError::ContactNotApproved { status })
        );
    }
    let mut other = compose("x");
    other.contact = ContactId(2);
    assert_eq!(send(&dir(), &other, 1), Err(MessagingError::UnknownContact { contact: ContactId(2) }));
    other.contact = ContactId(404);
    assert_eq!(send(&dir(), &other, 1), Err(MessagingError::UnknownContact { contact: ContactId(404) }));
}

#[test]
fn a_message_suspension_is_reported_as_such() {
    let mut dir = dir();
    dir.upsert(Entity::Suspension(SuspensionRecord {
        id: 1,
        resident: ResidentId::new(RESIDENT),
        services: vec![Service::Message],
        ends_on: jiff::civil::date(2026, 3, 31),
        reason: "misuse".into(),
    }));
    assert!(matches!(
        send(&dir, &compose("x"), 1),
        Err(MessagingError::NotAllowed(DenyReason::Suspended { .. }))
    ));
}

#[test]
fn sending_needs_a_stamp_first_but_a_draft_does_not() {
    let too_long = compose(&"x".repeat(5000));
    // No stamps is reported before the content, to send the resident to buy.
    assert_eq!(send(&dir(), &too_long, 0), Err(MessagingError::NoStamps { contact: CONTACT }));
    assert_eq!(validate_draft(&dir(), &ResidentId::new(RESIDENT), &compose("later")), Ok(()));
    // Drafts still obey the content limits and belong to the resident's contacts.
    assert!(matches!(
        validate_draft(&dir(), &ResidentId::new(RESIDENT), &too_long),
        Err(MessagingError::TooLong { .. })
    ));
    let mut other = compose("x");
    other.contact = ContactId(2);
    assert!(matches!(
        validate_draft(&dir(), &ResidentId::new(RESIDENT), &other),
        Err(MessagingError::UnknownContact { .. })
    ));
    // A draft to a contact whose approval lapsed is kept.
    assert_eq!(
        validate_draft(&dir_with(4000, Approval::Pending), &ResidentId::new(RESIDENT), &compose("x")),
        Ok(())
    );
}

#[test]
fn an_empty_message_is_refused() {
    let mut c = compose("  ");
    c.subject = String::new();
    assert_eq!(send(&dir(), &c, 1), Err(MessagingError::Empty));
    c.attachments = vec![Attachment::ECard(CARD)];
    assert_eq!(send(&dir(), &c, 1), Ok(()));
}
