//! Capture + encode: sources → encoder → appsink → bounded channel of [`EncodedFrame`]s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gst::prelude::*;
use tokio::sync::mpsc;

use crate::pipeline::{self, BusWatch};
use crate::playback::deliver_frames;
use crate::{DecodedVideoFrame, EncodedFrame, MediaError, MediaKind, TrackKind, VideoCodec};

/// Where the raw media comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sources {
    /// `videotestsrc` (moving SMPTE bars, so the bitrate is realistic) and `audiotestsrc`, both live.
    Test,
    /// A V4L2 camera (device path, e.g. `/dev/video0`) and the default microphone (`autoaudiosrc`).
    Devices { video_device: String },
}

/// Where local preview pictures go: called on a GStreamer thread, so it should only hand the frame
/// over (the newest frame wins; older ones are dropped while it is busy).
#[derive(Clone)]
pub struct PreviewSink(Arc<dyn Fn(DecodedVideoFrame) + Send + Sync>);

impl PreviewSink {
    pub fn new(on_frame: impl Fn(DecodedVideoFrame) + Send + Sync + 'static) -> Self {
        PreviewSink(Arc::new(on_frame))
    }
}

impl std::fmt::Debug for PreviewSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreviewSink")
    }
}

/// Two configs are equal only when they hand pictures to the very same callback.
impl PartialEq for PreviewSink {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PreviewSink {}

/// A local preview of the camera (the self view): the raw video, before the encoder, scaled to small
/// RGBA pictures at a low frame rate. It sits behind a leaky queue, so a slow receiver costs preview
/// frames, never encoded ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewConfig {
    pub width: u32,
    pub height: u32,
    /// At most this many pictures a second (never more than the capture's own rate).
    pub fps: u32,
    pub sink: PreviewSink,
}

impl PreviewConfig {
    /// 320x180 at 15 fps: enough for a corner of the call screen, cheap to scale and copy.
    pub fn new(sink: PreviewSink) -> Self {
        PreviewConfig { width: 320, height: 180, fps: 15, sink }
    }
}

/// Capture settings. Audio is always Opus, 48 kHz mono, 20 ms packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    pub kind: MediaKind,
    pub sources: Sources,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_codec: VideoCodec,
    pub video_bitrate_kbps: u32,
    pub audio_bitrate_bps: u32,
    /// Capacity of the frame channel; when it is full new frames are dropped and counted.
    pub channel_capacity: usize,
    /// Local preview pictures of the camera; ignored for [`MediaKind::Voice`].
    pub preview: Option<PreviewConfig>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            kind: MediaKind::Video,
            sources: Sources::Test,
            width: 1280,
            height: 720,
            fps: 30,
            video_codec: VideoCodec::H264,
            video_bitrate_kbps: 1300,
            audio_bitrate_bps: 32_000,
            channel_capacity: 256,
            preview: None,
        }
    }
}

/// Counters of a [`Capture`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub video_frames: u64,
    pub video_keyframes: u64,
    pub video_bytes: u64,
    pub audio_frames: u64,
    pub audio_bytes: u64,
    /// Frames dropped because the channel was full (or its receiver gone).
    pub dropped: u64,
    /// Preview pictures handed to [`PreviewConfig::sink`].
    pub preview_frames: u64,
}

#[derive(Default)]
struct Counters {
    video_frames: AtomicU64,
    video_keyframes: AtomicU64,
    video_bytes: AtomicU64,
    audio_frames: AtomicU64,
    audio_bytes: AtomicU64,
    dropped: AtomicU64,
    preview_frames: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> CaptureStats {
        CaptureStats {
            video_frames: self.video_frames.load(Ordering::Relaxed),
            video_keyframes: self.video_keyframes.load(Ordering::Relaxed),
            video_bytes: self.video_bytes.load(Ordering::Relaxed),
            audio_frames: self.audio_frames.load(Ordering::Relaxed),
            audio_bytes: self.audio_bytes.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            preview_frames: self.preview_frames.load(Ordering::Relaxed),
        }
    }
}

/// A running capture pipeline. Dropping it stops the pipeline.
pub struct Capture {
    pipeline: gst::Pipeline,
    video_sink: Option<gst_app::AppSink>,
    counters: Arc<Counters>,
    bus: BusWatch,
    stopped: bool,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").field("stats", &self.counters.snapshot()).finish_non_exhaustive()
    }
}

