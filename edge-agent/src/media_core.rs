//! Media prefetch decisions, sans IO.
//!
//! Owns: which attachment to download next (the newest inbound message's
//! first), what to evict to make room for it within the cache's byte budget
//! (blobs no message refers to any more first, then the ones of the oldest
//! messages, never one ranked above the blob being fetched, so two blobs
//! never evict each other in turn), checking each `MediaChunk` against the
//! download it continues, and the final size + SHA-256 check.
//!
//! Must not: touch the store, the network or a clock. The shell
//! ([`crate::media_fetch`]) reads the store into [`CachedMedia`] and
//! [`InboundMedia`], carries out the decisions, appends accepted bytes and
//! hashes the finished blob for [`MediaDownload::finish`].

use std::collections::{BTreeSet, HashMap};

use proto::central::MAX_MEDIA_CHUNK;
use proto::messaging::{MediaId, MediaInfo};

use crate::store::{CachedMedia, InboundMedia};

/// Every media id inbound mail refers to, most wanted first: newest message
/// first, each id once.
pub fn rank(inbound: &[InboundMedia]) -> Vec<MediaId> {
    let mut sorted: Vec<&InboundMedia> = inbound.iter().collect();
    sorted.sort_by(|a, b| b.sent_at.cmp(&a.sent_at).then(a.media.cmp(&b.media)));
    let mut seen = BTreeSet::new();
    sorted.into_iter().filter(|m| seen.insert(m.media)).map(|m| m.media).collect()
}

/// The next download: the best-ranked media not complete in the cache and
/// not in `skip` (ids that failed or found no room during this pass).
/// Returns the id and how many bytes of it the cache already holds.
pub fn next_fetch(
    ranked: &[MediaId],
    cached: &[CachedMedia],
    skip: &BTreeSet<MediaId>,
) -> Option<(MediaId, u64)> {
    let by_id: HashMap<MediaId, &CachedMedia> = cached.iter().map(|c| (c.media, c)).collect();
    ranked.iter().filter(|m| !skip.contains(m)).find_map(|m| match by_id.get(m) {
        Some(c) if c.complete => None,
        Some(c) => Some((*m, c.have)),
        None => Some((*m, 0)),
    })
}

/// Cached blobs no inbound message refers to any more.
pub fn orphans(ranked: &[MediaId], cached: &[CachedMedia]) -> Vec<MediaId> {
    let wanted: BTreeSet<MediaId> = ranked.iter().copied().collect();
    cached.iter().filter(|c| !wanted.contains(&c.media)).map(|c| c.media).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Room {
    /// Evict these (possibly none), then fetch.
    Fits { evict: Vec<MediaId> },
    /// Even after evicting every blob ranked below it, `candidate` would not
    /// fit: leave it undownloaded (the tablet says "not downloaded yet").
    NoRoom,
}

/// Makes room for `candidate` of `size` bytes within `max_bytes`. A blob
/// counts its full size whether complete or partial (a partial one grows).
pub fn make_room(
    ranked: &[MediaId],
    cached: &[CachedMedia],
    candidate: MediaId,
    size: u64,
    max_bytes: u64,
) -> Room {
    if size > max_bytes {
        return Room::NoRoom;
    }
    let position: HashMap<MediaId, usize> = ranked.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let Some(&candidate_rank) = position.get(&candidate) else { return Room::NoRoom };
    let others: Vec<&CachedMedia> = cached.iter().filter(|c| c.media != candidate).collect();
    let mut used: u64 = others.iter().map(|c| c.info.size).sum();
    // Evictable: orphans first, then lower-ranked (older) ones, oldest first.
    let mut evictable: Vec<(usize, &CachedMedia)> = others
        .iter()
        .filter_map(|c| match position.get(&c.media) {
            None => Some((usize::MAX, *c)),
            Some(&r) if r > candidate_rank => Some((r, *c)),
            Some(_) => None,
        })
        .collect();
    evictable.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.media.cmp(&b.1.media)));
    let mut evict = Vec::new();
    for (_, c) in evictable {
        if used.saturating_add(size) <= max_bytes {
            break;
        }
        used -= c.info.size;
        evict.push(c.media);
    }
    if used.saturating_add(size) <= max_bytes {
        Room::Fits { evict }
    } else {
        Room::NoRoom
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk is of media {got}, the download is of {expected}")]
    WrongMedia { expected: MediaId, got: MediaId },
    #[error("media {media} changed at central during the download")]
    InfoChanged { media: MediaId },
    #[error("chunk starts at {got}, the download holds {expected} bytes")]
    WrongOffset { expected: u64, got: u64 },
    #[error("chunk of {len} bytes at {offset} overruns the size {size}")]
    Overrun { offset: u64, len: u64, size: u64 },
    #[error("central sent an empty chunk at {offset} of {size}")]
    Empty { offset: u64, size: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("downloaded {got} bytes, central says {expected}")]
    Size { expected: u64, got: u64 },
    #[error("downloaded media's sha256 {got} does not match central's {expected}")]
    Hash { expected: String, got: String },
}

