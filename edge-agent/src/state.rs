//! The running agent's state, shared by the tablet API, the uplink and the
//! watcher. A plain struct behind one mutex: cores decide in memory; audit
//! rows, login counters, and the outbox and ledger writes touch the disk
//! under it. The single ledger behind this lock is what serialises two
//! tablets buying for the same resident: each purchase checks, reserves and
//! commits before the other can look.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, RwLock},
};

use edge_core::{
    call::{CallConfig, CallId, CallTable},
    directory::{Directory, Lockdowns},
    ledger::{Confirmed, Ledger, LedgerUpdate},
    login::SessionTable,
    outbox::{self, BatchId, Outbox, OutboxConfig, ParkReason},
    sync::{SyncConfig, SyncCore},
};
use jiff::Timestamp;
use proto::{
    central::{Change, ChangeBatch, Entity, EntityKey},
    messaging::{DeliveryOutcome, OutboxItem},
    tablet::{Freshness, ServerEvent},
};
use tokio::sync::{mpsc, Notify};

use crate::calls::CentralOp;
use crate::store::{ApplyOutcome, Enqueue, Store, StoreError};

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
    /// The front-panel supervisor as the link last saw it.
    pub panel: crate::supervisor::PanelView,
    pub sessions: SessionTable,
    pub devices: HashMap<u64, Device>,
    /// The downlink sync core; the uplink task drives it.
    pub sync: SyncCore,
    /// Everything the edge owes central; the uplink task delivers it.
    pub outbox: Outbox,
    /// What each resident may spend; see `edge_core::ledger`.
    pub ledger: Ledger,
    /// Wakes the uplink task when the outbox has something new to send.
    pub outbox_wake: Arc<Notify>,
    /// Totals since start, for metrics.
    pub counters: Counters,
    /// Where the update download stands; see `crate::updater`.
    pub update: crate::updater::UpdateStatus,
    /// Every live call; see `crate::calls`.
    pub calls: CallTable,
    /// The call core's epoch: its time is the monotonic time since this.
    pub call_epoch: tokio::time::Instant,
    /// The tablet connection each live call reports to.
    pub call_owners: HashMap<CallId, u64>,
    /// Each live call's limit, for the ring request.
    pub call_limits: HashMap<CallId, u32>,
    /// Wakes the calls task when a deadline may have moved.
    pub calls_wake: Arc<Notify>,
    /// Requests to central the calls task sends.
    pub call_ops: mpsc::UnboundedSender<CentralOp>,
    /// The other end of `call_ops`, taken by the calls task.
    pub call_ops_rx: Option<mpsc::UnboundedReceiver<CentralOp>>,
    /// The uplink connection while it is up (set by the uplink task).
    pub uplink: Option<quinn::Connection>,
    /// The central media relay calls are bridged to (unset: calls run
    /// without media).
    pub relay: Option<Arc<media_link::RelayUplinks>>,
    /// The media connections of live calls; see `crate::bridge`.
    pub media: crate::bridge::MediaLegs,
    last_data_version: i64,
    /// The highest outbox seq handed to the outbox core. Rows above it were
    /// committed since (by this process or the IT CLI) and are fed next, by
    /// [`EdgeState::feed_committed_outbox`]; rows at or below it never again,
    /// because the core forgets an applied item and would send it anew.
    outbox_fed: u64,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub logins_ok: u64,
    pub logins_failed: u64,
    pub calls_allowed: u64,
    pub calls_denied: u64,
    pub sync_batches: u64,
    pub sync_failures: u64,
    pub outbox_enqueued: u64,
    pub outbox_applied: u64,
    pub outbox_parked: u64,
    pub update_bytes_downloaded: u64,
    pub media_downloaded: u64,
    pub media_download_failures: u64,
    pub media_evicted: u64,
    /// Tablet media connections admitted and bridged to the relay.
    pub call_media_bridged: u64,
    /// Tablet media announcements refused (not a live call of that device,
    /// no relay configured, relay unreachable).
    pub call_media_refused: u64,
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
    /// Rebuilds the state from the store: the directory, the sync core, and
    /// the outbox and ledger from their durable rows.
    pub fn load(
        facility: String,
        store: Store,
        sync_config: SyncConfig,
        outbox_config: OutboxConfig,
        now: Timestamp,
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
        let rows = store.outbox_rows()?;
        // Every row committed after this read gets a larger seq.
        let outbox_fed = rows.iter().map(|row| row.seq).max().unwrap_or(0);
        let outbox = Outbox::restore(outbox_config, now, rows);
        let ledger =
            Ledger::restore(store.ledger_cursor()?, store.ledger_confirmed()?, store.ledger_entries()?);
        let (call_ops, call_ops_rx) = mpsc::unbounded_channel();
        let state = EdgeState {
            calls: CallTable::new(CallConfig::default()),
            call_epoch: tokio::time::Instant::now(),
            call_owners: HashMap::new(),
            call_limits: HashMap::new(),
            calls_wake: Arc::new(Notify::new()),
            call_ops,
            call_ops_rx: Some(call_ops_rx),
            uplink: None,
            relay: None,
            media: Default::default(),
            outbox,
            ledger,
            outbox_wake: Arc::new(Notify::new()),
            update: Default::default(),
            facility,
            directory,
            lockdowns,
            panel: Default::default(),
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
            outbox_fed,
            store,
        };
        Ok((state, admitted))
    }

    /// Re-reads what other processes may have written, if anything was,
    /// and feeds the outbox rows they committed (e.g. the IT CLI's audit
    /// rows) to the outbox core.
    pub fn poll_external_changes(&mut self, now: Timestamp) -> Result<ExternalChanges, StoreError> {
        // Checked on every poll, not only when `data_version` moved: it is one
        // indexed read, and it also catches a row of this process whose feed
        // failed after its commit.
        self.feed_committed_outbox(now)?;
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

/// A `Deliver` the uplink must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub batch: BatchId,
    pub items: Vec<OutboxItem>,
}

