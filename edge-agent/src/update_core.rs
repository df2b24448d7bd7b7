//! Update download decisions, sans IO.
//!
//! Owns: whether to fetch a release central offers (given what the box runs,
//! whether its slot is on trial, and what already lies in `STATE/updates/`),
//! where a resumed download starts, checking each `ReleaseChunk` against the
//! request it answers, and the final size + SHA-256 check before staging.
//!
//! Must not: touch files, the network or a clock. The shell
//! ([`crate::updater`]) scans the directory into [`Local`], carries out
//! [`Decision`]s, appends the bytes [`Download::accept`] returns, and hashes
//! the finished file for [`Download::finish`]. Verifying the bundle's
//! signature is not done here either: the privileged installer does that
//! with the box's trusted keys; the hash here only guards the transfer.

use std::collections::BTreeSet;

use edge_image::Version;
use proto::central::{ReleaseOffer, MAX_RELEASE_CHUNK};

/// What the box holds locally, as the shell found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub running: Version,
    /// The running slot has not been confirmed by its health check yet.
    pub on_trial: bool,
    /// `staged.bundle` exists (waiting for the installer).
    pub staged: bool,
    /// `<version>.partial` files and their lengths.
    pub partials: Vec<(String, u64)>,
    /// Versions the installer already took (installed, or refused and moved
    /// aside as `rejected-<version>.bundle`): never fetched again.
    pub handled: BTreeSet<Version>,
}

/// Why nothing is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    NoOffer,
    /// The offer is not a version, or not newer than the running one.
    NotNewer,
    /// A slot on trial must be confirmed (or rolled back) before another
    /// update is staged: installing now would overwrite the fallback.
    OnTrial,
    /// A bundle waits for the installer already.
    AlreadyStaged,
    /// The installer took this version already (installed or refused).
    AlreadyHandled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Idle(Idle),
    /// Fetch `offer` into `<version>.partial` from `from` (its current
    /// length, or 0 after `truncate`).
    Fetch {
        download: Download,
        /// Partial files of other versions: an older offer was superseded.
        discard: Vec<String>,
        /// The partial is longer than the offer: it is not a prefix of it.
        truncate: bool,
    },
}

/// Decides what to do about central's offer.
pub fn decide(offer: Option<&ReleaseOffer>, local: &Local) -> Decision {
    let Some(offer) = offer else { return Decision::Idle(Idle::NoOffer) };
    let Ok(version) = offer.version.parse::<Version>() else { return Decision::Idle(Idle::NotNewer) };
    if version <= local.running {
        return Decision::Idle(Idle::NotNewer);
    }
    if local.on_trial {
        return Decision::Idle(Idle::OnTrial);
    }
    if local.staged {
        return Decision::Idle(Idle::AlreadyStaged);
    }
    if local.handled.contains(&version) {
        return Decision::Idle(Idle::AlreadyHandled);
    }
    let have = local.partials.iter().find(|(v, _)| *v == offer.version).map_or(0, |(_, len)| *len);
    let truncate = have > offer.size;
    let discard =
        local.partials.iter().filter(|(v, _)| *v != offer.version).map(|(v, _)| v.clone()).collect();
    Decision::Fetch {
        download: Download { offer: offer.clone(), have: if truncate { 0 } else { have } },
        discard,
        truncate,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk is for release {got}, the download is of {expected}")]
    WrongVersion { expected: String, got: String },
    #[error("chunk starts at {got}, the download holds {expected} bytes")]
    WrongOffset { expected: u64, got: u64 },
    #[error("chunk of {len} bytes at {offset} overruns the offered size {size}")]
    Overrun { offset: u64, len: u64, size: u64 },
    #[error("central sent an empty chunk at {offset} of {size}")]
    Empty { offset: u64, size: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("downloaded {got} bytes, the offer says {expected}")]
    Size { expected: u64, got: u64 },
    #[error("downloaded bundle's sha256 {got} does not match the offer's {expected}")]
    Hash { expected: String, got: String },
}

/// One download in progress: the offer and how many bytes of it are on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    offer: ReleaseOffer,
    have: u64,
}

impl Download {
    pub fn offer(&self) -> &ReleaseOffer {
        &self.offer
    }

    /// Bytes already on disk.
    pub fn have(&self) -> u64 {
        self.have
    }

    pub fn is_complete(&self) -> bool {
        self.have >= self.offer.size
    }

    /// The next `(offset, len)` to ask for, at most `max_len` (and never
    /// more than [`MAX_RELEASE_CHUNK`]); `None` once every byte is here.
    pub fn next_request(&self, max_len: u32) -> Option<(u64, u32)> {
        if self.is_complete() {
            return None;
        }
        let left = self.offer.size - self.have;
        let len = u64::from(max_len.clamp(1, MAX_RELEASE_CHUNK)).min(left);
        Some((self.have, u32::try_from(len).unwrap_or(MAX_RELEASE_CHUNK)))
    }

