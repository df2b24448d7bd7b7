//! Deterministic simulation of the downlink sync, for tests.
//!
//! Owns: a model of central's compacted change feed (sequence numbers,
//! tombstones, compaction, cursor expiry), a lossy network (drops, transport
//! failures, delays, duplicated answers), uplink flaps and crashes that rebuild
//! [`SyncCore`] from whatever the replica persisted, all driven by one seeded
//! generator. After the chaos the network heals and the run checks that the
//! replica holds exactly central's live entities.
//!
//! The replica is pluggable ([`Replica`]): [`ModelReplica`] mirrors the store's
//! rules in memory; the edge agent's tests plug in its SQLite store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use proto::central::{CentralError, CentralToEdge, Change, ChangeBatch, EdgeToCentral, Entity, EntityKey};
use proto::domain::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{ApplyMode, SyncConfig, SyncCore, SyncEvent, SyncInput, SyncOutput};

/// What a replica persisted, to rebuild the core after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persisted {
    pub cursor: u64,
    pub resync_in_progress: bool,
    pub last_success: Option<Timestamp>,
}

/// Where the edge keeps synced data: the store, or a model of it.
pub trait Replica {
    /// Applies a batch atomically with its cursor, or changes nothing.
    fn apply(&mut self, batch: &ChangeBatch, mode: ApplyMode, now: Timestamp) -> Result<(), String>;
    fn record_success(&mut self, now: Timestamp) -> Result<(), String>;
    fn persisted(&self) -> Result<Persisted, String>;
    fn entities(&self) -> Result<Vec<Entity>, String>;
    /// A power cut: drop anything not committed (nothing, for most replicas).
    fn crash(&mut self) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum FeedKey {
    Facility,
    Entity(EntityKey),
}

fn feed_key(entity: &Entity) -> FeedKey {
    entity.key().map_or(FeedKey::Facility, FeedKey::Entity)
}

/// Central's side of the change feed.
#[derive(Debug, Clone)]
pub struct CentralFeed {
    facility: FacilityId,
    head: u64,
    seq_of: HashMap<FeedKey, u64>,
    /// seq -> the entity's latest state (`None`: tombstone).
    log: BTreeMap<u64, (FeedKey, Option<Entity>)>,
    /// Tombstones up to here were purged; older cursors are expired.
    compacted_through: u64,
}

impl CentralFeed {
    pub fn new(facility: FacilityId) -> Self {
        Self { facility, head: 0, seq_of: HashMap::new(), log: BTreeMap::new(), compacted_through: 0 }
    }

    pub fn head(&self) -> u64 {
        self.head
    }

    fn record(&mut self, key: FeedKey, entity: Option<Entity>) {
        if let Some(old) = self.seq_of.remove(&key) {
            self.log.remove(&old);
        }
        self.head += 1;
        self.seq_of.insert(key.clone(), self.head);
        self.log.insert(self.head, (key, entity));
    }

    pub fn upsert(&mut self, entity: Entity) {
        self.record(feed_key(&entity), Some(entity));
    }

    pub fn delete(&mut self, key: EntityKey) {
        self.record(FeedKey::Entity(key), None);
    }

    /// Purges tombstones with sequence numbers up to `through`.
    pub fn compact(&mut self, through: u64) {
        let through = through.min(self.head);
        let purged: Vec<u64> = self
            .log
            .range(..=through)
            .filter(|(_, (_, entity))| entity.is_none())
            .map(|(seq, _)| *seq)
            .collect();
        for seq in purged {
            if let Some((key, _)) = self.log.remove(&seq) {
                self.seq_of.remove(&key);
            }
        }
        self.compacted_through = self.compacted_through.max(through);
    }

