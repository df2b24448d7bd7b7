//! The media prefetcher, run from the uplink shell: whenever the uplink is
//! up, downloads the photos and VideoGrams of inbound mail into the store's
//! media cache, chunk by chunk, so the tablet can show them with the uplink
//! down. A partial blob resumes from its length; one whose hash does not
//! match is dropped and fetched again on the next pass.
//!
//! Owns: carrying out [`crate::media_core`]'s decisions against the store
//! and central. Must not: decide what to fetch or evict.

use std::collections::BTreeSet;
use std::time::Duration;

use net::rpc;
use proto::{
    central::{CentralError, CentralToEdge, EdgeToCentral, MAX_MEDIA_CHUNK},
    domain::FacilityId,
    messaging::{MediaId, MediaInfo},
    MAX_CENTRAL_FRAME,
};
use sha2::{Digest, Sha256};

use crate::{
    media_core::{self, MediaDownload, Room},
    state::Shared,
    store::StoreError,
};

const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum MediaFetchError {
    #[error("media cache: {0}")]
    Store(#[from] StoreError),
    #[error("central did not answer: {0}")]
    Rpc(#[from] rpc::RpcError),
    #[error("central refused: {0}")]
    Refused(CentralError),
    #[error("central answered {0}")]
    Unexpected(String),
    #[error(transparent)]
    Chunk(#[from] media_core::ChunkError),
    #[error(transparent)]
    Verify(#[from] media_core::VerifyError),
}

/// One pass: fetches every wanted blob that is missing and fits, newest
/// message first. Errors are logged; the next pass resumes.
pub async fn prefetch(shared: Shared, conn: quinn::Connection, facility: FacilityId, max_bytes: u64) {
    let mut skip = BTreeSet::new();
    loop {
        let (ranked, next) = {
            let mut state = shared.lock();
            let plan = (|| -> Result<_, StoreError> {
                let ranked = media_core::rank(&state.store.inbound_media()?);
                let cached = state.store.media_entries()?;
                let orphans = media_core::orphans(&ranked, &cached);
                if !orphans.is_empty() {
                    tracing::info!(count = orphans.len(), "dropping media no message refers to");
                    state.store.media_delete(&orphans)?;
                }
                let cached = state.store.media_entries()?;
                let next = media_core::next_fetch(&ranked, &cached, &skip);
                Ok((ranked, next))
            })();
            match plan {
                Ok(plan) => plan,
                Err(error) => {
                    tracing::error!(%error, "cannot plan media downloads");
                    return;
                }
            }
        };
        let Some((media, have)) = next else { return };
        match fetch_one(&shared, &conn, &facility, &ranked, media, have, max_bytes).await {
            Ok(true) => {
                tracing::info!(%media, "media downloaded");
                shared.lock().counters.media_downloaded += 1;
            }
            Ok(false) => {
                skip.insert(media);
            }
            Err(error) => {
                tracing::warn!(%media, %error, "media download failed; the next pass retries it");
                shared.lock().counters.media_download_failures += 1;
                skip.insert(media);
                if let MediaFetchError::Rpc(e) = &error {
                    if e.is_connection_lost() || matches!(e, rpc::RpcError::Timeout(_)) {
                        return;
                    }
                }
            }
        }
    }
}

async fn chunk(
    conn: &quinn::Connection,
    facility: &FacilityId,
    media: MediaId,
    offset: u64,
    len: u32,
) -> Result<(MediaId, MediaInfo, u64, Vec<u8>), MediaFetchError> {
    let request = EdgeToCentral::FetchMedia { facility: facility.clone(), media, offset, len };
    match rpc::call_within::<_, CentralToEdge>(conn, &request, MAX_CENTRAL_FRAME, CHUNK_TIMEOUT).await? {
        CentralToEdge::MediaChunk { media, info, offset, bytes } => Ok((media, info, offset, bytes)),
        CentralToEdge::Error(error) => Err(MediaFetchError::Refused(error)),
        other => Err(MediaFetchError::Unexpected(format!("{other:?}"))),
    }
}

/// Downloads one blob to the end. `Ok(false)`: left out (no room, or
/// central does not have it).
async fn fetch_one(
    shared: &Shared,
    conn: &quinn::Connection,
    facility: &FacilityId,
    ranked: &[MediaId],
    media: MediaId,
    have: u64,
    max_bytes: u64,
) -> Result<bool, MediaFetchError> {
    // The first answer tells the size, hash and type.
    let first = match chunk(conn, facility, media, have, MAX_MEDIA_CHUNK).await {
        Err(MediaFetchError::Refused(CentralError::UnknownMedia(_))) => {
            tracing::warn!(%media, "central has no such media; not fetched");
            return Ok(false);
        }
        Err(MediaFetchError::Refused(CentralError::Malformed(detail))) if have > 0 => {
            // The partial is longer than central's blob: start over.
            tracing::info!(%media, %detail, "restarting a media download");
            shared.lock().store.media_delete(&[media])?;
            return Box::pin(fetch_one(shared, conn, facility, ranked, media, 0, max_bytes)).await;
        }
        other => other?,
    };
    let info = first.1;
    let mut download = {
        let mut state = shared.lock();
        let cached = state.store.media_entries()?;
        let held = cached.iter().find(|c| c.media == media).map(|c| (c.info, c.have));
        let resume = match held {
            Some((held_info, held_have)) if held_info == info && held_have == have => have,
            _ => 0,
        };
        if resume == 0 {
            match media_core::make_room(ranked, &cached, media, info.size, max_bytes) {
                Room::NoRoom => {
                    tracing::warn!(%media, size = info.size, max_bytes, "no room in the media cache");
                    return Ok(false);
                }
                Room::Fits { evict } => {
                    if !evict.is_empty() {
                        tracing::info!(%media, evicted = evict.len(), "evicting older media to make room");
                        state.store.media_delete(&evict)?;
                        state.counters.media_evicted += evict.len() as u64;
                    }
                }
            }
            state.store.media_begin(media, &info, jiff::Timestamp::now())?;
        }
        MediaDownload::new(media, info, resume)
    };
    let mut pending = if download.have() == have { Some(first) } else { None };
    while !download.is_complete() {
        let (m, i, offset, bytes) = match pending.take() {
            Some(c) => c,
            None => {
                let Some((offset, len)) = download.next_request(MAX_MEDIA_CHUNK) else { break };
                chunk(conn, facility, media, offset, len).await?
            }
        };
        if let Err(error) = download.accept(m, &i, offset, &bytes) {
            if matches!(error, media_core::ChunkError::InfoChanged { .. }) {
                shared.lock().store.media_delete(&[media])?;
            }
            return Err(error.into());
        }
        shared.lock().store.media_append(media, offset, &bytes)?;
    }
    let bytes = shared.lock().store.media_bytes(media)?.unwrap_or_default();
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let mut state = shared.lock();
    if let Err(error) = download.finish(bytes.len() as u64, &digest) {
        state.store.media_delete(&[media])?;
        return Err(error.into());
    }
    state.store.media_complete(media, jiff::Timestamp::now())?;
    Ok(true)
}
