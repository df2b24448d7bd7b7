//! Playing a whole media file held in memory (a VideoGram: WebM with VP8 video and maybe Vorbis or Opus
//! audio): bytes → appsrc → matroskademux → vp8dec → RGBA appsink frames at the file's pace, audio to a
//! sink, with pause, resume, stop, and reports of each frame, the end and errors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use gst::prelude::*;

use crate::pipeline;
use crate::playback::deliver_frames;
use crate::{AudioOutput, DecodedVideoFrame, MediaError};

/// File player settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlayerConfig {
    /// Size of the RGBA frames handed over (letterboxed if the aspect ratio differs).
    pub output_width: u32,
    pub output_height: u32,
    pub audio_output: AudioOutput,
}

impl Default for FilePlayerConfig {
    fn default() -> Self {
        FilePlayerConfig { output_width: 640, output_height: 360, audio_output: AudioOutput::Fake }
    }
}

/// What a [`FilePlayer`] reports, on its own threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayerEvent {
    /// The next picture, when it is due; its `pts_us` is the position in the file.
    Frame(DecodedVideoFrame),
    /// Every stream played to its end.
    Ended,
    /// The file could not be played (not WebM/VP8, damaged, a missing element); nothing more follows.
    Error(MediaError),
}

type OnEvent = Arc<dyn Fn(PlayerEvent) + Send + Sync>;

/// A playing (or paused) file. Dropping it stops the pipeline.
pub struct FilePlayer {
    pipeline: gst::Pipeline,
    stop: Arc<AtomicBool>,
    bus: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FilePlayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePlayer").field("position", &self.position()).finish_non_exhaustive()
    }
}

fn describe(cfg: &FilePlayerConfig) -> Result<String, MediaError> {
    if cfg.output_width == 0 || cfg.output_height == 0 {
        return Err(MediaError::Pipeline {
            element: "config".into(),
            message: "output_width and output_height must be non-zero".into(),
        });
    }
    // The appsink syncs to the clock, so frames come at the file's pace and a frame's timestamp is
    // where playback is; the demuxer's video pad is linked to `vqueue` when it appears.
    Ok(format!(
        "appsrc name=src caps=video/webm format=bytes ! matroskademux name=demux \
         queue name=vqueue ! vp8dec name=vdec ! videoconvert ! videoscale ! \
         video/x-raw,format=RGBA,width={},height={},pixel-aspect-ratio=1/1 ! \
         appsink name=vout sync=true max-buffers=2",
        cfg.output_width, cfg.output_height
    ))
}

/// The audio branch for a demuxer's audio pad with `caps`: queue, the decoder those caps need, conversion,
/// and the sink. The sink does not hold up prerolling (`async=false`), so audio that never decodes
/// cannot stall the picture.
fn audio_branch(caps: Option<gst::Caps>, output: AudioOutput) -> Result<Vec<gst::Element>, MediaError> {
    let media = caps.as_ref().and_then(|c| c.structure(0)).map(|s| s.name().to_string()).unwrap_or_default();
    let decoder = match media.as_str() {
        "audio/x-opus" => "opusdec",
        "audio/x-vorbis" => "vorbisdec",
        other => {
            return Err(MediaError::Pipeline {
                element: "audio".into(),
                message: format!("no decoder for {other:?}"),
            })
        }
    };
    let sink = match output {
        AudioOutput::Device if gst::ElementFactory::find("autoaudiosink").is_some() => "autoaudiosink",
        // Nothing to hear it on: decode and discard rather than fail the picture.
        _ => "fakesink",
    };
    let make = |factory: &'static str| {
        gst::ElementFactory::make(factory).build().map_err(|_| MediaError::MissingElement {
            element: factory,
            package: "the GStreamer plugin providing it",
        })
    };
    let elements =
        vec![make("queue")?, make(decoder)?, make("audioconvert")?, make("audioresample")?, make(sink)?];
    if let Some(sink) = elements.last() {
        if sink.has_property("async") {
            sink.set_property("async", false);
        }
    }
    Ok(elements)
}

