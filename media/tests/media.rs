//! Capture and playback end to end on GStreamer test sources, headless (appsink/fakesink only).
//!
//! The tests share two cores with other work, so they take turns (one pipeline set at a time) and the
//! thresholds leave room for a loaded machine while still failing on a broken pipeline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use facility_media::{
    h264_nal_types, AudioOutput, Capture, CaptureConfig, DecodedVideoFrame, EncodedFrame, FilePlayer,
    FilePlayerConfig, MediaError, MediaKind, Playback, PlaybackConfig, PlayerEvent, PreviewConfig,
    PreviewSink, TrackKind, VideoCodec, H264_NAL_IDR, H264_NAL_PPS, H264_NAL_SPS,
};
use tokio::sync::mpsc::Receiver;

/// One test's pipelines at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Receives frames for `dur` (or until the channel closes).
async fn collect_for(rx: &mut Receiver<EncodedFrame>, dur: Duration) -> Vec<EncodedFrame> {
    let deadline = tokio::time::Instant::now() + dur;
    let mut out = Vec::new();
    while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(frame);
    }
    out
}

fn video(frames: &[EncodedFrame]) -> Vec<&EncodedFrame> {
    frames.iter().filter(|f| f.track == TrackKind::Video).collect()
}

fn audio(frames: &[EncodedFrame]) -> Vec<&EncodedFrame> {
    frames.iter().filter(|f| f.track == TrackKind::Audio).collect()
}

/// A playback that keeps the decoded frames it is handed.
fn playback(cfg: &PlaybackConfig) -> (Playback, Arc<Mutex<Vec<DecodedVideoFrame>>>) {
    let frames = Arc::new(Mutex::new(Vec::new()));
    let sink = frames.clone();
    let playback = Playback::start(cfg, move |f| sink.lock().expect("test mutex").push(f))
        .expect("playback pipeline starts");
    (playback, frames)
}

/// Pushes every frame, returns how many video/audio frames were accepted.
fn push_all<'a>(playback: &Playback, frames: impl IntoIterator<Item = &'a EncodedFrame>) -> (u64, u64) {
    let (mut v, mut a) = (0, 0);
    for f in frames {
        playback.push(f.clone()).expect("a captured frame is accepted");
        match f.track {
            TrackKind::Video => v += 1,
            TrackKind::Audio => a += 1,
        }
    }
    (v, a)
}

