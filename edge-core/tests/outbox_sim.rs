//! Deterministic simulation of the outbox and the ledger against a model of
//! central, under crashes at any step, partitions, lost, duplicated and
//! reordered deliveries, partial answers and clock jumps.
//!
//! The simulated shell follows the contract of `edge_core::outbox`: it commits
//! an item (and its ledger entry) in one durable step before handing it to
//! the outbox, and executes each output as one durable step; a crash may
//! fall between any two of those steps, and throws away everything not
//! durable. Central applies each idempotency key at most once and repeats
//! its first final verdict.
//!
//! Checked after every step: nothing a tablet was told is queued is lost;
//! central never applied a message before the purchase that paid for it, nor
//! out of conversation order; without outside spending, no purchase the edge
//! allowed is ever refused for lack of funds; central's balances never go
//! negative. Checked at the end of each seed, after the network heals and
//! the outbox drains: every queued item took effect exactly once or is
//! parked with a reason that central's verdicts explain, and the ledger
//! agrees with central to the cent and the stamp.
//!
//! `OUTBOX_SEED=N` replays one seed; `OUTBOX_SEEDS=N` changes how many run.

use std::collections::{BTreeMap, HashMap, VecDeque};

use edge_core::ledger::{Confirmed, Entry, EntryState, Ledger, LedgerUpdate};
use edge_core::outbox::{Input, Outbox, OutboxConfig, Output, ParkReason, StoredItem};
use jiff::{SignedDuration, Timestamp};
use proto::domain::{CallKind, ContactId, ResidentId};
use proto::messaging::{
    AuditRecord, CallDetailRecord, DeliveryAck, DeliveryOutcome, Direction, IdempotencyKey, Lane, Message,
    MessageId, MessagingError, OutboxBody, OutboxItem, PackageId, RefusalReason, StampPackageRecord,
    StampPurchase,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DEFAULT_SEEDS: u64 = 1000;
const STEPS: usize = 400;
const QUIESCE_STEPS: usize = 20_000;

#[test]
fn outbox_simulation() {
    let seeds: Vec<u64> = match std::env::var("OUTBOX_SEED") {
        Ok(one) => vec![one.trim().parse().expect("OUTBOX_SEED must be a number")],
        Err(_) => {
            let count = std::env::var("OUTBOX_SEEDS")
                .ok()
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(DEFAULT_SEEDS);
            (0..count).collect()
        }
    };
    let mut totals = Totals::default();
    for seed in seeds {
        let outcome = std::panic::catch_unwind(|| run_seed(seed));
        match outcome {
            Ok(Ok(stats)) => totals.add(&stats),
            Ok(Err(failure)) => panic!(
                "seed {seed} failed: {failure}\nreplay with: OUTBOX_SEED={seed} cargo test -p edge-core --test outbox_sim"
            ),
            Err(_) => panic!(
                "seed {seed} panicked (message above)\nreplay with: OUTBOX_SEED={seed} cargo test -p edge-core --test outbox_sim"
            ),
        }
    }
    // The faults must actually have happened for the run to mean anything.
    assert!(totals.seeds > 0);
    if totals.seeds >= 100 {
        assert!(totals.crashes > totals.seeds, "{totals:?}");
        assert!(totals.duplicates_answered > 0, "{totals:?}");
        assert!(totals.payment_failed > 0, "{totals:?}");
        assert!(totals.applied > 10 * totals.seeds, "{totals:?}");
        assert!(totals.purchases_refused_for_funds > 0, "{totals:?}");
        assert!(totals.backward_jumps > 0, "{totals:?}");
    }
    eprintln!("outbox simulation: {totals:?}");
}

#[derive(Debug, Default)]
struct Totals {
    seeds: u64,
    crashes: u64,
    applied: u64,
    duplicates_answered: u64,
    parked: u64,
    payment_failed: u64,
    purchases_refused_for_funds: u64,
    backward_jumps: u64,
}

impl Totals {
    fn add(&mut self, s: &Stats) {
        self.seeds += 1;
        self.crashes += s.crashes;
        self.applied += s.applied;
        self.duplicates_answered += s.duplicates_answered;
        self.parked += s.parked;
        self.payment_failed += s.payment_failed;
        self.purchases_refused_for_funds += s.purchases_refused_for_funds;
        self.backward_jumps += s.backward_jumps;
    }
}

#[derive(Debug, Default)]
struct Stats {
    crashes: u64,
    applied: u64,
    duplicates_answered: u64,
    parked: u64,
    payment_failed: u64,
    purchases_refused_for_funds: u64,
    backward_jumps: u64,
}

type Fail = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

// ---------------------------------------------------------------- central

#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    item: OutboxItem,
    outcome: DeliveryOutcome,
}

