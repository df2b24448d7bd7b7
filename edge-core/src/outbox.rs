//! The outbox: delivers every item the edge owes central, at least once, in
//! order per conversation, until central has applied it or refused it for
//! good.
//!
//! Owns: which queued items go out in which batch and when, the retry
//! schedule (exponential backoff with jitter from a seeded generator, so a
//! run can be replayed), per-conversation ordering, waiting for the purchase
//! that pays for a message, and parking items central refused permanently.
//!
//! Must not: persist, send, or read a clock. The shell commits an item
//! durably before it calls [`Input::Enqueue`], sends each
//! [`Output::Transmit`] as one `EdgeToCentral::Deliver`, deletes an item
//! durably on [`Output::Remove`] and records [`Output::Park`]. After a crash
//! it rebuilds the outbox with [`Outbox::restore`] from the durable rows;
//! everything else here is a cache of them.
//!
//! # Exactly once
//!
//! Delivery is at-least-once: an item stays until central's ack for its key
//! says it was applied (now or earlier), and anything unanswered is sent
//! again. Central applies each idempotency key at most once and repeats its
//! first final verdict, so the effect is exactly once.
//!
//! # Order
//!
//! Items of one [`Lane`] (a resident writing to one contact) are sent one at
//! a time: the next is not sent until the earlier one is applied or parked.
//! An item never becomes sendable while the purchase named in its
//! `funded_by` is still queued, and is parked as "payment failed" if that
//! purchase is parked. Items without a lane (call records, audit rows) go
//! as soon as there is room in a batch, oldest first.
//!
//! # Retries
//!
//! A transport failure (no answer, connection lost, ack timeout) holds back
//! every transmission until the uplink backoff expires or the shell reports
//! [`Input::UplinkUp`]; a transient refusal holds back that one item. Both
//! wait `min(max, base * 2^(n-1))` scaled by a random factor in [1/2, 1].
//! A clock that jumps backwards never makes anything wait longer than the
//! largest backoff (or the ack timeout for a batch in flight).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use jiff::{SignedDuration, Timestamp};
use proto::messaging::{
    DeliveryAck, DeliveryOutcome, IdempotencyKey, Lane, OutboxBody, OutboxItem, RefusalReason,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Identifies one `Deliver` request, to match its answer or failure.
pub type BatchId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Most items in one `Deliver` request.
    pub max_batch: usize,
    /// Most `Deliver` requests awaiting an answer at once.
    pub max_in_flight: usize,
    /// A batch unanswered this long counts as a transport failure.
    pub ack_timeout: SignedDuration,
    pub backoff_base: SignedDuration,
    pub backoff_max: SignedDuration,
    /// Seeds the jitter; the shell draws it at start, tests fix it.
    pub seed: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            max_batch: 64,
            max_in_flight: 2,
            ack_timeout: SignedDuration::from_secs(30),
            backoff_base: SignedDuration::from_secs(1),
            backoff_max: SignedDuration::from_secs(300),
            seed: 0,
        }
    }
}

/// Why an item is parked: it will not be sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParkReason {
    /// Central refused it permanently.
    Refused(RefusalReason),
    /// The stamp purchase paying for this message was refused.
    PaymentFailed { purchase: IdempotencyKey, reason: RefusalReason },
}

/// One durable outbox row, as the shell stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    /// The store's enqueue order (e.g. the SQLite rowid); defines the order
    /// within a lane.
    pub seq: u64,
    pub item: OutboxItem,
    pub parked: Option<ParkReason>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The shell has committed this item durably.
    Enqueue { seq: u64, item: OutboxItem },
    /// Central answered a batch.
    Delivered { batch: BatchId, acks: Vec<DeliveryAck> },
    /// The batch could not be sent, or its answer could not be read.
    DeliveryFailed { batch: BatchId },
    /// A connection to central was (re)established: retry without waiting.
    UplinkUp,
    /// The time from [`Outbox::poll_timeout`] has come.
    Tick,
    /// The resident has dealt with a parked item (e.g. turned the message
    /// back into a draft); only parked items can be withdrawn.
    Withdraw { key: IdempotencyKey },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these items as one `Deliver` request and report the answer with
    /// [`Input::Delivered`] or [`Input::DeliveryFailed`].
    Transmit { batch: BatchId, items: Vec<OutboxItem> },
    /// Central applied the item (at feed sequence `applied_at`): delete it
    /// durably, with the ledger's updates for the same outcome.
    Remove { key: IdempotencyKey, outcome: DeliveryOutcome },
    /// Record durably that the item is parked, with the reason to show.
    Park { key: IdempotencyKey, reason: ParkReason },
    /// Delete a withdrawn parked item durably.
    Withdrawn { key: IdempotencyKey },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    #[error("no outbox item {0}")]
    UnknownItem(IdempotencyKey),
    #[error("outbox item {0} is still being delivered; only parked items can be withdrawn")]
    NotParked(IdempotencyKey),
}

