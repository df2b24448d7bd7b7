//! Deterministic simulation of the [`CallTable`] under random events, clock
//! jumps, late wakeups, lockdowns and crashes at any point of a drain.
//!
//! The simulated shell follows the contract of `edge_core::call`: it runs
//! every action in order, persists checkpoints, deletes a call's checkpoint
//! with its CDR, and wakes the table at `poll_timeout` (except in "stall"
//! steps, where it wakes late, as an overloaded box would). A crash throws
//! away the table and everything not yet executed; the new table is
//! [`CallTable::recover`]ed from the persisted checkpoints.
//!
//! A small model predicts every outcome. Checked at every action: nothing
//! after a call's CDR; a checkpoint never claims more connected time than
//! the call had; the warning comes exactly `max - warn_at` seconds before
//! the cut for a punctually woken call, and tells the true remaining time
//! otherwise. Checked at every CDR: the predicted outcome and connected
//! time (declines and unanswered calls only ever read `DidNotAnswer`),
//! connected time within the limit, the charge computed per started minute
//! and within the balance. At the end: every call that rang has exactly one
//! CDR, and nothing is left persisted.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use proto::domain::{CallKind, ContactId, ResidentId, UnitId};
use proto::tablet::{CallDecision, DenyReason, LimitedBy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{
    charge_cents, CallAction, CallConfig, CallEvent, CallId, CallSetup, CallTable, CallView, Checkpoint,
    EndReason, PlaceError, Revocation,
};

const STEPS: usize = 300;
const RESIDENTS: [(&str, &str); 6] =
    [("r1", "A"), ("r2", "A"), ("r3", "B"), ("r4", "B"), ("r5", "C"), ("r6", "C")];

/// Counts of what a run exercised, so a test can insist the faults happened.
#[derive(Debug, Default, Clone)]
pub struct SimStats {
    pub seeds: u64,
    pub placed: u64,
    pub answered: u64,
    pub cdrs: u64,
    pub time_limits: u64,
    pub warnings: u64,
    pub late_warnings: u64,
    pub did_not_answer: u64,
    pub declined: u64,
    pub lockdown_cuts: u64,
    pub crashes: u64,
    pub mid_drain_crashes: u64,
    pub recovered_charged: u64,
    pub lost_before_ring: u64,
    pub stalls: u64,
    pub refused_busy: u64,
    pub refused_denied: u64,
    pub refused_balance: u64,
    pub events_after_end: u64,
}

impl SimStats {
    pub fn add(&mut self, o: &SimStats) {
        for (mine, theirs) in self.fields_mut().into_iter().zip(o.fields()) {
            *mine += theirs;
        }
    }

    /// Every counter by name, for "did this path ever run" checks.
    pub fn coverage(&self) -> Vec<(&'static str, u64)> {
        const NAMES: [&str; 19] = [
            "seeds",
            "placed",
            "answered",
            "cdrs",
            "time_limits",
            "warnings",
            "late_warnings",
            "did_not_answer",
            "declined",
            "lockdown_cuts",
            "crashes",
            "mid_drain_crashes",
            "recovered_charged",
            "lost_before_ring",
            "stalls",
            "refused_busy",
            "refused_denied",
            "refused_balance",
            "events_after_end",
        ];
        NAMES.into_iter().zip(self.fields()).collect()
    }

    fn fields(&self) -> [u64; 19] {
        [
            self.seeds,
            self.placed,
            self.answered,
            self.cdrs,
            self.time_limits,
            self.warnings,
            self.late_warnings,
            self.did_not_answer,
            self.declined,
            self.lockdown_cuts,
            self.crashes,
            self.mid_drain_crashes,
            self.recovered_charged,
            self.lost_before_ring,
            self.stalls,
            self.refused_busy,
            self.refused_denied,
            self.refused_balance,
            self.events_after_end,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u64; 19] {
        [
            &mut self.seeds,
            &mut self.placed,
            &mut self.answered,
            &mut self.cdrs,
            &mut self.time_limits,
            &mut self.warnings,
            &mut self.late_warnings,
            &mut self.did_not_answer,
            &mut self.declined,
            &mut self.lockdown_cuts,
            &mut self.crashes,
            &mut self.mid_drain_crashes,
            &mut self.recovered_charged,
            &mut self.lost_before_ring,
            &mut self.stalls,
            &mut self.refused_busy,
            &mut self.refused_denied,
            &mut self.refused_balance,
            &mut self.events_after_end,
        ]
    }
}

/// What the model knows of one call.
#[derive(Debug)]
struct Model {
    setup: CallSetup,
    max: u32,
    warn_at: u32,
    placed_at: Duration,
    answered_at: Option<Duration>,
    /// The end the model predicts, once an input ended the call.
    expected: Option<(EndReason, u32)>,
    /// The ringing checkpoint was executed: from then on the call must get
    /// exactly one CDR.
    durable: bool,
    /// Executed actions up to the crash that dropped the call (if any).
    lost: bool,
    last_checkpoint: Option<u32>,
    warned: Option<(Duration, u32)>,
    /// A wakeup came late during the call: the warning may come late too.
    stalled: bool,
    cdrs: u32,
    outcome_seen: Option<EndReason>,
}

impl Model {
    fn live(&self) -> bool {
        self.expected.is_none() && !self.lost
    }

    /// The outcome of the deadlines due at `now`, if they end the call.
    fn deadline_end(&self, config: &CallConfig, now: Duration) -> Option<(EndReason, u32)> {
        match self.answered_at {
            None if now >= self.placed_at + config.ring_timeout => Some((EndReason::DidNotAnswer, 0)),
            Some(at) if now >= at + secs(self.max) => Some((EndReason::TimeLimit, self.max)),
            _ => None,
        }
    }

    fn connected_at(&self, now: Duration) -> u32 {
        match self.answered_at {
            None => 0,
            Some(at) => u32::try_from(now.saturating_sub(at).as_secs()).unwrap_or(u32::MAX).min(self.max),
        }
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

struct World {
    rng: StdRng,
    config: CallConfig,
    table: CallTable,
    now: Duration,
    next_id: u64,
    calls: BTreeMap<CallId, Model>,
    persisted: BTreeMap<CallId, Checkpoint>,
    stats: SimStats,
}

/// Runs one seed; `Err` describes the first broken invariant (and names the
/// seed).
pub fn run(seed: u64) -> Result<SimStats, String> {
    run_inner(seed).map_err(|e| format!("seed {seed}: {e}"))
}

fn run_inner(seed: u64) -> Result<SimStats, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let config = CallConfig {
        ring_timeout: Duration::from_secs(rng.gen_range(5..=60)),
        checkpoint_interval: Duration::from_millis(rng.gen_range(500..=10_000)),
    };
    let mut w = World {
        rng,
        table: CallTable::new(config.clone()),
        config,
        now: Duration::from_millis(1_000_000),
        next_id: 1,
        calls: BTreeMap::new(),
        persisted: BTreeMap::new(),
        stats: SimStats { seeds: 1, ..SimStats::default() },
    };
    for _ in 0..STEPS {
        let roll = w.rng.gen_range(0..100);
        match roll {
            0..=24 => w.place()?,
            25..=59 => w.event()?,
            60..=84 => {
                let dt = w.small_or_jump();
                w.advance_punctually(w.now + dt)?;
            }
            85..=89 => w.stall()?,
            90..=94 => w.lockdown()?,
            _ => w.crash()?,
        }
    }
    // Let every call run out: the longest limit is 1,800 s.
    w.advance_punctually(w.now + Duration::from_secs(4000))?;
    for (id, m) in &w.calls {
        let want = u32::from(m.durable);
        if m.cdrs != want {
            return Err(format!("{id:?} has {} CDRs, want {want}: {m:?}", m.cdrs));
        }
    }
    if !w.persisted.is_empty() {
        return Err(format!("checkpoints left behind: {:?}", w.persisted.keys()));
    }
    if !w.table.is_empty() {
        return Err(format!("table still holds {} calls", w.table.len()));
    }
    Ok(w.stats)
}

impl World {
    fn small_or_jump(&mut self) -> Duration {
        if self.rng.gen_bool(0.8) {
            Duration::from_millis(self.rng.gen_range(0..10_000))
        } else {
            Duration::from_millis(self.rng.gen_range(10_000..2_000_000))
        }
    }

    fn wall(&self) -> Timestamp {
        let secs = i64::try_from(self.now.as_secs()).unwrap_or(0);
        Timestamp::from_second(1_704_067_200 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn place(&mut self) -> Result<(), String> {
        let (resident, unit) = RESIDENTS[self.rng.gen_range(0..RESIDENTS.len())];
        let kind = if self.rng.gen_bool(0.5) { CallKind::Video } else { CallKind::Voice };
        let warning = [60, 60, 60, 30, 0][self.rng.gen_range(0..5)];
        let max: u32 = self.rng.gen_range(warning.max(1)..=1800);
        let rate: u32 = [0, 10, 25, 100][self.rng.gen_range(0..4)];
        let cost = charge_cents(kind, max, rate);
        let balance = match self.rng.gen_range(0..10) {
            0 => cost - 1,
            _ => cost + self.rng.gen_range(0..150),
        };
        let setup = CallSetup {
            resident: ResidentId::new(resident),
            unit: UnitId::new(unit),
            contact: ContactId(self.rng.gen_range(1..4)),
            kind,
            number: "+15551234567".into(),
            rate_cents_per_min: rate,
            balance_cents: balance,
        };
        let denied = self.rng.gen_bool(0.1);
        let decision = if denied {
            CallDecision::Denied(DenyReason::InsufficientBalance {
                balance_cents: 0,
                rate_cents_per_min: rate,
            })
        } else {
            CallDecision::Allowed {
                max_duration_secs: max,
                warn_at_secs: max - warning,
                limited_by: LimitedBy::CallLength,
            }
        };
        let id = CallId(self.next_id);
        self.next_id += 1;
        let busy = self
            .calls
            .iter()
            .find(|(_, m)| m.live() && m.setup.resident == setup.resident)
            .map(|(id, _)| *id);
        // The table's order: a busy resident first, then the decision.
        let expected = if busy.is_some() {
            Err("busy")
        } else if denied {
            Err("denied")
        } else if kind == CallKind::Video && cost > balance {
            Err("balance")
        } else {
            Ok(())
        };
        let got = self.table.place(id, setup.clone(), &decision, self.now, self.wall());
        match (&got, expected) {
            (Ok(()), Ok(())) => {
                self.stats.placed += 1;
                self.calls.insert(
                    id,
                    Model {
                        setup,
                        max,
                        warn_at: max - warning,
                        placed_at: self.now,
                        answered_at: None,
                        expected: None,
                        durable: false,
                        lost: false,
                        last_checkpoint: None,
                        warned: None,
                        stalled: false,
                        cdrs: 0,
                        outcome_seen: None,
                    },
                );
            }
            (Err(PlaceError::Denied(_)), Err("denied")) => self.stats.refused_denied += 1,
            (Err(PlaceError::ResidentBusy { existing }), Err("busy")) if Some(*existing) == busy => {
                self.stats.refused_busy += 1
            }
            (Err(PlaceError::ExceedsBalance { .. }), Err("balance")) => self.stats.refused_balance += 1,
            (got, want) => return Err(format!("placing {id:?}: got {got:?}, model says {want:?}")),
        }
        self.drain()
    }

    fn event(&mut self) -> Result<(), String> {
        if self.calls.is_empty() {
            return Ok(());
        }
        let dt = Duration::from_millis(self.rng.gen_range(0..20_000));
        self.advance_punctually(self.now + dt)?;
        // Mostly live calls, sometimes any recent one: events after the end
        // must be ignored.
        let live: Vec<CallId> = self.calls.iter().filter(|(_, m)| m.live()).map(|(id, _)| *id).collect();
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        let id = if !live.is_empty() && self.rng.gen_bool(0.8) {
            live[self.rng.gen_range(0..live.len())]
        } else {
            ids[ids.len() - 1 - self.rng.gen_range(0..ids.len().min(4))]
        };
        let event = match self.rng.gen_range(0..12) {
            0..=4 => CallEvent::Answered,
            5 => CallEvent::Declined,
            6 => CallEvent::ResidentHungUp,
            7 => CallEvent::ContactHungUp,
            8 => CallEvent::ConnectionLost,
            9 => CallEvent::Shutdown,
            10 => CallEvent::Revoked(Revocation::Suspended),
            _ => CallEvent::Revoked(Revocation::Blocked),
        };
        let now = self.now;
        let config = self.config.clone();
        if let Some(m) = self.calls.get_mut(&id) {
            if !m.live() {
                self.stats.events_after_end += 1;
            } else if let Some(end) = m.deadline_end(&config, now) {
                m.expected = Some(end);
            } else {
                match (m.answered_at, event) {
                    (None, CallEvent::Answered) => {
                        m.answered_at = Some(now);
                        self.stats.answered += 1;
                    }
                    (Some(_), CallEvent::Answered) => {}
                    (None, CallEvent::Declined | CallEvent::ContactHungUp) => {
                        self.stats.declined += 1;
                        m.expected = Some((EndReason::DidNotAnswer, 0));
                    }
                    (answered, e) => {
                        let reason = match e {
                            CallEvent::Declined => EndReason::ContactHungUp,
                            CallEvent::ResidentHungUp => EndReason::ResidentHungUp,
                            CallEvent::ContactHungUp => EndReason::ContactHungUp,
                            CallEvent::ConnectionLost => EndReason::ConnectionLost,
                            CallEvent::Shutdown => EndReason::EdgeShutdown,
                            CallEvent::Revoked(r) => r.into(),
                            CallEvent::Answered => return Err("unreachable answer".into()),
                        };
                        let connected = if answered.is_some() { m.connected_at(now) } else { 0 };
                        m.expected = Some((reason, connected));
                    }
                }
            }
        }
        self.table.handle_event(id, now, event);
        self.drain()
    }

    /// A punctual shell: wakes at every deadline up to `to`.
    fn advance_punctually(&mut self, to: Duration) -> Result<(), String> {
        while let Some(at) = self.table.poll_timeout().filter(|at| *at <= to) {
            if at < self.now {
                return Err(format!("deadline {at:?} is in the past (now {:?})", self.now));
            }
            self.wake(at)?;
        }
        self.now = self.now.max(to);
        Ok(())
    }

    /// An overloaded shell: wakes once, late, whatever was due meanwhile.
    fn stall(&mut self) -> Result<(), String> {
        self.stats.stalls += 1;
        let dt = self.small_or_jump();
        for m in self.calls.values_mut().filter(|m| m.live()) {
            m.stalled = true;
        }
        self.wake(self.now + dt)
    }

    fn wake(&mut self, at: Duration) -> Result<(), String> {
        self.now = at;
        for m in self.calls.values_mut().filter(|m| m.live()) {
            m.expected = m.deadline_end(&self.config, at);
        }
        self.table.handle_timeout(at);
        self.drain()
    }

    fn lockdown(&mut self) -> Result<(), String> {
        let dt = Duration::from_millis(self.rng.gen_range(0..5_000));
        self.advance_punctually(self.now + dt)?;
        let unit = ["A", "B", "C"][self.rng.gen_range(0..3)];
        let now = self.now;
        let mut want = 0;
        for m in self.calls.values_mut().filter(|m| m.live() && m.setup.unit.as_str() == unit) {
            let connected = m.connected_at(now);
            m.expected = Some((EndReason::Lockdown, connected));
            want += 1;
        }
        let cut = self
            .table
            .on_policy_change(now, |s| (s.setup().unit.as_str() == unit).then_some(Revocation::Lockdown));
        if cut != want {
            return Err(format!("lockdown of {unit} cut {cut} calls, the model has {want} live there"));
        }
        self.stats.lockdown_cuts += u64::try_from(cut).unwrap_or(0);
        self.drain()
    }

    fn crash(&mut self) -> Result<(), String> {
        self.stats.crashes += 1;
        let now = self.now;
        // Whatever the model predicted for undelivered ends is moot now:
        // the checkpoint decides.
        for (id, m) in self.calls.iter_mut().filter(|(_, m)| m.cdrs == 0 && !m.lost) {
            if !m.durable {
                if self.persisted.contains_key(id) {
                    return Err(format!("{id:?} persisted but not durable in the model"));
                }
                m.lost = true;
                self.stats.lost_before_ring += 1;
                continue;
            }
            // Never beyond what the call really had by the crash.
            let proven = m.last_checkpoint.unwrap_or(0);
            if proven > m.connected_at(now) && m.answered_at.is_some() {
                return Err(format!(
                    "{id:?} checkpoint claims {proven} s, the call had {}",
                    m.connected_at(now)
                ));
            }
            if proven > 0 {
                self.stats.recovered_charged += 1;
            }
            m.expected = Some((EndReason::EdgeRestarted, proven.min(m.max)));
        }
        self.table = CallTable::recover(self.config.clone(), self.persisted.values());
        self.drain()
    }

    /// Executes every action; sometimes crashes part way through.
    fn drain(&mut self) -> Result<(), String> {
        let crash_after = self.rng.gen_bool(0.02).then(|| self.rng.gen_range(0..4));
        let mut done = 0;
        while let Some((id, action)) = self.table.poll_action() {
            if crash_after == Some(done) {
                // The polled action dies with the process, unexecuted.
                self.stats.mid_drain_crashes += 1;
                return self.crash();
            }
            self.execute(id, action)?;
            done += 1;
        }
        Ok(())
    }

    fn execute(&mut self, id: CallId, action: CallAction) -> Result<(), String> {
        let now = self.now;
        let Some(m) = self.calls.get_mut(&id) else {
            return Err(format!("action for unknown call {id:?}: {action:?}"));
        };
        if m.cdrs > 0 || m.lost {
            return Err(format!("{id:?} acted after its end: {action:?}"));
        }
        match action {
            CallAction::Checkpoint(cp) => {
                if cp.id != id || cp.max_duration_secs != m.max || cp.setup != m.setup {
                    return Err(format!("{id:?} checkpoint does not match the call: {cp:?}"));
                }
                if let Some(c) = cp.connected_secs {
                    if c > m.connected_at(now) || m.answered_at.is_none() {
                        return Err(format!("{id:?} checkpoint claims {c} s at {now:?}: {m:?}"));
                    }
                }
                m.durable = true;
                m.last_checkpoint = cp.connected_secs;
                self.persisted.insert(id, cp);
            }
            CallAction::Ring => {
                if !m.durable {
                    return Err(format!("{id:?} rang before its checkpoint was persisted"));
                }
            }
            CallAction::Warn { remaining_secs } => {
                let Some(at) = m.answered_at else { return Err(format!("{id:?} warned while ringing")) };
                let cut = at + secs(m.max);
                if m.warned.is_some() || now >= cut || m.warn_at >= m.max {
                    return Err(format!("{id:?} bad warning at {now:?}: {m:?}"));
                }
                let left = cut - now;
                let truth = u32::try_from(left.as_secs() + u64::from(left.subsec_nanos() > 0)).unwrap_or(0);
                if remaining_secs != truth {
                    return Err(format!("{id:?} warned {remaining_secs} s left, {truth} s were"));
                }
                if !m.stalled && (now != at + secs(m.warn_at) || remaining_secs != m.max - m.warn_at) {
                    return Err(format!("{id:?} punctual warning off schedule at {now:?}: {m:?}"));
                }
                if now != at + secs(m.warn_at) {
                    self.stats.late_warnings += 1;
                }
                self.stats.warnings += 1;
                m.warned = Some((now, remaining_secs));
            }
            CallAction::TabletState(CallView::Ended { outcome }) => m.outcome_seen = Some(outcome),
            CallAction::TabletState(_) | CallAction::CutBothLegs { .. } => {}
            CallAction::EmitCdr(cdr) => {
                m.cdrs += 1;
                let Some((reason, connected)) = m.expected else {
                    return Err(format!("{id:?} ended unexpectedly at {now:?}: {cdr:?} {m:?}"));
                };
                if m.outcome_seen != Some(reason) {
                    return Err(format!(
                        "{id:?} ended as {:?}, model says {reason:?}: {m:?}",
                        m.outcome_seen
                    ));
                }
                if cdr.connected_secs != connected || cdr.connected_secs > m.max {
                    return Err(format!(
                        "{id:?} connected {} s, model says {connected}: {m:?}",
                        cdr.connected_secs
                    ));
                }
                let charge = charge_cents(m.setup.kind, cdr.connected_secs, m.setup.rate_cents_per_min);
                if cdr.charged_cents != charge {
                    return Err(format!("{id:?} charged {}, want {charge}", cdr.charged_cents));
                }
                if m.setup.kind == CallKind::Video && cdr.charged_cents > m.setup.balance_cents {
                    return Err(format!(
                        "{id:?} charged {} over the balance {}",
                        charge, m.setup.balance_cents
                    ));
                }
                if cdr.resident != m.setup.resident
                    || cdr.contact != m.setup.contact
                    || cdr.kind != m.setup.kind
                {
                    return Err(format!("{id:?} CDR names another call: {cdr:?}"));
                }
                if m.answered_at.is_none() && !matches!(reason, EndReason::EdgeRestarted) && connected != 0 {
                    return Err(format!("{id:?} never answered but connected {connected} s"));
                }
                if reason == EndReason::TimeLimit {
                    self.stats.time_limits += 1;
                    let at = m.answered_at.ok_or("time limit while ringing")?;
                    if !m.stalled {
                        if now != at + secs(m.max) {
                            return Err(format!("{id:?} punctual cut at {now:?}, limit {}", m.max));
                        }
                        let want = (m.warn_at < m.max).then(|| (at + secs(m.warn_at), m.max - m.warn_at));
                        if m.warned != want {
                            return Err(format!("{id:?} warning {:?}, want {want:?}", m.warned));
                        }
                    }
                }
                if reason == EndReason::DidNotAnswer {
                    self.stats.did_not_answer += 1;
                }
                self.stats.cdrs += 1;
                self.persisted.remove(&id);
            }
        }
        Ok(())
    }
}
