//! The contact's media in calls (issue 5): when a scripted contact answers,
//! central-sim joins the call through the MoQ relay as a real publisher
//! (GStreamer test sources, the contact's camera and microphone) and
//! subscriber (counting the resident's frames), until the script hangs up,
//! the edge ends the call, or the relay connection goes.
//!
//! Owns: one task per answered call and the media counts it records on the
//! call's row (`admin calls` shows them). Must not: decide anything about
//! the call (the edge does; `EndCall` stops the leg).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use facility_media::{Capture, CaptureConfig, MediaKind, Sources, TrackKind};
use media_link::{
    call_namespace, follow_track, wall_micros, Broadcast, MediaObject, RelayClient, Side, AUDIO_TRACK,
    VIDEO_TRACK,
};
use proto::call::CallId;
use proto::domain::CallKind;
use serde::Serialize;
use tokio::sync::watch;

use crate::calls::{self, Pickup};
use crate::db::Db;

/// Longest a leg waits for the resident's tracks.
const SUBSCRIBE_PATIENCE: Duration = Duration::from_secs(30);
/// A leg outlives the call's limit by this much at most (the edge ends it sooner).
const OVERRUN: Duration = Duration::from_secs(10);

/// What the contact's leg of one call sent and received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LegReport {
    pub video_frames_sent: u64,
    pub audio_frames_sent: u64,
    pub video_frames_received: u64,
    pub audio_frames_received: u64,
    /// Median send-to-arrival time of the resident's frames (µs, same host).
    pub latency_p50_us: Option<u64>,
    /// When the last of the resident's frames arrived (Unix ms).
    pub last_received_at_ms: Option<u64>,
    /// How the leg ended.
    pub ended_by: String,
}

pub struct ContactMedia {
    relay: RelayClient,
    db: Arc<Mutex<Db>>,
    live: Mutex<HashMap<(String, CallId), watch::Sender<bool>>>,
}

impl ContactMedia {
    pub fn new(relay: RelayClient, db: Arc<Mutex<Db>>) -> Arc<ContactMedia> {
        Arc::new(ContactMedia { relay, db, live: Mutex::new(HashMap::new()) })
    }

    /// The edge rang a contact: if the script answers, the leg joins then.
    pub fn rung(self: &Arc<Self>, facility: &str, call_id: CallId) {
        let script = match self.db.lock() {
            Ok(db) => calls::script_of(&db, facility, call_id),
            Err(_) => return,
        };
        let Ok(Some((script, ring, rung_at_ms))) = script else { return };
        let Pickup::AnswerAfterMs(answer_ms) = script.pickup else { return };
        let key = (facility.to_string(), call_id);
        let (stop, stopped) = watch::channel(false);
        match self.live.lock() {
            Ok(mut live) if !live.contains_key(&key) => live.insert(key.clone(), stop),
            _ => return,
        };
        let elapsed = now_ms().saturating_sub(rung_at_ms);
        let answer_in = Duration::from_millis(answer_ms.saturating_sub(elapsed));
        let hangup_after = script.hangup_after_ms.map(Duration::from_millis);
        let limit = Duration::from_secs(u64::from(ring.max_duration_secs)) + OVERRUN;
        let this = self.clone();
        tokio::spawn(async move {
            let report = this.leg(&key.0, call_id, ring.kind, answer_in, hangup_after, limit, stopped).await;
            tracing::info!(facility = %key.0, call_id, ?report, "contact media leg ended");
            if let Ok(mut db) = this.db.lock() {
                if let Err(error) = calls::record_media(&mut db, &key.0, call_id, &report) {
                    tracing::error!(%error, "cannot record the contact's media counts");
                }
            }
            if let Ok(mut live) = this.live.lock() {
                live.remove(&key);
            }
        });
    }

