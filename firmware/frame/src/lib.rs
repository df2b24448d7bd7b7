//! UART frames between the front-panel supervisor MCU and the edge agent.
//!
//! Owns: the message types both sides speak ([`ToPanel`], [`ToAgent`]) and
//! their wire form, `COBS(postcard(message) ++ CRC-16/IBM-3740 LE) 0x00`.
//! The `0x00` delimiter lets a receiver that joins mid-stream, or that lost
//! bytes, resynchronise at the next frame; the CRC catches line noise COBS
//! cannot see.
//!
//! Must not: do I/O, allocate, or panic on any input. A bad frame is a typed
//! [`FrameError`] for that frame alone; the decoder is ready for the next one
//! and loses nothing that follows it. `no_std`, no alloc: the MCU links it.

#![no_std]

use crc::{Crc, CRC_16_IBM_3740};
use serde::{Deserialize, Serialize};

/// Largest postcard body of any message (checked by a test against the
/// largest message with every field at its widest).
pub const MAX_MESSAGE: usize = 48;
/// Body + CRC.
const MAX_RAW: usize = MAX_MESSAGE + 2;
/// Largest frame on the wire, delimiter included.
pub const MAX_FRAME: usize = cobs::max_encoding_length(MAX_RAW) + 1;

const CRC: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// How one status LED shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum LedPattern {
    #[default]
    Off,
    On,
    /// 1 Hz, half on.
    BlinkSlow,
    /// 4 Hz, half on.
    BlinkFast,
}

/// The four front-panel LEDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LedState {
    pub online: LedPattern,
    pub offline: LedPattern,
    pub lockdown: LedPattern,
    pub fault: LedPattern,
}

/// Settings the agent sends after every (re)connect; the MCU keeps them in
/// RAM and runs on its built-in defaults until the first one arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelConfig {
    /// Heartbeats missing this long: the main board is reset.
    pub heartbeat_timeout_ms: u32,
    /// After power-on or a reset pulse, how long the main board has to send
    /// its first heartbeat (booting takes longer than a heartbeat gap).
    pub boot_grace_ms: u32,
    /// How long the reset line is held asserted.
    pub reset_pulse_ms: u16,
    /// Temperature at or above which the over-temperature alarm is raised,
    /// in hundredths of a degree Celsius.
    pub over_temp_centi: i16,
}

impl Default for PanelConfig {
    fn default() -> Self {
        Self {
            heartbeat_timeout_ms: 30_000,
            boot_grace_ms: 120_000,
            reset_pulse_ms: 200,
            over_temp_centi: 7_000,
        }
    }
}

/// Agent → MCU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToPanel {
    Heartbeat {
        seq: u32,
    },
    Configure(PanelConfig),
    Leds(LedState),
    /// The agent has recorded events up to these totals (audit log); the MCU
    /// stops reporting them as new and unlatches the tamper alarm.
    AckEvents {
        resets: u32,
        tampers: u32,
    },
}

/// MCU → agent: the whole panel state, sent on every change, after every
/// reconnect and once a second, so no single lost frame loses anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PanelStatus {
    /// Milliseconds since the MCU started (wraps after 49 days).
    pub uptime_ms: u32,
    /// The lockdown key switch, debounced: true = turned to lockdown.
    pub key_lockdown: bool,
    /// The chassis is open now (debounced).
    pub chassis_open: bool,
    /// Chassis openings since the MCU powered up, including while the main
    /// board was off.
    pub tamper_events: u32,
    /// Openings the agent has acknowledged; `tamper_events > tampers_acked`
    /// means the tamper alarm is latched.
    pub tampers_acked: u32,
    /// Reset pulses the MCU gave the main board since it powered up.
    pub main_board_resets: u32,
    pub resets_acked: u32,
    /// Last temperature read, hundredths of a degree; None: the sensor did
    /// not answer.
    pub temperature_centi: Option<i16>,
    pub over_temp: bool,
    /// Heartbeats received since the MCU powered up.
    pub heartbeats_seen: u32,
    pub last_heartbeat_seq: u32,
}

/// MCU → agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToAgent {
    Status(PanelStatus),
}

/// Why one frame was dropped. The decoder carries on with the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame longer than {MAX_FRAME} bytes")]
    Oversize,
    #[error("bad COBS encoding")]
    Cobs,
    #[error("frame too short for a CRC")]
    Truncated,
    #[error("CRC mismatch")]
    Crc,
    #[error("body is not a valid message")]
    Body,
}

/// Why a message could not be encoded (only a buffer too small for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message does not fit the frame buffer")]
pub struct EncodeError;

/// Encodes `message` as one frame (delimiter included) into `out`; returns
/// the frame's bytes.
pub fn encode<'a, M: Serialize>(message: &M, out: &'a mut [u8]) -> Result<&'a [u8], EncodeError> {
    let mut raw = [0u8; MAX_RAW];
    let body_len = postcard::to_slice(message, &mut raw[..MAX_MESSAGE]).map_err(|_| EncodeError)?.len();
    let crc = CRC.checksum(&raw[..body_len]).to_le_bytes();
    raw[body_len..body_len + 2].copy_from_slice(&crc);
    let encoded = cobs::try_encode(&raw[..body_len + 2], out).map_err(|_| EncodeError)?;
    let end = out.get_mut(encoded).ok_or(EncodeError)?;
    *end = 0;
    Ok(&out[..=encoded])
}

/// Splits a byte stream into frames and decodes them. Feed it every byte
/// received, in order; it holds at most one frame.
pub struct Decoder {
    buf: [u8; MAX_FRAME],
    len: usize,
    /// The current frame overflowed: drop bytes up to the next delimiter.
    overflowed: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub const fn new() -> Self {
        Self { buf: [0; MAX_FRAME], len: 0, overflowed: false }
    }

    /// Feeds one byte. Returns `Some` at the end of each frame: the message
    /// or why that frame was dropped. Empty frames (delimiters back to back,
    /// which a sender may use to flush a line) yield nothing.
    pub fn push<M: for<'de> Deserialize<'de>>(&mut self, byte: u8) -> Option<Result<M, FrameError>> {
        if byte != 0 {
            if self.len == self.buf.len() {
                self.overflowed = true;
            } else {
                self.buf[self.len] = byte;
                self.len += 1;
            }
            return None;
        }
        let len = core::mem::replace(&mut self.len, 0);
        if core::mem::replace(&mut self.overflowed, false) {
            return Some(Err(FrameError::Oversize));
        }
        if len == 0 {
            return None;
        }
        Some(decode_frame(&mut self.buf[..len]))
    }
}

/// Decodes one frame's bytes (without the delimiter), in place.
fn decode_frame<M: for<'de> Deserialize<'de>>(frame: &mut [u8]) -> Result<M, FrameError> {
    let raw_len = cobs::decode_in_place(frame).map_err(|_| FrameError::Cobs)?;
    if raw_len < 2 {
        return Err(FrameError::Truncated);
    }
    let (body, crc) = frame[..raw_len].split_at(raw_len - 2);
    if CRC.checksum(body).to_le_bytes() != [crc[0], crc[1]] {
        return Err(FrameError::Crc);
    }
    postcard::from_bytes(body).map_err(|_| FrameError::Body)
}

#[cfg(test)]
mod tests;
