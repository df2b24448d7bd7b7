//! Publishing a call side's tracks: a namespace announced on a session, and
//! one [`TrackSender`] per track writing [`MediaObject`]s into groups.

use moq_transport::coding::TrackNamespace;
use moq_transport::serve::{ServeError, SubgroupWriter, SubgroupsWriter, Tracks, TracksWriter};
use tokio::task::JoinHandle;

use crate::{LinkError, MediaObject, MoqSession};

/// Audio has no keyframes; a group per second keeps streams few and lets a
/// late subscriber start within a second.
const AUDIO_OBJECTS_PER_GROUP: u32 = 50;

/// An announced namespace. Dropping it withdraws the announcement.
pub struct Broadcast {
    _tracks: TracksWriter,
    announcer: JoinHandle<()>,
}

impl Drop for Broadcast {
    fn drop(&mut self) {
        self.announcer.abort();
    }
}

impl Broadcast {
    /// Announces `namespace` on `session` with the named tracks. Returns the
    /// senders in the order of `names`; `video` groups start at keyframes,
    /// other tracks every [`AUDIO_OBJECTS_PER_GROUP`] objects.
    pub fn start(
        session: &MoqSession,
        namespace: TrackNamespace,
        names: &[&str],
    ) -> Result<(Broadcast, Vec<TrackSender>), LinkError> {
        let (mut writer, _request, reader) = Tracks::new(namespace.clone()).produce();
        let mut senders = Vec::with_capacity(names.len());
        for name in names {
            let track = writer.create(*name).ok_or(LinkError::DuplicateTrack)?;
            senders.push(TrackSender {
                subgroups: track.subgroups()?,
                group: None,
                in_group: 0,
                by_keyframe: *name == crate::VIDEO_TRACK,
                sent: 0,
                skipped: 0,
            });
        }
        let mut publisher = session.publisher.clone();
        let path = namespace.to_utf8_path();
        let announcer = tokio::spawn(async move {
            if let Err(error) = publisher.publish_namespace(reader).await {
                tracing::debug!(namespace = %path, %error, "announcement ended");
            }
        });
        Ok((Broadcast { _tracks: writer, announcer }, senders))
    }
}

/// Writes one track's frames.
pub struct TrackSender {
    subgroups: SubgroupsWriter,
    group: Option<SubgroupWriter>,
    in_group: u32,
    by_keyframe: bool,
    sent: u64,
    skipped: u64,
}

impl TrackSender {
    /// Sends one frame. Video frames before the first keyframe are skipped
    /// (nobody could decode them) and counted in [`TrackSender::skipped`].
    pub fn send(&mut self, object: &MediaObject) -> Result<(), ServeError> {
        let new_group = if self.by_keyframe {
            object.keyframe
        } else {
            self.group.is_none() || self.in_group >= AUDIO_OBJECTS_PER_GROUP
        };
        if new_group {
            if let Some(done) = self.group.take() {
                // A finished group ends its stream cleanly for the readers.
                let _ = done.finish();
            }
            self.group = Some(self.subgroups.append(0)?);
            self.in_group = 0;
        }
        let Some(group) = self.group.as_mut() else {
            self.skipped += 1;
            return Ok(());
        };
        group.write(object.encode())?;
        self.in_group += 1;
        self.sent += 1;
        Ok(())
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}
