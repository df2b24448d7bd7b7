//! Framing: `[len: u32 BE][version: u8][postcard body]`, where `len` counts the
//! version byte and the body.

use serde::{de::DeserializeOwned, Serialize};

use crate::PROTOCOL_VERSION;

/// Bytes before the version byte: the big-endian length.
pub const HEADER_LEN: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame (no version byte)")]
    Empty,
    #[error("unsupported protocol version {got} (this build speaks {supported})")]
    UnsupportedVersion { got: u8, supported: u8 },
    #[error("frame is truncated: header says {expected} bytes, {got} present")]
    Truncated { expected: usize, got: usize },
    #[error("frame has {extra} trailing bytes after the message")]
    TrailingBytes { extra: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("message could not be encoded: {0}")]
    Encode(String),
}

/// Encodes `msg` as one complete frame (header included).
pub fn encode_frame<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; HEADER_LEN];
    out.push(PROTOCOL_VERSION);
    let mut out = postcard::to_extend(msg, out).map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = out.len() - HEADER_LEN;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max })?;
    out[..HEADER_LEN].copy_from_slice(&len32.to_be_bytes());
    Ok(out)
}

/// Reads the length from a frame header and checks it against `max` before the
/// caller allocates anything for the body.
pub fn parse_header(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    Ok(len)
}

/// Decodes a frame body (version byte + postcard message), as announced by
/// [`parse_header`].
pub fn decode_body<T: DeserializeOwned>(body: &[u8], max: usize) -> Result<T, FrameError> {
    if body.len() > max {
        return Err(FrameError::TooLarge { len: body.len(), max });
    }
    let (&version, rest) = body.split_first().ok_or(FrameError::Empty)?;
    if version != PROTOCOL_VERSION {
        return Err(FrameError::UnsupportedVersion { got: version, supported: PROTOCOL_VERSION });
    }
    let (msg, trailing) =
        postcard::take_from_bytes::<T>(rest).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !trailing.is_empty() {
        return Err(FrameError::TrailingBytes { extra: trailing.len() });
    }
    Ok(msg)
}

/// Decodes one complete frame (header included) that must fill `bytes` exactly.
pub fn decode_frame<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, FrameError> {
    let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Truncated { expected: HEADER_LEN, got: bytes.len() });
    };
    let len = parse_header(*header, max)?;
    if body.len() < len {
        return Err(FrameError::Truncated { expected: len, got: body.len() });
    }
    if body.len() > len {
        return Err(FrameError::TrailingBytes { extra: body.len() - len });
    }
    decode_body(body, max)
}
