//! Hostile input: arbitrary bytes, mutated and truncated valid frames, and
//! lying length fields always end in a typed `FrameError`, never a panic.

mod common;

use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use proto::central::{CentralToEdge, EdgeToCentral};
use proto::tablet::{ServerEvent, TabletRequest, TabletResponse};
use proto::{
    decode_body, decode_frame, encode_frame, parse_header, FrameError, HEADER_LEN, MAX_CENTRAL_FRAME,
    MAX_TABLET_FRAME, PROTOCOL_VERSION,
};
use serde::{de::DeserializeOwned, Serialize};

/// Decodes `bytes` as every message type. Whatever decodes must re-encode to a
/// frame that decodes to the same value (the decoder accepts nothing the
/// encoder could not have produced in meaning).
fn decode_as_every_type(bytes: &[u8]) -> Result<(), TestCaseError> {
    check_decoded::<TabletRequest>(bytes, MAX_TABLET_FRAME)?;
    check_decoded::<TabletResponse>(bytes, MAX_TABLET_FRAME)?;
    check_decoded::<ServerEvent>(bytes, MAX_TABLET_FRAME)?;
    check_decoded::<EdgeToCentral>(bytes, MAX_CENTRAL_FRAME)?;
    check_decoded::<CentralToEdge>(bytes, MAX_CENTRAL_FRAME)?;
    Ok(())
}

fn check_decoded<T>(bytes: &[u8], max: usize) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(msg) = decode_frame::<T>(bytes, max) {
        re_encodes_equal(msg)?;
    }
    // The same bytes seen as a body (as after a header read separately).
    if let Some(body) = bytes.get(HEADER_LEN..) {
        if let Ok(msg) = decode_body::<T>(body, max) {
            re_encodes_equal(msg)?;
        }
    }
    Ok(())
}

/// Byte equality is not required: e.g. jiff accepts `+000001-12-31` and
/// writes `0001-12-31`. The value must survive, though. The size may grow
/// (jiff writes `00:00:00` for `00:00`), so the limit is lifted.
fn re_encodes_equal<T>(msg: T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let max = u32::MAX as usize;
    let again = encode_frame(&msg, max).map_err(|e| TestCaseError::fail(format!("re-encode: {e}")))?;
    let back: T = decode_frame(&again, max).map_err(|e| TestCaseError::fail(format!("re-decode: {e}")))?;
    prop_assert_eq!(back, msg);
    Ok(())
}

/// A byte string that starts with a plausible header and version byte, so
/// that the postcard decoder (not just the header check) sees the bytes.
fn framed_garbage() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..256).prop_map(|body| {
        let mut frame = ((body.len() + 1) as u32).to_be_bytes().to_vec();
        frame.push(PROTOCOL_VERSION);
        frame.extend(body);
        frame
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Truncate { to: usize },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|to| Mutation::Truncate { to }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
    ]
}

fn apply(frame: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = frame.len();
        match *m {
            Mutation::Flip { at, bits } if len > 0 => frame[at % len] ^= bits,
            Mutation::Truncate { to } => frame.truncate(to % (len + 1)),
            Mutation::Insert { at, byte } => frame.insert(at % (len + 1), byte),
            Mutation::Remove { at } if len > 0 => {
                frame.remove(at % len);
            }
            _ => {}
        }
    }
}