/// User+system CPU time of this process so far (Linux `/proc/self/stat`), seconds.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses): utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// Waits until `done` holds or `max` passes.
fn wait_until(max: Duration, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() && start.elapsed() < max {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn h264_720p_capture_keyframes_carry_sps_and_request_keyframe_works() {
    let _turn = TURN.lock().await;
    let cfg = CaptureConfig::default();
    let (capture, mut rx) = Capture::start(&cfg).expect("capture starts");
    let first = collect_for(&mut rx, Duration::from_millis(1000)).await;
    capture.request_keyframe();
    let second = collect_for(&mut rx, Duration::from_millis(1000)).await;
    let stats = capture.stop();

    let all: Vec<EncodedFrame> = first.iter().chain(&second).cloned().collect();
    let v = video(&all);
    eprintln!("2 s of 720p H.264: {} video, {} audio frames, {stats:?}", v.len(), audio(&all).len());
    assert!(v.len() >= 40, "only {} video frames in ~2 s", v.len());
    assert!(v[0].keyframe, "the first video frame is a keyframe");
    for f in v.iter().filter(|f| f.keyframe) {
        let types = h264_nal_types(&f.data);
        assert!(types.contains(&H264_NAL_SPS), "keyframe without SPS: {types:?}");
        assert!(types.contains(&H264_NAL_PPS), "keyframe without PPS: {types:?}");
        assert!(types.contains(&H264_NAL_IDR), "keyframe without IDR slice: {types:?}");
    }
    for f in v.iter().filter(|f| !f.keyframe) {
        assert!(!h264_nal_types(&f.data).contains(&H264_NAL_IDR), "IDR slice in a delta frame");
    }
    // Natural keyframes come every 60 frames (2 s); the forced one must come within ~10 frames.
    let after = video(&second);
    let pos = after.iter().position(|f| f.keyframe);
    eprintln!("keyframe {pos:?} frames after request_keyframe()");
    assert!(matches!(pos, Some(p) if p <= 10), "no keyframe soon after request_keyframe: {pos:?}");
    assert!(v.windows(2).all(|w| w[0].pts_us < w[1].pts_us), "video pts increase");
    assert!(audio(&all).len() >= 60, "Opus: 50 frames/s expected, got {}", audio(&all).len());
    assert_eq!(stats.dropped, 0);
}

#[tokio::test]
async fn h264_bitrate_is_near_the_target() {
    let _turn = TURN.lock().await;
    let cfg = CaptureConfig::default();
    let (capture, mut rx) = Capture::start(&cfg).expect("capture starts");
    // Skip the first keyframe/rate-control warm-up.
    let _ = collect_for(&mut rx, Duration::from_millis(500)).await;
    let cpu_before = process_cpu_seconds();
    let frames = collect_for(&mut rx, Duration::from_millis(4000)).await;
    let cpu = process_cpu_seconds()
        .zip(cpu_before)
        .map_or("?".to_string(), |(after, before)| format!("{:.0}", (after - before) / 4.0 * 100.0));
    capture.stop();

    let v = video(&frames);
    assert!(v.len() >= 90, "only {} video frames in 4 s", v.len());
    let span_us = v[v.len() - 1].pts_us - v[0].pts_us + 1_000_000 / u64::from(cfg.fps);
    let bytes: usize = v.iter().map(|f| f.data.len()).sum();
    let kbps = bytes as f64 * 8.0 / (span_us as f64 / 1e6) / 1000.0;
    let fps = v.len() as f64 / (span_us as f64 / 1e6);
    let a = audio(&frames);
    let audio_kbps =
        a.iter().map(|f| f.data.len()).sum::<usize>() as f64 * 8.0 / (a.len() as f64 * 0.02) / 1000.0;
    eprintln!(
        "video {kbps:.0} kbit/s at {fps:.1} frames/s (target 1300), Opus {audio_kbps:.1} kbit/s, \
         capture+encode CPU {cpu} % of one core"
    );
    let target = f64::from(cfg.video_bitrate_kbps);
    assert!((0.5 * target..=1.5 * target).contains(&kbps), "video bitrate {kbps:.0} kbit/s");
    assert!((27.0..=33.0).contains(&fps), "frame rate {fps:.1}");
    assert!((16.0..=48.0).contains(&audio_kbps), "Opus bitrate {audio_kbps:.1} kbit/s");
}

#[tokio::test]
async fn h264_round_trip_decodes_to_scaled_rgba_and_audio() {
    let _turn = TURN.lock().await;
    let (capture, mut rx) = Capture::start(&CaptureConfig::default()).expect("capture starts");
    let (playback, decoded) =
        playback(&PlaybackConfig { audio_output: AudioOutput::Fake, ..Default::default() });
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2500);
    let (mut sent_v, mut sent_a) = (0u64, 0u64);
    while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        match frame.track {
            TrackKind::Video => sent_v += 1,
            TrackKind::Audio => sent_a += 1,
        }
        playback.push(frame).expect("a captured frame is accepted");
    }
    capture.stop();
    wait_until(Duration::from_secs(2), || playback.stats().video_decoded >= sent_v);
    let stats = playback.stop();
    eprintln!("sent {sent_v} video / {sent_a} audio; {stats:?}");

    assert!(sent_v >= 50, "capture produced only {sent_v} video frames");
    assert!(stats.video_decoded * 10 >= sent_v * 9, "decoded {} of {sent_v}", stats.video_decoded);
    assert!(stats.video_delivered >= 1 && stats.video_delivered <= stats.video_decoded);
    assert!(stats.audio_decoded * 10 >= sent_a * 9, "decoded {} of {sent_a} audio", stats.audio_decoded);
    assert_eq!(stats.decode_errors, 0);
    let frames = decoded.lock().expect("test mutex");
    assert_eq!(frames.len() as u64, stats.video_delivered);
    let f = frames.last().expect("a decoded frame");
    assert_eq!((f.width, f.height), (640, 360));
    assert!(f.stride >= 640 * 4 && f.rgba.len() >= f.stride * 359 + 640 * 4);
    // SMPTE bars, not a black or uniform picture.
    let distinct: std::collections::HashSet<&[u8]> = f.rgba.chunks_exact(4).step_by(97).collect();
    assert!(distinct.len() > 8, "decoded picture has only {} colours", distinct.len());
}

