//! The deterministic sync simulation of `edge_core::sync::sim`, applied to the
//! real SQLite store: lossy network, crashes that rebuild the core from the
//! store's persisted cursor, cursor expiry and resyncs; after healing, the
//! store must hold exactly central's live entities.

use edge_agent::store::{ApplyMode, Store};
use edge_core::sync::sim::{self, Persisted, Replica, SimConfig, SimStats};
use jiff::Timestamp;
use proto::central::{ChangeBatch, Entity};

struct StoreReplica(Store);

impl Replica for StoreReplica {
    fn apply(&mut self, batch: &ChangeBatch, mode: ApplyMode, now: Timestamp) -> Result<(), String> {
        self.0.apply_batch(batch, mode, now).map(drop).map_err(|e| e.to_string())
    }

    fn record_success(&mut self, now: Timestamp) -> Result<(), String> {
        self.0.record_sync_success(now).map_err(|e| e.to_string())
    }

    fn persisted(&self) -> Result<Persisted, String> {
        let state = self.0.sync_state().map_err(|e| e.to_string())?;
        Ok(Persisted {
            cursor: state.cursor,
            resync_in_progress: state.resync.is_some(),
            last_success: state.last_success,
        })
    }

    fn entities(&self) -> Result<Vec<Entity>, String> {
        self.0.load_entities().map_err(|e| e.to_string())
    }
}

#[test]
fn store_converges_to_central_for_300_seeds() {
    let mut total = SimStats::default();
    for seed in 0..300 {
        let mut replica = StoreReplica(Store::open_in_memory().unwrap());
        match sim::run(seed, &mut replica, &SimConfig::default()) {
            Ok(stats) => total.add(&stats),
            Err(e) => panic!("{e}\nreplay: sim::run({seed}, StoreReplica, SimConfig::default())"),
        }
    }
    assert!(total.resyncs_completed > 50, "{total:?}");
    assert!(total.crashes > 300, "{total:?}");
    assert!(total.pages_applied > 10_000, "{total:?}");
}

/// A few seeds against a file database reopened at every crash, so a crash
/// also throws away the connection and anything it had not committed.
#[test]
fn file_store_survives_reopen_at_every_crash() {
    struct Reopening {
        path: std::path::PathBuf,
        store: Store,
    }
    impl Replica for Reopening {
        fn apply(&mut self, batch: &ChangeBatch, mode: ApplyMode, now: Timestamp) -> Result<(), String> {
            self.store.apply_batch(batch, mode, now).map(drop).map_err(|e| e.to_string())
        }
        fn record_success(&mut self, now: Timestamp) -> Result<(), String> {
            self.store.record_sync_success(now).map_err(|e| e.to_string())
        }
        fn persisted(&self) -> Result<Persisted, String> {
            let state = self.store.sync_state().map_err(|e| e.to_string())?;
            Ok(Persisted {
                cursor: state.cursor,
                resync_in_progress: state.resync.is_some(),
                last_success: state.last_success,
            })
        }
        fn entities(&self) -> Result<Vec<Entity>, String> {
            self.store.load_entities().map_err(|e| e.to_string())
        }
        fn crash(&mut self) -> Result<(), String> {
            self.store = Store::open(&self.path).map_err(|e| e.to_string())?;
            Ok(())
        }
    }
    let mut crashes = 0;
    for seed in 1000..1004 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.sqlite");
        let store = Store::open(&path).unwrap();
        let mut replica = Reopening { path, store };
        let config = SimConfig { chaos_steps: 150, ..SimConfig::default() };
        crashes += sim::run(seed, &mut replica, &config).unwrap_or_else(|e| panic!("{e}")).crashes;
    }
    assert!(crashes > 0);
}
