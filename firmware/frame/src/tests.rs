extern crate std;
use std::vec::Vec;

use super::*;

fn widest_status() -> ToAgent {
    ToAgent::Status(PanelStatus {
        uptime_ms: u32::MAX,
        key_lockdown: true,
        chassis_open: true,
        tamper_events: u32::MAX,
        tampers_acked: u32::MAX,
        main_board_resets: u32::MAX,
        resets_acked: u32::MAX,
        temperature_centi: Some(i16::MIN),
        over_temp: true,
        heartbeats_seen: u32::MAX,
        last_heartbeat_seq: u32::MAX,
    })
}

fn frame_of<M: Serialize>(message: &M) -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME];
    encode(message, &mut out).expect("fits").to_vec()
}

fn decode_all<M: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Vec<Result<M, FrameError>> {
    let mut decoder = Decoder::new();
    bytes.iter().filter_map(|&b| decoder.push(b)).collect()
}

#[test]
fn every_message_round_trips_and_the_widest_fits() {
    let messages = [
        ToPanel::Heartbeat { seq: u32::MAX },
        ToPanel::Configure(PanelConfig {
            heartbeat_timeout_ms: u32::MAX,
            boot_grace_ms: u32::MAX,
            reset_pulse_ms: u16::MAX,
            over_temp_centi: i16::MIN,
        }),
        ToPanel::Leds(LedState {
            online: LedPattern::BlinkFast,
            offline: LedPattern::BlinkSlow,
            lockdown: LedPattern::On,
            fault: LedPattern::Off,
        }),
        ToPanel::AckEvents { resets: u32::MAX, tampers: u32::MAX },
    ];
    for message in messages {
        let frame = frame_of(&message);
        assert_eq!(frame.iter().filter(|&&b| b == 0).count(), 1, "only the delimiter is zero");
        assert_eq!(decode_all::<ToPanel>(&frame), [Ok(message)]);
    }
    let status = widest_status();
    let frame = frame_of(&status);
    assert!(frame.len() <= MAX_FRAME);
    assert_eq!(decode_all::<ToAgent>(&frame), [Ok(status)]);
}

#[test]
fn a_flipped_bit_is_a_crc_error_and_the_next_frame_still_decodes() {
    let good = ToPanel::Heartbeat { seq: 7 };
    let mut bad = frame_of(&ToPanel::Heartbeat { seq: 6 });
    // Flip a bit inside the body without creating a zero byte.
    bad[2] ^= 0x01;
    assert_ne!(bad[2], 0);
    let mut stream = bad;
    stream.extend(frame_of(&good));
    let results = decode_all::<ToPanel>(&stream);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(matches!(results[0], Err(FrameError::Crc) | Err(FrameError::Cobs)), "{results:?}");
    assert_eq!(results[1], Ok(good));
}

#[test]
fn bad_cobs_is_a_cobs_error() {
    // A code byte that points past the end of the frame.
    let results = decode_all::<ToPanel>(&[0x09, 0x01, 0x02, 0x00]);
    assert_eq!(results, [Err(FrameError::Cobs)]);
}

#[test]
fn an_oversize_frame_is_dropped_whole_and_the_next_one_decodes() {
    let mut stream = std::vec![0x55u8; MAX_FRAME * 3];
    stream.push(0);
    let good = ToPanel::AckEvents { resets: 1, tampers: 2 };
    stream.extend(frame_of(&good));
    assert_eq!(decode_all::<ToPanel>(&stream), [Err(FrameError::Oversize), Ok(good)]);
}

#[test]
fn a_receiver_joining_mid_frame_resynchronises_at_the_delimiter() {
    let first = frame_of(&ToPanel::Heartbeat { seq: 1 });
    let second = ToPanel::Heartbeat { seq: 2 };
    let mut stream = first[3..].to_vec();
    stream.extend(frame_of(&second));
    let results = decode_all::<ToPanel>(&stream);
    assert_eq!(results.last(), Some(&Ok(second)));
    assert_eq!(results.len(), 2, "the torn frame is one error, nothing more: {results:?}");
    assert!(results[0].is_err());
}

#[test]
fn a_valid_crc_over_a_wrong_body_is_a_body_error_and_a_short_frame_is_truncated() {
    // Body 0xFF is not a valid ToPanel variant index.
    let body = [0xFFu8];
    let mut raw = body.to_vec();
    raw.extend(CRC.checksum(&body).to_le_bytes());
    let mut encoded = [0u8; 16];
    let n = cobs::encode(&raw, &mut encoded);
    let mut stream = encoded[..n].to_vec();
    stream.push(0);
    stream.extend([0x02, 0x05, 0x00]);
    assert_eq!(decode_all::<ToPanel>(&stream), [Err(FrameError::Body), Err(FrameError::Truncated)]);
}

#[test]
fn empty_frames_yield_nothing_and_a_small_buffer_is_an_encode_error() {
    assert!(decode_all::<ToPanel>(&[0, 0, 0]).is_empty());
    let mut tiny = [0u8; 4];
    assert_eq!(encode(&widest_status(), &mut tiny), Err(EncodeError));
}