#[tokio::test]
async fn vp8_round_trip() {
    let _turn = TURN.lock().await;
    let cfg = CaptureConfig {
        video_codec: VideoCodec::Vp8,
        width: 640,
        height: 360,
        video_bitrate_kbps: 800,
        ..CaptureConfig::default()
    };
    let (capture, mut rx) = Capture::start(&cfg).expect("VP8 capture starts");
    // 2 s of video; a loaded machine gets up to 5 s (vp8enc's start-up is CPU-hungry).
    let mut frames = collect_for(&mut rx, Duration::from_millis(1000)).await;
    capture.request_keyframe();
    let requested_at = frames.len();
    frames.extend(collect_for(&mut rx, Duration::from_millis(1000)).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while video(&frames).len() < 60 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(f)) => frames.push(f),
            _ => break,
        }
    }
    let cstats = capture.stop();
    let v = video(&frames);
    eprintln!("VP8 capture: {cstats:?}");
    assert!(v.len() >= 40, "only {} VP8 frames in 2-5 s", v.len());
    assert!(
        v[0].keyframe && v[0].data.get(3..6) == Some(&[0x9d, 0x01, 0x2a][..]),
        "VP8 starts with a keyframe"
    );
    let after = video(&frames[requested_at..]);
    let pos = after.iter().position(|f| f.keyframe);
    assert!(
        video(&frames[..requested_at]).len() < 50 && matches!(pos, Some(p) if p <= 10),
        "no VP8 keyframe soon after request_keyframe: {pos:?}"
    );

    let pcfg = PlaybackConfig {
        video_codec: VideoCodec::Vp8,
        output_width: 320,
        output_height: 180,
        ..Default::default()
    };
    let (playback, decoded) = playback(&pcfg);
    let (sent_v, sent_a) = push_all(&playback, &frames);
    wait_until(Duration::from_secs(2), || playback.stats().video_decoded >= sent_v);
    let stats = playback.stop();
    eprintln!("VP8: {cstats:?}; sent {sent_v}/{sent_a}; {stats:?}");
    assert!(stats.video_decoded * 10 >= sent_v * 9, "decoded {} of {sent_v}", stats.video_decoded);
    assert!(stats.audio_decoded * 10 >= sent_a * 9);
    let frames = decoded.lock().expect("test mutex");
    let f = frames.last().expect("a decoded VP8 frame");
    assert_eq!((f.width, f.height), (320, 180));
}

#[tokio::test]
async fn voice_is_audio_only() {
    let _turn = TURN.lock().await;
    let cfg = CaptureConfig { kind: MediaKind::Voice, ..CaptureConfig::default() };
    let (capture, mut rx) = Capture::start(&cfg).expect("voice capture starts");
    capture.request_keyframe(); // no-op without video
    let frames = collect_for(&mut rx, Duration::from_millis(1500)).await;
    let stats = capture.stop();
    assert!(video(&frames).is_empty());
    assert_eq!((stats.video_frames, stats.video_bytes), (0, 0));
    assert!(audio(&frames).len() >= 50, "only {} Opus frames in 1.5 s", audio(&frames).len());

    let pcfg = PlaybackConfig { kind: MediaKind::Voice, ..PlaybackConfig::default() };
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let playback = Playback::start(&pcfg, move |_| {
        c.fetch_add(1, Ordering::Relaxed);
    })
    .expect("voice playback starts");
    let (_, sent_a) = push_all(&playback, &frames);
    let stray =
        EncodedFrame { track: TrackKind::Video, keyframe: true, pts_us: 0, data: vec![0, 0, 1, 0x65].into() };
    assert!(matches!(playback.push(stray), Err(MediaError::BadFrame(_))));
    wait_until(Duration::from_secs(2), || playback.stats().audio_decoded >= sent_a);
    let stats = playback.stop();
    eprintln!("voice: {} frames, {stats:?}", sent_a);
    assert!(stats.audio_decoded * 10 >= sent_a * 9);
    assert_eq!((stats.video_decoded, calls.load(Ordering::Relaxed)), (0, 0));
}

/// A preview sink that keeps what it is handed.
fn preview_sink() -> (PreviewSink, Arc<Mutex<Vec<DecodedVideoFrame>>>) {
    let frames = Arc::new(Mutex::new(Vec::new()));
    let keep = frames.clone();
    (PreviewSink::new(move |f| keep.lock().expect("test mutex").push(f)), frames)
}

