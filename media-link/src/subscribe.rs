//! Subscribing to one track and receiving its frames in order of arrival.

use std::time::Duration;

use moq_transport::coding::TrackNamespace;
use moq_transport::serve::{Track, TrackReader, TrackReaderMode};
use moq_transport::session::Subscribe;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::object::wall_micros;
use crate::{LinkError, MediaObject};
use moq_transport::session::Subscriber;

/// Frames waiting for the consumer; beyond this the newest are dropped
/// (a consumer that far behind shows stale video anyway).
const RECEIVE_QUEUE: usize = 256;
/// How often a subscription is retried while the far side has not
/// announced yet.
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// One frame as received.
#[derive(Debug, Clone)]
pub struct ReceivedObject {
    pub group_id: u64,
    pub object: MediaObject,
    pub received_at_us: u64,
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    pub frames: mpsc::Receiver<ReceivedObject>,
    _subscribe: Subscribe,
    reader: JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Subscribes to `namespace`/`name` on a session's subscriber, retrying for up to `patience` while
/// the publisher is not there yet.
pub async fn subscribe_track(
    mut subscriber: Subscriber,
    namespace: TrackNamespace,
    name: &str,
    patience: Duration,
) -> Result<Subscription, LinkError> {
    let give_up = tokio::time::Instant::now() + patience;
    let (subscribe, reader) = loop {
        let (writer, reader) = Track::new(namespace.clone(), name).produce();
        // A publisher that never answers must not hold us past our patience.
        let attempt = tokio::time::timeout_at(give_up, subscriber.subscribe_open(writer)).await;
        match attempt {
            Ok(Ok(subscribe)) => break (subscribe, reader),
            Ok(Err(error)) if tokio::time::Instant::now() + RETRY_EVERY < give_up => {
                tracing::trace!(track = name, %error, "subscription refused; retrying");
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Ok(Err(error)) => return Err(error.into()),
            Err(_) => return Err(LinkError::Unanswered(patience)),
        }
    };
    let (tx, frames) = mpsc::channel(RECEIVE_QUEUE);
    let reader = tokio::spawn(read_track(reader, tx));
    Ok(Subscription { frames, _subscribe: subscribe, reader })
}

async fn read_track(track: TrackReader, tx: mpsc::Sender<ReceivedObject>) {
    let mut groups = match track.mode().await {
        Ok(TrackReaderMode::Subgroups(groups)) => groups,
        Ok(_) => {
            tracing::debug!(track = %track.info.name, "track is not delivered in subgroups; ignored");
            return;
        }
        Err(error) => {
            tracing::debug!(track = %track.info.name, %error, "track ended before its first group");
            return;
        }
    };
    // Groups overlap in time: each is read by its own task.
    let mut readers = JoinSet::new();
    loop {
        tokio::select! {
            next = groups.next() => match next {
                Ok(Some(mut group)) => {
                    let tx = tx.clone();
                    readers.spawn(async move {
                        let group_id = group.info.group_id;
                        while let Ok(Some(raw)) = group.read_next().await {
                            match MediaObject::decode(raw) {
                                Ok(object) => {
                                    let received = ReceivedObject { group_id, object, received_at_us: wall_micros() };
                                    if tx.try_send(received).is_err() && tx.is_closed() {
                                        return;
                                    }
                                }
                                Err(error) => tracing::debug!(group_id, %error, "undecodable media object skipped"),
                            }
                        }
                    });
                }
                Ok(None) | Err(_) => break,
            },
            Some(_) = readers.join_next(), if !readers.is_empty() => {}
        }
    }
    while readers.join_next().await.is_some() {}
}

/// Frames of a track that may come and go: subscribes, hands on every frame,
/// and subscribes again whenever the track ends (the far side may publish
/// late, or the bridge may refuse until it does), until the receiver is
/// dropped or `patience` passes without a frame.
pub struct FollowedTrack {
    pub frames: mpsc::Receiver<ReceivedObject>,
    follower: JoinHandle<()>,
}

impl Drop for FollowedTrack {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

pub fn follow_track(
    subscriber: Subscriber,
    namespace: TrackNamespace,
    name: &str,
    patience: Duration,
) -> FollowedTrack {
    let (tx, frames) = mpsc::channel(RECEIVE_QUEUE);
    let name = name.to_string();
    let follower = tokio::spawn(async move {
        let mut give_up = tokio::time::Instant::now() + patience;
        while !tx.is_closed() {
            let left = give_up.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match subscribe_track(subscriber.clone(), namespace.clone(), &name, left).await {
                Ok(mut subscription) => {
                    while let Some(frame) = subscription.frames.recv().await {
                        give_up = tokio::time::Instant::now() + patience;
                        if tx.send(frame).await.is_err() {
                            return;
                        }
                    }
                }
                Err(error) => tracing::trace!(track = %name, %error, "not subscribed yet"),
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    });
    FollowedTrack { frames, follower }
}
