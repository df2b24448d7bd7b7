//! The media bridge (issue 5): a policy-enforcing MoQ relay between a
//! tablet and the central relay.
//!
//! A tablet opens a second QUIC connection to the tablet port with ALPN
//! `moqt-18` and its device certificate, and announces its side of a call
//! (`facility/<F>/call/<id>/resident`). The bridge admits the announcement
//! only for a call that is live on this box and owned by a tablet
//! connection with the same certificate; it then takes a share of a MoQ
//! session to the central relay ([`media_link::RelayUplinks`]: calls share
//! upstream sessions, up to [`media_link::CALLS_PER_UPLINK`] each),
//! announces the same namespace there and serves the relay's subscriptions
//! from the tablet's tracks, and announces the contact's namespace to the
//! tablet, serving it from the relay. Objects are handed on as they are:
//! nothing is decoded here.
//!
//! The call core decides when a call ends; [`EdgeState::close_media`] then
//! closes the tablet's QUIC connection of that call at once, and the
//! forwarding withdraws the call's announcement and subscriptions from the
//! shared upstream session, so media stops on the edge's clock, not the
//! relay's idle timeout. Privileged numbers never get here: the policy
//! refuses them before a call exists.

use std::collections::HashMap;
use std::time::Duration;

use edge_core::call::CallId;
use media_link::moq_transport::serve::{ServeError, Tracks, TracksReader, TracksRequest};
use media_link::moq_transport::session::{PublishedNamespace, Publisher, Subscriber};
use media_link::{call_namespace, parse_call_namespace, MoqSession, Side, Uplink, AUDIO_TRACK, VIDEO_TRACK};
use proto::domain::CallKind;

use crate::state::{EdgeState, Shared};

/// QUIC close code on a media connection whose call ended.
pub const CLOSE_CALL_ENDED: u32 = 0x20;
/// QUIC close code on a media connection the bridge refused.
pub const CLOSE_REFUSED: u32 = 0x21;
/// How long a tablet may take to announce after connecting.
const ANNOUNCE_PATIENCE: Duration = Duration::from_secs(10);
/// MoQ request error code for an announcement the bridge does not admit.
const UNAUTHORIZED: u64 = 0x1;

/// Why an announcement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaRefusal {
    #[error("not a call namespace")]
    NotACall,
    #[error("call of another facility")]
    OtherFacility,
    #[error("a tablet publishes only the resident's side")]
    WrongSide,
    #[error("no live call with that id")]
    NoSuchCall,
    #[error("the call belongs to another device")]
    NotYourCall,
    #[error("no media relay is configured")]
    NoRelay,
}

/// What an admitted announcement may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaGrant {
    pub call_id: CallId,
    pub kind: CallKind,
}

impl MediaGrant {
    /// Voice calls carry audio only.
    pub fn allows(&self, track: &str) -> bool {
        track == AUDIO_TRACK || (track == VIDEO_TRACK && self.kind == CallKind::Video)
    }
}

/// What the bridge needs to know of a live call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    pub kind: CallKind,
    /// The certificate of the tablet connection that placed it (unset once
    /// that connection is gone).
    pub owner_fingerprint: Option<String>,
}

/// The admission rule: only the resident side of a live call of this
/// facility, announced from the device that placed the call.
pub fn admit(
    facility: &str,
    namespace: &media_link::moq_transport::coding::TrackNamespace,
    fingerprint: &str,
    live_call: impl FnOnce(CallId) -> Option<LiveCall>,
) -> Result<MediaGrant, MediaRefusal> {
    let (announced_facility, id, side) = parse_call_namespace(namespace).ok_or(MediaRefusal::NotACall)?;
    if announced_facility != facility {
        return Err(MediaRefusal::OtherFacility);
    }
    if side != Side::Resident {
        return Err(MediaRefusal::WrongSide);
    }
    let call_id = CallId(id);
    let call = live_call(call_id).ok_or(MediaRefusal::NoSuchCall)?;
    if call.owner_fingerprint.as_deref() != Some(fingerprint) {
        return Err(MediaRefusal::NotYourCall);
    }
    Ok(MediaGrant { call_id, kind: call.kind })
}

/// The tablets' media connections of live calls, closed when the call ends
/// (the upstream side is a shared session: the call's forwarding leaves it
/// when the tablet's connection goes).
#[derive(Default)]
pub struct MediaLegs {
    legs: HashMap<CallId, Vec<quinn::Connection>>,
}

