//! Decode + display hand-off: [`EncodedFrame`]s → appsrc → decoder → RGBA appsink callback / audio sink.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gst::prelude::*;

use crate::bitstream::check_frame;
use crate::pipeline::{self, BusWatch};
use crate::{EncodedFrame, MediaError, MediaKind, TrackKind, VideoCodec};

/// Where decoded audio goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudioOutput {
    /// `fakesink`: decode and discard (tests, headless machines).
    #[default]
    Fake,
    /// `autoaudiosink`: the device's speaker.
    Device,
}

/// Playback settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybackConfig {
    pub kind: MediaKind,
    pub video_codec: VideoCodec,
    /// Size of the RGBA frames handed to the UI (letterboxed if the aspect ratio differs).
    pub output_width: u32,
    pub output_height: u32,
    pub audio_output: AudioOutput,
}

impl Default for PlaybackConfig {
    fn default() -> Self {
        PlaybackConfig {
            kind: MediaKind::Video,
            video_codec: VideoCodec::H264,
            output_width: 640,
            output_height: 360,
            audio_output: AudioOutput::Fake,
        }
    }
}

/// A decoded, scaled video frame: tightly or loosely packed RGBA rows of `stride` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedVideoFrame {
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub rgba: Vec<u8>,
    /// The sender's presentation time, microseconds.
    pub pts_us: u64,
}

/// Counters of a [`Playback`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlaybackStats {
    /// Frames accepted by [`Playback::push`].
    pub pushed: u64,
    /// Frames refused by [`Playback::push`] as [`MediaError::BadFrame`].
    pub rejected: u64,
    /// Video frames out of the decoder.
    pub video_decoded: u64,
    /// Video frames handed to the callback (fewer than decoded when the UI was slower: newest wins).
    pub video_delivered: u64,
    /// Audio buffers out of the decoder.
    pub audio_decoded: u64,
    /// Frames that went into the parser/decoder and did not come out decoded, plus errors, warnings and
    /// dropped-frame (QoS) reports the parser/decoders post. Exact after [`Playback::stop`] (which
    /// drains the decoders); while running it also counts the one or two frames still being decoded.
    pub decode_errors: u64,
    /// Times the pipeline was restarted after an error.
    pub restarts: u64,
}

#[derive(Default)]
struct Counters {
    pushed: AtomicU64,
    rejected: AtomicU64,
    video_in: AtomicU64,
    video_decoded: AtomicU64,
    video_delivered: AtomicU64,
    audio_in: AtomicU64,
    audio_decoded: AtomicU64,
    /// Reported by the parser/decoders on the bus.
    reported_errors: Arc<AtomicU64>,
    restarts: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> PlaybackStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // Neither H.264 (no B-frames from our encoder) nor VP8 nor Opus reorders: one frame out per
        // frame in, so a shortfall is frames the parser or decoder threw away.
        let lost = load(&self.video_in).saturating_sub(load(&self.video_decoded))
            + load(&self.audio_in).saturating_sub(load(&self.audio_decoded));
        PlaybackStats {
            pushed: self.pushed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            video_decoded: self.video_decoded.load(Ordering::Relaxed),
            video_delivered: self.video_delivered.load(Ordering::Relaxed),
            audio_decoded: self.audio_decoded.load(Ordering::Relaxed),
            decode_errors: load(&self.reported_errors) + lost,
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }
}

/// A running decode pipeline. Dropping it stops the pipeline.
pub struct Playback {
    cfg: PlaybackConfig,
    pipeline: gst::Pipeline,
    video_src: Option<gst_app::AppSrc>,
    audio_src: gst_app::AppSrc,
    counters: Arc<Counters>,
    bus: BusWatch,
    stopped: bool,
}