/// Where one item stands, for the resident's views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemStatus {
    /// Waiting to be sent; `attempts` transient refusals so far.
    Queued {
        attempts: u32,
        blocked_by: Option<IdempotencyKey>,
    },
    /// In a batch central has not answered yet.
    Sending,
    Parked(ParkReason),
}

#[derive(Debug, Clone)]
enum SlotState {
    Waiting { not_before: Timestamp },
    InFlight { batch: BatchId },
    Parked(ParkReason),
}

#[derive(Debug, Clone)]
struct Slot {
    seq: u64,
    item: OutboxItem,
    lane: Option<Lane>,
    attempts: u32,
    state: SlotState,
}

#[derive(Debug, Clone)]
struct Batch {
    keys: Vec<IdempotencyKey>,
    deadline: Timestamp,
}

/// See the module docs.
#[derive(Debug)]
pub struct Outbox {
    config: OutboxConfig,
    rng: StdRng,
    slots: HashMap<IdempotencyKey, Slot>,
    /// Live (not parked) items by seq.
    live: BTreeMap<u64, IdempotencyKey>,
    /// Live seqs per lane; the first is the lane's head.
    lanes: BTreeMap<Lane, BTreeSet<u64>>,
    in_flight: BTreeMap<BatchId, Batch>,
    next_batch: BatchId,
    transport_failures: u32,
    uplink_not_before: Timestamp,
    last_now: Timestamp,
    outputs: VecDeque<Output>,
}

impl Outbox {
    pub fn new(config: OutboxConfig, now: Timestamp) -> Self {
        Self::restore(config, now, std::iter::empty())
    }

    /// Rebuilds the outbox from the durable rows after a start or a crash.
    /// Nothing is in flight: whatever was sent before is sent again and
    /// central's deduplication absorbs it.
    pub fn restore(config: OutboxConfig, now: Timestamp, rows: impl IntoIterator<Item = StoredItem>) -> Self {
        let mut outbox = Outbox {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            slots: HashMap::new(),
            live: BTreeMap::new(),
            lanes: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_batch: 1,
            transport_failures: 0,
            uplink_not_before: now,
            last_now: now,
            outputs: VecDeque::new(),
        };
        let mut rows: Vec<StoredItem> = rows.into_iter().collect();
        rows.sort_by_key(|r| r.seq);
        for row in rows {
            outbox.insert(row.seq, row.item, row.parked, now);
        }
        // A crash may have come between parking a purchase and parking the
        // messages it paid for.
        let parked_purchases: Vec<(IdempotencyKey, ParkReason)> = outbox
            .slots
            .values()
            .filter_map(|s| match (&s.item.body, &s.state) {
                (OutboxBody::BuyStamps(_), SlotState::Parked(reason)) => Some((s.item.key, reason.clone())),
                _ => None,
            })
            .collect();
        for (purchase, reason) in parked_purchases {
            outbox.park_dependents(purchase, &reason);
        }
        outbox.drive(now);
        outbox
    }

    /// Feeds one event in. Outputs are then drained with [`Outbox::poll`].
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Result<(), OutboxError> {
        self.observe_clock(now);
        let result = match input {
            Input::Enqueue { seq, item } => {
                if !self.slots.contains_key(&item.key) {
                    let key = item.key;
                    let funded_by = funded_by(&item.body);
                    self.insert(seq, item, None, now);
                    if let Some(purchase) = funded_by {
                        if let Some(SlotState::Parked(reason)) = self.slots.get(&purchase).map(|s| &s.state) {
                            let reason = dependent_reason(purchase, reason);
                            self.park(key, reason);
                        }
                    }
                }
                Ok(())
            }
            Input::Delivered { batch, acks } => {
                self.on_delivered(batch, acks, now);
                Ok(())
            }
            Input::DeliveryFailed { batch } => {
                self.on_transport_failure(batch, now);
                Ok(())
            }
            Input::UplinkUp => {
                self.transport_failures = 0;
                self.uplink_not_before = now;
                Ok(())
            }
            Input::Tick => Ok(()),
            Input::Withdraw { key } => self.withdraw(key),
        };
        self.expire_batches(now);
        self.drive(now);
        result
    }