    /// The edge ended the call: the leg stops now.
    pub fn ended(&self, facility: &str, call_id: CallId) {
        if let Ok(live) = self.live.lock() {
            if let Some(stop) = live.get(&(facility.to_string(), call_id)) {
                let _ = stop.send(true);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn leg(
        &self,
        facility: &str,
        call_id: CallId,
        kind: CallKind,
        answer_in: Duration,
        hangup_after: Option<Duration>,
        limit: Duration,
        mut stopped: watch::Receiver<bool>,
    ) -> LegReport {
        let mut report = LegReport::default();
        tokio::select! {
            () = tokio::time::sleep(answer_in) => {}
            _ = stopped.changed() => {
                report.ended_by = "ended before the answer".into();
                return report;
            }
        }
        let session = match self.relay.connect().await {
            Ok(session) => session,
            Err(error) => {
                report.ended_by = format!("relay: {error}");
                return report;
            }
        };
        let (media_kind, tracks): (MediaKind, &[&str]) = match kind {
            CallKind::Video => (MediaKind::Video, &[VIDEO_TRACK, AUDIO_TRACK]),
            CallKind::Voice => (MediaKind::Voice, &[AUDIO_TRACK]),
        };
        let ours = call_namespace(facility, call_id, Side::Contact);
        let (_broadcast, mut senders) = match Broadcast::start(&session, ours, tracks) {
            Ok(started) => started,
            Err(error) => {
                report.ended_by = format!("announce: {error}");
                return report;
            }
        };
        let config = CaptureConfig { kind: media_kind, sources: Sources::Test, ..CaptureConfig::default() };
        let (capture, mut frames) = match Capture::start(&config) {
            Ok(started) => started,
            Err(error) => {
                report.ended_by = format!("capture: {error}");
                return report;
            }
        };
        let theirs = call_namespace(facility, call_id, Side::Resident);
        let counts = Arc::new(Mutex::new((0u64, 0u64, Vec::<u64>::new(), 0u64)));
        let mut receivers = Vec::new();
        for name in tracks {
            let mut subscription =
                follow_track(session.subscriber.clone(), theirs.clone(), name, SUBSCRIBE_PATIENCE);
            let counts = counts.clone();
            let video = *name == VIDEO_TRACK;
            receivers.push(tokio::spawn(async move {
                while let Some(frame) = subscription.frames.recv().await {
                    if let Ok(mut c) = counts.lock() {
                        if video {
                            c.0 += 1;
                        } else {
                            c.1 += 1;
                        }
                        c.2.push(frame.received_at_us.saturating_sub(frame.object.sent_at_us));
                        c.3 = c.3.max(frame.received_at_us / 1000);
                    }
                }
            }));
        }
        let hangup = tokio::time::sleep(hangup_after.unwrap_or(limit).min(limit));
        tokio::pin!(hangup);
        report.ended_by = loop {
            tokio::select! {
                frame = frames.recv() => {
                    let Some(frame) = frame else { break "capture stopped".to_string() };
                    let index = match (frame.track, kind) {
                        (TrackKind::Video, CallKind::Video) | (TrackKind::Audio, CallKind::Voice) => 0,
                        (TrackKind::Audio, CallKind::Video) => 1,
                        (TrackKind::Video, CallKind::Voice) => continue,
                    };
                    let object = MediaObject { keyframe: frame.keyframe, pts_us: frame.pts_us, sent_at_us: wall_micros(), data: frame.data };
                    if senders[index].send(&object).is_err() {
                        break "track closed".to_string();
                    }
                }
                () = &mut hangup => break if hangup_after.is_some() { "contact hung up".to_string() } else { "limit overrun".to_string() },
                _ = stopped.changed() => break "edge ended the call".to_string(),
                _ = session.closed() => break "relay connection closed".to_string(),
            }
        };
        capture.stop();
        for receiver in receivers {
            receiver.abort();
        }
        report.video_frames_sent = if kind == CallKind::Video { senders[0].sent() } else { 0 };
        report.audio_frames_sent = senders.last().map_or(0, |s| s.sent());
        if let Ok(mut c) = counts.lock() {
            report.video_frames_received = c.0;
            report.audio_frames_received = c.1;
            c.2.sort_unstable();
            report.latency_p50_us = c.2.get(c.2.len() / 2).copied();
            report.last_received_at_ms = (c.3 > 0).then_some(c.3);
        }
        report
    }
}

fn now_ms() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0)
}
