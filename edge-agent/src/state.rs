//! The running agent's state, shared by the tablet API, the uplink and the
//! watcher. A plain struct behind one mutex held for microseconds: cores
//! decide in memory; only audit rows and login counters touch the disk.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, RwLock},
};

use edge_core::{
    directory::{Directory, Lockdowns},
    login::SessionTable,
    sync::{SyncConfig, SyncCore},
};
use proto::tablet::{Freshness, ServerEvent};
use tokio::sync::mpsc;

use crate::store::{Store, StoreError};

/// One connected tablet or kiosk.
#[derive(Debug)]
pub struct Device {
    pub name: String,
    pub fingerprint: String,
    pub events: mpsc::UnboundedSender<ServerEvent>,
    pub connection: quinn::Connection,
}

pub struct EdgeState {
    pub facility: String,
    pub store: Store,
    pub directory: Directory,
    pub lockdowns: Lockdowns,
    pub sessions: SessionTable,
    pub devices: HashMap<u64, Device>,
    /// The downlink sync core; the uplink task drives it.
    pub sync: SyncCore,
    /// Totals since start, for metrics.
    pub counters: Counters,
    last_data_version: i64,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub logins_ok: u64,
    pub logins_failed: u64,
    pub calls_allowed: u64,
    pub calls_denied: u64,
    pub sync_batches: u64,
    pub sync_failures: u64,
}

/// Fingerprints of provisioned, unrevoked devices, read by the TLS handshake.
pub type Admitted = Arc<RwLock<HashSet<String>>>;

#[derive(Clone)]
pub struct Shared {
    inner: Arc<Mutex<EdgeState>>,
    pub admitted: Admitted,
}

impl Shared {
    pub fn new(state: EdgeState, admitted: HashSet<String>) -> Self {
        Self { inner: Arc::new(Mutex::new(state)), admitted: Arc::new(RwLock::new(admitted)) }
    }

    /// Locks the state. A panic while it was held leaves plain data behind, not
    /// a broken invariant of an external resource, so the lock is recovered.
    pub fn lock(&self) -> MutexGuard<'_, EdgeState> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What changed on disk behind the agent's back (the IT CLI writes directly).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExternalChanges {
    pub lockdowns: Option<Lockdowns>,
    pub admitted: Option<HashSet<String>>,
}

impl EdgeState {
    pub fn load(
        facility: String,
        store: Store,
        sync_config: SyncConfig,
    ) -> Result<(EdgeState, HashSet<String>), StoreError> {
        let mut directory = Directory::new();
        for entity in store.load_entities()? {
            directory.upsert(entity);
        }
        let lockdowns = store.lockdowns()?;
        let admitted = store.admitted_fingerprints()?;
        let sync = store.sync_state()?;
        let facility_id = facility.clone();
        let last_data_version = store.data_version()?;
        let state = EdgeState {
            facility,
            directory,
            lockdowns,
            sessions: SessionTable::new(),
            devices: HashMap::new(),
            sync: SyncCore::new(
                proto::domain::FacilityId::new(facility_id),
                sync.cursor,
                sync.resync.is_some(),
                sync.last_success,
                sync_config,
            ),
            counters: Counters::default(),
            last_data_version,
            store,
        };
        Ok((state, admitted))
    }

    /// Re-reads what other processes may have written, if anything was.
    pub fn poll_external_changes(&mut self) -> Result<ExternalChanges, StoreError> {
        let version = self.store.data_version()?;
        if version == self.last_data_version {
            return Ok(ExternalChanges::default());
        }
        self.last_data_version = version;
        let mut changes = ExternalChanges::default();
        let lockdowns = self.store.lockdowns()?;
        if lockdowns != self.lockdowns {
            self.lockdowns = lockdowns.clone();
            changes.lockdowns = Some(lockdowns);
        }
        changes.admitted = Some(self.store.admitted_fingerprints()?);
        Ok(changes)
    }

    pub fn freshness_at(&self, now: jiff::Timestamp) -> Freshness {
        self.sync.freshness(now)
    }

    /// Sends an event to every connected device.
    pub fn broadcast(&self, event: &ServerEvent) {
        for device in self.devices.values() {
            let _ = device.events.send(event.clone());
        }
    }
}
