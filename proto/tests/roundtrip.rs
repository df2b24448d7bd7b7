//! Every message type survives `encode_frame` -> `decode_frame` unchanged, and
//! the header always states the exact body length.

mod common;

use common::*;
use jiff::{civil::Date, Timestamp};
use proptest::prelude::*;
use proto::tablet::{ApiError, DenyReason, TabletRequest, TabletResponse};
use proto::{decode_frame, encode_frame, parse_header, HEADER_LEN, MAX_CENTRAL_FRAME, MAX_TABLET_FRAME};
use serde::{de::DeserializeOwned, Serialize};

fn assert_round_trip<T>(msg: &T, max: usize) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let frame = encode_frame(msg, max).map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    let header: [u8; HEADER_LEN] = frame[..HEADER_LEN].try_into().unwrap();
    prop_assert_eq!(parse_header(header, max), Ok(frame.len() - HEADER_LEN));
    let back: T = decode_frame(&frame, max).map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
    prop_assert_eq!(&back, msg);
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn tablet_request_round_trips(msg in tablet_request()) {
        assert_round_trip(&msg, MAX_TABLET_FRAME)?;
    }

    #[test]
    fn tablet_response_round_trips(msg in tablet_response()) {
        assert_round_trip(&msg, MAX_TABLET_FRAME)?;
    }

    #[test]
    fn server_event_round_trips(msg in server_event()) {
        assert_round_trip(&msg, MAX_TABLET_FRAME)?;
    }

    /// The outbox's payload on its own, with every body kind.
    #[test]
    fn outbox_item_round_trips(item in outbox_item()) {
        assert_round_trip(&item, MAX_CENTRAL_FRAME)?;
    }

    /// Random ids print as 32 lowercase hex digits that read back as the
    /// same id (tablets and scripts pass them around in that form).
    #[test]
    fn random_ids_display_as_fixed_width_hex(id in message_id(), key in idempotency_key()) {
        for (shown, value) in [(id.to_string(), id.as_u128()), (key.to_string(), key.as_u128())] {
            prop_assert_eq!(shown.len(), 32);
            prop_assert!(shown.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{}", shown);
            prop_assert_eq!(u128::from_str_radix(&shown, 16).unwrap(), value);
        }
    }

    #[test]
    fn edge_to_central_round_trips(msg in edge_to_central()) {
        assert_round_trip(&msg, MAX_CENTRAL_FRAME)?;
    }

    #[test]
    fn central_to_edge_round_trips(msg in central_to_edge()) {
        assert_round_trip(&msg, MAX_CENTRAL_FRAME)?;
    }

    /// A message that encodes to more than the limit is refused by the
    /// sender instead of being put on the wire.
    #[test]
    fn encoder_refuses_frames_over_the_limit(msg in central_to_edge()) {
        let frame = encode_frame(&msg, MAX_CENTRAL_FRAME).unwrap();
        let body_len = frame.len() - HEADER_LEN;
        let max = body_len - 1;
        prop_assert_eq!(
            encode_frame(&msg, max),
            Err(proto::FrameError::TooLarge { len: body_len, max })
        );
    }
}

/// jiff values at the edges of their range keep their full precision.
#[test]
fn jiff_extremes_round_trip() {
    for ts in [Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH, Timestamp::new(-1, -1).unwrap()] {
        let msg = TabletResponse::Error(ApiError::LockedOut { until: ts });
        assert_round_trip(&msg, MAX_TABLET_FRAME).unwrap();
    }
    for d in [Date::MIN, Date::MAX, Date::constant(2024, 2, 29)] {
        let msg = TabletResponse::Call(proto::tablet::CallDecision::Denied(DenyReason::CapReached {
            kind: proto::domain::CallKind::Video,
            resets_on: d,
        }));
        assert_round_trip(&msg, MAX_TABLET_FRAME).unwrap();
    }
}

/// Pins the wire layout so an accidental change of framing is caught.
#[test]
fn frame_layout_is_length_version_body() {
    let frame = encode_frame(&TabletRequest::Contacts, MAX_TABLET_FRAME).unwrap();
    // len = 2 (version byte + one-byte variant index), version 1, variant 2.
    assert_eq!(frame, vec![0, 0, 0, 2, proto::PROTOCOL_VERSION, 2]);
}

/// Postcard body of a wire message (after header and version byte).
fn body_of<T: Serialize>(msg: &T) -> Vec<u8> {
    encode_frame(msg, MAX_TABLET_FRAME).unwrap()[HEADER_LEN + 1..].to_vec()
}

/// The messaging variants were appended: tablets built before them still
/// read and write the earlier variants with the same indices, and the new
/// ones take the next indices in order.
#[test]
fn messaging_variants_are_appended_to_the_tablet_enums() {
    use proto::messaging::{MessageId, MessagingError};
    use proto::tablet::{Folder, ServerEvent};
    let id = MessageId::from_u128(1);
    assert_eq!(body_of(&TabletRequest::Balances), [5]);
    assert_eq!(body_of(&TabletRequest::Mailbox { folder: Folder::Drafts }), [6, 2]);
    assert_eq!(body_of(&TabletRequest::StampBalance), [15]);
    assert_eq!(body_of(&TabletResponse::Error(ApiError::NotLoggedIn)), [6, 0]);
    assert_eq!(body_of(&TabletResponse::DraftSaved { id })[0], 9);
    assert_eq!(body_of(&TabletResponse::Error(ApiError::Messaging(MessagingError::Empty))), [6, 7, 11]);
    assert_eq!(body_of(&ServerEvent::MailChanged { id, unread: 0 })[0], 2);
    // A random id is 16 raw bytes on the wire, most significant first.
    let mut expected = vec![9];
    expected.extend(id.0);
    assert_eq!(body_of(&TabletRequest::DeleteDraft { id }), expected);
    assert_eq!(id.0[15], 1);
}

/// A full release chunk (the most `FetchRelease` may ask for) plus its
/// envelope fits one central frame, so one chunk is always one frame.
#[test]
fn a_full_release_chunk_fits_one_central_frame() {
    use proto::central::{CentralToEdge, MAX_RELEASE_CHUNK};
    let chunk = CentralToEdge::ReleaseChunk {
        version: "999.999.999".into(),
        offset: u64::MAX,
        bytes: vec![0xa5; MAX_RELEASE_CHUNK as usize],
    };
    let frame = encode_frame(&chunk, MAX_CENTRAL_FRAME).unwrap();
    assert_eq!(decode_frame::<CentralToEdge>(&frame, MAX_CENTRAL_FRAME).unwrap(), chunk);
}