    /// The next thing the shell must do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the shell must call [`Input::Tick`] next, if anything is waiting
    /// on time. Never a time already past while nothing can be sent, so a
    /// shell that sleeps until then never spins.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let batch_deadline = self.in_flight.values().map(|b| b.deadline).min();
        // With every slot in flight taken, the next chance to send comes
        // with an answer or a batch deadline, not with a retry time.
        let room = self.in_flight.len() < self.config.max_in_flight.max(1);
        let retry = room
            .then(|| {
                self.live
                    .iter()
                    .filter_map(|(seq, key)| {
                        let slot = self.slots.get(key)?;
                        match slot.state {
                            SlotState::Waiting { not_before } if self.eligible(*seq, slot) => {
                                Some(not_before.max(self.uplink_not_before))
                            }
                            _ => None,
                        }
                    })
                    .min()
            })
            .flatten();
        [batch_deadline, retry].into_iter().flatten().min()
    }

    pub fn status(&self, key: &IdempotencyKey) -> Option<ItemStatus> {
        let slot = self.slots.get(key)?;
        Some(match &slot.state {
            SlotState::Waiting { .. } => {
                ItemStatus::Queued { attempts: slot.attempts, blocked_by: self.blocked_by(slot) }
            }
            SlotState::InFlight { .. } => ItemStatus::Sending,
            SlotState::Parked(reason) => ItemStatus::Parked(reason.clone()),
        })
    }

    /// Items not yet applied nor parked.
    pub fn live_len(&self) -> usize {
        self.live.len()
    }

    /// Every item held, parked ones included.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn parked(&self) -> impl Iterator<Item = (&OutboxItem, &ParkReason)> {
        self.slots.values().filter_map(|s| match &s.state {
            SlotState::Parked(reason) => Some((&s.item, reason)),
            _ => None,
        })
    }

    fn insert(&mut self, seq: u64, item: OutboxItem, parked: Option<ParkReason>, now: Timestamp) {
        let key = item.key;
        let lane = item.body.lane();
        let state = match parked {
            Some(reason) => SlotState::Parked(reason),
            None => {
                self.live.insert(seq, key);
                if let Some(lane) = &lane {
                    self.lanes.entry(lane.clone()).or_default().insert(seq);
                }
                SlotState::Waiting { not_before: now }
            }
        };
        self.slots.insert(key, Slot { seq, item, lane, attempts: 0, state });
    }

    /// Takes an item out of the live indexes (it was applied, parked or
    /// withdrawn).
    fn unindex(&mut self, key: &IdempotencyKey) {
        let Some(slot) = self.slots.get(key) else { return };
        if self.live.get(&slot.seq) == Some(key) {
            self.live.remove(&slot.seq);
        }
        if let Some(lane) = &slot.lane {
            if let Some(seqs) = self.lanes.get_mut(lane) {
                seqs.remove(&slot.seq);
                if seqs.is_empty() {
                    self.lanes.remove(lane);
                }
            }
        }
    }

    fn on_delivered(&mut self, batch: BatchId, acks: Vec<DeliveryAck>, now: Timestamp) {
        let sent = self.in_flight.remove(&batch);
        if sent.is_some() {
            self.transport_failures = 0;
            self.uplink_not_before = now;
        }
        let mut answered: BTreeSet<IdempotencyKey> = BTreeSet::new();
        for ack in acks {
            answered.insert(ack.key);
            let Some(slot) = self.slots.get(&ack.key) else {
                // Already applied and removed: a repeated or late answer.
                continue;
            };
            let in_this_batch = matches!(slot.state, SlotState::InFlight { batch: b } if b == batch);
            let parked = matches!(slot.state, SlotState::Parked(_));
            match ack.outcome {
                DeliveryOutcome::Accepted { .. } | DeliveryOutcome::Duplicate { .. } => {
                    // Central's contract (first final verdict sticks) means an
                    // applied item is never one it refused; a parked item
                    // stays parked whatever a confused answer says.
                    if !parked {
                        self.unindex(&ack.key);
                        self.slots.remove(&ack.key);
                        self.outputs.push_back(Output::Remove { key: ack.key, outcome: ack.outcome });
                    }
                }
                DeliveryOutcome::Refused { reason, permanent: true } => {
                    if !parked {
                        self.park(ack.key, ParkReason::Refused(reason));
                    }
                }
                DeliveryOutcome::Refused { permanent: false, .. } => {
                    // Only the answer to the latest send of an item decides
                    // its next retry.
                    if in_this_batch {
                        self.retry_later(ack.key, now);
                    }
                }
            }
        }
        // Items the answer left out were not taken: send them again.
        for key in sent.into_iter().flat_map(|b| b.keys) {
            if !answered.contains(&key) {
                self.return_to_queue(key, batch, now);
            }
        }
    }

    fn on_transport_failure(&mut self, batch: BatchId, now: Timestamp) {
        let Some(sent) = self.in_flight.remove(&batch) else { return };
        for key in sent.keys {
            self.return_to_queue(key, batch, now);
        }
        self.transport_failures = self.transport_failures.saturating_add(1);
        let delay = self.jittered_backoff(self.transport_failures);
        self.uplink_not_before = add(now, delay);
    }

    fn expire_batches(&mut self, now: Timestamp) {
        let expired: Vec<BatchId> =
            self.in_flight.iter().filter(|(_, b)| b.deadline <= now).map(|(id, _)| *id).collect();
        for batch in expired {
            self.on_transport_failure(batch, now);
        }
    }

    /// Puts an unanswered item of `batch` back in the queue, due now.
    fn return_to_queue(&mut self, key: IdempotencyKey, batch: BatchId, now: Timestamp) {
        if let Some(slot) = self.slots.get_mut(&key) {
            if matches!(slot.state, SlotState::InFlight { batch: b } if b == batch) {
                slot.state = SlotState::Waiting { not_before: now };
            }
        }
    }

    fn retry_later(&mut self, key: IdempotencyKey, now: Timestamp) {
        let Some(attempts) = self.slots.get(&key).map(|s| s.attempts.saturating_add(1)) else { return };
        let delay = self.jittered_backoff(attempts);
        if let Some(slot) = self.slots.get_mut(&key) {
            slot.attempts = attempts;
            slot.state = SlotState::Waiting { not_before: add(now, delay) };
        }
    }

    fn park(&mut self, key: IdempotencyKey, reason: ParkReason) {
        self.unindex(&key);
        let Some(slot) = self.slots.get_mut(&key) else { return };
        slot.state = SlotState::Parked(reason.clone());
        let is_purchase = matches!(slot.item.body, OutboxBody::BuyStamps(_));
        self.outputs.push_back(Output::Park { key, reason: reason.clone() });
        if is_purchase {
            self.park_dependents(key, &reason);
        }
    }

    /// Parks every live message paid for by the parked purchase `purchase`.
    fn park_dependents(&mut self, purchase: IdempotencyKey, reason: &ParkReason) {
        let reason = dependent_reason(purchase, reason);
        let mut dependents: Vec<(u64, IdempotencyKey)> = self
            .slots
            .values()
            .filter(|s| !matches!(s.state, SlotState::Parked(_)) && funded_by(&s.item.body) == Some(purchase))
            .map(|s| (s.seq, s.item.key))
            .collect();
        dependents.sort_unstable();
        for (_, key) in dependents {
            self.park(key, reason.clone());
        }
    }

    fn withdraw(&mut self, key: IdempotencyKey) -> Result<(), OutboxError> {
        match self.slots.get(&key).map(|s| &s.state) {
            None => Err(OutboxError::UnknownItem(key)),
            Some(SlotState::Parked(_)) => {
                self.slots.remove(&key);
                self.outputs.push_back(Output::Withdrawn { key });
                Ok(())
            }
            Some(_) => Err(OutboxError::NotParked(key)),
        }
    }

    /// What keeps a waiting item from being sent, other than time.
    fn blocked_by(&self, slot: &Slot) -> Option<IdempotencyKey> {
        if let Some(lane) = &slot.lane {
            let head = self.lanes.get(lane).and_then(|seqs| seqs.first()).copied();
            if let Some(head) = head.filter(|h| *h != slot.seq) {
                return self.live.get(&head).copied();
            }
        }
        funded_by(&slot.item.body).filter(|p| self.live_contains(p))
    }

    fn live_contains(&self, key: &IdempotencyKey) -> bool {
        self.slots.get(key).is_some_and(|s| !matches!(s.state, SlotState::Parked(_)))
    }

    /// A clock that went backwards would leave deadlines far in the future;
    /// bring them back within their longest legitimate distance from `now`.
    fn observe_clock(&mut self, now: Timestamp) {
        if now < self.last_now {
            let retry_cap = add(now, self.config.backoff_max);
            let ack_cap = add(now, self.config.ack_timeout);
            self.uplink_not_before = self.uplink_not_before.min(retry_cap);
            for slot in self.slots.values_mut() {
                if let SlotState::Waiting { not_before } = &mut slot.state {
                    *not_before = (*not_before).min(retry_cap);
                }
            }
            for batch in self.in_flight.values_mut() {
                batch.deadline = batch.deadline.min(ack_cap);
            }
        }
        self.last_now = now;
    }

    /// Fills batches with sendable items while there is room in flight.
    fn drive(&mut self, now: Timestamp) {
        if now < self.uplink_not_before {
            return;
        }
        while self.in_flight.len() < self.config.max_in_flight.max(1) {
            let keys = self.sendable(now);
            if keys.is_empty() {
                return;
            }
            let batch = self.next_batch;
            self.next_batch += 1;
            let mut items = Vec::with_capacity(keys.len());
            for key in &keys {
                if let Some(slot) = self.slots.get_mut(key) {
                    slot.state = SlotState::InFlight { batch };
                    items.push(slot.item.clone());
                }
            }
            let deadline = add(now, self.config.ack_timeout);
            self.in_flight.insert(batch, Batch { keys, deadline });
            self.outputs.push_back(Output::Transmit { batch, items });
        }
    }

    /// Up to one batch of items that may go now, oldest first.
    fn sendable(&self, now: Timestamp) -> Vec<IdempotencyKey> {
        let max = self.config.max_batch.max(1);
        let mut out = Vec::new();
        for (seq, key) in &self.live {
            let Some(slot) = self.slots.get(key) else { continue };
            let due = matches!(slot.state, SlotState::Waiting { not_before } if not_before <= now);
            if !due {
                continue;
            }
            if self.eligible(*seq, slot) {
                out.push(*key);
                if out.len() >= max {
                    break;
                }
            }
        }
        out
    }

    /// Whether a waiting item may go as soon as its time comes: it heads its
    /// lane and the purchase paying for it is no longer queued.
    fn eligible(&self, seq: u64, slot: &Slot) -> bool {
        let lane_head = match &slot.lane {
            Some(lane) => self.lanes.get(lane).and_then(|s| s.first()) == Some(&seq),
            None => true,
        };
        lane_head && funded_by(&slot.item.body).is_none_or(|p| !self.live_contains(&p))
    }

    fn jittered_backoff(&mut self, attempt: u32) -> SignedDuration {
        let base = self.config.backoff_base.as_millis().max(1);
        let max = self.config.backoff_max.as_millis().max(base);
        let exponent = attempt.saturating_sub(1).min(62);
        let full = base.saturating_mul(1i128 << exponent).min(max);
        let half = full / 2;
        let millis = half + self.rng.gen_range(0..=full - half);
        SignedDuration::from_millis(i64::try_from(millis).unwrap_or(i64::MAX))
    }
}

fn funded_by(body: &OutboxBody) -> Option<IdempotencyKey> {
    match body {
        OutboxBody::SendMessage { funded_by, .. } => *funded_by,
        _ => None,
    }
}

fn dependent_reason(purchase: IdempotencyKey, purchase_reason: &ParkReason) -> ParkReason {
    let reason = match purchase_reason {
        ParkReason::Refused(reason) | ParkReason::PaymentFailed { reason, .. } => reason.clone(),
    };
    ParkReason::PaymentFailed { purchase, reason }
}

fn add(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(Timestamp::MAX)
}
