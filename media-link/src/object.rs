//! The envelope of one encoded frame inside a MoQ object.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes before the frame: version, flags, capture time, send time.
pub const OBJECT_HEADER_LEN: usize = 1 + 1 + 8 + 8;
const VERSION: u8 = 1;
const FLAG_KEYFRAME: u8 = 0x01;

/// One encoded frame as it travels through the relay. `sent_at_us` (the
/// sender's wall clock in microseconds) lets a receiver on the same host
/// measure end-to-end latency; nothing relies on clocks agreeing otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaObject {
    pub keyframe: bool,
    pub pts_us: u64,
    pub sent_at_us: u64,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("media object of {0} bytes is shorter than its {OBJECT_HEADER_LEN}-byte header")]
    Truncated(usize),
    #[error("media object version {0} is not understood (this build speaks {VERSION})")]
    Version(u8),
}

impl MediaObject {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(OBJECT_HEADER_LEN + self.data.len());
        out.put_u8(VERSION);
        out.put_u8(if self.keyframe { FLAG_KEYFRAME } else { 0 });
        out.put_u64(self.pts_us);
        out.put_u64(self.sent_at_us);
        out.extend_from_slice(&self.data);
        out.freeze()
    }

    pub fn decode(mut raw: Bytes) -> Result<MediaObject, ObjectError> {
        if raw.len() < OBJECT_HEADER_LEN {
            return Err(ObjectError::Truncated(raw.len()));
        }
        let version = raw.get_u8();
        if version != VERSION {
            return Err(ObjectError::Version(version));
        }
        let flags = raw.get_u8();
        let pts_us = raw.get_u64();
        let sent_at_us = raw.get_u64();
        Ok(MediaObject { keyframe: flags & FLAG_KEYFRAME != 0, pts_us, sent_at_us, data: raw })
    }
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip() {
        let object = MediaObject {
            keyframe: true,
            pts_us: 33_333,
            sent_at_us: 1_700_000_000_000_000,
            data: Bytes::from_static(b"\0\0\0\x01\x67frame"),
        };
        assert_eq!(MediaObject::decode(object.encode()), Ok(object.clone()));
        let delta = MediaObject { keyframe: false, data: Bytes::new(), ..object };
        assert_eq!(MediaObject::decode(delta.encode()), Ok(delta));
    }

    #[test]
    fn short_and_foreign_objects_are_refused() {
        for len in 0..OBJECT_HEADER_LEN {
            assert_eq!(
                MediaObject::decode(Bytes::from(vec![VERSION; len])),
                Err(ObjectError::Truncated(len))
            );
        }
        let mut raw =
            MediaObject { keyframe: false, pts_us: 0, sent_at_us: 0, data: Bytes::new() }.encode().to_vec();
        raw[0] = 9;
        assert_eq!(MediaObject::decode(Bytes::from(raw)), Err(ObjectError::Version(9)));
    }
}
