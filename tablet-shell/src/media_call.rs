//! The tablet's media leg of a call: camera and microphone (or GStreamer
//! test sources) encoded by `facility-media`, published to the edge over
//! MoQ on a second QUIC connection with the device certificate, and the
//! contact's tracks received from the edge and decoded to frames for the
//! screen.
//!
//! The edge decides when the call ends; this leg only follows (its
//! connection is closed by the edge, or it is stopped when the "ended"
//! update arrives).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use facility_media::{
    AudioOutput, Capture, CaptureConfig, EncodedFrame, MediaKind, Playback, PlaybackConfig, PreviewConfig,
    PreviewSink, Sources, TrackKind,
};
use media_link::moq_transport::coding::TrackNamespace;
use media_link::{follow_track, wall_micros, Broadcast, MediaObject, MoqSession, AUDIO_TRACK, VIDEO_TRACK};
use net::Bundle;
use proto::call::CallMedia;
use proto::domain::CallKind;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the contact's tracks are waited for once they answered, and how
/// long their track may fall silent before the leg stops following it.
const SUBSCRIBE_PATIENCE: Duration = Duration::from_secs(120);

/// What the media leg did, for the call summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MediaReport {
    pub video_frames_sent: u64,
    pub audio_frames_sent: u64,
    pub video_frames_received: u64,
    pub audio_frames_received: u64,
    /// Contact video decoded to pictures for the screen.
    pub video_frames_decoded: u64,
    pub audio_frames_decoded: u64,
    /// Median send-to-arrival time of the contact's frames (µs), as the
    /// sender stamped them (meaningful when both ends share a clock, as in tests).
    pub latency_p50_us: Option<u64>,
    /// Why the leg stopped early, if it did.
    pub error: Option<String>,
}

/// Where and how to run a call's media leg (`--media`).
pub struct MediaOptions {
    pub edge: SocketAddr,
    pub server_name: String,
    pub identity: Bundle,
    pub sources: Sources,
    /// Gets each decoded picture of the contact (the kiosk's call screen);
    /// `None` only counts them (the CLI).
    pub on_video: Option<OnVideo>,
    /// Gets small pictures of our own camera (the call screen's self view),
    /// in video calls only; `None` runs no preview at all.
    pub on_self_view: Option<OnVideo>,
    /// Where the contact's voice goes: the speaker on a tablet, nowhere
    /// for test sources.
    pub audio_output: AudioOutput,
}

/// Where decoded pictures go.
pub type OnVideo = Arc<dyn Fn(facility_media::DecodedVideoFrame) + Send + Sync>;

/// A running media leg.
pub struct MediaLeg {
    stop: watch::Sender<bool>,
    task: JoinHandle<MediaReport>,
    capture_keyframe: watch::Sender<u64>,
    contact_joined: watch::Sender<bool>,
}

impl MediaLeg {
    /// Starts the leg for a placed call.
    pub fn start(options: MediaOptions, media: CallMedia, kind: CallKind) -> MediaLeg {
        let (stop, stopped) = watch::channel(false);
        let (capture_keyframe, keyframe_requests) = watch::channel(0);
        let (contact_joined, joined) = watch::channel(false);
        let task = tokio::spawn(run(options, media, kind, stopped, keyframe_requests, joined));
        MediaLeg { stop, task, capture_keyframe, contact_joined }
    }

    /// The contact answered: start receiving their tracks, and send them a
    /// keyframe now rather than at the next group. Until then the leg only
    /// publishes: while their phone rings the relay has nothing to give,
    /// and every subscription would be refused and tried again.
    pub fn contact_joined(&self) {
        self.contact_joined.send_replace(true);
        self.capture_keyframe.send_modify(|n| *n += 1);
    }

    /// Stops the leg and reports.
    pub async fn finish(self) -> MediaReport {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(report) => report,
            Err(error) => {
                MediaReport { error: Some(format!("media task failed: {error}")), ..Default::default() }
            }
        }
    }
}

#[derive(Default)]
struct Received {
    video: AtomicU64,
    audio: AtomicU64,
}