    pub fn answer(&self, request: &EdgeToCentral) -> CentralToEdge {
        match request {
            EdgeToCentral::Hello { facility, .. } if *facility == self.facility => {
                CentralToEdge::Welcome { facility: facility.clone(), head_cursor: self.head, release: None }
            }
            EdgeToCentral::Hello { facility, .. } => {
                CentralToEdge::Error(CentralError::UnknownFacility(facility.clone()))
            }
            EdgeToCentral::Deliver { .. } => {
                CentralToEdge::Error(CentralError::Malformed("the feed model takes no deliveries".into()))
            }
            EdgeToCentral::FetchRelease { version, .. } => {
                CentralToEdge::Error(CentralError::UnknownRelease(version.clone()))
            }
            EdgeToCentral::FetchMedia { media, .. } => {
                CentralToEdge::Error(CentralError::UnknownMedia(*media))
            }
            EdgeToCentral::RingContact { .. }
            | EdgeToCentral::CallStatus { .. }
            | EdgeToCentral::EndCall { .. }
            | EdgeToCentral::WarnCall { .. } => {
                CentralToEdge::Error(CentralError::Malformed("the feed model takes no calls".into()))
            }
            EdgeToCentral::Changes { facility, .. } if *facility != self.facility => {
                CentralToEdge::Error(CentralError::UnknownFacility(facility.clone()))
            }
            EdgeToCentral::Changes { since, limit, resync_floor, .. } => {
                if *since != 0 && self.compacted_through > (*since).max(*resync_floor) {
                    return CentralToEdge::CursorExpired {
                        since: *since,
                        oldest_valid: self.compacted_through,
                    };
                }
                let limit = usize::try_from(*limit).unwrap_or(usize::MAX);
                let mut pending = self.log.range(since.saturating_add(1)..);
                let mut changes = Vec::new();
                let mut next_cursor = *since;
                for (seq, (key, entity)) in pending.by_ref().take(limit) {
                    next_cursor = *seq;
                    changes.push(match (entity, key) {
                        (Some(entity), _) => Change::Upsert(entity.clone()),
                        (None, FeedKey::Entity(key)) => Change::Delete(key.clone()),
                        // The facility is never deleted; nothing records a
                        // tombstone for it.
                        (None, FeedKey::Facility) => continue,
                    });
                }
                CentralToEdge::Changes(ChangeBatch {
                    since: *since,
                    changes,
                    next_cursor,
                    more: pending.next().is_some(),
                })
            }
        }
    }

    /// Live entities (tombstones excluded), in sequence order.
    pub fn live(&self) -> Vec<Entity> {
        self.log.values().filter_map(|(_, e)| e.clone()).collect()
    }

    fn live_keys(&self) -> Vec<EntityKey> {
        self.log
            .values()
            .filter_map(|(key, e)| match (key, e) {
                (FeedKey::Entity(k), Some(_)) => Some(k.clone()),
                _ => None,
            })
            .collect()
    }
}

/// An in-memory replica with the store's rules: stale pages refused, resync
/// generations, sweep on the final resync page.
#[derive(Debug, Clone, Default)]
pub struct ModelReplica {
    cursor: u64,
    last_success: Option<Timestamp>,
    generation: u64,
    resync_generation: Option<u64>,
    rows: HashMap<FeedKey, (Entity, u64)>,
}

impl Replica for ModelReplica {
    fn apply(&mut self, batch: &ChangeBatch, mode: ApplyMode, now: Timestamp) -> Result<(), String> {
        if batch.next_cursor < batch.since {
            return Err("cursor regression".into());
        }
        let mut next = self.clone();
        let generation = match (mode, self.resync_generation) {
            (ApplyMode::Resync, marker) if batch.since == 0 => {
                let generation = self.generation.max(marker.unwrap_or(0)) + 1;
                next.resync_generation = Some(generation);
                generation
            }
            (ApplyMode::Resync, Some(generation)) if batch.since == self.cursor => generation,
            (ApplyMode::Normal, None) if batch.since == self.cursor => self.generation,
            _ => {
                return Err(format!(
                    "refused {mode:?} page from {} (cursor {}, resync {:?})",
                    batch.since, self.cursor, self.resync_generation
                ))
            }
        };
        for change in &batch.changes {
            match change {
                Change::Upsert(entity) => {
                    next.rows.insert(feed_key(entity), (entity.clone(), generation));
                }
                Change::Delete(key) => {
                    next.rows.remove(&FeedKey::Entity(key.clone()));
                }
            }
        }
        if mode == ApplyMode::Resync && !batch.more {
            next.rows.retain(|key, (_, gen)| *key == FeedKey::Facility || *gen >= generation);
            next.generation = generation;
            next.resync_generation = None;
        }
        next.cursor = batch.next_cursor;
        next.last_success = Some(now);
        *self = next;
        Ok(())
    }