/// Fixes the header after a mutation so the body reaches postcard.
fn reframe(frame: &mut [u8]) {
    if frame.len() >= HEADER_LEN {
        let len = (frame.len() - HEADER_LEN) as u32;
        frame[..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    }
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_as_every_type(&bytes)?;
    }

    #[test]
    fn framed_garbage_never_panics(frame in framed_garbage()) {
        decode_as_every_type(&frame)?;
    }

    #[test]
    fn mutated_tablet_frames_never_panic(
        msg in tablet_response(), mutations in proptest::collection::vec(mutation(), 1..4), fix_header in any::<bool>(),
    ) {
        let mut frame = encode_frame(&msg, MAX_TABLET_FRAME).unwrap();
        apply(&mut frame, &mutations);
        if fix_header {
            reframe(&mut frame);
        }
        decode_as_every_type(&frame)?;
    }

    #[test]
    fn mutated_central_frames_never_panic(
        msg in central_to_edge(), mutations in proptest::collection::vec(mutation(), 1..4), fix_header in any::<bool>(),
    ) {
        let mut frame = encode_frame(&msg, MAX_CENTRAL_FRAME).unwrap();
        apply(&mut frame, &mutations);
        if fix_header {
            reframe(&mut frame);
        }
        decode_as_every_type(&frame)?;
    }

    /// Every strict prefix of a valid frame is refused as truncated (the
    /// header cannot be satisfied), never decoded as something shorter.
    #[test]
    fn truncated_frames_are_refused(msg in tablet_response(), cut in any::<prop::sample::Index>()) {
        let frame = encode_frame(&msg, MAX_TABLET_FRAME).unwrap();
        let to = cut.index(frame.len());
        let err = decode_frame::<TabletResponse>(&frame[..to], MAX_TABLET_FRAME).unwrap_err();
        prop_assert!(matches!(err, FrameError::Truncated { .. }), "{err:?}");
    }

    /// Extra bytes after a valid frame are refused, not ignored.
    #[test]
    fn trailing_bytes_are_refused(msg in edge_to_central(), extra in proptest::collection::vec(any::<u8>(), 1..16)) {
        let mut frame = encode_frame(&msg, MAX_CENTRAL_FRAME).unwrap();
        frame.extend_from_slice(&extra);
        prop_assert_eq!(
            decode_frame::<EdgeToCentral>(&frame, MAX_CENTRAL_FRAME),
            Err(FrameError::TrailingBytes { extra: extra.len() })
        );
        // Trailing bytes inside a correctly sized body are refused too.
        reframe(&mut frame);
        prop_assert_eq!(
            decode_frame::<EdgeToCentral>(&frame, MAX_CENTRAL_FRAME),
            Err(FrameError::TrailingBytes { extra: extra.len() })
        );
    }

    /// Any header above the limit is refused by `parse_header` alone, so a
    /// reader never allocates a buffer for it.
    #[test]
    fn headers_over_the_limit_are_refused(max in 1usize..=MAX_CENTRAL_FRAME, over in 1u32..=u32::MAX) {
        let len = (max as u64 + over as u64).min(u32::MAX as u64) as u32;
        prop_assume!(len as usize > max);
        prop_assert_eq!(
            parse_header(len.to_be_bytes(), max),
            Err(FrameError::TooLarge { len: len as usize, max })
        );
    }

    #[test]
    fn other_versions_are_refused(msg in tablet_request(), version in any::<u8>()) {
        prop_assume!(version != PROTOCOL_VERSION);
        let mut frame = encode_frame(&msg, MAX_TABLET_FRAME).unwrap();
        frame[HEADER_LEN] = version;
        prop_assert_eq!(
            decode_frame::<TabletRequest>(&frame, MAX_TABLET_FRAME),
            Err(FrameError::UnsupportedVersion { got: version, supported: PROTOCOL_VERSION })
        );
    }
}

#[test]
fn four_gib_header_is_refused() {
    let header = u32::MAX.to_be_bytes();
    for max in [MAX_TABLET_FRAME, MAX_CENTRAL_FRAME] {
        assert_eq!(parse_header(header, max), Err(FrameError::TooLarge { len: u32::MAX as usize, max }));
        // decode_frame reports the lie in the header, not the missing bytes.
        let mut frame = header.to_vec();
        frame.extend_from_slice(&[PROTOCOL_VERSION, 0, 0]);
        assert_eq!(
            decode_frame::<CentralToEdge>(&frame, max),
            Err(FrameError::TooLarge { len: u32::MAX as usize, max })
        );
    }
}

#[test]
fn empty_header_and_body_are_refused() {
    assert_eq!(parse_header([0; HEADER_LEN], MAX_TABLET_FRAME), Err(FrameError::Empty));
    assert_eq!(decode_body::<TabletRequest>(&[], MAX_TABLET_FRAME), Err(FrameError::Empty));
    assert_eq!(
        decode_frame::<TabletRequest>(&[0, 0], MAX_TABLET_FRAME),
        Err(FrameError::Truncated { expected: HEADER_LEN, got: 2 })
    );
    // A body passed straight to decode_body is checked against the limit too.
    let body = vec![PROTOCOL_VERSION; MAX_TABLET_FRAME + 1];
    assert_eq!(
        decode_body::<TabletRequest>(&body, MAX_TABLET_FRAME),
        Err(FrameError::TooLarge { len: MAX_TABLET_FRAME + 1, max: MAX_TABLET_FRAME })
    );
}

/// Postcard's varint encoding of `n`.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `CentralToEdge::Changes(ChangeBatch { since: 0, changes: <claims 2^60> .. })`.
fn huge_vec_claim_body() -> Vec<u8> {
    let mut body = vec![PROTOCOL_VERSION, 1 /* Changes */, 0 /* since */];
    body.extend(varint(1 << 60));
    body
}

/// A Vec length prefix claiming 2^60 elements fails at once instead of
/// reserving memory for them (which would abort the process) or looping.
#[test]
fn huge_vec_length_prefix_fails_fast() {
    let body = huge_vec_claim_body();
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    let started = Instant::now();
    for _ in 0..1000 {
        let err = decode_frame::<CentralToEdge>(&frame, 64).unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err:?}");
        let err = decode_body::<CentralToEdge>(&body, 64).unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err:?}");
    }
    // Generous for a debug build on a loaded machine; a decoder that walked
    // or reserved 2^60 elements would take hours or abort.
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());

    // Same for a string length prefix (FacilityId in Welcome).
    let mut body = vec![PROTOCOL_VERSION, 0 /* Welcome */];
    body.extend(varint(1 << 60));
    body.extend_from_slice(b"abc");
    let err = decode_body::<CentralToEdge>(&body, 64).unwrap_err();
    assert!(matches!(err, FrameError::Malformed(_)), "{err:?}");
}
