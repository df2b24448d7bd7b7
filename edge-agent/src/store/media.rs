//! The media cache: contacts' photos and VideoGrams downloaded from central,
//! one row per blob, filled chunk by chunk (a partial row resumes from its
//! length) and marked complete only after its SHA-256 matched central's.
//!
//! What to fetch and what to evict is decided in [`crate::media_core`]; this
//! module only reads and writes rows.

use jiff::Timestamp;
use proto::domain::ResidentId;
use proto::messaging::{Direction, MailRecord, MediaId, MediaInfo, MediaType};
use rusqlite::{params, Row};

use super::codec::{self, u64_from_sql, u64_to_sql};
use super::{optional, Store, StoreError};

/// One cached blob as the decision core sees it (without its bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedMedia {
    pub media: MediaId,
    pub info: MediaInfo,
    /// Bytes held so far.
    pub have: u64,
    /// Every byte is here and the hash matched.
    pub complete: bool,
}

/// An attachment of an inbound message, for prefetching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMedia {
    pub media: MediaId,
    pub resident: ResidentId,
    pub sent_at: Timestamp,
}

fn type_to_sql(t: MediaType) -> &'static str {
    t.mime()
}

fn decode_cached(row: &Row<'_>) -> Result<CachedMedia, codec::Problem> {
    let content_type: String = row.get(1).map_err(|e| e.to_string())?;
    let content_type = MediaType::from_mime(&content_type)
        .ok_or_else(|| format!("unknown content type {content_type:?}"))?;
    let sha: Vec<u8> = row.get(3).map_err(|e| e.to_string())?;
    let sha256: [u8; 32] = sha.try_into().map_err(|_| "hash is not 32 bytes".to_string())?;
    let size = u64_from_sql(row.get(2).map_err(|e| e.to_string())?);
    let have = u64::try_from(row.get::<_, i64>(4).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    Ok(CachedMedia {
        media: MediaId(u64_from_sql(row.get(0).map_err(|e| e.to_string())?)),
        info: MediaInfo { size, sha256, content_type },
        have,
        complete: codec::boolean(row, 5)?,
    })
}

const CACHED_SELECT: &str = "SELECT id, content_type, size, sha256, length(bytes), complete FROM media_cache";

impl Store {
    /// Every cached blob, partial ones included.
    pub fn media_entries(&self) -> Result<Vec<CachedMedia>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!("{CACHED_SELECT} ORDER BY id"))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(
                decode_cached(row)
                    .map_err(|p| StoreError::corrupt("media_cache", codec::describe(row, 0), p))?,
            );
        }
        Ok(out)
    }

    pub fn media_entry(&self, media: MediaId) -> Result<Option<CachedMedia>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!("{CACHED_SELECT} WHERE id = ?1"))?;
        let mut rows = stmt.query(params![u64_to_sql(media.0)])?;
        match rows.next()? {
            None => Ok(None),
            Some(row) => decode_cached(row)
                .map(Some)
                .map_err(|p| StoreError::corrupt("media_cache", media.to_string(), p)),
        }
    }

    /// Starts (or restarts) a download: an empty partial row.
    pub fn media_begin(
        &mut self,
        media: MediaId,
        info: &MediaInfo,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO media_cache (id, content_type, size, sha256, bytes, complete, stored_at) \
             VALUES (?1, ?2, ?3, ?4, x'', 0, ?5)",
            params![
                u64_to_sql(media.0),
                type_to_sql(info.content_type),
                u64_to_sql(info.size),
                &info.sha256[..],
                now.as_second()
            ],
        )?;
        Ok(())
    }

    /// Appends a chunk to a partial row that holds exactly `offset` bytes.
    /// (`||` yields text, byte for byte; the cast keeps the column a blob.)
    pub fn media_append(&mut self, media: MediaId, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let changed = self.conn.execute(
            "UPDATE media_cache SET bytes = CAST(bytes || ?3 AS BLOB) \
             WHERE id = ?1 AND length(bytes) = ?2 AND complete = 0",
            params![u64_to_sql(media.0), u64_to_sql(offset), bytes],
        )?;
        if changed != 1 {
            return Err(StoreError::corrupt(
                "media_cache",
                media.to_string(),
                format!("no partial row holding {offset} bytes to append to"),
            ));
        }
        Ok(())
    }

    /// Marks a verified blob complete.
    pub fn media_complete(&mut self, media: MediaId, now: Timestamp) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE media_cache SET complete = 1, stored_at = ?2 WHERE id = ?1",
            params![u64_to_sql(media.0), now.as_second()],
        )?;
        Ok(())
    }

    pub fn media_delete(&mut self, media: &[MediaId]) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        for m in media {
            tx.prepare_cached("DELETE FROM media_cache WHERE id = ?1")?.execute(params![u64_to_sql(m.0)])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every byte held for `media` (partial rows included).
    pub fn media_bytes(&self, media: MediaId) -> Result<Option<Vec<u8>>, StoreError> {
        optional(self.conn.query_row(
            "SELECT bytes FROM media_cache WHERE id = ?1",
            params![u64_to_sql(media.0)],
            |r| r.get(0),
        ))
    }

    /// Up to `len` bytes of `media` from `offset`.
    pub fn media_slice(&self, media: MediaId, offset: u64, len: u32) -> Result<Option<Vec<u8>>, StoreError> {
        optional(self.conn.query_row(
            "SELECT substr(bytes, ?2, ?3) FROM media_cache WHERE id = ?1",
            params![u64_to_sql(media.0), u64_to_sql(offset.saturating_add(1)), i64::from(len)],
            |r| r.get(0),
        ))
    }

    /// The media attached to inbound mail of every resident, for the
    /// prefetcher.
    pub fn inbound_media(&self) -> Result<Vec<InboundMedia>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT id, record FROM mail WHERE inbound = 1")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let record: Vec<u8> = row.get(1)?;
            let record: MailRecord = postcard::from_bytes(&record)
                .map_err(|e| StoreError::corrupt("mail", codec::describe(row, 0), e.to_string()))?;
            let m = record.message;
            if m.direction != Direction::ContactToResident {
                continue;
            }
            out.extend(m.attachments.iter().filter_map(|a| a.media()).map(|media| InboundMedia {
                media,
                resident: m.resident.clone(),
                sent_at: m.sent_at,
            }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::central::{Change, ChangeBatch, Entity};
    use proto::domain::ContactId;
    use proto::messaging::{Attachment, Message, MessageId, Review};

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn info(size: u64) -> MediaInfo {
        MediaInfo { size, sha256: [1; 32], content_type: MediaType::WebmVp8 }
    }

    #[test]
    fn a_partial_blob_grows_only_at_its_end_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.db");
        let mut store = Store::open(&path).unwrap();
        store.media_begin(MediaId(u64::MAX), &info(6), now()).unwrap();
        store.media_append(MediaId(u64::MAX), 0, b"abc").unwrap();
        assert!(store.media_append(MediaId(u64::MAX), 2, b"xyz").is_err(), "not at the end");
        drop(store);
        let mut store = Store::open(&path).unwrap();
        let entry = store.media_entry(MediaId(u64::MAX)).unwrap().unwrap();
        assert_eq!((entry.have, entry.complete, entry.info), (3, false, info(6)));
        store.media_append(MediaId(u64::MAX), 3, b"def").unwrap();
        store.media_complete(MediaId(u64::MAX), now()).unwrap();
        assert!(store.media_append(MediaId(u64::MAX), 6, b"g").is_err(), "complete rows do not grow");
        assert_eq!(store.media_bytes(MediaId(u64::MAX)).unwrap().unwrap(), b"abcdef");
        assert_eq!(store.media_slice(MediaId(u64::MAX), 4, 10).unwrap().unwrap(), b"ef");
        assert_eq!(store.media_slice(MediaId(u64::MAX), 6, 10).unwrap().unwrap(), b"");
        assert_eq!(store.media_entries().unwrap().len(), 1);
        // Restarting a download empties the row.
        store.media_begin(MediaId(u64::MAX), &info(6), now()).unwrap();
        assert_eq!(store.media_entry(MediaId(u64::MAX)).unwrap().unwrap().have, 0);
        store.media_delete(&[MediaId(u64::MAX)]).unwrap();
        assert!(store.media_entries().unwrap().is_empty());
        assert_eq!(store.media_bytes(MediaId(u64::MAX)).unwrap(), None);
    }

    #[test]
    fn inbound_media_lists_attachments_of_inbound_mail_only() {
        let mut store = Store::open_in_memory().unwrap();
        let mail = |id: u128, direction: Direction, attachments: Vec<Attachment>| {
            Change::Upsert(Entity::Mail(MailRecord {
                message: Message {
                    id: MessageId::from_u128(id),
                    resident: ResidentId::new("R1"),
                    contact: ContactId(1),
                    direction,
                    subject: String::new(),
                    body: String::new(),
                    attachments,
                    sent_at: now(),
                },
                review: Review::Approved,
            }))
        };
        let changes = vec![
            mail(
                1,
                Direction::ContactToResident,
                vec![
                    Attachment::ECard(proto::messaging::ECardId(1)),
                    Attachment::Photo(MediaId(4)),
                    Attachment::VideoGram { media: MediaId(5), duration_secs: 2 },
                ],
            ),
            mail(2, Direction::ResidentToContact, vec![Attachment::Photo(MediaId(6))]),
        ];
        let batch = ChangeBatch { since: 0, changes, next_cursor: 2, more: false };
        store.apply_batch(&batch, crate::store::ApplyMode::Normal, now()).unwrap();
        let media: Vec<MediaId> = store.inbound_media().unwrap().into_iter().map(|m| m.media).collect();
        assert_eq!(media, vec![MediaId(4), MediaId(5)]);
    }
}