/// The `gst-launch` description of the capture pipeline and the elements it needs.
fn describe(cfg: &CaptureConfig) -> Result<(String, Vec<&'static str>), MediaError> {
    if cfg.width == 0 || cfg.height == 0 || cfg.fps == 0 || cfg.channel_capacity == 0 {
        return Err(MediaError::Pipeline {
            element: "config".into(),
            message: "width, height, fps and channel_capacity must be non-zero".into(),
        });
    }
    let mut needed = vec!["appsink", "audioconvert", "audioresample", "opusenc"];
    let mut desc = String::new();
    if cfg.kind == MediaKind::Video {
        let raw = format!("video/x-raw,width={},height={},framerate={}/1", cfg.width, cfg.height, cfg.fps);
        match &cfg.sources {
            Sources::Test => {
                needed.push("videotestsrc");
                desc += &format!("videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! {raw} ! ");
            }
            Sources::Devices { .. } => {
                // The device path is set as a property after parsing, never spliced into the text.
                needed.extend(["v4l2src", "videoscale", "videorate"]);
                desc += &format!("v4l2src name=vcam ! videoconvert ! videoscale ! videorate ! {raw} ! ");
            }
        }
        needed.push("videoconvert");
        let preview = cfg.preview.as_ref();
        if preview.is_some() {
            needed.extend(["tee", "queue", "videorate", "videoscale"]);
            desc += "tee name=vtee ! ";
        }
        // Keyframe at least every 2 s.
        let gop = cfg.fps.saturating_mul(2);
        // 4:2:0 before the encoder: otherwise x264enc negotiates High 4:4:4, which decoders refuse.
        desc += "videoconvert ! video/x-raw,format=I420 ! ";
        match cfg.video_codec {
            VideoCodec::H264 => {
                needed.extend(["x264enc", "h264parse"]);
                desc += &format!(
                    "x264enc name=venc tune=zerolatency speed-preset=ultrafast bitrate={} key-int-max={gop} \
                     ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! ",
                    cfg.video_bitrate_kbps
                );
            }
            VideoCodec::Vp8 => {
                needed.push("vp8enc");
                desc += &format!(
                    "vp8enc name=venc deadline=1 end-usage=cbr target-bitrate={} keyframe-max-dist={gop} \
                     cpu-used=8 threads=2 error-resilient=default lag-in-frames=0 ! video/x-vp8 ! ",
                    u64::from(cfg.video_bitrate_kbps) * 1000
                );
            }
        }
        // The callback copies each frame out and returns at once, so the sink queue stays near empty.
        desc += "appsink name=vsink sync=false async=false emit-signals=false max-buffers=8 drop=false ";
        if let Some(p) = preview {
            if p.width == 0 || p.height == 0 || p.fps == 0 {
                return Err(MediaError::Pipeline {
                    element: "config".into(),
                    message: "preview width, height and fps must be non-zero".into(),
                });
            }
            // The leaky one-buffer queue is the branch's own thread: the tee hands a frame over and goes
            // back to the encoder at once; when the preview falls behind its oldest frame is dropped.
            // drop-only: a camera slower than the preview rate is passed through, never padded.
            desc += &format!(
                "vtee. ! queue name=vpreviewq leaky=downstream max-size-buffers=1 max-size-bytes=0 \
                 max-size-time=0 ! videorate drop-only=true ! videoscale ! videoconvert ! \
                 video/x-raw,format=RGBA,width={},height={},framerate={}/1,pixel-aspect-ratio=1/1 ! \
                 appsink name=vpreview sync=false async=false max-buffers=1 drop=true ",
                p.width,
                p.height,
                p.fps.min(cfg.fps)
            );
        }
    }
    match &cfg.sources {
        Sources::Test => {
            needed.push("audiotestsrc");
            desc += "audiotestsrc is-live=true wave=sine freq=440 ! ";
        }
        Sources::Devices { .. } => {
            needed.push("autoaudiosrc");
            desc += "autoaudiosrc ! ";
        }
    }
    desc += &format!(
        "audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 ! \
         opusenc bitrate={} frame-size=20 ! appsink name=asink sync=false async=false max-buffers=16 drop=false",
        cfg.audio_bitrate_bps
    );
    Ok((desc, needed))
}

