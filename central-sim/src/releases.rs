//! Update releases and what each edge says it runs.
//!
//! Owns: the `release` table (one signed bundle per version, copied into
//! `STATE/releases/`), the `edge_report` table (the last `Hello` of each
//! facility's box), the rule for which release to offer in `Welcome`, and
//! reading bundle chunks for `FetchRelease`.
//!
//! Must not: verify bundle signatures or decide whether a box may install:
//! central does not hold the boxes' trust keys, so it reads the version from
//! the manifest unverified and only forwards bytes. The box verifies.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use edge_image::Version;
use proto::central::{ReleaseOffer, RunningImage, MAX_RELEASE_CHUNK};
use proto::domain::FacilityId;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::{Db, DbError};

/// Where published bundles are kept, under the state directory.
pub const RELEASES_DIR: &str = "releases";

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("{path} is not a usable update bundle: {source}")]
    Bundle { path: PathBuf, source: edge_image::BundleError },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("release {version} is already published with different contents (sha256 {existing})")]
    Conflict { version: String, existing: String },
    #[error("the database has no state directory to keep releases in")]
    NoStateDir,
    #[error("central has no release {0}")]
    Unknown(String),
    #[error("offset {offset} is past the end of release {version} ({size} bytes)")]
    PastEnd { version: String, offset: u64, size: u64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for ReleaseError {
    fn from(e: rusqlite::Error) -> Self {
        ReleaseError::Db(DbError::Sql(e))
    }
}

fn io_ctx(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ReleaseError {
    let context = context.to_string();
    move |source| ReleaseError::Io { context, source }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    pub version: String,
    pub size: u64,
    pub sha256: String,
    pub path: PathBuf,
    /// False when the same bundle had been published before.
    pub new: bool,
}

/// Copies `bundle` into `STATE/releases/<version>.febundle` (through a
/// temporary file and a rename, hashing on the way) and records it.
/// Publishing the same bytes again is a no-op; other bytes under a version
/// already published are refused, since edges may hold half of the old ones.
pub fn publish(db: &Db, state_dir: &Path, bundle: &Path) -> Result<Published, ReleaseError> {
    let manifest = edge_image::read_manifest_unverified(bundle)
        .map_err(|source| ReleaseError::Bundle { path: bundle.to_owned(), source })?;
    let version = manifest.version.to_string();
    let dir = state_dir.join(RELEASES_DIR);
    std::fs::create_dir_all(&dir).map_err(io_ctx(dir.display()))?;
    let dest = dir.join(format!("{version}.febundle"));
    let tmp = dir.join(format!(".{version}.febundle.tmp"));
    let mut src = File::open(bundle).map_err(io_ctx(bundle.display()))?;
    let mut out = File::create(&tmp).map_err(io_ctx(tmp.display()))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf).map_err(io_ctx(bundle.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_ctx(tmp.display()))?;
        size += n as u64;
    }
    out.sync_all().map_err(io_ctx(tmp.display()))?;
    drop(out);
    let sha256 = hex::encode(hasher.finalize());
    let existing: Option<String> = db
        .connection()
        .query_row("SELECT sha256 FROM release WHERE version = ?1", [&version], |r| r.get(0))
        .optional()?;
    if let Some(existing) = existing {
        // Best effort: the copy is only a leftover now.
        let _ = std::fs::remove_file(&tmp);
        if existing != sha256 {
            return Err(ReleaseError::Conflict { version, existing });
        }
        return Ok(Published { version, size, sha256, path: dest, new: false });
    }
    std::fs::rename(&tmp, &dest).map_err(io_ctx(dest.display()))?;
    let key = sort_key(&manifest.version);
    db.connection().execute(
        "INSERT INTO release (version, sort_key, size, sha256, path, published_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            version,
            key,
            i64::try_from(size).unwrap_or(i64::MAX),
            sha256,
            dest.to_string_lossy(),
            jiff::Timestamp::now().as_second()
        ],
    )?;
    tracing::info!(%version, size, %sha256, "release published");
    Ok(Published { version, size, sha256, path: dest, new: true })
}

/// A sortable text form of a version (SQLite compares it byte by byte).
fn sort_key(v: &Version) -> String {
    format!("{:020}.{:020}.{:020}", v.major, v.minor, v.patch)
}

struct Stored {
    version: String,
    size: u64,
    sha256: String,
    path: PathBuf,
}

fn newest(db: &Db) -> Result<Option<Stored>, ReleaseError> {
    Ok(db
        .connection()
        .query_row(
            "SELECT version, size, sha256, path FROM release ORDER BY sort_key DESC LIMIT 1",
            [],
            stored_row,
        )
        .optional()?)
}