    fn record_success(&mut self, now: Timestamp) -> Result<(), String> {
        self.last_success = Some(now);
        Ok(())
    }

    fn persisted(&self) -> Result<Persisted, String> {
        Ok(Persisted {
            cursor: self.cursor,
            resync_in_progress: self.resync_generation.is_some(),
            last_success: self.last_success,
        })
    }

    fn entities(&self) -> Result<Vec<Entity>, String> {
        Ok(self.rows.values().map(|(e, _)| e.clone()).collect())
    }
}

/// Knobs of one simulated run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Entities central holds before the edge first connects.
    pub initial_entities: usize,
    /// Events (mutations, flaps, deliveries, crashes) before the network heals.
    pub chaos_steps: u32,
    /// Bound on steps after healing; not converging by then fails the run.
    pub max_heal_steps: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self { initial_entities: 60, chaos_steps: 400, max_heal_steps: 20_000 }
    }
}

/// Counters, so tests can check that the runs exercised what they claim to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    pub pages_applied: u64,
    pub resyncs_started: u64,
    pub resyncs_completed: u64,
    pub crashes: u64,
    pub dropped_requests: u64,
    pub failed_requests: u64,
    pub injected_apply_failures: u64,
    pub ignored: u64,
    pub uplink_flaps: u64,
}

impl SimStats {
    pub fn add(&mut self, other: &SimStats) {
        self.pages_applied += other.pages_applied;
        self.resyncs_started += other.resyncs_started;
        self.resyncs_completed += other.resyncs_completed;
        self.crashes += other.crashes;
        self.dropped_requests += other.dropped_requests;
        self.failed_requests += other.failed_requests;
        self.injected_apply_failures += other.injected_apply_failures;
        self.ignored += other.ignored;
        self.uplink_flaps += other.uplink_flaps;
    }
}

enum Delivery {
    Answer(EdgeToCentral),
    Fail,
}

struct World<'r, R: Replica> {
    rng: StdRng,
    seed: u64,
    now: Timestamp,
    central: CentralFeed,
    replica: &'r mut R,
    core: SyncCore,
    config: SyncConfig,
    network: Vec<(Timestamp, Delivery)>,
    uplink: bool,
    chaos: bool,
    caught_up: bool,
    stats: SimStats,
    version: u64,
}

const FACILITY: &str = "sim-facility";

/// Runs one seed; `Err` describes the divergence (and names the seed).
pub fn run<R: Replica>(seed: u64, replica: &mut R, sim: &SimConfig) -> Result<SimStats, String> {
    run_inner(seed, replica, sim).map_err(|e| format!("seed {seed}: {e}"))
}