/// The model of central: applies each key at most once, records the first
/// final verdict, refuses what it cannot pay for.
struct Central {
    balance: HashMap<ResidentId, i64>,
    stamps: HashMap<(ResidentId, ContactId), u32>,
    feed_seq: u64,
    verdicts: HashMap<IdempotencyKey, Verdict>,
    /// How many times each key's effect was applied (must never exceed 1).
    applied: HashMap<IdempotencyKey, u32>,
    /// Same, counted by the op id written into the content, so a re-keyed
    /// resend would be caught too.
    applied_ops: HashMap<String, u32>,
    /// Last applied enqueue seq per lane (the simulator's ground truth).
    lane_last: HashMap<Lane, u64>,
    transient_refusal_rate: f64,
    partial_answer_rate: f64,
    outside_spending: bool,
    violations: Vec<String>,
    refused_for_funds: u64,
    duplicates_answered: u64,
}

impl Central {
    fn deliver(
        &mut self,
        items: &[OutboxItem],
        seqs: &HashMap<IdempotencyKey, u64>,
        rng: &mut StdRng,
    ) -> Vec<DeliveryAck> {
        let mut acks = Vec::new();
        for item in items {
            let outcome = self.deliver_one(item, seqs, rng);
            if rng.gen_bool(self.partial_answer_rate) {
                continue; // the answer leaves this item out
            }
            acks.push(DeliveryAck { key: item.key, outcome });
        }
        acks
    }

    fn deliver_one(
        &mut self,
        item: &OutboxItem,
        seqs: &HashMap<IdempotencyKey, u64>,
        rng: &mut StdRng,
    ) -> DeliveryOutcome {
        if let Some(verdict) = self.verdicts.get(&item.key) {
            if verdict.item != item.clone() {
                self.violations.push(format!("key {} reused for different content", item.key));
                return DeliveryOutcome::Refused { reason: RefusalReason::KeyReused, permanent: true };
            }
            self.duplicates_answered += 1;
            return match &verdict.outcome {
                DeliveryOutcome::Accepted { applied_at } | DeliveryOutcome::Duplicate { applied_at } => {
                    DeliveryOutcome::Duplicate { applied_at: *applied_at }
                }
                refused => refused.clone(),
            };
        }
        if rng.gen_bool(self.transient_refusal_rate) {
            return DeliveryOutcome::Refused {
                reason: RefusalReason::Unavailable { detail: "busy".into() },
                permanent: false,
            };
        }
        let outcome = match self.apply(item) {
            Ok(()) => {
                *self.applied.entry(item.key).or_default() += 1;
                *self.applied_ops.entry(op_tag(&item.body)).or_default() += 1;
                if let Some(lane) = item.body.lane() {
                    let seq = seqs.get(&item.key).copied().unwrap_or(0);
                    if let Some(last) = self.lane_last.get(&lane) {
                        if *last >= seq {
                            self.violations
                                .push(format!("lane {lane:?}: item seq {seq} applied after seq {last}"));
                        }
                    }
                    self.lane_last.insert(lane, seq);
                }
                DeliveryOutcome::Accepted { applied_at: self.feed_seq }
            }
            Err(reason) => DeliveryOutcome::Refused { reason, permanent: true },
        };
        self.verdicts.insert(item.key, Verdict { item: item.clone(), outcome: outcome.clone() });
        outcome
    }

