//! Feeds arbitrary bytes to `decode_frame` as every top-level message type,
//! and to the supervisor UART decoder (`supervisor-frame`) as both directions.
//! Decoding must never panic, abort or allocate without bound; whatever does
//! decode must survive a re-encode and decode unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::central::{CentralToEdge, EdgeToCentral};
use proto::tablet::{ServerEvent, TabletRequest, TabletResponse};
use proto::{decode_body, decode_frame, encode_frame, MAX_CENTRAL_FRAME, MAX_TABLET_FRAME};
use serde::{de::DeserializeOwned, Serialize};

const NO_LIMIT: usize = u32::MAX as usize;

fn check<T>(data: &[u8], max: usize)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(msg) = decode_frame::<T>(data, max) {
        assert_survives_re_encoding(msg);
    }
    // The same bytes as a body, as a reader sees them after parse_header.
    if let Ok(msg) = decode_body::<T>(data, max) {
        assert_survives_re_encoding(msg);
    }
}

fn assert_survives_re_encoding<T>(msg: T)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    // Re-encoding may legitimately grow (jiff writes `00:00:00` for an input
    // of `00:00`), so the round trip is checked without the limit.
    let frame = encode_frame(&msg, NO_LIMIT).expect("a decoded message re-encodes");
    let back: T = decode_frame(&frame, NO_LIMIT).expect("a re-encoded message decodes");
    assert_eq!(back, msg);
}

/// The supervisor UART stream: every byte through the decoder; whatever
/// decodes must re-encode within a frame and decode the same.
fn check_supervisor<T>(data: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut decoder = supervisor_frame::Decoder::new();
    for &byte in data {
        if let Some(Ok(msg)) = decoder.push::<T>(byte) {
            let mut buf = [0u8; supervisor_frame::MAX_FRAME];
            let frame = supervisor_frame::encode(&msg, &mut buf).expect("a decoded message re-encodes");
            let mut again = supervisor_frame::Decoder::new();
            let back: Vec<T> = frame.iter().filter_map(|&b| again.push::<T>(b)).filter_map(Result::ok).collect();
            assert_eq!(back, [msg]);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_supervisor::<supervisor_frame::ToPanel>(data);
    check_supervisor::<supervisor_frame::ToAgent>(data);
    check::<TabletRequest>(data, MAX_TABLET_FRAME);
    check::<TabletResponse>(data, MAX_TABLET_FRAME);
    check::<ServerEvent>(data, MAX_TABLET_FRAME);
    check::<EdgeToCentral>(data, MAX_CENTRAL_FRAME);
    check::<CentralToEdge>(data, MAX_CENTRAL_FRAME);
});