impl EdgeState {
    /// Admits `namespace` from the device with certificate `fingerprint`
    /// for one of its live calls.
    pub fn authorize_media(
        &self,
        namespace: &media_link::moq_transport::coding::TrackNamespace,
        fingerprint: &str,
    ) -> Result<MediaGrant, MediaRefusal> {
        admit(&self.facility, namespace, fingerprint, |call_id| {
            let session = self.calls.get(call_id).filter(|s| !s.is_ended())?;
            let owner = self.call_owners.get(&call_id).and_then(|c| self.devices.get(c));
            Some(LiveCall {
                kind: session.setup().kind,
                owner_fingerprint: owner.map(|d| d.fingerprint.clone()),
            })
        })
    }

    /// Records a media connection of a live call; `false` (and the
    /// connection closed) when the call has already ended.
    pub fn add_media_leg(&mut self, call_id: CallId, connection: quinn::Connection) -> bool {
        if self.calls.get(call_id).is_none_or(|s| s.is_ended()) {
            connection.close(CLOSE_CALL_ENDED.into(), b"call ended");
            return false;
        }
        self.media.legs.entry(call_id).or_default().push(connection);
        true
    }

    /// Cuts the call's media: the tablet's connection closes now, and the
    /// call's forwarding then leaves the shared upstream session.
    pub fn close_media(&mut self, call_id: CallId) {
        for connection in self.media.legs.remove(&call_id).unwrap_or_default() {
            connection.close(CLOSE_CALL_ENDED.into(), b"call ended");
        }
    }

    pub fn media_legs(&self) -> usize {
        self.media.legs.values().map(Vec::len).sum()
    }
}

/// Serves one tablet media connection (ALPN `moqt-18`) until its call ends.
pub async fn serve_media(connection: quinn::Connection, shared: Shared, fingerprint: String) {
    let remote = connection.remote_address();
    let tablet = match MoqSession::accept(connection).await {
        Ok(session) => session,
        Err(error) => {
            tracing::info!(%remote, %error, "media session setup failed");
            return;
        }
    };
    let mut announcements = tablet.subscriber.clone();
    let announced = tokio::time::timeout(ANNOUNCE_PATIENCE, announcements.published_namespace()).await;
    let Ok(Some(announced)) = announced else {
        tracing::info!(%remote, "media connection announced nothing; closed");
        tablet.close(CLOSE_REFUSED, "nothing announced");
        return;
    };
    let namespace = announced.info.namespace.clone();
    let grant = {
        let state = shared.lock();
        state
            .authorize_media(&namespace, &fingerprint)
            .and_then(|grant| Ok((grant, state.relay.clone().ok_or(MediaRefusal::NoRelay)?)))
    };
    let (grant, relay) = match grant {
        Ok(granted) => granted,
        Err(refusal) => {
            shared.lock().counters.call_media_refused += 1;
            tracing::warn!(%remote, namespace = %namespace.to_utf8_path(), %refusal, "media announcement refused");
            let _ = announced.reject(UNAUTHORIZED, &refusal.to_string());
            // Let the refusal reach the tablet before the connection goes.
            tokio::time::sleep(Duration::from_millis(50)).await;
            tablet.close(CLOSE_REFUSED, &refusal.to_string());
            return;
        }
    };
    let upstream = match relay.lease().await {
        Ok(session) => session,
        Err(error) => {
            shared.lock().counters.call_media_refused += 1;
            tracing::warn!(call = grant.call_id.0, %error, "media relay unreachable; call continues without media");
            let _ = announced.reject(UNAUTHORIZED, "relay unreachable");
            tablet.close(CLOSE_REFUSED, "relay unreachable");
            return;
        }
    };
    let registered = {
        let mut state = shared.lock();
        let added = state.add_media_leg(grant.call_id, tablet.connection().clone());
        if added {
            state.counters.call_media_bridged += 1;
        }
        added.then(|| state.facility.clone())
    };
    let Some(facility) = registered else { return };
    tracing::info!(call = grant.call_id.0, %remote, kind = ?grant.kind, %facility, "media bridged");
    let contact = call_namespace(&facility, grant.call_id.0, Side::Contact);
    forward_call(tablet, announced, upstream, grant, contact).await;
    shared.lock().close_media(grant.call_id);
}