#[tokio::test]
async fn the_preview_gets_small_rgba_pictures_while_encoded_frames_still_flow() {
    let _turn = TURN.lock().await;
    let (sink, pictures) = preview_sink();
    let cfg = CaptureConfig { preview: Some(PreviewConfig::new(sink)), ..CaptureConfig::default() };
    let (capture, mut rx) = Capture::start(&cfg).expect("capture with a preview starts");
    let frames = collect_for(&mut rx, Duration::from_millis(2000)).await;
    let stats = capture.stop();

    let pictures = pictures.lock().expect("test mutex").clone();
    let v = video(&frames);
    eprintln!("2 s with preview: {} encoded video, {} preview pictures, {stats:?}", v.len(), pictures.len());
    // The encoder is not slowed by the preview: the same floor as without one.
    assert!(v.len() >= 40, "only {} encoded video frames in ~2 s", v.len());
    assert!(v[0].keyframe && h264_nal_types(&v[0].data).contains(&H264_NAL_SPS));
    assert!(audio(&frames).len() >= 60, "audio still flows: {}", audio(&frames).len());
    assert_eq!(stats.dropped, 0);

    // 15 of the camera's 30 frames a second, at the preview's size, not the encoder's.
    assert!(pictures.len() >= 10, "only {} preview pictures in ~2 s", pictures.len());
    assert!(pictures.len() <= 2 * 15 + 3, "{} preview pictures: not rate-limited to 15 fps", pictures.len());
    assert_eq!(stats.preview_frames, pictures.len() as u64);
    for p in &pictures {
        assert_eq!((p.width, p.height), (320, 180));
        assert!(p.stride >= 320 * 4 && p.rgba.len() >= p.stride * 179 + 320 * 4, "stride {}", p.stride);
    }
    // Real pictures, not blank buffers: the SMPTE bars have more than one colour across a row.
    let row = &pictures[0].rgba[pictures[0].stride * 40..pictures[0].stride * 40 + 320 * 4];
    let first = &row[..4];
    assert!(row.chunks(4).any(|px| px != first), "a preview row is one flat colour");
}

#[tokio::test]
async fn a_voice_capture_has_no_preview() {
    let _turn = TURN.lock().await;
    let (sink, pictures) = preview_sink();
    let cfg = CaptureConfig {
        kind: MediaKind::Voice,
        preview: Some(PreviewConfig::new(sink)),
        ..CaptureConfig::default()
    };
    let (capture, mut rx) = Capture::start(&cfg).expect("voice capture starts");
    let frames = collect_for(&mut rx, Duration::from_millis(800)).await;
    let stats = capture.stop();
    assert!(video(&frames).is_empty() && !audio(&frames).is_empty());
    assert_eq!(stats.preview_frames, 0);
    assert!(pictures.lock().expect("test mutex").is_empty(), "no camera in a voice call");
}

/// Captures `dur` of default H.264, forcing a keyframe at `key_at`.
async fn captured_h264(dur: Duration, key_at: Duration) -> Vec<EncodedFrame> {
    let (capture, mut rx) = Capture::start(&CaptureConfig::default()).expect("capture starts");
    let mut frames = collect_for(&mut rx, key_at).await;
    capture.request_keyframe();
    frames.extend(collect_for(&mut rx, dur.saturating_sub(key_at)).await);
    capture.stop();
    frames
}

#[tokio::test]
async fn garbage_is_rejected_or_counted_and_decoding_recovers() {
    let _turn = TURN.lock().await;
    let frames = captured_h264(Duration::from_millis(2000), Duration::from_millis(1000)).await;
    let v: Vec<EncodedFrame> = video(&frames).into_iter().cloned().collect();
    let second_key = v.iter().skip(1).position(|f| f.keyframe).map(|p| p + 1).expect("a forced keyframe");
    let (playback, decoded) = playback(&PlaybackConfig::default());

    let frame = |data: Vec<u8>, keyframe: bool| EncodedFrame {
        track: TrackKind::Video,
        keyframe,
        pts_us: 1,
        data: data.into(),
    };
    // Not H.264 at all, or empty: a typed error.
    for bad in [vec![], vec![0xde, 0xad, 0xbe, 0xef, 1, 2, 3], vec![0, 0, 1, 0xff, 0x12], vec![0, 0, 1]] {
        assert!(matches!(playback.push(frame(bad, true)), Err(MediaError::BadFrame(_))));
    }
    // Plausible headers, garbage payload; and a keyframe cut in half: these reach the decoder.
    let mut noise = vec![0, 0, 0, 1, 0x65];
    noise.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    playback.push(frame(noise, true)).expect("plausible frame is accepted");
    let key = &v[0].data;
    playback.push(frame(key[..key.len() / 2].to_vec(), true)).expect("truncated frame is accepted");
    for f in &v[1..5] {
        playback.push(f.clone()).expect("delta frame is accepted"); // references the truncated keyframe
    }
    // Audio garbage.
    let junk =
        EncodedFrame { track: TrackKind::Audio, keyframe: true, pts_us: 1, data: vec![0xff; 7].into() };
    playback.push(junk).expect("opaque Opus packet is accepted");
    std::thread::sleep(Duration::from_millis(300));
    let before = playback.stats();

    // Valid stream from the next keyframe on still decodes.
    let tail = &v[second_key..];
    for f in tail {
        playback.push(f.clone()).expect("valid frame is accepted");
    }
    wait_until(Duration::from_secs(2), || {
        playback.stats().video_decoded >= before.video_decoded + tail.len() as u64
    });
    let stats = playback.stop();
    eprintln!("garbage: before recovery {before:?}; after {stats:?}");
    assert_eq!(stats.rejected, 4);
    // The noise frame (dropped by h264parse) and the junk Opus packet did not decode.
    assert!(stats.decode_errors >= 2, "undecodable frames were not counted: {stats:?}");
    assert!(stats.audio_decoded == 0 || stats.audio_decoded == 1, "one audio packet was pushed");
    let recovered = stats.video_decoded - before.video_decoded;
    assert!(
        recovered * 10 >= tail.len() as u64 * 9,
        "decoded {recovered} of {} after the keyframe",
        tail.len()
    );
    let last = decoded.lock().expect("test mutex").last().cloned().expect("decoded frame");
    assert_eq!((last.width, last.height), (640, 360));
}