    fn apply(&mut self, item: &OutboxItem) -> Result<(), RefusalReason> {
        match &item.body {
            OutboxBody::BuyStamps(p) => {
                let balance = self.balance.entry(p.resident.clone()).or_default();
                if p.price_cents > *balance {
                    self.refused_for_funds += 1;
                    if !self.outside_spending {
                        self.violations.push(format!(
                            "purchase {} of {} refused for funds ({}) with no outside spending: the edge overspent",
                            item.key, p.price_cents, balance
                        ));
                    }
                    return Err(RefusalReason::InsufficientFunds {
                        balance_cents: *balance,
                        price_cents: p.price_cents,
                    });
                }
                *balance -= p.price_cents;
                *self.stamps.entry((p.resident.clone(), p.contact)).or_default() += p.stamps;
                self.feed_seq += 1;
                Ok(())
            }
            OutboxBody::SendMessage { message, funded_by } => {
                if let Some(purchase) = funded_by {
                    match self.verdicts.get(purchase).map(|v| &v.outcome) {
                        Some(DeliveryOutcome::Accepted { .. }) => {}
                        Some(_) => return Err(RefusalReason::FundingRefused { purchase: *purchase }),
                        None => {
                            self.violations.push(format!(
                                "message {} arrived before the purchase {} paying for it",
                                item.key, purchase
                            ));
                            return Err(RefusalReason::FundingRefused { purchase: *purchase });
                        }
                    }
                }
                let stamps = self.stamps.entry((message.resident.clone(), message.contact)).or_default();
                if *stamps == 0 {
                    return Err(RefusalReason::NoStamps);
                }
                *stamps -= 1;
                self.feed_seq += 1;
                Ok(())
            }
            OutboxBody::CallRecord(_) | OutboxBody::Audit(_) => Ok(()),
        }
    }

    fn figures(&self) -> Vec<Confirmed> {
        let mut out: Vec<Confirmed> = self
            .balance
            .iter()
            .map(|(r, b)| Confirmed::Debit { resident: r.clone(), balance_cents: *b })
            .collect();
        out.extend(self.stamps.iter().map(|((r, c), n)| Confirmed::Stamps {
            resident: r.clone(),
            contact: *c,
            stamps: *n,
        }));
        out
    }
}

fn op_tag(body: &OutboxBody) -> String {
    match body {
        OutboxBody::SendMessage { message, .. } => message.subject.clone(),
        OutboxBody::BuyStamps(p) => format!("buy@{}", p.bought_at),
        OutboxBody::CallRecord(c) => c.number.clone(),
        OutboxBody::Audit(a) => a.detail.clone(),
    }
}

// ---------------------------------------------------------------- edge

/// What the store holds: survives crashes.
#[derive(Default)]
struct Disk {
    rows: BTreeMap<u64, StoredItem>,
    key_to_seq: HashMap<IdempotencyKey, u64>,
    ledger: BTreeMap<IdempotencyKey, Entry>,
    confirmed: Vec<Confirmed>,
    cursor: u64,
    next_seq: u64,
}

impl Disk {
    fn write_ledger(&mut self, updates: Vec<LedgerUpdate>) {
        for update in updates {
            match update {
                LedgerUpdate::Upsert(entry) => {
                    self.ledger.insert(entry.key, entry);
                }
                LedgerUpdate::Forget(key) => {
                    self.ledger.remove(&key);
                }
            }
        }
    }
}

/// What a tablet was told about one operation.
#[derive(Debug, Clone)]
struct Op {
    key: IdempotencyKey,
    seq: u64,
    body: OutboxBody,
    withdrawn: bool,
}

struct Sim {
    rng: StdRng,
    now: Timestamp,
    central: Central,
    disk: Disk,
    /// `None` while the edge is down after a crash.
    edge: Option<(Outbox, Ledger)>,
    /// Outputs polled from the outbox but not yet carried out.
    effects: VecDeque<Output>,
    config: OutboxConfig,
    partitioned: bool,
    to_central: Vec<(u64, Vec<OutboxItem>)>,
    to_edge: Vec<(u64, Vec<DeliveryAck>)>,
    ops: Vec<Op>,
    residents: Vec<ResidentId>,
    contacts: Vec<ContactId>,
    packages: Vec<StampPackageRecord>,
    stats: Stats,
    op_counter: u64,
}