/// One media download in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDownload {
    media: MediaId,
    info: MediaInfo,
    have: u64,
}

impl MediaDownload {
    /// A download of `media` as central describes it, holding `have` bytes
    /// already.
    pub fn new(media: MediaId, info: MediaInfo, have: u64) -> Self {
        Self { media, info, have: have.min(info.size) }
    }

    pub fn info(&self) -> &MediaInfo {
        &self.info
    }

    pub fn have(&self) -> u64 {
        self.have
    }

    pub fn is_complete(&self) -> bool {
        self.have >= self.info.size
    }

    /// The next `(offset, len)` to ask for; `None` once every byte is here.
    pub fn next_request(&self, max_len: u32) -> Option<(u64, u32)> {
        if self.is_complete() {
            return None;
        }
        let left = self.info.size - self.have;
        let len = u64::from(max_len.clamp(1, MAX_MEDIA_CHUNK)).min(left);
        Some((self.have, u32::try_from(len).unwrap_or(MAX_MEDIA_CHUNK)))
    }

    /// Checks a chunk; on success the caller appends `bytes` to the cache.
    pub fn accept(
        &mut self,
        media: MediaId,
        info: &MediaInfo,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), ChunkError> {
        if media != self.media {
            return Err(ChunkError::WrongMedia { expected: self.media, got: media });
        }
        if *info != self.info {
            return Err(ChunkError::InfoChanged { media });
        }
        if offset != self.have {
            return Err(ChunkError::WrongOffset { expected: self.have, got: offset });
        }
        let len = bytes.len() as u64;
        if len == 0 && !self.is_complete() {
            return Err(ChunkError::Empty { offset, size: self.info.size });
        }
        if offset.checked_add(len).is_none_or(|end| end > self.info.size) {
            return Err(ChunkError::Overrun { offset, len, size: self.info.size });
        }
        self.have += len;
        Ok(())
    }

    /// The finished blob's length and hash against central's.
    pub fn finish(&self, len: u64, sha256: &[u8; 32]) -> Result<(), VerifyError> {
        verify(&self.info, len, sha256)
    }
}