#[tokio::test]
async fn playback_joined_mid_stream_at_a_keyframe_decodes() {
    let _turn = TURN.lock().await;
    let frames = captured_h264(Duration::from_millis(2000), Duration::from_millis(1000)).await;
    let v: Vec<EncodedFrame> = video(&frames).into_iter().cloned().collect();
    let join =
        v.iter().skip(1).position(|f| f.keyframe).map(|p| p + 1).expect("a forced mid-stream keyframe");
    assert!(join >= 20, "the mid-stream keyframe is at frame {join}");
    let joined = &v[join..];
    let (playback, decoded) = playback(&PlaybackConfig::default());
    push_all(&playback, joined);
    wait_until(Duration::from_secs(2), || playback.stats().video_decoded >= joined.len() as u64);
    let stats = playback.stop();
    eprintln!("joined at frame {join}: pushed {}; {stats:?}", joined.len());
    assert!(
        stats.video_decoded * 10 >= joined.len() as u64 * 9,
        "decoded {} of {}",
        stats.video_decoded,
        joined.len()
    );
    assert_eq!(stats.decode_errors, 0);
    let first = decoded.lock().expect("test mutex").first().cloned().expect("decoded frame");
    assert!(first.pts_us >= joined[0].pts_us, "the first decoded frame is not from before the join");
}

#[tokio::test]
async fn a_full_channel_drops_and_counts_without_stalling_the_pipeline() {
    let _turn = TURN.lock().await;
    let cfg = CaptureConfig { kind: MediaKind::Voice, channel_capacity: 4, ..CaptureConfig::default() };
    let (capture, mut rx) = Capture::start(&cfg).expect("voice capture starts");
    tokio::time::sleep(Duration::from_millis(1000)).await; // nobody reads
    let stalled = capture.stats();
    assert!(stalled.dropped >= 30, "50 Opus frames/s into a 4-slot channel: {stalled:?}");
    let old: Vec<EncodedFrame> = (0..4).filter_map(|_| rx.try_recv().ok()).collect();
    assert_eq!(old.len(), 4, "the channel held its capacity");
    let fresh = collect_for(&mut rx, Duration::from_millis(500)).await;
    let stats = capture.stop();
    let mut rest = 0;
    while rx.try_recv().is_ok() {
        rest += 1;
    }
    assert!(fresh.len() >= 15, "frames flow again once read: {}", fresh.len());
    assert!(fresh[0].pts_us >= old[3].pts_us + 500_000, "frames in between were dropped, not queued");
    assert_eq!(stats.audio_frames, stats.dropped + old.len() as u64 + fresh.len() as u64 + rest);
}

#[tokio::test]
async fn a_missing_camera_is_a_typed_pipeline_error() {
    let _turn = TURN.lock().await;
    let cfg = CaptureConfig {
        sources: facility_media::Sources::Devices { video_device: "/dev/no-such-camera".into() },
        ..CaptureConfig::default()
    };
    match Capture::start(&cfg) {
        Err(MediaError::Pipeline { element, message }) => {
            eprintln!("no camera: {element}: {message}");
            assert_eq!(element, "vcam", "the error names the camera source");
            assert!(message.contains("no-such-camera"), "{message}");
        }
        Err(other) => panic!("expected a pipeline error, got {other}"),
        Ok(_) => panic!("a capture from a camera that does not exist started"),
    }
}