/// Adds the audio branch for `pad` to `pipeline` and links it.
fn link_audio(pipeline: &gst::Pipeline, pad: &gst::Pad, output: AudioOutput) -> Result<(), MediaError> {
    let fail = |message: String| MediaError::Pipeline { element: "audio".into(), message };
    let elements = audio_branch(pad.current_caps(), output)?;
    pipeline.add_many(&elements).map_err(|e| fail(e.to_string()))?;
    gst::Element::link_many(&elements).map_err(|e| fail(e.to_string()))?;
    for element in &elements {
        element.sync_state_with_parent().map_err(|e| fail(e.to_string()))?;
    }
    let queue = elements.first().and_then(|q| q.static_pad("sink")).ok_or_else(|| fail("no queue".into()))?;
    pad.link(&queue).map(|_| ()).map_err(|e| fail(format!("{e:?}")))
}

impl FilePlayer {
    /// Starts playing `bytes` (a whole WebM file) from the start. `on_event` is called on GStreamer
    /// threads; keep it short.
    pub fn start(
        bytes: Vec<u8>,
        cfg: &FilePlayerConfig,
        on_event: impl Fn(PlayerEvent) + Send + Sync + 'static,
    ) -> Result<FilePlayer, MediaError> {
        pipeline::init()?;
        pipeline::require(&[
            "appsrc",
            "matroskademux",
            "vp8dec",
            "videoconvert",
            "videoscale",
            "queue",
            "appsink",
            "audioconvert",
            "audioresample",
        ])?;
        let on_event: OnEvent = Arc::new(on_event);
        let pipeline = pipeline::launch(&describe(cfg)?)?;
        let demux: gst::Element = pipeline::by_name(&pipeline, "demux")?;
        let vqueue: gst::Element = pipeline::by_name(&pipeline, "vqueue")?;
        let video_in = vqueue.static_pad("sink").ok_or_else(|| MediaError::Pipeline {
            element: "vqueue".into(),
            message: "no sink pad".into(),
        })?;
        let weak = pipeline.downgrade();
        let audio_output = cfg.audio_output;
        demux.connect_pad_added(move |_, pad| {
            let name = pad.name();
            if name.starts_with("video_") && !video_in.is_linked() {
                if let Err(error) = pad.link(&video_in) {
                    tracing::warn!(?error, "VideoGram video pad not linked");
                }
            } else if name.starts_with("audio_") {
                let Some(pipeline) = weak.upgrade() else { return };
                // The picture plays on without sound rather than not at all.
                if let Err(error) = link_audio(&pipeline, pad, audio_output) {
                    tracing::warn!(%error, "VideoGram audio not played");
                }
            }
        });

        let sink: gst_app::AppSink = pipeline::by_name(&pipeline, "vout")?;
        let frames = on_event.clone();
        deliver_frames(&sink, move |frame| frames(PlayerEvent::Frame(frame)));

        // The whole file is one buffer followed by the end of the stream: the demuxer reads it in push
        // mode, as from a network stream.
        let src: gst_app::AppSrc = pipeline::by_name(&pipeline, "src")?;
        src.set_max_bytes(bytes.len() as u64 + 1);
        let pushed = src.push_buffer(gst::Buffer::from_mut_slice(bytes)).and_then(|_| src.end_of_stream());
        if let Err(flow) = pushed {
            return Err(MediaError::Pipeline { element: "src".into(), message: format!("{flow:?}") });
        }

        if let Err(e) = pipeline::set_state(&pipeline, gst::State::Playing, None) {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(e);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let bus = watch_bus(&pipeline, stop.clone(), on_event)?;
        Ok(FilePlayer { pipeline, stop, bus: Some(bus) })
    }

    /// Holds the current picture.
    pub fn pause(&self) -> Result<(), MediaError> {
        pipeline::set_state(&self.pipeline, gst::State::Paused, None)
    }

    /// Plays on from where it was paused.
    pub fn resume(&self) -> Result<(), MediaError> {
        pipeline::set_state(&self.pipeline, gst::State::Playing, None)
    }

    /// Where playback is, once the pipeline knows.
    pub fn position(&self) -> Option<Duration> {
        self.pipeline.query_position::<gst::ClockTime>().map(|t| Duration::from_nanos(t.nseconds()))
    }

    /// Stops playing; no event follows.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(bus) = self.bus.take() {
            // The thread only loops on a 50 ms timed pop and the callback; it ends with the flag.
            let _ = bus.join();
        }
    }
}