fn run_inner<R: Replica>(seed: u64, replica: &mut R, sim: &SimConfig) -> Result<SimStats, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let config = SyncConfig {
        poll_interval: Duration::from_millis(rng.gen_range(200..3000)),
        page_limit: rng.gen_range(1..25),
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(5),
        request_timeout: Duration::from_secs(3),
        jitter_seed: seed,
    };
    let mut central = CentralFeed::new(FacilityId::new(FACILITY));
    let mut version = 0;
    central.upsert(Entity::Facility(FacilityRecord::with_defaults(
        FacilityId::new(FACILITY),
        "Sim",
        "America/Los_Angeles",
    )));
    for _ in 0..sim.initial_entities {
        version += 1;
        central.upsert(random_entity(&mut rng, version));
    }
    let core = rebuild_core(replica, &config)?;
    let mut world = World {
        rng,
        seed,
        now: Timestamp::constant(1_704_067_200, 0),
        central,
        replica,
        core,
        config,
        network: Vec::new(),
        uplink: false,
        chaos: true,
        caught_up: false,
        stats: SimStats::default(),
        version,
    };
    world.set_uplink(true)?;
    for _ in 0..sim.chaos_steps {
        world.chaos_step()?;
    }
    world.chaos = false;
    world.caught_up = false;
    world.set_uplink(true)?;
    for _ in 0..sim.max_heal_steps {
        world.advance()?;
        if world.caught_up {
            return world.check_converged();
        }
    }
    Err(format!(
        "no convergence within {} steps after healing (central head {}, now {}): {:?}",
        sim.max_heal_steps,
        world.central.head(),
        world.now,
        world.core
    ))
}

fn rebuild_core<R: Replica>(replica: &R, config: &SyncConfig) -> Result<SyncCore, String> {
    let p = replica.persisted()?;
    Ok(SyncCore::new(
        FacilityId::new(FACILITY),
        p.cursor,
        p.resync_in_progress,
        p.last_success,
        config.clone(),
    ))
}