    /// Checks a chunk against the download; on success the caller appends
    /// `bytes` to the partial file and the download counts them.
    pub fn accept(&mut self, version: &str, offset: u64, bytes: &[u8]) -> Result<(), ChunkError> {
        if version != self.offer.version {
            return Err(ChunkError::WrongVersion {
                expected: self.offer.version.clone(),
                got: version.into(),
            });
        }
        if offset != self.have {
            return Err(ChunkError::WrongOffset { expected: self.have, got: offset });
        }
        let len = bytes.len() as u64;
        if len == 0 && !self.is_complete() {
            return Err(ChunkError::Empty { offset, size: self.offer.size });
        }
        if offset.checked_add(len).is_none_or(|end| end > self.offer.size) {
            return Err(ChunkError::Overrun { offset, len, size: self.offer.size });
        }
        self.have += len;
        Ok(())
    }

    /// The finished file's size and hash against the offer.
    pub fn finish(&self, file_len: u64, sha256: &[u8; 32]) -> Result<(), VerifyError> {
        if file_len != self.offer.size {
            return Err(VerifyError::Size { expected: self.offer.size, got: file_len });
        }
        if *sha256 != self.offer.sha256 {
            return Err(VerifyError::Hash {
                expected: hex::encode(self.offer.sha256),
                got: hex::encode(sha256),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(version: &str, size: u64) -> ReleaseOffer {
        ReleaseOffer { version: version.into(), size, sha256: [7; 32] }
    }

    fn local() -> Local {
        Local {
            running: Version::new(0, 1, 0),
            on_trial: false,
            staged: false,
            partials: vec![],
            handled: BTreeSet::new(),
        }
    }

    fn fetch_from(d: Decision) -> (u64, Vec<String>, bool) {
        match d {
            Decision::Fetch { download, discard, truncate } => (download.have(), discard, truncate),
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn only_newer_offers_are_fetched_and_never_on_trial_or_twice() {
        let o = offer("0.2.0", 10);
        assert_eq!(decide(None, &local()), Decision::Idle(Idle::NoOffer));
        assert_eq!(decide(Some(&offer("0.1.0", 10)), &local()), Decision::Idle(Idle::NotNewer));
        assert_eq!(decide(Some(&offer("0.0.9", 10)), &local()), Decision::Idle(Idle::NotNewer));
        assert_eq!(decide(Some(&offer("banana", 10)), &local()), Decision::Idle(Idle::NotNewer));
        assert_eq!(decide(Some(&o), &Local { on_trial: true, ..local() }), Decision::Idle(Idle::OnTrial));
        assert_eq!(decide(Some(&o), &Local { staged: true, ..local() }), Decision::Idle(Idle::AlreadyStaged));
        let handled = Local { handled: [Version::new(0, 2, 0)].into(), ..local() };
        assert_eq!(decide(Some(&o), &handled), Decision::Idle(Idle::AlreadyHandled));
        assert_eq!(fetch_from(decide(Some(&o), &local())), (0, vec![], false));
    }

    #[test]
    fn a_partial_resumes_from_its_length_and_superseded_ones_go() {
        let l = Local { partials: vec![("0.2.0".into(), 4), ("0.1.5".into(), 9)], ..local() };
        assert_eq!(fetch_from(decide(Some(&offer("0.2.0", 10)), &l)), (4, vec!["0.1.5".into()], false));
        // Longer than the offer: not a prefix of it, start over.
        let l = Local { partials: vec![("0.2.0".into(), 11)], ..local() };
        assert_eq!(fetch_from(decide(Some(&offer("0.2.0", 10)), &l)), (0, vec![], true));
    }

    #[test]
    fn chunks_must_continue_the_download_exactly() {
        let mut d = Download { offer: offer("0.2.0", 2_500_000), have: 0 };
        assert_eq!(d.next_request(u32::MAX), Some((0, MAX_RELEASE_CHUNK)));
        assert_eq!(d.next_request(1000), Some((0, 1000)));
        let full = vec![0u8; MAX_RELEASE_CHUNK as usize];
        assert!(matches!(d.accept("0.3.0", 0, &full), Err(ChunkError::WrongVersion { .. })));
        assert!(matches!(d.accept("0.2.0", 5, &full), Err(ChunkError::WrongOffset { expected: 0, got: 5 })));
        assert!(matches!(d.accept("0.2.0", 0, &[]), Err(ChunkError::Empty { .. })));
        d.accept("0.2.0", 0, &full).unwrap();
        d.accept("0.2.0", u64::from(MAX_RELEASE_CHUNK), &full).unwrap();
        assert_eq!(d.next_request(u32::MAX), Some((2 * 1_048_576, 2_500_000 - 2 * 1_048_576)));
        assert!(matches!(d.accept("0.2.0", d.have(), &full), Err(ChunkError::Overrun { .. })));
        assert_eq!(d.have(), 2 * 1_048_576, "a refused chunk counts nothing");
        d.accept("0.2.0", d.have(), &vec![0u8; 2_500_000 - 2 * 1_048_576]).unwrap();
        assert!(d.is_complete());
        assert_eq!(d.next_request(u32::MAX), None);
    }

    #[test]
    fn the_finished_file_must_match_size_and_hash() {
        let d = Download { offer: offer("0.2.0", 10), have: 10 };
        assert_eq!(d.finish(10, &[7; 32]), Ok(()));
        assert!(matches!(d.finish(9, &[7; 32]), Err(VerifyError::Size { expected: 10, got: 9 })));
        assert!(matches!(d.finish(10, &[8; 32]), Err(VerifyError::Hash { .. })));
    }
}