impl Capture {
    /// Starts the pipeline; encoded frames arrive on the returned channel (bounded; when it is full the
    /// frame is dropped and counted rather than blocking the pipeline).
    pub fn start(cfg: &CaptureConfig) -> Result<(Capture, mpsc::Receiver<EncodedFrame>), MediaError> {
        pipeline::init()?;
        let (desc, needed) = describe(cfg)?;
        pipeline::require(&needed)?;
        let pipeline = pipeline::launch(&desc)?;
        if let (MediaKind::Video, Sources::Devices { video_device }) = (cfg.kind, &cfg.sources) {
            let cam: gst::Element = pipeline::by_name(&pipeline, "vcam")?;
            cam.set_property("device", video_device.as_str());
        }
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(cfg.channel_capacity);

        let video_sink = if cfg.kind == MediaKind::Video {
            let sink: gst_app::AppSink = pipeline::by_name(&pipeline, "vsink")?;
            sink.set_callbacks(callbacks(TrackKind::Video, tx.clone(), counters.clone()));
            Some(sink)
        } else {
            None
        };
        if let (MediaKind::Video, Some(preview)) = (cfg.kind, &cfg.preview) {
            let sink: gst_app::AppSink = pipeline::by_name(&pipeline, "vpreview")?;
            let on_frame = preview.sink.0.clone();
            let counters = counters.clone();
            deliver_frames(&sink, move |frame| {
                counters.preview_frames.fetch_add(1, Ordering::Relaxed);
                on_frame(frame);
            });
        }
        let audio_sink: gst_app::AppSink = pipeline::by_name(&pipeline, "asink")?;
        audio_sink.set_callbacks(callbacks(TrackKind::Audio, tx, counters.clone()));

        // Errors while starting stay on the bus for set_state to report; the watcher starts after.
        if let Err(e) = pipeline::set_state(&pipeline, gst::State::Playing, None) {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(e);
        }
        let bus = BusWatch::start(&pipeline, &[], Arc::new(AtomicU64::new(0)))?;
        Ok((Capture { pipeline, video_sink, counters, bus, stopped: false }, rx))
    }

    /// Asks the video encoder for a keyframe as soon as possible (with SPS/PPS), e.g. because a new
    /// subscriber joined. No-op for voice-only captures.
    pub fn request_keyframe(&self) {
        if let Some(sink) = &self.video_sink {
            let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build();
            // An appsink (base sink) sends upstream events up to the encoder.
            if !sink.send_event(event) {
                tracing::debug!("force-key-unit event was not handled");
            }
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CaptureStats {
        self.counters.snapshot()
    }

    /// The first error the pipeline reported, if any (the channel then stops delivering frames).
    pub fn error(&self) -> Option<MediaError> {
        self.bus.error()
    }

    /// Stops the pipeline (flushing the encoders) and returns the final counters.
    pub fn stop(mut self) -> CaptureStats {
        self.shutdown();
        self.counters.snapshot()
    }

    fn shutdown(&mut self) {
        if !self.stopped {
            self.stopped = true;
            self.bus.stop();
            // EOS from the sources, so the encoders flush what they hold.
            let _ = self.pipeline.send_event(gst::event::Eos::new());
            pipeline::drain_and_stop(&self.pipeline, Duration::from_millis(500));
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn callbacks(
    track: TrackKind,
    tx: mpsc::Sender<EncodedFrame>,
    counters: Arc<Counters>,
) -> gst_app::AppSinkCallbacks {
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            let Some(buffer) = sample.buffer() else { return Ok(gst::FlowSuccess::Ok) };
            let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
            // Running time (x264enc offsets its timestamps by 1000 h; the segment undoes that).
            let pts = buffer.pts().or(buffer.dts());
            let running = sample
                .segment()
                .and_then(|s| s.downcast_ref::<gst::ClockTime>())
                .and_then(|s| s.to_running_time(pts))
                .or(pts);
            let pts_us = running.map(|t| t.useconds()).unwrap_or(0);
            let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
            let data = bytes::Bytes::copy_from_slice(map.as_slice());
            let len = data.len() as u64;
            match track {
                TrackKind::Video => {
                    counters.video_frames.fetch_add(1, Ordering::Relaxed);
                    counters.video_bytes.fetch_add(len, Ordering::Relaxed);
                    if keyframe {
                        counters.video_keyframes.fetch_add(1, Ordering::Relaxed);
                    }
                }
                TrackKind::Audio => {
                    counters.audio_frames.fetch_add(1, Ordering::Relaxed);
                    counters.audio_bytes.fetch_add(len, Ordering::Relaxed);
                }
            }
            if tx.try_send(EncodedFrame { track, keyframe, pts_us, data }).is_err() {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Ok(gst::FlowSuccess::Ok)
        })
        .build()
}