/// The 2 s VideoGram fixture central-sim attaches in the demo.
const VIDEOGRAM: &[u8] = include_bytes!("../../central-sim/fixtures/media/videogram.webm");

/// Plays `bytes` with a [`FilePlayer`], gathering what it reports.
fn file_player(bytes: &[u8], cfg: &FilePlayerConfig) -> (FilePlayer, Arc<Mutex<Vec<PlayerEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let player = FilePlayer::start(bytes.to_vec(), cfg, move |e| sink.lock().expect("test mutex").push(e))
        .expect("the file player starts");
    (player, events)
}

#[tokio::test]
async fn a_videogram_plays_to_its_end_at_its_own_pace_in_frames_of_the_asked_size() {
    let _turn = TURN.lock().await;
    let cfg = FilePlayerConfig { output_width: 320, output_height: 180, audio_output: AudioOutput::Fake };
    let started = Instant::now();
    let (player, events) = file_player(VIDEOGRAM, &cfg);
    let ended = || events.lock().expect("test mutex").iter().any(|e| !matches!(e, PlayerEvent::Frame(_)));
    wait_until(Duration::from_secs(15), ended);
    let took = started.elapsed();
    player.stop();
    let events = events.lock().expect("test mutex").clone();
    let frames: Vec<&DecodedVideoFrame> = events
        .iter()
        .filter_map(|e| match e {
            PlayerEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect();
    eprintln!("videogram: {} frames in {took:?}", frames.len());
    assert_eq!(events.last(), Some(&PlayerEvent::Ended), "the last report is the end");
    assert!(frames.len() >= 20, "only {} frames of a 2 s video", frames.len());
    for f in &frames {
        assert_eq!((f.width, f.height), (320, 180));
        assert!(f.stride >= 320 * 4 && f.rgba.len() >= f.stride * 179 + 320 * 4);
    }
    assert!(frames.windows(2).all(|w| w[0].pts_us < w[1].pts_us), "positions only move forward");
    let last = frames.last().map_or(0, |f| f.pts_us);
    assert!((1_500_000..=2_100_000).contains(&last), "the last frame is near 2 s: {last} µs");
    // Paced by the clock, not decoded as fast as possible.
    assert!(took >= Duration::from_millis(1_500), "played in {took:?}");
}

#[tokio::test]
async fn a_paused_videogram_holds_still_and_resumes() {
    let _turn = TURN.lock().await;
    let (player, events) = file_player(VIDEOGRAM, &FilePlayerConfig::default());
    let count = || events.lock().expect("test mutex").len();
    wait_until(Duration::from_secs(5), || count() >= 5);
    player.pause().expect("pauses");
    std::thread::sleep(Duration::from_millis(200));
    let held = count();
    let position = player.position();
    std::thread::sleep(Duration::from_millis(600));
    assert!(count() <= held + 1, "frames kept coming while paused: {held} -> {}", count());
    assert_eq!(player.position(), position, "the position holds while paused");
    player.resume().expect("resumes");
    let ended = || events.lock().expect("test mutex").contains(&PlayerEvent::Ended);
    wait_until(Duration::from_secs(10), ended);
    assert!(ended(), "resumed to the end");
}

#[tokio::test]
async fn bytes_that_are_not_a_videogram_are_a_reported_error_not_a_panic() {
    let _turn = TURN.lock().await;
    for bytes in [&b"not a webm file at all"[..], &VIDEOGRAM[..VIDEOGRAM.len() / 3]] {
        let (player, events) = file_player(bytes, &FilePlayerConfig::default());
        let done = || events.lock().expect("test mutex").iter().any(|e| !matches!(e, PlayerEvent::Frame(_)));
        wait_until(Duration::from_secs(10), done);
        player.stop();
        let last = events.lock().expect("test mutex").last().cloned();
        // A third of the file plays what it holds and then ends; garbage is an error.
        assert!(
            matches!(last, Some(PlayerEvent::Error(MediaError::Pipeline { .. })) | Some(PlayerEvent::Ended)),
            "{last:?}"
        );
        if bytes.len() < 100 {
            assert!(matches!(last, Some(PlayerEvent::Error(_))), "{last:?}");
        }
    }
}