impl<R: Replica> World<'_, R> {
    fn chance(&mut self, p: f64) -> bool {
        self.chaos && self.rng.gen_bool(p)
    }

    fn chaos_step(&mut self) -> Result<(), String> {
        if self.rng.gen_bool(0.3) {
            for _ in 0..self.rng.gen_range(1..6) {
                self.mutate_central();
            }
        }
        if self.rng.gen_bool(0.04) {
            let head = self.central.head();
            let through = self.rng.gen_range(0..=head);
            self.central.compact(through);
        }
        if self.rng.gen_bool(0.04) {
            self.stats.uplink_flaps += 1;
            let up = !self.uplink;
            self.set_uplink(up)?;
        }
        if self.rng.gen_bool(0.02) {
            self.crash()?;
        }
        self.advance()
    }

    fn mutate_central(&mut self) {
        let live = self.central.live_keys();
        if !live.is_empty() && self.rng.gen_bool(0.3) {
            let key = live[self.rng.gen_range(0..live.len())].clone();
            self.central.delete(key);
        } else if self.rng.gen_bool(0.05) {
            self.version += 1;
            let mut facility =
                FacilityRecord::with_defaults(FacilityId::new(FACILITY), "Sim", "America/Los_Angeles");
            facility.name = format!("Sim v{}", self.version);
            self.central.upsert(Entity::Facility(facility));
        } else {
            self.version += 1;
            let entity = random_entity(&mut self.rng, self.version);
            self.central.upsert(entity);
        }
    }

    fn set_uplink(&mut self, up: bool) -> Result<(), String> {
        self.uplink = up;
        if !up {
            // The connection is gone, and every stream on it.
            self.network.clear();
        }
        let input = if up { SyncInput::UplinkUp } else { SyncInput::UplinkDown };
        self.handle(input)
    }

    fn crash(&mut self) -> Result<(), String> {
        self.stats.crashes += 1;
        self.replica.crash()?;
        self.core = rebuild_core(self.replica, &self.config)?;
        // Some answers to the dead process's requests still turn up.
        let keep_strays = self.rng.gen_bool(0.5);
        if !keep_strays {
            self.network.clear();
        }
        if self.uplink {
            self.handle(SyncInput::UplinkUp)?;
        }
        Ok(())
    }

    /// Moves time to the next network delivery or core wake-up (during chaos,
    /// sometimes earlier), delivers what is due and ticks the core.
    fn advance(&mut self) -> Result<(), String> {
        let next_delivery = self.network.iter().map(|(at, _)| *at).min();
        let mut next = match (next_delivery, self.core.next_wakeup()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.chaos {
            let idle = self.now + Duration::from_millis(self.rng.gen_range(1..4000));
            next = Some(next.map_or(idle, |n| n.min(idle)));
        }
        let Some(next) = next else {
            return Err(format!(
                "nothing left to wait for: uplink {}, cursor {}",
                self.uplink,
                self.core.cursor()
            ));
        };
        self.now = self.now.max(next);
        let now = self.now;
        let mut due = Vec::new();
        let mut index = 0;
        while index < self.network.len() {
            if self.network[index].0 <= now {
                due.push(self.network.remove(index).1);
            } else {
                index += 1;
            }
        }
        for delivery in due {
            let input = match delivery {
                Delivery::Answer(request) => SyncInput::Response(self.central.answer(&request)),
                Delivery::Fail => SyncInput::RequestFailed { error: "connection reset".into() },
            };
            self.handle(input)?;
        }
        self.handle(SyncInput::Tick)
    }

    fn handle(&mut self, input: SyncInput) -> Result<(), String> {
        self.core.handle(self.now, input);
        self.pump()
    }

    fn pump(&mut self) -> Result<(), String> {
        while let Some(output) = self.core.poll() {
            match output {
                SyncOutput::Send(request) => {
                    if !self.uplink {
                        return Err("sent a request with the uplink down".into());
                    }
                    let delay = Duration::from_millis(self.rng.gen_range(1..800));
                    if self.chance(0.1) {
                        self.stats.dropped_requests += 1;
                    } else if self.chance(0.1) {
                        self.stats.failed_requests += 1;
                        self.network.push((self.now + delay, Delivery::Fail));
                    } else {
                        if self.chance(0.05) {
                            let later = delay + Duration::from_millis(self.rng.gen_range(1..2000));
                            self.network.push((self.now + later, Delivery::Answer(request.clone())));
                        }
                        self.network.push((self.now + delay, Delivery::Answer(request)));
                    }
                }
                SyncOutput::Apply { batch, mode } => {
                    if self.chance(0.03) {
                        return self.crash();
                    }
                    if self.chance(0.04) {
                        self.stats.injected_apply_failures += 1;
                        self.core.handle(
                            self.now,
                            SyncInput::ApplyFailed { error: "disk I/O error (injected)".into() },
                        );
                        continue;
                    }
                    self.replica
                        .apply(&batch, mode, self.now)
                        .map_err(|e| format!("replica refused a page the core asked for: {e}"))?;
                    self.stats.pages_applied += 1;
                    if self.chance(0.03) {
                        return self.crash();
                    }
                    self.core.handle(self.now, SyncInput::Applied { next_cursor: batch.next_cursor });
                }
                SyncOutput::RecordSuccess { at } => {
                    self.replica.record_success(at)?;
                    if !self.chaos {
                        self.caught_up = true;
                    }
                }
                SyncOutput::WakeAt(_) => {}
                SyncOutput::Event(event) => match event {
                    SyncEvent::ResyncStarted { .. } => self.stats.resyncs_started += 1,
                    SyncEvent::ResyncCompleted { .. } => self.stats.resyncs_completed += 1,
                    SyncEvent::Ignored { .. } => self.stats.ignored += 1,
                    SyncEvent::BackingOff { .. } => {}
                },
            }
        }
        Ok(())
    }

    fn check_converged(&self) -> Result<SimStats, String> {
        if self.core.resync_in_progress() {
            return Err("caught up while still resyncing".into());
        }
        let edge = self.replica.entities()?;
        let central = self.central.live();
        let render =
            |entities: &[Entity]| -> BTreeSet<String> { entities.iter().map(|e| format!("{e:?}")).collect() };
        let (edge, central) = (render(&edge), render(&central));
        if edge == central {
            let persisted = self.replica.persisted()?;
            if persisted.last_success != Some(self.now) {
                return Err(format!(
                    "last success persisted as {:?}, expected {}",
                    persisted.last_success, self.now
                ));
            }
            return Ok(self.stats.clone());
        }
        let missing: Vec<_> = central.difference(&edge).take(3).collect();
        let extra: Vec<_> = edge.difference(&central).take(3).collect();
        Err(format!("edge diverged from central (seed {}): missing {missing:?}, extra {extra:?}", self.seed))
    }
}

