//! Media over QUIC plumbing for calls (issue 5), shared by the tablet, the
//! edge bridge, central-sim (the contact side) and the bridge benchmark.
//!
//! Owns: MoQ sessions over raw QUIC (ALPN `moqt-18`, draft 18 as
//! `moq-transport` 0.17 speaks it, which `moq-relay-ietf` accepts), the call
//! namespaces (`facility/<F>/call/<id>/resident|contact`, tracks `video` and
//! `audio`), and the [`MediaObject`] envelope each encoded frame travels in
//! (one MoQ group per video GOP, one object per frame).
//!
//! Must not touch: codecs (the `facility-media` crate owns GStreamer),
//! call policy or the call lifecycle (the edge's call core decides; this
//! crate only carries bytes), certificates beyond building TLS configs from
//! what it is given.

mod object;
mod publish;
mod relay;
mod session;
mod subscribe;

pub use moq_transport;
pub use object::{wall_micros, MediaObject, ObjectError, OBJECT_HEADER_LEN};
pub use publish::{Broadcast, TrackSender};
pub use relay::{
    relay_binary, RelayClient, RelayError, RelayUplinks, Uplink, CALLS_PER_UPLINK, RELAY_VERSION,
};
pub use session::{relay_client_config, LinkError, MoqSession};
pub use subscribe::{follow_track, subscribe_track, FollowedTrack, ReceivedObject, Subscription};

use moq_transport::coding::TrackNamespace;

/// The ALPN of raw-QUIC MoQ draft 18.
pub const MOQT_ALPN: &[u8] = b"moqt-18";
/// Track of encoded video frames (a group per GOP).
pub const VIDEO_TRACK: &str = "video";
/// Track of encoded audio frames (a group per second of audio).
pub const AUDIO_TRACK: &str = "audio";

/// Which party of a call publishes a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Resident,
    Contact,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Resident => "resident",
            Side::Contact => "contact",
        }
    }
}

/// A call's namespace path, e.g. `facility/demo-ca-01/call/42/resident`.
pub fn call_path(facility: &str, call_id: u64, side: Side) -> String {
    format!("facility/{facility}/call/{call_id}/{}", side.as_str())
}

/// The namespace one side of a call publishes under.
pub fn call_namespace(facility: &str, call_id: u64, side: Side) -> TrackNamespace {
    TrackNamespace::from_utf8_path(&call_path(facility, call_id, side))
}

/// Reads `(facility, call id, side)` back from a namespace; `None` for
/// anything that is not exactly a call namespace.
pub fn parse_call_namespace(namespace: &TrackNamespace) -> Option<(String, u64, Side)> {
    let path = namespace.to_utf8_path();
    let mut parts = path.trim_start_matches('/').split('/');
    let (Some("facility"), Some(facility), Some("call"), Some(id), Some(side), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let side = match side {
        "resident" => Side::Resident,
        "contact" => Side::Contact,
        _ => return None,
    };
    if facility.is_empty() {
        return None;
    }
    Some((facility.to_string(), id.parse().ok()?, side))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alpn_is_the_one_moq_transport_speaks() {
        assert_eq!(MOQT_ALPN, moq_transport::setup::DraftVersion::Draft18.alpn_bytes());
    }

    #[test]
    fn call_namespaces_round_trip() {
        let ns = call_namespace("demo-ca-01", 42, Side::Resident);
        assert_eq!(parse_call_namespace(&ns), Some(("demo-ca-01".into(), 42, Side::Resident)));
        let ns = call_namespace("f", u64::MAX, Side::Contact);
        assert_eq!(parse_call_namespace(&ns), Some(("f".into(), u64::MAX, Side::Contact)));
    }

    #[test]
    fn other_namespaces_are_not_calls() {
        for path in [
            "facility/f/call/42",
            "facility/f/call/42/resident/extra",
            "facility/f/call/x/resident",
            "facility/f/call/42/guard",
            "other/f/call/42/resident",
            "facility//call/42/resident",
            "",
        ] {
            let ns = TrackNamespace::from_utf8_path(path);
            assert_eq!(parse_call_namespace(&ns), None, "{path}");
        }
    }
}
