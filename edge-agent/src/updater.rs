//! The unprivileged half of updates, run from the uplink shell: says what
//! the box runs in `Hello`, and when central's `Welcome` offers a newer
//! release, downloads it chunk by chunk into `STATE/updates/<version>.partial`
//! (resuming from that file's length after a restart or a lost uplink),
//! checks size and SHA-256, and renames it to `STATE/updates/staged.bundle`,
//! where a root one-shot (`edge-agent update install`) takes it.
//!
//! Owns: the files `<version>.partial` and `staged.bundle`, the update
//! figures in [`EdgeState`](crate::state::EdgeState), and the
//! `update-downloaded` audit row. Decisions come from
//! [`crate::update_core`]. Must not: verify signatures, write boot entries
//! or partitions, or reboot (the agent cannot, by design: it runs as `edge`
//! with a read-only system).

use std::path::{Path, PathBuf};
use std::time::Duration;

use net::rpc;
use proto::{
    central::{CentralToEdge, EdgeToCentral, MAX_RELEASE_CHUNK},
    domain::FacilityId,
    MAX_CENTRAL_FRAME,
};
use tokio::io::AsyncWriteExt;

use crate::{
    config::Config,
    running,
    state::Shared,
    update_core::{self, Decision, Download, Local},
};

/// A chunk central has not delivered within this counts as a lost uplink.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the update stands, for metrics and `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UpdatePhase {
    #[default]
    Idle,
    Downloading,
    Staged,
    Failed,
}

