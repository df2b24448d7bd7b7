//! Crash checkpoints of live calls (issue 5). A call's checkpoint is
//! replaced as the call core asks and deleted in the same transaction that
//! commits its call record to the outbox, so a call is always either
//! checkpointed or recorded, never both and never neither.

use edge_core::call::{CallId, Checkpoint};
use proto::messaging::OutboxItem;
use rusqlite::params;

use super::codec::{u64_from_sql, u64_to_sql};
use super::messaging::insert_outbox_row;
use super::{Store, StoreError};

impl Store {
    /// Persists (replaces) a call's checkpoint.
    pub fn save_call_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let text = serde_json::to_string(checkpoint)
            .map_err(|e| StoreError::Encode { what: "call checkpoint", problem: e.to_string() })?;
        let tx = self.write_tx()?;
        tx.prepare_cached(
            "INSERT INTO call_checkpoint (call_id, checkpoint) VALUES (?1, ?2)
             ON CONFLICT (call_id) DO UPDATE SET checkpoint = excluded.checkpoint",
        )?
        .execute(params![u64_to_sql(checkpoint.id.0), text])?;
        tx.commit()?;
        Ok(())
    }

    /// Every call checkpoint left behind (by a crashed agent).
    pub fn call_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT call_id, checkpoint FROM call_checkpoint ORDER BY call_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, text) = row?;
            let checkpoint = serde_json::from_str(&text).map_err(|e| {
                StoreError::corrupt("call_checkpoint", u64_from_sql(id).to_string(), e.to_string())
            })?;
            out.push(checkpoint);
        }
        Ok(out)
    }

    /// Commits a call's record to the outbox and deletes its checkpoint, in
    /// one transaction. Returns the record's outbox seq.
    pub fn finish_call(&mut self, id: CallId, record: &OutboxItem) -> Result<u64, StoreError> {
        let tx = self.write_tx()?;
        let seq = insert_outbox_row(&tx, record)?;
        tx.prepare_cached("DELETE FROM call_checkpoint WHERE call_id = ?1")?.execute([u64_to_sql(id.0)])?;
        tx.commit()?;
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use edge_core::call::CallSetup;
    use proto::domain::{CallKind, ContactId, ResidentId, UnitId};
    use proto::messaging::{CallDetailRecord, IdempotencyKey, OutboxBody};

    use super::*;

    fn checkpoint(id: u64, connected_secs: Option<u32>) -> Checkpoint {
        Checkpoint {
            id: CallId(id),
            setup: CallSetup {
                resident: ResidentId::new("R1001"),
                unit: UnitId::new("A"),
                contact: ContactId(1),
                kind: CallKind::Video,
                number: "+15555550100".into(),
                rate_cents_per_min: 25,
                balance_cents: 1000,
            },
            started_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            max_duration_secs: 70,
            connected_secs,
        }
    }

    #[test]
    fn a_checkpoint_is_replaced_and_then_swapped_for_its_record_in_one_step() {
        let mut store = Store::open_in_memory().unwrap();
        store.save_call_checkpoint(&checkpoint(u64::MAX, None)).unwrap();
        store.save_call_checkpoint(&checkpoint(u64::MAX, Some(10))).unwrap();
        store.save_call_checkpoint(&checkpoint(2, None)).unwrap();
        let mut found = store.call_checkpoints().unwrap();
        found.sort_by_key(|c| c.id);
        assert_eq!(found, vec![checkpoint(2, None), checkpoint(u64::MAX, Some(10))]);

        let record = OutboxItem {
            key: IdempotencyKey::from_u128(9),
            created_at: "2026-01-01T00:01:00Z".parse().unwrap(),
            body: OutboxBody::CallRecord(CallDetailRecord {
                resident: ResidentId::new("R1001"),
                contact: ContactId(1),
                kind: CallKind::Video,
                number: "+15555550100".into(),
                started_at: "2026-01-01T00:00:00Z".parse().unwrap(),
                connected_secs: 10,
                charged_cents: 25,
            }),
        };
        let before = store.outbox_rows().unwrap().len();
        store.finish_call(CallId(u64::MAX), &record).unwrap();
        assert_eq!(store.call_checkpoints().unwrap(), vec![checkpoint(2, None)]);
        let rows = store.outbox_rows().unwrap();
        assert_eq!(rows.len(), before + 1);
        assert_eq!(rows.last().unwrap().item, record);
    }
}