async fn run(
    options: MediaOptions,
    media: CallMedia,
    kind: CallKind,
    mut stopped: watch::Receiver<bool>,
    mut keyframe_requests: watch::Receiver<u64>,
    joined: watch::Receiver<bool>,
) -> MediaReport {
    let mut report = MediaReport::default();
    let session = match connect(options.edge, &options.server_name, &options.identity).await {
        Ok(session) => session,
        Err(error) => {
            report.error = Some(error);
            return report;
        }
    };
    let media_kind = match kind {
        CallKind::Video => MediaKind::Video,
        CallKind::Voice => MediaKind::Voice,
    };
    let tracks: &[&str] = match kind {
        CallKind::Video => &[VIDEO_TRACK, AUDIO_TRACK],
        CallKind::Voice => &[AUDIO_TRACK],
    };
    let publish = TrackNamespace::from_utf8_path(&media.publish);
    let (_broadcast, mut senders) = match Broadcast::start(&session, publish, tracks) {
        Ok(started) => started,
        Err(error) => {
            report.error = Some(format!("announcing our tracks: {error}"));
            return report;
        }
    };
    let preview = match (kind, options.on_self_view) {
        (CallKind::Video, Some(on_self_view)) => {
            Some(PreviewConfig::new(PreviewSink::new(move |frame| on_self_view(frame))))
        }
        // A voice call never turns the camera on, so there is nothing to preview.
        _ => None,
    };
    let capture_config =
        CaptureConfig { kind: media_kind, sources: options.sources, preview, ..CaptureConfig::default() };
    let (capture, mut frames) = match Capture::start(&capture_config) {
        Ok(started) => started,
        Err(error) => {
            report.error = Some(format!("camera/microphone: {error}"));
            return report;
        }
    };
    let received = Arc::new(Received::default());
    let on_video = options.on_video.clone();
    let playback = Playback::start(
        &PlaybackConfig { kind: media_kind, audio_output: options.audio_output, ..PlaybackConfig::default() },
        move |frame| {
            if let Some(on_video) = &on_video {
                on_video(frame);
            }
        },
    );
    let playback = match playback {
        Ok(playback) => Arc::new(playback),
        Err(error) => {
            report.error = Some(format!("decoder: {error}"));
            return report;
        }
    };
    let subscribe = TrackNamespace::from_utf8_path(&media.subscribe);
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let mut receivers = Vec::new();
    for (track, name) in tracks
        .iter()
        .map(|name| (if *name == VIDEO_TRACK { TrackKind::Video } else { TrackKind::Audio }, *name))
    {
        let subscriber = session.subscriber.clone();
        let subscribe = subscribe.clone();
        let mut joined = joined.clone();
        let playback = playback.clone();
        let received = received.clone();
        let latencies = latencies.clone();
        receivers.push(tokio::spawn(async move {
            if joined.wait_for(|answered| *answered).await.is_err() {
                return;
            }
            let mut subscription = follow_track(subscriber, subscribe, name, SUBSCRIBE_PATIENCE);
            while let Some(frame) = subscription.frames.recv().await {
                let counter = if track == TrackKind::Video { &received.video } else { &received.audio };
                counter.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut l) = latencies.lock() {
                    l.push(frame.received_at_us.saturating_sub(frame.object.sent_at_us));
                }
                let encoded = EncodedFrame {
                    track,
                    keyframe: frame.object.keyframe,
                    pts_us: frame.object.pts_us,
                    data: frame.object.data,
                };
                if let Err(error) = playback.push(encoded) {
                    tracing::debug!(%error, "contact frame not decoded");
                }
            }
        }));
    }
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else {
                    report.error = capture.error().map(|e| e.to_string());
                    break;
                };
                let index = match (frame.track, kind) {
                    (TrackKind::Video, CallKind::Video) => 0,
                    (TrackKind::Audio, CallKind::Video) => 1,
                    (TrackKind::Audio, CallKind::Voice) => 0,
                    (TrackKind::Video, CallKind::Voice) => continue,
                };
                let object = MediaObject { keyframe: frame.keyframe, pts_us: frame.pts_us, sent_at_us: wall_micros(), data: frame.data };
                if let Err(error) = senders[index].send(&object) {
                    tracing::info!(%error, "our track closed");
                    break;
                }
            }
            changed = keyframe_requests.changed() => {
                if changed.is_ok() { capture.request_keyframe(); }
            }
            _ = stopped.changed() => break,
            _ = session.closed() => break,
        }
    }
    capture.stop();
    for receiver in receivers {
        receiver.abort();
    }
    let played = match Arc::try_unwrap(playback) {
        Ok(playback) => playback.stop(),
        Err(shared) => shared.stats(),
    };
    report.video_frames_sent = senders.first().filter(|_| kind == CallKind::Video).map_or(0, |s| s.sent());
    report.audio_frames_sent = senders.last().map_or(0, |s| s.sent());
    report.video_frames_received = received.video.load(Ordering::Relaxed);
    report.audio_frames_received = received.audio.load(Ordering::Relaxed);
    report.video_frames_decoded = played.video_delivered;
    report.audio_frames_decoded = played.audio_decoded;
    if let Ok(mut l) = latencies.lock() {
        l.sort_unstable();
        report.latency_p50_us = l.get(l.len() / 2).copied();
    }
    report
}

async fn connect(edge: SocketAddr, server_name: &str, identity: &Bundle) -> Result<MoqSession, String> {
    let bind = if edge.is_ipv6() {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
    };
    let endpoint = net::quic::client_endpoint_on(identity, media_link::MOQT_ALPN, bind)
        .map_err(|e| format!("media endpoint: {e}"))?;
    let connection = net::quic::connect(&endpoint, edge, server_name)
        .await
        .map_err(|e| format!("media connection: {e}"))?;
    MoqSession::connect(connection).await.map_err(|e| format!("media session: {e}"))
}
