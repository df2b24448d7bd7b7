//! Cheap sanity checks on encoded frames before they reach a decoder. They do not prove a frame
//! decodes; they reject what is certainly not a frame of the expected codec (garbage, empty, cut off
//! before the first header), so the caller gets a typed error instead of a confused decoder.

use crate::{MediaError, TrackKind, VideoCodec};

/// H.264 NAL unit type of an IDR slice.
pub const H264_NAL_IDR: u8 = 5;
/// H.264 NAL unit type of a sequence parameter set.
pub const H264_NAL_SPS: u8 = 7;
/// H.264 NAL unit type of a picture parameter set.
pub const H264_NAL_PPS: u8 = 8;

/// NAL unit types of an Annex-B H.264 byte stream (start codes `00 00 01` / `00 00 00 01`), in order.
/// Returns an empty list when there is no start code.
pub fn h264_nal_types(data: &[u8]) -> Vec<u8> {
    h264_nal_headers(data).into_iter().map(|h| h & 0x1f).collect()
}

/// First byte (header) of each NAL unit after a start code.
fn h264_nal_headers(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(&h) = data.get(i + 3) {
                out.push(h);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

/// Rejects frames that cannot be what `track`/`codec` say they are.
pub(crate) fn check_frame(track: TrackKind, codec: VideoCodec, data: &[u8]) -> Result<(), MediaError> {
    if data.is_empty() {
        return Err(MediaError::BadFrame("empty frame".into()));
    }
    match (track, codec) {
        (TrackKind::Audio, _) => {
            // RFC 6716: at most 1275 bytes per frame, up to 48 frames (code-3 packet) per packet.
            if data.len() > 1275 * 48 {
                return Err(MediaError::BadFrame(format!("Opus packet of {} bytes", data.len())));
            }
            Ok(())
        }
        (TrackKind::Video, VideoCodec::H264) => {
            if !(data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])) {
                return Err(MediaError::BadFrame(
                    "H.264 access unit does not start with a start code".into(),
                ));
            }
            let headers = h264_nal_headers(data);
            if headers.is_empty() {
                return Err(MediaError::BadFrame("H.264 access unit without a NAL unit".into()));
            }
            for h in headers {
                // forbidden_zero_bit must be 0; type 0 is unspecified, 24..=31 unspecified/reserved.
                let t = h & 0x1f;
                if h & 0x80 != 0 || t == 0 || t >= 24 {
                    return Err(MediaError::BadFrame(format!("invalid H.264 NAL header 0x{h:02x}")));
                }
            }
            Ok(())
        }
        (TrackKind::Video, VideoCodec::Vp8) => {
            // RFC 6386 §9.1: 3-byte frame tag; a keyframe adds start code 9d 01 2a and 4 bytes of size.
            if data.len() < 3 {
                return Err(MediaError::BadFrame("VP8 frame shorter than its frame tag".into()));
            }
            let keyframe = data[0] & 1 == 0;
            if keyframe && (data.len() < 10 || data[3..6] != [0x9d, 0x01, 0x2a]) {
                return Err(MediaError::BadFrame("VP8 keyframe without its start code".into()));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_types_of_an_annex_b_access_unit() {
        let au = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 9, 9];
        assert_eq!(h264_nal_types(&au), vec![7, 8, 5]);
        assert!(check_frame(TrackKind::Video, VideoCodec::H264, &au).is_ok());
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(check_frame(TrackKind::Video, VideoCodec::H264, &[]).is_err());
        assert!(check_frame(TrackKind::Video, VideoCodec::H264, &[1, 2, 3, 4, 5]).is_err());
        assert!(check_frame(TrackKind::Video, VideoCodec::H264, &[0, 0, 1, 0xff]).is_err());
        assert!(check_frame(TrackKind::Video, VideoCodec::H264, &[0, 0, 1]).is_err());
        assert!(check_frame(TrackKind::Video, VideoCodec::Vp8, &[0, 1]).is_err());
        assert!(check_frame(TrackKind::Video, VideoCodec::Vp8, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).is_err());
        assert!(check_frame(TrackKind::Audio, VideoCodec::Vp8, &[]).is_err());
    }
}