impl UpdatePhase {
    /// The value of the `edge_update_phase` gauge.
    pub fn gauge(self) -> f64 {
        match self {
            UpdatePhase::Idle => 0.0,
            UpdatePhase::Downloading => 1.0,
            UpdatePhase::Staged => 2.0,
            UpdatePhase::Failed => 3.0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateStatus {
    pub phase: UpdatePhase,
    pub version: Option<String>,
    /// Bytes of the release on disk, and its size.
    pub have: u64,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("central did not answer the request: {0}")]
    Rpc(#[from] rpc::RpcError),
    #[error("central answered {0}")]
    Unexpected(String),
    #[error(transparent)]
    Chunk(#[from] update_core::ChunkError),
    #[error(transparent)]
    Verify(#[from] update_core::VerifyError),
    #[error("cannot hash the download: {0}")]
    Hash(#[from] edge_image::SumsError),
}

fn io_ctx(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> UpdateError {
    let context = context.to_string();
    move |source| UpdateError::Io { context, source }
}

/// One check: `Hello`, then, if central offers something worth having,
/// the download. Errors are logged; the next check (or reconnect) resumes.
pub async fn check(shared: Shared, conn: quinn::Connection, config: Config, facility: FacilityId) {
    let mut boot = None;
    let running = match running::running_image(&config) {
        Ok((running, state)) => {
            boot = Some(state);
            Some(running)
        }
        Err(error) => {
            // Expected off-image; on the image this means no update can be planned.
            tracing::debug!(%error, "not reporting a running image");
            None
        }
    };
    let hello = EdgeToCentral::Hello {
        facility: facility.clone(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        running: running.clone(),
    };
    let offer =
        match rpc::call_within::<_, CentralToEdge>(&conn, &hello, MAX_CENTRAL_FRAME, HELLO_TIMEOUT).await {
            Ok(CentralToEdge::Welcome { release, .. }) => release,
            Ok(other) => {
                tracing::warn!(answer = ?other, "central did not welcome the hello");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "hello to central failed");
                return;
            }
        };
    // Off-image there is no slot to install into: nothing is fetched.
    let Some(running) = running else { return };
    let Ok(running_version) = running.version.parse() else { return };
    let dir = running::updates_dir(&config);
    let scan = match running::scan_updates(&dir) {
        Ok(scan) => scan,
        Err(error) => {
            tracing::error!(%error, "cannot read the updates directory");
            return;
        }
    };
    let mut handled = scan.handled;
    // A version waiting in the other slot for its reboot, or one that failed
    // its boot checks there, is not fetched again.
    if let Some(state) = &boot {
        let report = edge_image::report(state);
        if matches!(report.other, edge_image::OtherSlot::Pending { .. } | edge_image::OtherSlot::FellBack) {
            handled.extend(report.other_version);
        }
    }
    let local = Local {
        running: running_version,
        on_trial: running.on_trial,
        staged: scan.staged,
        partials: scan.partials,
        handled,
    };
    if scan.staged {
        shared.lock().update.phase = UpdatePhase::Staged;
    }
    match update_core::decide(offer.as_ref(), &local) {
        Decision::Idle(why) => {
            if let Some(offer) = &offer {
                tracing::info!(version = %offer.version, ?why, on_trial = local.on_trial, "release offer not fetched");
            }
        }
        Decision::Fetch { download, discard, truncate } => {
            let version = download.offer().version.clone();
            let result = fetch(&shared, &conn, &config, &facility, &dir, download, &discard, truncate).await;
            let mut state = shared.lock();
            match result {
                Ok(staged) => {
                    state.update.phase = UpdatePhase::Staged;
                    tracing::info!(%version, path = %staged.display(), "update downloaded and staged");
                }
                Err(error) => {
                    state.update.phase = UpdatePhase::Failed;
                    tracing::warn!(%version, %error, "update download interrupted; the next check resumes it");
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn fetch(
    shared: &Shared,
    conn: &quinn::Connection,
    config: &Config,
    facility: &FacilityId,
    dir: &Path,
    mut download: Download,
    discard: &[String],
    truncate: bool,
) -> Result<PathBuf, UpdateError> {
    tokio::fs::create_dir_all(dir).await.map_err(io_ctx(dir.display()))?;
    for old in discard {
        let path = running::partial_path(dir, old);
        tracing::info!(path = %path.display(), "dropping a superseded partial download");
        tokio::fs::remove_file(&path).await.map_err(io_ctx(path.display()))?;
    }
    let offer = download.offer().clone();
    let partial = running::partial_path(dir, &offer.version);
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&partial)
        .await
        .map_err(io_ctx(partial.display()))?;
    if truncate {
        file.set_len(0).await.map_err(io_ctx(partial.display()))?;
    }
    tracing::info!(version = %offer.version, size = offer.size, resume_from = download.have(),
        "downloading an update");
    {
        let mut state = shared.lock();
        state.update = UpdateStatus {
            phase: UpdatePhase::Downloading,
            version: Some(offer.version.clone()),
            have: download.have(),
            size: offer.size,
        };
    }
    let rate = config.update_max_bytes_per_sec;
    let chunk_len =
        if rate == 0 { MAX_RELEASE_CHUNK } else { rate.clamp(1, u64::from(MAX_RELEASE_CHUNK)) as u32 };
    while let Some((offset, len)) = download.next_request(chunk_len) {
        let started = tokio::time::Instant::now();
        let request = EdgeToCentral::FetchRelease {
            facility: facility.clone(),
            version: offer.version.clone(),
            offset,
            len,
        };
        let bytes =
            match rpc::call_within::<_, CentralToEdge>(conn, &request, MAX_CENTRAL_FRAME, CHUNK_TIMEOUT)
                .await?
            {
                CentralToEdge::ReleaseChunk { version, offset, bytes } => {
                    download.accept(&version, offset, &bytes)?;
                    bytes
                }
                CentralToEdge::Error(error) => return Err(UpdateError::Unexpected(error.to_string())),
                other => return Err(UpdateError::Unexpected(format!("{other:?}"))),
            };
        file.write_all(&bytes).await.map_err(io_ctx(partial.display()))?;
        // Flushed to the file (not synced) per chunk: a killed agent resumes
        // from what the kernel holds; a power cut is caught by the hash.
        file.flush().await.map_err(io_ctx(partial.display()))?;
        {
            let mut state = shared.lock();
            state.counters.update_bytes_downloaded += bytes.len() as u64;
            state.update.have = download.have();
        }
        if rate > 0 {
            let due = Duration::from_secs_f64(bytes.len() as f64 / rate as f64);
            tokio::time::sleep_until(started + due).await;
        }
    }
    file.sync_all().await.map_err(io_ctx(partial.display()))?;
    drop(file);
    let hashed = partial.clone();
    let digest = tokio::task::spawn_blocking(move || edge_image::sums::sha256_file(&hashed))
        .await
        .map_err(|e| UpdateError::Unexpected(format!("hashing task failed: {e}")))??;
    let len = tokio::fs::metadata(&partial).await.map_err(io_ctx(partial.display()))?.len();
    if let Err(error) = download.finish(len, &digest) {
        // Not a prefix of the release after all: start over next time.
        tokio::fs::remove_file(&partial).await.map_err(io_ctx(partial.display()))?;
        return Err(error.into());
    }
    let staged = dir.join(running::STAGED);
    tokio::fs::rename(&partial, &staged).await.map_err(io_ctx(staged.display()))?;
    let dir_owned = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir_owned).and_then(|d| d.sync_all()))
        .await
        .map_err(|e| UpdateError::Unexpected(format!("sync task failed: {e}")))?
        .map_err(io_ctx(dir.display()))?;
    let detail = serde_json::json!({
        "version": offer.version, "size": offer.size, "sha256": hex::encode(offer.sha256),
    });
    let mut state = shared.lock();
    if let Err(error) = state.audit("edge-agent", "update-downloaded", &detail, jiff::Timestamp::now()) {
        tracing::error!(%error, "cannot write the update-downloaded audit row");
    }
    state.update.have = download.have();
    Ok(staged)
}
