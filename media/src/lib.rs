//! Tablet call media: capture + encode, and decode + display hand-off, built on GStreamer.
//!
//! # What this crate owns
//! * [`Capture`]: camera/microphone (or GStreamer test sources) → H.264 or VP8 video and Opus audio,
//!   delivered as self-contained [`EncodedFrame`]s on a bounded tokio channel. Every H.264 keyframe
//!   carries SPS/PPS and each frame is one complete access unit, so a subscriber that starts at a
//!   keyframe can decode. [`Capture::request_keyframe`] forces a new keyframe (e.g. a subscriber joined).
//!   An optional [`PreviewConfig`] tees the raw camera picture off before the encoder to small RGBA
//!   frames for a self view.
//! * [`FilePlayer`]: a whole WebM file (a VideoGram: VP8, maybe Vorbis/Opus) played from memory at its
//!   own pace: RGBA frames and the end or an error reported to a callback, pause/resume/stop.
//! * [`Playback`]: [`EncodedFrame`]s pushed in → decoded RGBA video frames scaled to the UI's size,
//!   handed to a callback (newest frame wins), and decoded audio to a sink (fake or the device's).
//!
//! # What it must not touch
//! Networking, MoQ, QUIC, relays, the edge API, call control or policy. Moving [`EncodedFrame`]s between
//! tablets is the transport's job; this crate neither knows nor cares how they travel. It has no jitter
//! buffer either: frames are decoded as they are pushed, sinks run with `sync=false` for lowest latency.
//!
//! # Threads
//! GStreamer runs its own streaming threads. The capture channel is filled with `try_send` from them,
//! so the receiver works in async code or, with `blocking_recv`, without a tokio runtime; the
//! playback `on_video` and capture preview callbacks run on GStreamer threads and should only hand the
//! frame over.
//! See `README.md` for the pipelines, the Debian packages and measured figures.

mod bitstream;
mod capture;
mod file_player;
mod pipeline;
mod playback;

pub use bitstream::{h264_nal_types, H264_NAL_IDR, H264_NAL_PPS, H264_NAL_SPS};
pub use capture::{Capture, CaptureConfig, CaptureStats, PreviewConfig, PreviewSink, Sources};
pub use file_player::{FilePlayer, FilePlayerConfig, PlayerEvent};
pub use playback::{AudioOutput, DecodedVideoFrame, Playback, PlaybackConfig, PlaybackStats};

/// What a call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Video and audio.
    Video,
    /// Audio only.
    Voice,
}

/// Which track an [`EncodedFrame`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Video,
    Audio,
}

/// Video codec. Audio is always Opus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 constrained to 4:2:0 (x264enc; decoded with avdec_h264).
    H264,
    /// VP8 (vp8enc / vp8dec).
    Vp8,
}

/// One encoded frame: for video one complete access unit (H.264 Annex-B byte stream, SPS/PPS in front of
/// every keyframe) or one VP8 frame; for audio one 20 ms Opus packet (48 kHz mono).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    pub track: TrackKind,
    /// True when a decoder can start here (video keyframe; every Opus packet).
    pub keyframe: bool,
    /// Presentation time on the sender's pipeline clock, microseconds.
    pub pts_us: u64,
    pub data: bytes::Bytes,
}

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// `gst::init()` failed.
    #[error("GStreamer could not be initialised: {0}")]
    Init(String),
    /// A GStreamer element the pipeline needs is not installed.
    #[error("{element} missing: install {package}")]
    MissingElement { element: &'static str, package: &'static str },
    /// The pipeline could not be built or reported an error.
    #[error("pipeline error in {element}: {message}")]
    Pipeline { element: String, message: String },
    /// A frame pushed into [`Playback`] is not acceptable (empty, wrong track, not a valid bitstream).
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// The pipeline is stopped (or stopping).
    #[error("media pipeline stopped")]
    Stopped,
}

/// [`Capture`] and [`Playback`] are handed between threads and tasks by their owners.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Capture>();
    send_sync::<Playback>();
    send_sync::<FilePlayer>();
    send_sync::<EncodedFrame>();
};