impl std::fmt::Debug for Playback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playback")
            .field("cfg", &self.cfg)
            .field("stats", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

/// Source names whose warnings/errors/QoS count as decode errors.
const DECODE_ELEMENTS: &[&str] = &["vparse", "vdec", "adec"];

fn describe(cfg: &PlaybackConfig) -> Result<(String, Vec<&'static str>), MediaError> {
    if cfg.output_width == 0 || cfg.output_height == 0 {
        return Err(MediaError::Pipeline {
            element: "config".into(),
            message: "output_width and output_height must be non-zero".into(),
        });
    }
    let mut needed = vec!["appsrc", "appsink", "opusdec", "audioconvert", "audioresample"];
    let mut desc = String::new();
    if cfg.kind == MediaKind::Video {
        let (caps, decode) = match cfg.video_codec {
            VideoCodec::H264 => {
                needed.push("h264parse");
                // avdec_h264 (gstreamer1.0-libav) is preferred; openh264dec (plugins-bad) otherwise.
                let decoder = if gst::ElementFactory::find("avdec_h264").is_some() {
                    // Slice threads only: frame threading would add frames of latency. Corrupt frames
                    // are dropped (and reported as QoS), not shown.
                    "avdec_h264 name=vdec thread-type=slice output-corrupt=false"
                } else if gst::ElementFactory::find("openh264dec").is_some() {
                    "openh264dec name=vdec"
                } else {
                    // Neither: report the preferred one as missing.
                    needed.push("avdec_h264");
                    "avdec_h264 name=vdec"
                };
                (
                    "video/x-h264,stream-format=byte-stream,alignment=au",
                    format!("h264parse name=vparse ! {decoder}"),
                )
            }
            VideoCodec::Vp8 => {
                needed.push("vp8dec");
                ("video/x-vp8", "vp8dec name=vdec".to_string())
            }
        };
        needed.extend(["videoconvert", "videoscale", "queue"]);
        // The leaky queue after the decoder drops the oldest decoded frames when the UI callback is
        // slower than the stream: the decoder never stalls and the UI always gets the newest frame.
        desc += &format!(
            "appsrc name=vsrc is-live=true format=time do-timestamp=false caps=\"{caps}\" ! {decode} ! \
             queue name=vqueue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0 ! \
             videoconvert ! videoscale ! \
             video/x-raw,format=RGBA,width={},height={},pixel-aspect-ratio=1/1 ! \
             appsink name=vout sync=false async=false max-buffers=1 drop=true ",
            cfg.output_width, cfg.output_height
        );
    }
    let sink = match cfg.audio_output {
        AudioOutput::Fake => "fakesink sync=false async=false",
        AudioOutput::Device => {
            needed.push("autoaudiosink");
            "autoaudiosink sync=false async=false"
        }
    };
    desc += &format!(
        "appsrc name=asrc is-live=true format=time do-timestamp=false \
         caps=\"audio/x-opus,rate=48000,channels=1,channel-mapping-family=0\" ! \
         opusdec name=adec plc=true ! audioconvert ! audioresample ! {sink}"
    );
    Ok((desc, needed))
}

impl Playback {
    /// Decodes frames pushed in; each decoded video frame is handed to `on_video` (called on a GStreamer
    /// thread; keep it short, the newest frame wins). Audio goes to the sink chosen by
    /// [`PlaybackConfig::audio_output`].
    pub fn start(
        cfg: &PlaybackConfig,
        on_video: impl Fn(DecodedVideoFrame) + Send + Sync + 'static,
    ) -> Result<Playback, MediaError> {
        pipeline::init()?;
        let (desc, needed) = describe(cfg)?;
        pipeline::require(&needed)?;
        let pipeline = pipeline::launch(&desc)?;
        let counters = Arc::new(Counters::default());

        let video_src = if cfg.kind == MediaKind::Video {
            let src: gst_app::AppSrc = pipeline::by_name(&pipeline, "vsrc")?;
            let dec: gst::Element = pipeline::by_name(&pipeline, "vdec")?;
            let first: gst::Element = match cfg.video_codec {
                VideoCodec::H264 => pipeline::by_name(&pipeline, "vparse")?,
                VideoCodec::Vp8 => dec.clone(),
            };
            count_buffers(&first, "sink", counters.clone(), |c| &c.video_in)?;
            count_buffers(&dec, "src", counters.clone(), |c| &c.video_decoded)?;
            let sink: gst_app::AppSink = pipeline::by_name(&pipeline, "vout")?;
            let c = counters.clone();
            deliver_frames(&sink, move |frame| {
                c.video_delivered.fetch_add(1, Ordering::Relaxed);
                on_video(frame);
            });
            Some(src)
        } else {
            None
        };
        let audio_src: gst_app::AppSrc = pipeline::by_name(&pipeline, "asrc")?;
        let adec: gst::Element = pipeline::by_name(&pipeline, "adec")?;
        count_buffers(&adec, "sink", counters.clone(), |c| &c.audio_in)?;
        count_buffers(&adec, "src", counters.clone(), |c| &c.audio_decoded)?;

        // Errors while starting stay on the bus for set_state to report; the watcher starts after.
        if let Err(e) = pipeline::set_state(&pipeline, gst::State::Playing, None) {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(e);
        }
        let bus = BusWatch::start(&pipeline, DECODE_ELEMENTS, counters.reported_errors.clone())?;
        Ok(Playback { cfg: cfg.clone(), pipeline, video_src, audio_src, counters, bus, stopped: false })
    }

    /// Queues one frame for decoding. Fails with [`MediaError::BadFrame`] for frames that are certainly
    /// not of the configured codec (counted as `rejected`), or for video pushed into a voice playback.
    /// After a pipeline error the pipeline is restarted once per push (the decoder then waits for a
    /// keyframe) and the error is returned.
    pub fn push(&self, frame: EncodedFrame) -> Result<(), MediaError> {
        if self.stopped {
            return Err(MediaError::Stopped);
        }
        let src = match frame.track {
            TrackKind::Video => self.video_src.as_ref().ok_or_else(|| {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                MediaError::BadFrame("video frame pushed into a voice-only playback".into())
            })?,
            TrackKind::Audio => &self.audio_src,
        };
        if let Err(e) = check_frame(frame.track, self.cfg.video_codec, &frame.data) {
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        if let Some(e) = self.take_error() {
            self.restart()?;
            return Err(e);
        }
        let mut buffer = gst::Buffer::from_slice(frame.data);
        {
            let b = buffer.get_mut().expect("a buffer just created has one reference and is writable");
            b.set_pts(gst::ClockTime::from_useconds(frame.pts_us));
            if !frame.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        match src.push_buffer(buffer) {
            Ok(_) => {
                self.counters.pushed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(gst::FlowError::Flushing) | Err(gst::FlowError::Eos) => Err(MediaError::Stopped),
            Err(e) => {
                Err(MediaError::Pipeline { element: src.name().to_string(), message: format!("{e:?}") })
            }
        }
    }

    fn take_error(&self) -> Option<MediaError> {
        self.bus.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn restart(&self) -> Result<(), MediaError> {
        self.counters.restarts.fetch_add(1, Ordering::Relaxed);
        let _ = self.pipeline.set_state(gst::State::Null);
        pipeline::set_state(&self.pipeline, gst::State::Playing, Some(&self.bus))
    }

    /// Counters so far.
    pub fn stats(&self) -> PlaybackStats {
        self.counters.snapshot()
    }

    /// Stops the pipeline (decoding what was queued, briefly) and returns the final counters.
    pub fn stop(mut self) -> PlaybackStats {
        self.shutdown();
        self.counters.snapshot()
    }

    fn shutdown(&mut self) {
        if !self.stopped {
            self.stopped = true;
            self.bus.stop();
            // EOS behind the queued frames, so the decoders finish them before the pipeline stops.
            for src in self.video_src.iter().chain([&self.audio_src]) {
                let _ = src.end_of_stream();
            }
            pipeline::drain_and_stop(&self.pipeline, Duration::from_millis(1000));
        }
    }
}

impl Drop for Playback {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Counts buffers passing `element`'s static pad `pad` into the counter `pick` selects.
fn count_buffers(
    element: &gst::Element,
    pad: &str,
    counters: Arc<Counters>,
    pick: fn(&Counters) -> &AtomicU64,
) -> Result<(), MediaError> {
    let pad = element.static_pad(pad).ok_or_else(|| MediaError::Pipeline {
        element: element.name().to_string(),
        message: format!("no {pad} pad"),
    })?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        pick(&counters).fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// Hands every RGBA picture that reaches `sink` to `on_frame`.
pub(crate) fn deliver_frames(
    sink: &gst_app::AppSink,
    on_frame: impl Fn(DecodedVideoFrame) + Send + Sync + 'static,
) {
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(frame) = to_frame(&sample) {
                    on_frame(frame);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

fn to_frame(sample: &gst::Sample) -> Option<DecodedVideoFrame> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let buffer = sample.buffer()?;
    let map = buffer.map_readable().ok()?;
    let stride = usize::try_from(*info.stride().first()?).ok()?;
    Some(DecodedVideoFrame {
        width: info.width(),
        height: info.height(),
        stride,
        rgba: map.as_slice().to_vec(),
        pts_us: buffer.pts().map(|t| t.useconds()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Capture, CaptureConfig};

    /// The recovery path: a pipeline error is returned by the next push, the pipeline restarts, and
    /// frames from a keyframe on decode again.
    #[test]
    fn a_pipeline_error_is_reported_once_and_the_pipeline_restarts() {
        let cfg = CaptureConfig { width: 320, height: 180, ..CaptureConfig::default() };
        let (capture, mut rx) = Capture::start(&cfg).expect("capture starts");
        std::thread::sleep(Duration::from_millis(1200));
        capture.stop();
        let mut video = Vec::new();
        while let Ok(f) = rx.try_recv() {
            if f.track == TrackKind::Video {
                video.push(f);
            }
        }
        assert!(video.len() >= 20 && video[0].keyframe, "{} frames", video.len());

        let playback = Playback::start(&PlaybackConfig::default(), |_| {}).expect("playback starts");
        for f in &video[..10] {
            playback.push(f.clone()).expect("frame accepted");
        }
        // An element fails (as a decoder or converter would on a fatal error).
        let vdec: gst::Element = pipeline::by_name(&playback.pipeline, "vdec").expect("vdec");
        let msg =
            gst::message::Error::builder(gst::StreamError::Decode, "injected failure").src(&vdec).build();
        assert!(vdec.post_message(msg).is_ok());
        std::thread::sleep(Duration::from_millis(300));
        match playback.push(video[10].clone()) {
            Err(MediaError::Pipeline { element, message }) => {
                assert_eq!(element, "vdec");
                assert!(message.contains("injected failure"), "{message}");
            }
            other => panic!("expected the pipeline error, got {other:?}"),
        }
        let before = playback.stats().video_decoded;
        // The restarted decoder starts again at a keyframe.
        let key = video.iter().position(|f| f.keyframe).expect("keyframe");
        for f in &video[key..] {
            playback.push(f.clone()).expect("frame accepted after restart");
        }
        let want = before + (video.len() - key) as u64;
        let start = std::time::Instant::now();
        while playback.stats().video_decoded < want && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let stats = playback.stop();
        assert_eq!(stats.restarts, 1);
        assert!(stats.video_decoded >= want, "{stats:?}");
    }
}
