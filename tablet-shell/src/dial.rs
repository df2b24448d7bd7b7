//! `tablet-shell cli call --place`: places a real call and follows it to the
//! end, printing the edge's answer, every update as it arrives, and a
//! summary measured on this side (what the resident would see).

use std::io::Write;
use std::time::Duration;

use proto::call::{CallEndReason, CallId, CallState};
use proto::domain::{CallKind, ContactId, PhoneNumber};
use proto::tablet::ServerEvent;
use serde::Serialize;
use tokio::time::Instant;

use crate::client::EdgeClient;
#[cfg(feature = "media")]
use crate::media_call::MediaLeg;
#[cfg(feature = "media")]
pub use crate::media_call::MediaReport;
use crate::output::{ErrorBody, ExitStatus, Line, Reply};
use crate::session::emit;

/// How a placed call went, as the tablet saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallSummary {
    pub call_id: CallId,
    /// The end reason the edge gave.
    pub outcome: CallEndReason,
    pub max_duration_secs: u32,
    /// From the "connected" update to the "ended" one; 0 if never connected.
    #[serde(serialize_with = "secs")]
    pub connected_secs: Duration,
    /// When the warning came, in seconds after "connected".
    #[serde(serialize_with = "opt_secs")]
    pub warned_after_secs: Option<Duration>,
    /// The time left the warning announced.
    pub warning_remaining_secs: Option<u32>,
    /// Whether this side hung up (`--hangup-after`).
    pub hung_up_here: bool,
    /// Frames sent and received (with `--media`); unset without media.
    pub media: Option<MediaReport>,
}

/// What the media leg did; without the `media` feature there never is one.
#[cfg(not(feature = "media"))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MediaReport {}

#[cfg(feature = "media")]
pub use crate::media_call::MediaOptions;

/// Places the call and follows it. `hangup_after` counts from the answer.
pub async fn place<W: Write>(
    client: &EdgeClient,
    out: &mut W,
    contact: ContactId,
    kind: CallKind,
    number: Option<PhoneNumber>,
    hangup_after: Option<Duration>,
    #[cfg(feature = "media")] media: Option<MediaOptions>,
) -> ExitStatus {
    let started = match client.start_call(contact, kind, number).await {
        Ok(Ok(started)) => started,
        Ok(Err(decision)) => {
            let line = Line::Ok(Reply::Call(decision));
            emit(out, &line);
            return line.exit_status();
        }
        Err(error) => {
            let line = Line::Error(ErrorBody::from(error));
            emit(out, &line);
            return line.exit_status();
        }
    };
    let call_id = started.call_id;
    emit(
        out,
        &Line::Ok(Reply::CallStarted {
            call_id,
            max_duration_secs: started.max_duration_secs,
            warn_at_secs: started.warn_at_secs,
            media: started.media.clone(),
        }),
    );
    #[cfg(feature = "media")]
    let mut leg = match (media, started.media.clone()) {
        (Some(options), Some(namespaces)) => Some(MediaLeg::start(options, namespaces, kind)),
        (Some(_), None) => {
            tracing::warn!("the edge has no media relay: the call runs without media");
            None
        }
        (None, _) => None,
    };
    let mut connected_at: Option<Instant> = None;
    let mut warned: Option<(Duration, u32)> = None;
    let mut hang_up_at: Option<Instant> = None;
    let mut hung_up_here = false;
    loop {
        let hang_up = async {
            match hang_up_at {
                Some(at) if !hung_up_here => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            event = client.next_event() => event,
            () = hang_up => {
                hung_up_here = true;
                if let Err(error) = client.hang_up(call_id).await {
                    // The call may have ended meanwhile; its "ended" still comes.
                    tracing::debug!(%error, "hang-up refused");
                }
                continue;
            }
        };
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                let line = Line::Error(ErrorBody::from(error));
                emit(out, &line);
                return line.exit_status();
            }
        };
        emit(out, &Line::Ok(Reply::Event(event.clone())));
        let ServerEvent::Call(update) = event else { continue };
        if update.call_id != call_id {
            continue;
        }
        let now = Instant::now();
        match update.state {
            CallState::Ringing => {}
            CallState::Connected { .. } => {
                connected_at.get_or_insert(now);
                #[cfg(feature = "media")]
                if let Some(leg) = &leg {
                    leg.contact_joined();
                }
                if let Some(after) = hangup_after {
                    hang_up_at = Some(now + after);
                }
            }
            CallState::Warned { remaining_secs } => {
                // A warning that overtook `Connected` means the call is up.
                if connected_at.is_none() {
                    connected_at = Some(now);
                    #[cfg(feature = "media")]
                    if let Some(leg) = &leg {
                        leg.contact_joined();
                    }
                }
                let after = connected_at.map_or(Duration::ZERO, |at| now - at);
                warned = Some((after, remaining_secs));
            }
            CallState::Ended { reason } => {
                let connected_secs = connected_at.map_or(Duration::ZERO, |at| now - at);
                #[cfg(feature = "media")]
                let media = match leg.take() {
                    Some(leg) => Some(leg.finish().await),
                    None => None,
                };
                #[cfg(not(feature = "media"))]
                let media = None;
                let summary = CallSummary {
                    call_id,
                    outcome: reason,
                    max_duration_secs: started.max_duration_secs,
                    connected_secs,
                    warned_after_secs: warned.map(|w| w.0),
                    warning_remaining_secs: warned.map(|w| w.1),
                    hung_up_here,
                    media,
                };
                emit(out, &Line::Ok(Reply::CallSummary(summary)));
                return ExitStatus::Success;
            }
        }
    }
}

/// A duration as seconds with millisecond precision.
fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_millis() as f64) / 1000.0)
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => secs(d, s),
        None => s.serialize_none(),
    }
}