/// One `release` row selected as (version, size, sha256, path).
fn stored_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        version: r.get(0)?,
        size: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
        sha256: r.get(2)?,
        path: PathBuf::from(r.get::<_, String>(3)?),
    })
}

fn stored(db: &Db, version: &str) -> Result<Option<Stored>, ReleaseError> {
    Ok(db
        .connection()
        .query_row(
            "SELECT version, size, sha256, path FROM release WHERE version = ?1",
            [version],
            stored_row,
        )
        .optional()?)
}

/// The newest release, when it is newer than what the box runs. A box that
/// did not say what it runs (or says something unparseable) is offered
/// nothing: it could not install it anyway.
pub fn offer_for(db: &Db, running: Option<&RunningImage>) -> Result<Option<ReleaseOffer>, ReleaseError> {
    let Some(running) = running.and_then(|r| r.version.parse::<Version>().ok()) else { return Ok(None) };
    let Some(newest) = newest(db)? else { return Ok(None) };
    let Ok(version) = newest.version.parse::<Version>() else { return Ok(None) };
    if version <= running {
        return Ok(None);
    }
    let mut sha256 = [0u8; 32];
    if hex::decode_to_slice(&newest.sha256, &mut sha256).is_err() {
        return Err(DbError::Corrupt {
            key: format!("release {}", newest.version),
            reason: "bad sha256".into(),
        }
        .into());
    }
    Ok(Some(ReleaseOffer { version: newest.version, size: newest.size, sha256 }))
}

/// Up to `len` (capped at [`MAX_RELEASE_CHUNK`]) bytes of a release from
/// `offset`; fewer only at the end of the file.
pub fn read_chunk(db: &Db, version: &str, offset: u64, len: u32) -> Result<Vec<u8>, ReleaseError> {
    let release = stored(db, version)?.ok_or_else(|| ReleaseError::Unknown(version.to_owned()))?;
    if offset > release.size {
        return Err(ReleaseError::PastEnd { version: release.version, offset, size: release.size });
    }
    let want = u64::from(len.min(MAX_RELEASE_CHUNK)).min(release.size - offset);
    let mut f = File::open(&release.path).map_err(io_ctx(release.path.display()))?;
    f.seek(SeekFrom::Start(offset)).map_err(io_ctx(release.path.display()))?;
    let mut bytes = Vec::with_capacity(want as usize);
    f.take(want).read_to_end(&mut bytes).map_err(io_ctx(release.path.display()))?;
    Ok(bytes)
}

/// Remembers what a facility's box said in `Hello`.
pub fn record_hello(
    db: &Db,
    facility: &FacilityId,
    agent_version: &str,
    running: Option<&RunningImage>,
) -> Result<(), ReleaseError> {
    db.connection().execute(
        "INSERT INTO edge_report (facility, agent_version, version, slot, on_trial, last_update_failure, reported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (facility) DO UPDATE SET agent_version = ?2, version = ?3, slot = ?4, on_trial = ?5,
             last_update_failure = ?6, reported_at = ?7",
        params![
            facility.as_str(),
            agent_version,
            running.map(|r| r.version.as_str()),
            running.map(|r| r.slot.as_str()),
            running.map(|r| r.on_trial),
            running.and_then(|r| r.last_update_failure.as_deref()),
            jiff::Timestamp::now().as_second()
        ],
    )?;
    Ok(())
}

/// One row per facility whose box said hello, for `admin edges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeReport {
    pub facility: String,
    pub agent_version: String,
    pub version: Option<String>,
    pub slot: Option<String>,
    pub on_trial: Option<bool>,
    pub last_update_failure: Option<String>,
    pub reported_at: i64,
}

pub fn edges(db: &Db) -> Result<Vec<EdgeReport>, ReleaseError> {
    let mut stmt = db.connection().prepare(
        "SELECT facility, agent_version, version, slot, on_trial, last_update_failure, reported_at
         FROM edge_report ORDER BY facility",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(EdgeReport {
            facility: r.get(0)?,
            agent_version: r.get(1)?,
            version: r.get(2)?,
            slot: r.get(3)?,
            on_trial: r.get(4)?,
            last_update_failure: r.get(5)?,
            reported_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Every published release, newest first, for `admin releases`.
pub fn list(db: &Db) -> Result<Vec<serde_json::Value>, ReleaseError> {
    let mut stmt =
        db.connection().prepare("SELECT version, size, sha256, path FROM release ORDER BY sort_key DESC")?;
    let rows = stmt.query_map([], |r| {
        Ok(serde_json::json!({
            "version": r.get::<_, String>(0)?,
            "size": r.get::<_, i64>(1)?,
            "sha256": r.get::<_, String>(2)?,
            "path": r.get::<_, String>(3)?,
        }))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