/// An entity from a small key space, so updates, deletes and re-creations of
/// the same key are frequent. `version` makes each write distinguishable.
pub fn random_entity(rng: &mut StdRng, version: u64) -> Entity {
    let resident = |rng: &mut StdRng| ResidentId(format!("R{}", rng.gen_range(0..12)));
    let number = |rng: &mut StdRng| format!("+1555000{:04}", rng.gen_range(0..20));
    match rng.gen_range(0..8) {
        0 => Entity::Unit(HousingUnitRecord {
            id: UnitId(format!("U{}", rng.gen_range(0..4))),
            name: format!("unit v{version}"),
            schedule: (0..rng.gen_range(0..4))
                .map(|i| CallingWindow {
                    weekday: rng.gen_range(1..=7),
                    start_minute: 60 * i,
                    end_minute: 60 * i + 30,
                })
                .collect(),
        }),
        1 => Entity::Resident(ResidentRecord {
            id: resident(rng),
            name: format!("resident v{version}"),
            unit: UnitId(format!("U{}", rng.gen_range(0..4))),
            pin_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${version}"),
            debit_balance_cents: rng.gen_range(-500..5000),
            active: rng.gen_bool(0.9),
        }),
        2 | 3 => {
            let approval = |rng: &mut StdRng| match rng.gen_range(0..3) {
                0 => Approval::Pending,
                1 => Approval::Approved,
                _ => Approval::Rejected,
            };
            Entity::Contact(ContactRecord {
                id: ContactId(rng.gen_range(1..60)),
                resident: resident(rng),
                name: format!("contact v{version}"),
                account_status: if rng.gen_bool(0.9) { AccountStatus::Active } else { AccountStatus::Closed },
                approvals: Approvals { voice: approval(rng), video: approval(rng), message: approval(rng) },
                numbers: (0..rng.gen_range(0..4)).map(|_| number(rng)).collect(),
                video_balance_cents: rng.gen_range(0..10_000),
                video_rate_cents_per_min: rng.gen_range(10..50),
            })
        }
        4 => Entity::Block(BlockRecord {
            number: number(rng),
            scope: if rng.gen_bool(0.5) {
                BlockScope::AllFacilities
            } else {
                BlockScope::Facility(FacilityId::new(FACILITY))
            },
        }),
        5 => Entity::Privileged(PrivilegedNumberRecord {
            number: number(rng),
            label: format!("attorney v{version}"),
        }),
        6 => Entity::Suspension(SuspensionRecord {
            id: rng.gen_range(1..8),
            resident: resident(rng),
            services: [Service::Voice, Service::Video, Service::Message]
                .into_iter()
                .filter(|_| rng.gen_bool(0.5))
                .collect(),
            ends_on: jiff::civil::Date::constant(2024, 1, rng.gen_range(1..29)),
            reason: format!("suspension v{version}"),
        }),
        _ => Entity::CapUsage(CapUsageRecord {
            resident: resident(rng),
            kind: if rng.gen_bool(0.5) { CallKind::Voice } else { CallKind::Video },
            period_start: jiff::civil::Date::constant(2024, 1, 1 + 14 * rng.gen_range(0..2)),
            used_secs: rng.gen_range(0..20_000),
        }),
    }
}