/// A blob's length and hash against what central said; also checked before
/// the edge serves a cached blob to a tablet.
pub fn verify(info: &MediaInfo, len: u64, sha256: &[u8; 32]) -> Result<(), VerifyError> {
    if len != info.size {
        return Err(VerifyError::Size { expected: info.size, got: len });
    }
    if *sha256 != info.sha256 {
        return Err(VerifyError::Hash { expected: hex::encode(info.sha256), got: hex::encode(sha256) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::domain::ResidentId;
    use proto::messaging::MediaType;

    fn info(size: u64) -> MediaInfo {
        MediaInfo { size, sha256: [7; 32], content_type: MediaType::Png }
    }

    fn inbound(media: u64, secs: i64) -> InboundMedia {
        InboundMedia {
            media: MediaId(media),
            resident: ResidentId::new("R1"),
            sent_at: jiff::Timestamp::from_second(secs).unwrap(),
        }
    }

    fn cached(media: u64, size: u64, have: u64) -> CachedMedia {
        CachedMedia { media: MediaId(media), info: info(size), have, complete: have == size }
    }

    #[test]
    fn the_newest_messages_media_is_fetched_first_and_partials_resume() {
        let ranked = rank(&[inbound(1, 100), inbound(2, 300), inbound(3, 200), inbound(2, 50)]);
        assert_eq!(ranked, vec![MediaId(2), MediaId(3), MediaId(1)]);
        let none = BTreeSet::new();
        assert_eq!(next_fetch(&ranked, &[], &none), Some((MediaId(2), 0)));
        let cache = [cached(2, 10, 10), cached(3, 10, 4)];
        assert_eq!(next_fetch(&ranked, &cache, &none), Some((MediaId(3), 4)));
        let skip = [MediaId(3)].into();
        assert_eq!(next_fetch(&ranked, &cache, &skip), Some((MediaId(1), 0)));
        let all = [cached(1, 1, 1), cached(2, 10, 10), cached(3, 10, 10)];
        assert_eq!(next_fetch(&ranked, &all, &none), None);
        assert_eq!(orphans(&ranked[..2], &all), vec![MediaId(1)]);
    }

    #[test]
    fn eviction_takes_orphans_then_the_oldest_and_never_a_newer_blob() {
        // Ranked newest first: 5, 4, 3, 2. 9 is an orphan.
        let ranked = [MediaId(5), MediaId(4), MediaId(3), MediaId(2)];
        let cache = [cached(9, 30, 30), cached(2, 30, 30), cached(3, 30, 30), cached(5, 30, 30)];
        // 120 held, budget 130: fetching 4 (30) needs 20 more -> the orphan goes.
        assert_eq!(make_room(&ranked, &cache, MediaId(4), 30, 130), Room::Fits { evict: vec![MediaId(9)] });
        // Budget 100: orphan, then the oldest (2).
        assert_eq!(
            make_room(&ranked, &cache, MediaId(4), 30, 100),
            Room::Fits { evict: vec![MediaId(9), MediaId(2)] }
        );
        // Budget 60: 5 outranks 4 and stays; evicting 9, 2 and 3 leaves 30 + 30.
        assert_eq!(
            make_room(&ranked, &cache, MediaId(4), 30, 60),
            Room::Fits { evict: vec![MediaId(9), MediaId(2), MediaId(3)] }
        );
        // Budget 50: even then 4 does not fit beside 5; nothing is evicted.
        assert_eq!(make_room(&ranked, &cache, MediaId(4), 30, 50), Room::NoRoom);
        // Larger than the whole cache, or no message wants it.
        assert_eq!(make_room(&ranked, &[], MediaId(4), 31, 30), Room::NoRoom);
        assert_eq!(make_room(&ranked, &[], MediaId(8), 1, 30), Room::NoRoom);
        // The oldest one never evicts a newer one: 2 finds no room.
        assert_eq!(make_room(&ranked, &cache[1..], MediaId(2), 30, 90), Room::Fits { evict: vec![] });
        let full = [cached(3, 30, 30), cached(4, 30, 30), cached(5, 30, 30)];
        assert_eq!(make_room(&ranked, &full, MediaId(2), 30, 90), Room::NoRoom);
    }

    #[test]
    fn chunks_must_continue_the_download_exactly() {
        let mut d = MediaDownload::new(MediaId(1), info(2_500_000), 0);
        assert_eq!(d.next_request(u32::MAX), Some((0, MAX_MEDIA_CHUNK)));
        assert_eq!(d.next_request(1000), Some((0, 1000)));
        let full = vec![0u8; MAX_MEDIA_CHUNK as usize];
        assert!(matches!(
            d.accept(MediaId(2), &info(2_500_000), 0, &full),
            Err(ChunkError::WrongMedia { .. })
        ));
        assert!(matches!(d.accept(MediaId(1), &info(9), 0, &full), Err(ChunkError::InfoChanged { .. })));
        let i = info(2_500_000);
        assert!(matches!(
            d.accept(MediaId(1), &i, 5, &full),
            Err(ChunkError::WrongOffset { expected: 0, got: 5 })
        ));
        assert!(matches!(d.accept(MediaId(1), &i, 0, &[]), Err(ChunkError::Empty { .. })));
        d.accept(MediaId(1), &i, 0, &full).unwrap();
        d.accept(MediaId(1), &i, u64::from(MAX_MEDIA_CHUNK), &full).unwrap();
        assert!(matches!(d.accept(MediaId(1), &i, d.have(), &full), Err(ChunkError::Overrun { .. })));
        assert_eq!(d.have(), 2 * u64::from(MAX_MEDIA_CHUNK), "a refused chunk counts nothing");
        let rest = vec![0u8; (2_500_000 - d.have()) as usize];
        d.accept(MediaId(1), &i, d.have(), &rest).unwrap();
        assert!(d.is_complete());
        assert_eq!(d.next_request(u32::MAX), None);
        assert_eq!(d.finish(2_500_000, &[7; 32]), Ok(()));
        assert!(matches!(d.finish(2_499_999, &[7; 32]), Err(VerifyError::Size { .. })));
        assert!(matches!(d.finish(2_500_000, &[8; 32]), Err(VerifyError::Hash { .. })));
    }
}
