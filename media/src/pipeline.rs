//! Shared GStreamer plumbing: initialisation, plugin checks, building from a launch description, and a
//! bus watcher thread that records errors and counts decoder warnings.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use gst::prelude::*;

use crate::MediaError;

/// Initialises GStreamer (idempotent).
pub(crate) fn init() -> Result<(), MediaError> {
    gst::init().map_err(|e| MediaError::Init(e.to_string()))
}

/// Debian package that ships `element` (for the "missing" error message).
fn package_of(element: &'static str) -> &'static str {
    match element {
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "h264parse" | "openh264dec" => "gstreamer1.0-plugins-bad",
        "avdec_h264" => "gstreamer1.0-libav",
        "vp8enc" | "vp8dec" | "v4l2src" | "autoaudiosrc" | "autoaudiosink" | "matroskademux" => {
            "gstreamer1.0-plugins-good"
        }
        "appsrc" | "appsink" | "videotestsrc" | "audiotestsrc" | "videoconvert" | "videoscale"
        | "videorate" | "audioconvert" | "audioresample" | "opusenc" | "opusdec" | "vorbisdec" => {
            "gstreamer1.0-plugins-base"
        }
        _ => "the GStreamer plugin providing it",
    }
}

/// Fails with [`MediaError::MissingElement`] naming the first element that is not installed.
pub(crate) fn require(elements: &[&'static str]) -> Result<(), MediaError> {
    for &element in elements {
        if gst::ElementFactory::find(element).is_none() {
            return Err(MediaError::MissingElement { element, package: package_of(element) });
        }
    }
    Ok(())
}

/// Builds a pipeline from a `gst-launch` style description.
pub(crate) fn launch(description: &str) -> Result<gst::Pipeline, MediaError> {
    let element = gst::parse::launch(description)
        .map_err(|e| MediaError::Pipeline { element: "parse".into(), message: e.to_string() })?;
    element.downcast::<gst::Pipeline>().map_err(|_| MediaError::Pipeline {
        element: "parse".into(),
        message: "description did not produce a pipeline".into(),
    })
}

/// The element called `name` in `pipeline`, as type `T`.
pub(crate) fn by_name<T: IsA<gst::Element>>(pipeline: &gst::Pipeline, name: &str) -> Result<T, MediaError> {
    pipeline.by_name(name).and_then(|e| e.downcast::<T>().ok()).ok_or_else(|| MediaError::Pipeline {
        element: name.into(),
        message: "element not found in the pipeline".into(),
    })
}

/// Sets `state`, mapping a failure to the first error the pipeline posted (the element and its
/// message): from the bus, or from `watch` when a [`BusWatch`] is already draining the bus.
pub(crate) fn set_state(
    pipeline: &gst::Pipeline,
    state: gst::State,
    watch: Option<&BusWatch>,
) -> Result<(), MediaError> {
    match pipeline.set_state(state) {
        Ok(_) => Ok(()),
        Err(_) => {
            let bus_error = match watch {
                Some(watch) => {
                    // The watcher polls every 50 ms.
                    std::thread::sleep(Duration::from_millis(120));
                    watch.error.lock().unwrap_or_else(|p| p.into_inner()).take()
                }
                None => pipeline.bus().and_then(|bus| {
                    bus.pop_filtered(&[gst::MessageType::Error]).and_then(|msg| match msg.view() {
                        gst::MessageView::Error(err) => Some(error_of(err)),
                        _ => None,
                    })
                }),
            };
            Err(bus_error.unwrap_or_else(|| MediaError::Pipeline {
                element: pipeline.name().to_string(),
                message: format!("could not change state to {state:?}"),
            }))
        }
    }
}

pub(crate) fn error_of(err: &gst::message::Error) -> MediaError {
    MediaError::Pipeline {
        element: err.src().map(|s| s.name().to_string()).unwrap_or_else(|| "unknown".into()),
        message: match err.debug() {
            Some(debug) => format!("{} ({debug})", err.error()),
            None => err.error().to_string(),
        },
    }
}

/// Watches a pipeline's bus on its own thread until stopped or EOS.
pub(crate) struct BusWatch {
    stop: Arc<AtomicBool>,
    /// The first error the pipeline posted.
    pub(crate) error: Arc<Mutex<Option<MediaError>>>,
    thread: Option<JoinHandle<()>>,
}

impl BusWatch {
    /// `warnings` counts WARNING, ERROR and QoS messages whose source name starts with one of
    /// `counted_prefixes` (decoders and parsers report broken input that way).
    pub(crate) fn start(
        pipeline: &gst::Pipeline,
        counted_prefixes: &'static [&'static str],
        warnings: Arc<AtomicU64>,
    ) -> Result<BusWatch, MediaError> {
        let bus = pipeline.bus().ok_or_else(|| MediaError::Pipeline {
            element: pipeline.name().to_string(),
            message: "pipeline has no bus".into(),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let (stop2, error2) = (stop.clone(), error.clone());
        let counted = move |src: Option<&gst::Object>| {
            let name = src.map(|s| s.name().to_string()).unwrap_or_default();
            if counted_prefixes.iter().any(|p| name.starts_with(p)) {
                warnings.fetch_add(1, Ordering::Relaxed);
            }
        };
        let thread = std::thread::Builder::new()
            .name("media-bus".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) else { continue };
                    match msg.view() {
                        gst::MessageView::Error(err) => {
                            counted(err.src());
                            let e = error_of(err);
                            tracing::warn!(error = %e, "media pipeline error");
                            let mut slot = error2.lock().unwrap_or_else(|p| p.into_inner());
                            slot.get_or_insert(e);
                        }
                        gst::MessageView::Warning(w) => {
                            counted(w.src());
                            tracing::debug!(warning = %w.error(), "media pipeline warning");
                        }
                        // Decoders report the frames they drop (e.g. corrupt ones) as QoS.
                        gst::MessageView::Qos(q) => counted(q.src()),
                        gst::MessageView::Eos(_) => break,
                        _ => {}
                    }
                }
            })
            .map_err(|e| MediaError::Pipeline { element: "bus".into(), message: e.to_string() })?;
        Ok(BusWatch { stop, error, thread: Some(thread) })
    }

    pub(crate) fn error(&self) -> Option<MediaError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The thread only loops on a 50 ms timed pop; it cannot panic on pipeline data.
            let _ = thread.join();
        }
    }
}

impl Drop for BusWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits (at most `drain`) for an EOS sent by the caller to reach the sinks, then sets NULL.
pub(crate) fn drain_and_stop(pipeline: &gst::Pipeline, drain: Duration) {
    if let Some(bus) = pipeline.bus() {
        let _ = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(drain.as_millis() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
    }
    let _ = pipeline.set_state(gst::State::Null);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_element_names_its_package() {
        init().expect("GStreamer initialises");
        let err = require(&["appsrc", "no-such-element-x"]).expect_err("not installed");
        assert_eq!(
            err,
            MediaError::MissingElement {
                element: "no-such-element-x",
                package: "the GStreamer plugin providing it"
            }
        );
        let x264 = MediaError::MissingElement { element: "x264enc", package: package_of("x264enc") };
        assert_eq!(x264.to_string(), "x264enc missing: install gstreamer1.0-plugins-ugly");
    }
}
