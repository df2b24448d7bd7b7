//! Contacts' photos and VideoGrams, held by central as blobs keyed by
//! [`MediaId`] and served to the edge of the facility they were sent to in
//! `FetchMedia` chunks.
//!
//! Owns: the `media` table and the check that a blob is only served to its
//! own facility. Must not: decide who may see a blob on the tablet (the edge
//! does that from the messages it holds).

use std::path::Path;

use proto::central::MAX_MEDIA_CHUNK;
use proto::domain::FacilityId;
use proto::messaging::{MediaId, MediaInfo, MediaType};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::db::DbError;

/// Largest blob central-sim accepts (a 30 s VideoGram at a tablet's bitrate
/// is a few MB).
pub const MAX_MEDIA_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("central has no media {0} for this facility")]
    Unknown(MediaId),
    #[error("offset {offset} is past the end of media {media} ({size} bytes)")]
    PastEnd { media: MediaId, offset: u64, size: u64 },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for MediaError {
    fn from(e: rusqlite::Error) -> Self {
        MediaError::Db(DbError::Sql(e))
    }
}

fn type_name(t: MediaType) -> &'static str {
    t.mime()
}

/// The media type of a file, from its extension (`.png`, `.jpg`/`.jpeg`,
/// `.webm`).
pub fn type_of_path(path: &Path) -> Result<MediaType, MediaError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match ext.as_str() {
        "png" => Ok(MediaType::Png),
        "jpg" | "jpeg" => Ok(MediaType::Jpeg),
        "webm" => Ok(MediaType::WebmVp8),
        _ => Err(MediaError::Invalid(format!(
            "{}: media must be .png, .jpg/.jpeg or .webm (VP8)",
            path.display()
        ))),
    }
}

/// Reads a media file for [`store`].
pub fn read_file(path: &Path) -> Result<(MediaType, Vec<u8>), MediaError> {
    let content_type = type_of_path(path)?;
    let bytes = std::fs::read(path)
        .map_err(|source| MediaError::Read { path: path.display().to_string(), source })?;
    if bytes.is_empty() || bytes.len() as u64 > MAX_MEDIA_BYTES {
        return Err(MediaError::Invalid(format!(
            "{}: {} bytes; media must hold 1 to {MAX_MEDIA_BYTES} bytes",
            path.display(),
            bytes.len()
        )));
    }
    Ok((content_type, bytes))
}

/// Stores a blob for `facility` and names it.
pub fn store(
    conn: &Connection,
    facility: &FacilityId,
    content_type: MediaType,
    bytes: &[u8],
) -> Result<(MediaId, MediaInfo), MediaError> {
    let sha256: [u8; 32] = Sha256::digest(bytes).into();
    conn.execute(
        "INSERT INTO media (facility, content_type, size, sha256, bytes) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![facility.as_str(), type_name(content_type), bytes.len() as i64, &sha256[..], bytes],
    )?;
    let id = u64::try_from(conn.last_insert_rowid()).map_err(|e| MediaError::Invalid(e.to_string()))?;
    Ok((MediaId(id), MediaInfo { size: bytes.len() as u64, sha256, content_type }))
}

/// What central holds about `media` for `facility`.
pub fn info(conn: &Connection, facility: &FacilityId, media: MediaId) -> Result<MediaInfo, MediaError> {
    let id = i64::try_from(media.0).map_err(|_| MediaError::Unknown(media))?;
    let row = conn
        .query_row(
            "SELECT content_type, size, sha256 FROM media WHERE id = ?1 AND facility = ?2",
            params![id, facility.as_str()],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?)),
        )
        .optional()?
        .ok_or(MediaError::Unknown(media))?;
    let corrupt =
        |what: &str| MediaError::Db(DbError::Corrupt { key: format!("media {media}"), reason: what.into() });
    let content_type = MediaType::from_mime(&row.0).ok_or_else(|| corrupt("unknown content type"))?;
    let size = u64::try_from(row.1).map_err(|_| corrupt("negative size"))?;
    let sha256: [u8; 32] = row.2.try_into().map_err(|_| corrupt("hash is not 32 bytes"))?;
    Ok(MediaInfo { size, sha256, content_type })
}

/// Up to `len` (capped at [`MAX_MEDIA_CHUNK`]) bytes of `media` from
/// `offset`, with its metadata; fewer only at the end of the blob.
pub fn read_chunk(
    conn: &Connection,
    facility: &FacilityId,
    media: MediaId,
    offset: u64,
    len: u32,
) -> Result<(MediaInfo, Vec<u8>), MediaError> {
    let info = info(conn, facility, media)?;
    if offset > info.size {
        return Err(MediaError::PastEnd { media, offset, size: info.size });
    }
    let want = u64::from(len.min(MAX_MEDIA_CHUNK)).min(info.size - offset);
    // substr() is 1-based; both numbers fit i64 (size came from one).
    let bytes: Vec<u8> = conn.query_row(
        "SELECT substr(bytes, ?2, ?3) FROM media WHERE id = ?1",
        params![media.0 as i64, offset as i64 + 1, want as i64],
        |r| r.get(0),
    )?;
    Ok((info, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn blobs_are_served_in_chunks_to_their_own_facility_only() {
        let db = Db::open_in_memory().unwrap();
        let here = FacilityId::new("here");
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let (id, info) = store(db.connection(), &here, MediaType::Png, &bytes).unwrap();
        assert_eq!(info.size, 1000);
        assert_eq!(info.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
        let (got, first) = read_chunk(db.connection(), &here, id, 0, 600).unwrap();
        assert_eq!(got, info);
        let (_, rest) = read_chunk(db.connection(), &here, id, 600, 600).unwrap();
        assert_eq!([first, rest].concat(), bytes);
        let (_, end) = read_chunk(db.connection(), &here, id, 1000, 600).unwrap();
        assert!(end.is_empty());
        assert!(matches!(read_chunk(db.connection(), &here, id, 1001, 1), Err(MediaError::PastEnd { .. })));
        let other = FacilityId::new("other");
        assert!(
            matches!(read_chunk(db.connection(), &other, id, 0, 1), Err(MediaError::Unknown(m)) if m == id)
        );
        assert!(matches!(info_of_missing(&db, &here), Err(MediaError::Unknown(_))));
    }

    fn info_of_missing(db: &Db, facility: &FacilityId) -> Result<MediaInfo, MediaError> {
        info(db.connection(), facility, MediaId(u64::MAX))
    }

    #[test]
    fn the_committed_fixture_files_have_known_types() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/media");
        assert_eq!(read_file(&dir.join("photo.png")).unwrap().0, MediaType::Png);
        assert_eq!(read_file(&dir.join("snap.jpg")).unwrap().0, MediaType::Jpeg);
        assert_eq!(read_file(&dir.join("videogram.webm")).unwrap().0, MediaType::WebmVp8);
        assert!(matches!(read_file(&dir.join("nope.gif")), Err(MediaError::Invalid(_))));
    }
}