impl EdgeState {
    /// Commits a group of outbox items (with what belongs to each, audit
    /// rows and their own outbox items included) in one transaction, then
    /// hands them to the outbox and wakes the uplink. Nothing reaches the
    /// outbox core unless the commit succeeded.
    pub fn commit_and_enqueue(
        &mut self,
        group: &[Enqueue<'_>],
        now: Timestamp,
    ) -> Result<Vec<u64>, StoreError> {
        let seqs = self.store.enqueue(group, now)?;
        self.feed_after_commit(now);
        Ok(seqs)
    }

    /// Appends an audit row (and its outbox item, in the same transaction)
    /// and hands the item to the outbox. Returns the row's seq.
    pub fn audit(
        &mut self,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let seq = self.store.audit_append(actor, action, detail, now)?;
        self.feed_after_commit(now);
        Ok(seq)
    }

    /// After this process committed outbox rows: feeds them now. If reading
    /// them back fails the commit still stands, and the watcher's next
    /// [`EdgeState::poll_external_changes`] feeds them.
    pub(crate) fn feed_after_commit(&mut self, now: Timestamp) {
        if let Err(error) = self.feed_committed_outbox(now) {
            tracing::warn!(%error, "cannot read back committed outbox rows; the watcher retries");
        }
    }

    /// Feeds every outbox row committed since the last feed (by this process
    /// or another) to the outbox core, once each, in seq order, and wakes
    /// the uplink if there were any. Returns how many were fed.
    pub fn feed_committed_outbox(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        let rows = self.store.outbox_rows_after(self.outbox_fed)?;
        let Some(last) = rows.last().map(|row| row.seq) else { return Ok(0) };
        let mut fed = 0;
        for row in rows {
            // Only this process parks, and only rows it was fed already.
            if row.parked.is_some() {
                continue;
            }
            let input = outbox::Input::Enqueue { seq: row.seq, item: row.item };
            if let Err(error) = self.outbox.handle(now, input) {
                tracing::error!(%error, "the outbox refused an enqueue");
            }
            fed += 1;
        }
        self.outbox_fed = last;
        self.counters.outbox_enqueued += fed as u64;
        self.outbox_wake.notify_one();
        Ok(fed)
    }

    /// Carries out what the outbox asks for: durable removals and parkings
    /// are written here (each in one transaction with the ledger's updates
    /// for the same verdict); the `Deliver`s to send are returned.
    pub fn drain_outbox(&mut self, now: Timestamp) -> Vec<Transmit> {
        let mut transmits = Vec::new();
        while let Some(output) = self.outbox.poll() {
            match output {
                outbox::Output::Transmit { batch, items } => transmits.push(Transmit { batch, items }),
                outbox::Output::Remove { key, outcome } => {
                    let updates = self.ledger.settle(&key, &outcome);
                    self.counters.outbox_applied += 1;
                    // On failure the row stays: it is sent again after a
                    // restart and central answers "duplicate".
                    if let Err(error) = self.store.outbox_remove(&key, &updates) {
                        tracing::error!(%error, %key, "cannot delete an applied outbox item");
                    }
                }
                outbox::Output::Park { key, reason } => {
                    let updates = match &reason {
                        ParkReason::Refused(r) => self
                            .ledger
                            .settle(&key, &DeliveryOutcome::Refused { reason: r.clone(), permanent: true }),
                        // The ledger marked these when the purchase was refused.
                        ParkReason::PaymentFailed { .. } => Vec::new(),
                    };
                    self.counters.outbox_parked += 1;
                    tracing::warn!(%key, ?reason, "outbox item parked");
                    if let Err(error) = self.store.outbox_park(&key, &reason, &updates, now) {
                        tracing::error!(%error, %key, "cannot record a parked outbox item");
                    }
                    // The parking's audit row is an outbox item too; its
                    // transmits (if any) come out of this same loop.
                    self.feed_after_commit(now);
                }
                outbox::Output::Withdrawn { key } => {
                    let updates: Vec<LedgerUpdate> = self.ledger.dismiss(&key).into_iter().collect();
                    if let Err(error) = self.store.outbox_withdraw(&key, &updates) {
                        tracing::error!(%error, %key, "cannot delete a withdrawn outbox item");
                    }
                }
            }
        }
        transmits
    }

    /// Feeds one event to the outbox.
    pub fn outbox_input(&mut self, now: Timestamp, input: outbox::Input) {
        if let Err(error) = self.outbox.handle(now, input) {
            tracing::error!(%error, "the outbox refused an input");
        }
    }

    /// A change-feed page was committed: the ledger hears of the figures it
    /// carries (its own writes then go to the store), and residents with a
    /// live session hear of new mail and review results. Returns the events
    /// sent, by connection.
    pub fn after_page(&mut self, batch: &ChangeBatch, outcome: &ApplyOutcome) -> Vec<(u64, ServerEvent)> {
        let updates = if outcome.swept > 0 {
            // The resync dropped figures central no longer has: rebuild the
            // confirmed side from what was committed, keeping every entry.
            match self.store.ledger_confirmed() {
                Ok(confirmed) => {
                    let cursor = self.ledger.cursor().max(batch.next_cursor);
                    let entries: Vec<_> = self.ledger.entries().cloned().collect();
                    self.ledger = Ledger::restore(cursor, confirmed, entries);
                    self.ledger.apply_sync(cursor, std::iter::empty())
                }
                Err(error) => {
                    tracing::error!(%error, "cannot reload confirmed balances after a resync");
                    self.ledger.apply_sync(batch.next_cursor, confirmed_figures(&batch.changes))
                }
            }
        } else {
            self.ledger.apply_sync(batch.next_cursor, confirmed_figures(&batch.changes))
        };
        if let Err(error) = self.store.write_ledger(&updates) {
            // Restore recomputes the same: settled entries the cursor has
            // passed stop counting whether or not their rows were deleted.
            tracing::warn!(%error, "cannot write the ledger's sync updates");
        }
        let events = self.mail_events(&batch.changes);
        for (connection, event) in &events {
            if let Some(device) = self.devices.get(connection) {
                let _ = device.events.send(event.clone());
            }
        }
        events
    }

    /// `MailChanged` for each mail upsert whose resident has a live session.
    pub fn mail_events(&self, changes: &[Change]) -> Vec<(u64, ServerEvent)> {
        let mut events = Vec::new();
        for change in changes {
            let Change::Upsert(Entity::Mail(mail)) = change else { continue };
            let resident = &mail.message.resident;
            let Some(session) = self.sessions.sessions().find(|s| &s.resident == resident) else { continue };
            let unread = match self.store.unread_count(resident) {
                Ok(unread) => unread,
                Err(error) => {
                    tracing::warn!(%error, "cannot count unread mail");
                    0
                }
            };
            events.push((session.connection, ServerEvent::MailChanged { id: mail.message.id, unread }));
        }
        events
    }
}

/// The debit balances and stamp counts a page confirms. A deleted stamp
/// count or resident confirms zero: nothing to spend is the safe reading.
pub fn confirmed_figures(changes: &[Change]) -> Vec<Confirmed> {
    changes
        .iter()
        .filter_map(|change| match change {
            Change::Upsert(Entity::Resident(r)) => {
                Some(Confirmed::Debit { resident: r.id.clone(), balance_cents: r.debit_balance_cents })
            }
            Change::Upsert(Entity::StampCount(c)) => {
                Some(Confirmed::Stamps { resident: c.resident.clone(), contact: c.contact, stamps: c.stamps })
            }
            Change::Delete(EntityKey::Resident(id)) => {
                Some(Confirmed::Debit { resident: id.clone(), balance_cents: 0 })
            }
            Change::Delete(EntityKey::StampCount { resident, contact }) => {
                Some(Confirmed::Stamps { resident: resident.clone(), contact: *contact, stamps: 0 })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