fn resident_of(contact: ContactId, residents: &[ResidentId]) -> ResidentId {
    residents[(contact.0 as usize) % residents.len()].clone()
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let residents: Vec<ResidentId> =
            (0..rng.gen_range(1..=2)).map(|i| ResidentId::new(format!("R{i}"))).collect();
        let contacts: Vec<ContactId> = (0..rng.gen_range(1..=4)).map(ContactId).collect();
        let outside_spending = rng.gen_bool(0.5);
        let central = Central {
            balance: residents.iter().map(|r| (r.clone(), rng.gen_range(0..3000))).collect(),
            stamps: contacts
                .iter()
                .map(|c| ((resident_of(*c, &residents), *c), rng.gen_range(0..3)))
                .collect(),
            feed_seq: 1,
            verdicts: HashMap::new(),
            applied: HashMap::new(),
            applied_ops: HashMap::new(),
            lane_last: HashMap::new(),
            transient_refusal_rate: rng.gen_range(0.0..0.15),
            partial_answer_rate: rng.gen_range(0.0..0.1),
            outside_spending,
            violations: Vec::new(),
            refused_for_funds: 0,
            duplicates_answered: 0,
        };
        let config = OutboxConfig {
            max_batch: rng.gen_range(1..=8),
            max_in_flight: rng.gen_range(1..=3),
            ack_timeout: SignedDuration::from_secs(rng.gen_range(2..=20)),
            backoff_base: SignedDuration::from_millis(rng.gen_range(100..=2000)),
            backoff_max: SignedDuration::from_secs(rng.gen_range(5..=120)),
            seed: rng.gen(),
        };
        let now = Timestamp::from_second(1_767_225_600).unwrap();
        let mut sim = Sim {
            rng,
            now,
            central,
            disk: Disk { next_seq: 1, ..Disk::default() },
            edge: None,
            effects: VecDeque::new(),
            config,
            partitioned: false,
            to_central: Vec::new(),
            to_edge: Vec::new(),
            ops: Vec::new(),
            residents,
            contacts,
            packages: vec![
                StampPackageRecord { id: PackageId(1), stamps: 1, price_cents: 50 },
                StampPackageRecord { id: PackageId(5), stamps: 5, price_cents: 200 },
                StampPackageRecord { id: PackageId(10), stamps: 10, price_cents: 350 },
            ],
            stats: Stats::default(),
            op_counter: 0,
        };
        // The edge starts having synced once.
        sim.sync();
        sim.start_edge();
        sim
    }

    fn start_edge(&mut self) {
        let ledger = Ledger::restore(
            self.disk.cursor,
            self.disk.confirmed.clone(),
            self.disk.ledger.values().cloned(),
        );
        let mut config = self.config.clone();
        config.seed = self.rng.gen();
        let outbox = Outbox::restore(config, self.now, self.disk.rows.values().cloned());
        self.edge = Some((outbox, ledger));
        self.collect_outputs();
    }

    fn crash(&mut self) {
        self.stats.crashes += 1;
        self.edge = None;
        self.effects.clear();
    }

    fn collect_outputs(&mut self) {
        if let Some((outbox, _)) = &mut self.edge {
            while let Some(output) = outbox.poll() {
                self.effects.push_back(output);
            }
        }
    }

    fn handle(&mut self, input: Input) -> Fail {
        let now = self.now;
        if let Some((outbox, _)) = &mut self.edge {
            // Only Withdraw can be refused, and the simulator only withdraws
            // parked items.
            outbox.handle(now, input).map_err(|e| format!("outbox refused an input: {e}"))?;
            // A wake-up time already past would make the shell spin.
            if let Some(due) = outbox.poll_timeout() {
                ensure!(due > now, "poll_timeout {due} is not after now {now}");
            }
        }
        self.collect_outputs();
        Ok(())
    }

    fn new_key(&mut self) -> IdempotencyKey {
        IdempotencyKey::from_u128(self.rng.gen())
    }

    fn next_tag(&mut self) -> String {
        self.op_counter += 1;
        format!("op{}", self.op_counter)
    }

    /// A tablet asks for something. The shell decides with the ledger, commits
    /// the item and its entry in one transaction, answers the tablet, and
    /// hands the item to the outbox (a crash may fall in between each).
    fn tablet(&mut self) -> Fail {
        let Some((_, ledger)) = &mut self.edge else { return Ok(()) };
        let contact = self.contacts[self.rng.gen_range(0..self.contacts.len())];
        let resident = resident_of(contact, &self.residents);
        let key = IdempotencyKey::from_u128(self.rng.gen());
        let roll = self.rng.gen_range(0..100);
        let (body, entry) = if roll < 30 {
            let package = self.packages[self.rng.gen_range(0..self.packages.len())].clone();
            let available = ledger.debit_available(&resident);
            match ledger.buy(&resident, contact, &package, key) {
                Ok(entry) => {
                    ensure!(
                        package.price_cents <= available,
                        "bought {} with {available} available",
                        package.price_cents
                    );
                    self.op_counter += 1;
                    let body = OutboxBody::BuyStamps(StampPurchase {
                        resident: resident.clone(),
                        contact,
                        package: package.id,
                        stamps: package.stamps,
                        price_cents: package.price_cents,
                        // Unique per op, so central can count applications by content.
                        bought_at: Timestamp::from_second(1_000_000 + self.op_counter as i64).unwrap(),
                    });
                    (body, Some(entry))
                }
                Err(MessagingError::InsufficientFunds { available_cents, price_cents }) => {
                    ensure!(
                        price_cents > available_cents,
                        "refused {price_cents} with {available_cents} available"
                    );
                    return Ok(());
                }
                Err(e) => return Err(format!("unexpected purchase error {e}")),
            }
        } else if roll < 80 {
            let available = ledger.stamps(&resident, contact).available;
            match ledger.spend(&resident, contact, key) {
                Ok(entry) => {
                    ensure!(available >= 1, "spent a stamp with none available");
                    let funded_by = match &entry.kind {
                        edge_core::ledger::EntryKind::Spend { funding } => funding.funded_by(),
                        other => return Err(format!("spend returned {other:?}")),
                    };
                    let subject = self.next_tag();
                    let message = Message {
                        id: MessageId::from_u128(self.rng.gen()),
                        resident: resident.clone(),
                        contact,
                        direction: Direction::ResidentToContact,
                        subject,
                        body: "hello".into(),
                        attachments: Vec::new(),
                        sent_at: self.now,
                    };
                    (OutboxBody::SendMessage { message, funded_by }, Some(entry))
                }
                Err(MessagingError::NoStamps { .. }) => {
                    ensure!(available == 0, "no stamps refused with {available} available");
                    return Ok(());
                }
                Err(e) => return Err(format!("unexpected spend error {e}")),
            }
        } else if roll < 92 {
            let tag = self.next_tag();
            let cdr = CallDetailRecord {
                resident: resident.clone(),
                contact,
                kind: CallKind::Voice,
                number: tag,
                started_at: self.now,
                connected_secs: 60,
                charged_cents: 0,
            };
            (OutboxBody::CallRecord(cdr), None)
        } else {
            let tag = self.next_tag();
            let audit = AuditRecord {
                seq: self.op_counter,
                at: self.now,
                actor: "staff".into(),
                action: "lockdown".into(),
                detail: tag,
                prev_hash: [0; 32],
                hash: [1; 32],
            };
            (OutboxBody::Audit(audit), None)
        };
        // Crash after the ledger reserved but before the commit: the tablet
        // was never told yes, and the reservation dies with the process.
        if self.rng.gen_bool(0.02) {
            self.crash();
            return Ok(());
        }
        let seq = self.disk.next_seq;
        self.disk.next_seq += 1;
        let item = OutboxItem { key, created_at: self.now, body: body.clone() };
        self.disk.rows.insert(seq, StoredItem { seq, item: item.clone(), parked: None });
        self.disk.key_to_seq.insert(key, seq);
        if let Some(entry) = entry {
            self.disk.ledger.insert(entry.key, entry);
        }
        self.ops.push(Op { key, seq, body, withdrawn: false });
        // Crash between the commit and the outbox hearing of it.
        if self.rng.gen_bool(0.03) {
            self.crash();
            return Ok(());
        }
        self.handle(Input::Enqueue { seq, item })
    }

    /// Carries out the next output as one durable step.
    fn effect(&mut self) -> Fail {
        let Some(output) = self.effects.pop_front() else { return Ok(()) };
        let Some((_, ledger)) = &mut self.edge else { return Ok(()) };
        match output {
            Output::Transmit { batch, items } => {
                if self.partitioned {
                    if self.rng.gen_bool(0.5) {
                        return self.handle(Input::DeliveryFailed { batch });
                    }
                    // Otherwise silence: the ack timeout will notice.
                } else {
                    self.to_central.push((batch, items));
                }
            }
            Output::Remove { key, outcome } => {
                let updates = ledger.settle(&key, &outcome);
                let seq = self.disk.key_to_seq.get(&key).copied().ok_or("remove of an unknown key")?;
                ensure!(self.disk.rows.remove(&seq).is_some(), "remove of a row already gone: {key}");
                self.disk.write_ledger(updates);
            }
            Output::Park { key, reason } => {
                let updates = match &reason {
                    ParkReason::Refused(r) => {
                        ledger.settle(&key, &DeliveryOutcome::Refused { reason: r.clone(), permanent: true })
                    }
                    ParkReason::PaymentFailed { .. } => Vec::new(),
                };
                let seq = self.disk.key_to_seq.get(&key).copied().ok_or("park of an unknown key")?;
                let row = self
                    .disk
                    .rows
                    .get_mut(&seq)
                    .ok_or_else(|| format!("park of a row already gone: {key}"))?;
                row.parked = Some(reason);
                self.disk.write_ledger(updates);
            }
            Output::Withdrawn { key } => {
                let seq = self.disk.key_to_seq.get(&key).copied().ok_or("withdraw of an unknown key")?;
                self.disk.rows.remove(&seq);
                if ledger.dismiss(&key).is_some() {
                    self.disk.ledger.remove(&key);
                }
            }
        }
        Ok(())
    }

    fn sync(&mut self) {
        let figures = self.central.figures();
        let cursor = self.central.feed_seq;
        // Durable first (the store applies the page and its cursor in one
        // transaction), then the ledger hears of it.
        self.disk.confirmed = figures.clone();
        self.disk.cursor = self.disk.cursor.max(cursor);
        if let Some((_, ledger)) = &mut self.edge {
            let updates = ledger.apply_sync(cursor, figures);
            self.disk.write_ledger(updates);
        }
    }

    fn network_to_central(&mut self) {
        if self.to_central.is_empty() {
            return;
        }
        let i = self.rng.gen_range(0..self.to_central.len());
        let (batch, items) = if self.rng.gen_bool(0.1) {
            self.to_central[i].clone() // delivered, and a copy stays in the network
        } else {
            self.to_central.swap_remove(i)
        };
        if self.partitioned && self.rng.gen_bool(0.7) {
            return; // lost
        }
        let acks = self.central.deliver(&items, &self.disk.key_to_seq, &mut self.rng);
        self.to_edge.push((batch, acks));
    }

    fn network_to_edge(&mut self) -> Fail {
        if self.to_edge.is_empty() {
            return Ok(());
        }
        let i = self.rng.gen_range(0..self.to_edge.len());
        let (batch, acks) =
            if self.rng.gen_bool(0.1) { self.to_edge[i].clone() } else { self.to_edge.swap_remove(i) };
        if self.partitioned && self.rng.gen_bool(0.7) {
            return Ok(());
        }
        // Answers meant for an edge process that has since crashed still
        // arrive; batch ids restart after a crash, so they may even match a
        // new batch. Acks are facts about keys, so that must be harmless.
        self.handle(Input::Delivered { batch, acks })
    }

    fn advance_clock(&mut self) -> Fail {
        let roll = self.rng.gen_range(0..100);
        let step = if roll < 2 {
            SignedDuration::from_hours(self.rng.gen_range(1..48))
        } else if roll < 4 {
            self.stats.backward_jumps += 1;
            -SignedDuration::from_mins(self.rng.gen_range(1..120))
        } else {
            SignedDuration::from_millis(self.rng.gen_range(0..4000))
        };
        self.now = self.now.checked_add(step).map_err(|e| e.to_string())?;
        let due = self.edge.as_ref().and_then(|(o, _)| o.poll_timeout()).is_some_and(|t| t <= self.now);
        if due {
            self.handle(Input::Tick)?;
        }
        Ok(())
    }

    fn withdraw_one_parked(&mut self) -> Fail {
        let Some((outbox, _)) = &self.edge else { return Ok(()) };
        let parked: Vec<IdempotencyKey> = outbox.parked().map(|(item, _)| item.key).collect();
        if parked.is_empty() {
            return Ok(());
        }
        let key = parked[self.rng.gen_range(0..parked.len())];
        if let Some(op) = self.ops.iter_mut().find(|op| op.key == key) {
            op.withdrawn = true;
        }
        self.handle(Input::Withdraw { key })
    }

    fn step(&mut self) -> Fail {
        let roll = self.rng.gen_range(0..1000);
        match roll {
            0..=149 => self.tablet()?,
            150..=399 => self.effect()?,
            400..=529 => self.network_to_central(),
            530..=659 => self.network_to_edge()?,
            660..=859 => self.advance_clock()?,
            860..=899 => {
                if !self.partitioned {
                    self.sync();
                }
            }
            900..=929 => {
                if self.edge.is_some() {
                    self.crash();
                } else {
                    self.start_edge();
                }
            }
            930..=949 => {
                self.partitioned = !self.partitioned;
                if !self.partitioned {
                    self.handle(Input::UplinkUp)?;
                }
            }
            950..=964 => {
                // Spending at commissary, or a deposit from family.
                let r = self.residents[self.rng.gen_range(0..self.residents.len())].clone();
                let delta = if self.central.outside_spending && self.rng.gen_bool(0.6) {
                    -self.rng.gen_range(0..800)
                } else {
                    self.rng.gen_range(0..500)
                };
                let balance = self.central.balance.entry(r).or_default();
                *balance = (*balance + delta).max(0);
                self.central.feed_seq += 1;
            }
            965..=974 => self.withdraw_one_parked()?,
            _ => {
                if self.edge.is_none() {
                    self.start_edge();
                }
            }
        }
        self.check_step()
    }

    /// Invariants that hold at every instant.
    fn check_step(&self) -> Fail {
        if let Some(v) = self.central.violations.first() {
            return Err(format!("central saw a violation: {v}"));
        }
        for (r, b) in &self.central.balance {
            ensure!(*b >= 0, "central balance of {r} is {b}");
        }
        for (key, n) in &self.central.applied {
            ensure!(*n == 1, "key {key} applied {n} times");
        }
        for (tag, n) in &self.central.applied_ops {
            ensure!(*n == 1, "op {tag} applied {n} times");
        }
        // Nothing lost: everything a tablet was told is queued is on disk,
        // or central has applied it, or the resident withdrew it while parked.
        for op in &self.ops {
            let on_disk = self.disk.rows.contains_key(&op.seq);
            let applied = self.central.applied.contains_key(&op.key);
            ensure!(on_disk || applied || op.withdrawn, "op {} ({:?}) was lost", op.key, op.body);
        }
        if let Some((_, ledger)) = &self.edge {
            for r in &self.residents {
                let available = ledger.debit_available(r);
                // Never more than central holds minus what is still on its
                // way there (less is allowed: a debit whose ack was lost
                // counts twice until the resend is answered).
                let truth = self.central.balance.get(r).copied().unwrap_or(0);
                let queued: i64 = self
                    .ops
                    .iter()
                    .filter(|op| self.disk.rows.get(&op.seq).is_some_and(|row| row.parked.is_none()))
                    .filter_map(|op| match &op.body {
                        OutboxBody::BuyStamps(p)
                            if &p.resident == r && !self.central.verdicts.contains_key(&op.key) =>
                        {
                            Some(p.price_cents)
                        }
                        _ => None,
                    })
                    .sum();
                ensure!(
                    available <= truth - queued || !self.disk.confirmed_is_current(&self.central),
                    "ledger shows {available} for {r}, central holds {truth} with {queued} not yet applied"
                );
            }
        }
        Ok(())
    }

    /// Heals everything and runs until the outbox is drained.
    fn quiesce(&mut self) -> Fail {
        self.partitioned = false;
        if self.edge.is_none() {
            self.start_edge();
        }
        self.handle(Input::UplinkUp)?;
        for _ in 0..QUIESCE_STEPS {
            let live = self.edge.as_ref().map_or(0, |(o, _)| o.live_len());
            if live == 0 && self.effects.is_empty() && self.to_central.is_empty() && self.to_edge.is_empty() {
                self.sync();
                return Ok(());
            }
            match self.rng.gen_range(0..4) {
                0 => self.effect()?,
                1 => self.network_to_central(),
                2 => self.network_to_edge()?,
                _ => {
                    self.now =
                        self.now.checked_add(SignedDuration::from_secs(1)).map_err(|e| e.to_string())?;
                    self.handle(Input::Tick)?;
                }
            }
            self.check_step()?;
        }
        Err(format!(
            "the outbox did not drain: {} live items",
            self.edge.as_ref().map_or(0, |(o, _)| o.live_len())
        ))
    }

    /// After the drain: every op is explained by central's verdicts, and the
    /// ledger agrees with central.
    fn check_end(&mut self) -> Fail {
        let Some((outbox, ledger)) = &self.edge else { return Err("edge down at the end".into()) };
        for op in &self.ops {
            let applied = self.central.applied.get(&op.key).copied().unwrap_or(0);
            let row = self.disk.rows.get(&op.seq);
            let verdict = self.central.verdicts.get(&op.key).map(|v| &v.outcome);
            match (applied, row.and_then(|r| r.parked.clone())) {
                (1, None) => {
                    ensure!(row.is_none(), "op {} applied but still on disk", op.key);
                    self.stats.applied += 1;
                }
                (0, Some(ParkReason::Refused(reason))) => {
                    ensure!(
                        verdict == Some(&DeliveryOutcome::Refused { reason: reason.clone(), permanent: true }),
                        "op {} parked as {reason:?} but central said {verdict:?}",
                        op.key
                    );
                    self.stats.parked += 1;
                }
                (0, Some(ParkReason::PaymentFailed { purchase, reason })) => {
                    let funded_by = match &op.body {
                        OutboxBody::SendMessage { funded_by, .. } => *funded_by,
                        _ => None,
                    };
                    ensure!(funded_by == Some(purchase), "op {} payment-failed on a purchase that did not pay for it", op.key);
                    let purchase_verdict = self.central.verdicts.get(&purchase).map(|v| &v.outcome);
                    ensure!(
                        purchase_verdict == Some(&DeliveryOutcome::Refused { reason: reason.clone(), permanent: true }),
                        "op {} payment-failed ({reason:?}) but central said {purchase_verdict:?} of the purchase",
                        op.key
                    );
                    ensure!(verdict.is_none(), "a payment-failed message reached central");
                    match ledger.entry(&op.key).map(|e| &e.state) {
                        Some(EntryState::PaymentFailed { .. }) => {}
                        other => return Err(format!("payment-failed message {} has ledger state {other:?}", op.key)),
                    }
                    self.stats.payment_failed += 1;
                }
                (0, None) if op.withdrawn => {
                    ensure!(row.is_none(), "withdrawn op {} still on disk", op.key);
                    ensure!(
                        !matches!(verdict, Some(DeliveryOutcome::Accepted { .. })),
                        "withdrawn op {} was applied",
                        op.key
                    );
                }
                (n, parked) => {
                    return Err(format!(
                        "op {} ({:?}) unexplained: applied {n} times, parked {parked:?}, verdict {verdict:?}, row {:?}",
                        op.key,
                        op.body,
                        row.is_some()
                    ))
                }
            }
            if let Some(status) = outbox.status(&op.key) {
                ensure!(
                    matches!(status, edge_core::outbox::ItemStatus::Parked(_)),
                    "op {} still {status:?} after the drain",
                    op.key
                );
            }
        }
        for r in &self.residents {
            let truth = self.central.balance.get(r).copied().unwrap_or(0);
            let available = ledger.debit_available(r);
            ensure!(
                available == truth,
                "after the drain the ledger shows {available} for {r}, central {truth}"
            );
        }
        for c in &self.contacts {
            let r = resident_of(*c, &self.residents);
            let truth = self.central.stamps.get(&(r.clone(), *c)).copied().unwrap_or(0);
            let view = ledger.stamps(&r, *c);
            ensure!(
                view.available == truth,
                "after the drain the ledger shows {} stamps for {r}/{c}, central {truth}",
                view.available
            );
            ensure!(view.awaiting_payment == 0, "stamps still awaiting payment after the drain");
        }
        for entry in ledger.entries() {
            ensure!(
                matches!(entry.state, EntryState::PaymentFailed { .. }),
                "ledger entry {entry:?} left after the drain"
            );
        }
        self.stats.duplicates_answered = self.central.duplicates_answered;
        self.stats.purchases_refused_for_funds = self.central.refused_for_funds;
        Ok(())
    }
}

impl Disk {
    /// Whether the store's confirmed figures are central's current ones.
    fn confirmed_is_current(&self, central: &Central) -> bool {
        self.cursor == central.feed_seq
    }
}

fn run_seed(seed: u64) -> Result<Stats, String> {
    let mut sim = Sim::new(seed);
    for step in 0..STEPS {
        sim.step().map_err(|e| format!("step {step}: {e}"))?;
    }
    sim.quiesce()?;
    sim.check_end()?;
    let _ = sim.new_key();
    Ok(sim.stats)
}