/// Forwards one admitted call between the tablet's session and its share
/// of an upstream session until either side's connection closes; then the
/// tablet's connection is closed and the call's announcement and
/// subscriptions upstream are dropped (the session stays up for the other
/// calls on it). Public for the bridge benchmark.
pub async fn forward_call(
    tablet: MoqSession,
    mut announced: PublishedNamespace,
    uplink: Uplink,
    grant: MediaGrant,
    contact_namespace: media_link::moq_transport::coding::TrackNamespace,
) {
    if announced.ok().is_err() {
        return;
    }
    let upstream = uplink.session();
    let resident_namespace = announced.info.namespace.clone();
    // The tablet's tracks, announced upstream and fetched from the tablet
    // when the relay first asks for them.
    let (_resident_tracks, resident_requests, resident_reader) = Tracks::new(resident_namespace).produce();
    let upward = tokio::spawn(announce(upstream.publisher.clone(), resident_reader));
    let pull_up = tokio::spawn(fetch_on_request(resident_requests, tablet.subscriber.clone(), grant));
    // The contact's tracks, announced to the tablet and fetched from the relay.
    let (_contact_tracks, contact_requests, contact_reader) = Tracks::new(contact_namespace).produce();
    let downward = tokio::spawn(announce(tablet.publisher.clone(), contact_reader.clone()));
    let pull_down = tokio::spawn(fetch_on_request(contact_requests, upstream.subscriber.clone(), grant));
    // A tablet that subscribes before the announcement arrives lands here.
    let early = tokio::spawn(serve_unannounced(tablet.publisher.clone(), contact_reader, grant));
    tokio::select! {
        _ = tablet.closed() => {}
        _ = upstream.closed() => {}
    }
    for task in [upward, pull_up, downward, pull_down, early] {
        task.abort();
    }
    tablet.close(CLOSE_CALL_ENDED, "call ended");
    drop(announced);
    drop(uplink);
}

async fn announce(mut publisher: Publisher, tracks: TracksReader) {
    if let Err(error) = publisher.publish_namespace(tracks).await {
        tracing::debug!(%error, "bridge announcement ended");
    }
}

/// Answers each track request by subscribing to the same track on the
/// other session; the library hands the objects across unchanged. The
/// subscriptions live in this task: aborting it unsubscribes them, which
/// matters on a shared upstream session that outlives the call.
async fn fetch_on_request(mut requests: TracksRequest, subscriber: Subscriber, grant: MediaGrant) {
    let mut subscriptions = tokio::task::JoinSet::new();
    while let Some(track) = requests.next().await {
        let name = String::from_utf8_lossy(track.info.name.as_ref()).into_owned();
        if !grant.allows(&name) {
            tracing::info!(call = grant.call_id.0, track = %name, "track refused by the bridge");
            let _ = track.close(ServeError::not_found_ctx("track not part of this call"));
            continue;
        }
        let mut subscriber = subscriber.clone();
        subscriptions.spawn(async move {
            if let Err(error) = subscriber.subscribe(track).await {
                tracing::debug!(track = %name, %error, "bridged subscription ended");
            }
        });
        while subscriptions.try_join_next().is_some() {}
    }
    // No more requests: keep the subscriptions until the call ends.
    while subscriptions.join_next().await.is_some() {}
}

async fn serve_unannounced(mut publisher: Publisher, tracks: TracksReader, grant: MediaGrant) {
    let mut served = tokio::task::JoinSet::new();
    while let Some(subscribed) = publisher.subscribed().await {
        let name = String::from_utf8_lossy(subscribed.info.track_name.as_ref()).into_owned();
        if subscribed.info.track_namespace != tracks.namespace {
            tracing::warn!(
                call = grant.call_id.0,
                namespace = %subscribed.info.track_namespace.to_utf8_path(),
                track = %name,
                "tablet asked for media outside its call; refused"
            );
            let _ = subscribed.close(ServeError::not_found_ctx("not part of this call"));
            continue;
        }
        if !grant.allows(&name) {
            tracing::info!(call = grant.call_id.0, track = %name, "track refused by the bridge");
            let _ = subscribed.close(ServeError::not_found_ctx("not part of this call"));
            continue;
        }
        let tracks = tracks.clone();
        served.spawn(async move {
            if let Err(error) = Publisher::serve_subscribe(subscribed, tracks).await {
                tracing::debug!(track = %name, %error, "early subscription ended");
            }
        });
        while served.try_join_next().is_some() {}
    }
    while served.join_next().await.is_some() {}
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;