impl Drop for FilePlayer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Reports the end and the first error on the bus until stopped.
fn watch_bus(
    pipeline: &gst::Pipeline,
    stop: Arc<AtomicBool>,
    on_event: OnEvent,
) -> Result<JoinHandle<()>, MediaError> {
    let bus = pipeline.bus().ok_or_else(|| MediaError::Pipeline {
        element: pipeline.name().to_string(),
        message: "pipeline has no bus".into(),
    })?;
    std::thread::Builder::new()
        .name("videogram-bus".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) else { continue };
                match msg.view() {
                    gst::MessageView::Eos(_) => {
                        on_event(PlayerEvent::Ended);
                        break;
                    }
                    gst::MessageView::Error(err) => {
                        let error = pipeline::error_of(err);
                        tracing::warn!(%error, "VideoGram playback failed");
                        on_event(PlayerEvent::Error(error));
                        break;
                    }
                    _ => {}
                }
            }
        })
        .map_err(|e| MediaError::Pipeline { element: "bus".into(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;

    /// A 1 s WebM with VP8 video and Opus audio, made here: the VideoGram fixture has no sound.
    fn webm_with_sound() -> Vec<u8> {
        pipeline::init().expect("GStreamer initialises");
        let make = pipeline::launch(
            "videotestsrc num-buffers=15 ! video/x-raw,width=160,height=120,framerate=15/1 \
             ! vp8enc deadline=1 ! webmmux name=mux streamable=true ! appsink name=out sync=false \
             audiotestsrc num-buffers=50 samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=1 \
             ! audioconvert ! opusenc ! mux.",
        )
        .expect("the encoding pipeline parses");
        let out: gst_app::AppSink = pipeline::by_name(&make, "out").expect("appsink");
        make.set_state(gst::State::Playing).expect("encoding starts");
        let mut bytes = Vec::new();
        // Until the end of the stream, when pulling fails.
        while let Ok(sample) = out.pull_sample() {
            if let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                bytes.extend_from_slice(&map);
            }
        }
        let _ = make.set_state(gst::State::Null);
        bytes
    }

    #[test]
    fn a_videogram_with_sound_plays_its_audio_branch_to_the_end() {
        let bytes = webm_with_sound();
        assert!(bytes.len() > 1000, "{} bytes encoded", bytes.len());
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let player = FilePlayer::start(bytes, &FilePlayerConfig::default(), move |e| {
            sink.lock().expect("test mutex").push(e);
        })
        .expect("the player starts");
        let started = Instant::now();
        let done = || events.lock().expect("test mutex").iter().any(|e| !matches!(e, PlayerEvent::Frame(_)));
        while !done() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let decoders: Vec<String> = player
            .pipeline
            .iterate_recurse()
            .into_iter()
            .filter_map(Result::ok)
            .filter_map(|e| e.factory().map(|f| f.name().to_string()))
            .filter(|name| name.ends_with("dec"))
            .collect();
        player.stop();
        let events = events.lock().expect("test mutex");
        assert_eq!(events.last(), Some(&PlayerEvent::Ended), "{:?}", events.last());
        let frames = events.iter().filter(|e| matches!(e, PlayerEvent::Frame(_))).count();
        assert!(frames >= 10, "{frames} frames of 15");
        assert!(decoders.iter().any(|d| d == "opusdec"), "the sound was decoded: {decoders:?}");
        assert!(decoders.iter().any(|d| d == "vp8dec"), "{decoders:?}");
    }
}
