//! One call's life at the edge, from "place" to the call detail record.
//!
//! Owns: the lifecycle of a call the policy has already allowed (ringing ->
//! connected -> warned -> ended), the edge's clock for it (the one-minute
//! warning and the cut at the limit), what the tablet is told, what the call
//! costs, the crash checkpoint, and the [`CallTable`] of every live call with
//! its one-call-per-resident rule.
//!
//! Must not: decide whether a call may happen (that is
//! [`crate::policy::decide_call`]; its decision is passed in), read a clock,
//! do I/O, or touch media. The shell feeds events and wakeups with the
//! current time and carries out [`CallAction`]s **in the order given**:
//! persist a checkpoint, ring the contact, tell the tablet, warn, cut both
//! legs, commit the CDR to the outbox.
//!
//! # Time
//!
//! Time is a monotonic [`Duration`] since an epoch the shell chooses (e.g.
//! `tokio::time::Instant` at agent start), not a wall-clock `Timestamp`.
//! A call's limit is a length of real time; a wall clock can be stepped by
//! NTP or by an operator in the middle of a call, and a backwards step would
//! let a call outlast its limit (and the balance that paid for it). The wall
//! clock is only used for the CDR's `started_at`, passed in once at placing.
//! A value earlier than one already seen is treated as "no time passed".
//!
//! # Invariants
//!
//! - A call is placed only from `CallDecision::Allowed` whose limit the
//!   contact's balance pays for; anything else is a typed [`PlaceError`].
//! - The tablet never learns "declined": declined, hung up while ringing and
//!   unanswered all end as [`EndReason::DidNotAnswer`], uncharged.
//! - Connected time counts from the answer and never exceeds the decision's
//!   `max_duration_secs`, so the charge never exceeds the balance.
//! - Every placed call ends with exactly one [`CallAction::EmitCdr`], its
//!   last action; afterwards every event is ignored.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use jiff::Timestamp;
use proto::domain::{CallKind, Cents, ContactId, PhoneNumber, ResidentId, UnitId};
use proto::messaging::CallDetailRecord;
use proto::tablet::{CallDecision, DenyReason};
use serde::{Deserialize, Serialize};

#[cfg(any(test, feature = "testkit"))]
pub mod sim;
#[cfg(test)]
mod tests;

/// Identifies a call at this edge; drawn by the shell, unique per box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

/// Settings of the call core; the defaults are the ones `rules.md` implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallConfig {
    /// How long the contact's phone rings before the call ends as
    /// "did not answer".
    pub ring_timeout: Duration,
    /// How often a connected call asks the shell to persist a checkpoint.
    /// After a crash the call is charged up to its last checkpoint, so this
    /// is the most connected time a crash can leave unbilled.
    pub checkpoint_interval: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self { ring_timeout: Duration::from_secs(45), checkpoint_interval: Duration::from_secs(5) }
    }
}

/// Who calls whom, and the money the decision was made with. The shell
/// fills it from the same directory snapshot it passed to the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSetup {
    pub resident: ResidentId,
    /// The resident's housing unit, so a unit lockdown finds its calls.
    pub unit: UnitId,
    pub contact: ContactId,
    pub kind: CallKind,
    pub number: PhoneNumber,
    /// The contact's video rate when the decision was made (ignored for voice).
    pub rate_cents_per_min: u32,
    /// The contact's video balance when the decision was made (ignored for
    /// voice). The charge never exceeds it.
    pub balance_cents: Cents,
}

/// Why a call was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// The policy refused the call: a denied decision never rings.
    #[error("the policy denied the call: {0:?}")]
    Denied(DenyReason),
    /// An allowed decision that cannot be right: no time, or a warning
    /// after the limit.
    #[error("inconsistent decision: max {max_duration_secs} s, warn at {warn_at_secs} s")]
    InconsistentDecision { max_duration_secs: u32, warn_at_secs: u32 },
    /// The limit would cost more than the balance the decision was made
    /// with (stale decision, or setup from another snapshot).
    #[error("a call of {max_duration_secs} s costs {cost_cents} cents, the balance is {balance_cents}")]
    ExceedsBalance { max_duration_secs: u32, cost_cents: Cents, balance_cents: Cents },
    /// The resident already has a live call.
    #[error("resident already has live call {existing:?}")]
    ResidentBusy { existing: CallId },
    /// The shell reused a call id of a call still in the table.
    #[error("call id {0:?} is already in use")]
    DuplicateId(CallId),
}

/// A policy change that ends a call at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Revocation {
    /// The facility or the resident's unit was locked down.
    Lockdown,
    /// The resident was suspended from this service.
    Suspended,
    /// The contact blocked the number (here or everywhere).
    Blocked,
    /// The contact closed their account.
    AccountClosed,
}

impl Revocation {
    /// The revocation a fresh denial means for a call already under way, if
    /// any. Only these denials cut a running call: the calling window, the
    /// balance and the cap were already folded into the call's limit, and a
    /// fresh decision would count the running call against them twice.
    pub fn from_deny(reason: &DenyReason) -> Option<Self> {
        match reason {
            DenyReason::Lockdown { .. } => Some(Self::Lockdown),
            DenyReason::Suspended { .. } => Some(Self::Suspended),
            DenyReason::NumberBlocked { .. } => Some(Self::Blocked),
            DenyReason::AccountClosed => Some(Self::AccountClosed),
            _ => None,
        }
    }
}

/// What happens to a call, as the shell reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallEvent {
    /// The contact picked up; the media bridge is up.
    Answered,
    /// The contact refused the call. Shown to the resident as "did not
    /// answer" (rules: never "declined").
    Declined,
    ResidentHungUp,
    /// The contact hung up. Before an answer this is a refusal, so it ends
    /// as "did not answer".
    ContactHungUp,
    /// The tablet's connection dropped.
    ConnectionLost,
    /// A policy change mid-call (see [`CallTable::on_policy_change`]).
    Revoked(Revocation),
    /// The edge is shutting down cleanly.
    Shutdown,
}

/// How a call ended, in the words the tablet shows: the wire type itself, so
/// the shell passes it on unchanged. Unanswered, declined and refused-while-
/// ringing are all `DidNotAnswer`; there is no variant that could tell them apart.
pub use proto::call::CallEndReason as EndReason;

impl From<Revocation> for EndReason {
    fn from(r: Revocation) -> Self {
        match r {
            Revocation::Lockdown => Self::Lockdown,
            Revocation::Suspended => Self::Suspended,
            Revocation::Blocked => Self::Blocked,
            Revocation::AccountClosed => Self::AccountClosed,
        }
    }
}

/// What the tablet shows. The tablet runs its own timer from `elapsed_secs`;
/// the edge re-sends the view at every change of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallView {
    Ringing,
    Connected { elapsed_secs: u32, limit_secs: u32, warned: bool },
    Ended { outcome: EndReason },
}

/// Effects for the shell, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAction {
    /// Persist (replace) this call's checkpoint before doing anything else.
    Checkpoint(Checkpoint),
    /// Ring the contact.
    Ring,
    TabletState(CallView),
    /// Turn the timer red on both sides: the limit is this close.
    Warn {
        remaining_secs: u32,
    },
    /// Tear down the tablet leg and the contact leg now (within 200 ms).
    CutBothLegs {
        reason: EndReason,
    },
    /// Commit this record to the outbox and delete the call's checkpoint in
    /// the same transaction. Always the call's last action.
    EmitCdr(CallDetailRecord),
}

/// What the shell persists so a crashed edge can still record and bill the
/// call. Replaced at placing, at the answer and every
/// [`CallConfig::checkpoint_interval`] while connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub id: CallId,
    pub setup: CallSetup,
    pub started_at: Timestamp,
    pub max_duration_secs: u32,
    /// Whole seconds the call was known to be connected when this was
    /// written; `None` while it was still ringing.
    pub connected_secs: Option<u32>,
}

/// Whole minutes billed for a connected time: every started minute counts
/// (`rules.md`: "charged per minute ... for connected time only"; the policy
/// already sizes a video call's limit in whole paid minutes).
pub fn billable_minutes(connected_secs: u32) -> u32 {
    connected_secs.div_ceil(60)
}

/// What a call costs the contact. Voice is free in this state.
pub fn charge_cents(kind: CallKind, connected_secs: u32, rate_cents_per_min: u32) -> Cents {
    match kind {
        CallKind::Voice => 0,
        CallKind::Video => i64::from(billable_minutes(connected_secs)) * i64::from(rate_cents_per_min),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing { since: Duration },
    Connected { at: Duration, warned: bool, next_checkpoint: Duration },
    Ended,
}

/// The state machine of one call. See the module doc for the contract.
#[derive(Debug, Clone)]
pub struct CallSession {
    id: CallId,
    setup: CallSetup,
    config: CallConfig,
    started_at: Timestamp,
    max_duration_secs: u32,
    warn_at_secs: u32,
    phase: Phase,
    last_now: Duration,
    outcome: Option<EndReason>,
    actions: VecDeque<CallAction>,
}

impl CallSession {
    /// Places a call the policy allowed: queues the ringing checkpoint, the
    /// ring and the tablet's "ringing". `wall_now` becomes the CDR's
    /// `started_at`: the placing time, because unanswered calls are recorded
    /// too and have no answer time.
    pub fn place(
        id: CallId,
        setup: CallSetup,
        decision: &CallDecision,
        config: CallConfig,
        now: Duration,
        wall_now: Timestamp,
    ) -> Result<Self, PlaceError> {
        let (max_duration_secs, warn_at_secs) = match decision {
            CallDecision::Denied(reason) => return Err(PlaceError::Denied(reason.clone())),
            CallDecision::Allowed { max_duration_secs, warn_at_secs, .. } => {
                (*max_duration_secs, *warn_at_secs)
            }
        };
        if max_duration_secs == 0 || warn_at_secs > max_duration_secs {
            return Err(PlaceError::InconsistentDecision { max_duration_secs, warn_at_secs });
        }
        // The policy sizes the limit to the minutes the balance pays for;
        // checking it here makes "never charge more than the balance" hold
        // by construction instead of by clamping a bill after the fact.
        let cost_cents = charge_cents(setup.kind, max_duration_secs, setup.rate_cents_per_min);
        if setup.kind == CallKind::Video && cost_cents > setup.balance_cents {
            return Err(PlaceError::ExceedsBalance {
                max_duration_secs,
                cost_cents,
                balance_cents: setup.balance_cents,
            });
        }
        let mut session = Self {
            id,
            setup,
            config,
            started_at: wall_now,
            max_duration_secs,
            warn_at_secs,
            phase: Phase::Ringing { since: now },
            last_now: now,
            outcome: None,
            actions: VecDeque::new(),
        };
        // Checkpoint first: a crash after the phone rang must still leave a
        // record of the call.
        session.actions.push_back(CallAction::Checkpoint(session.checkpoint(None)));
        session.actions.push_back(CallAction::Ring);
        session.actions.push_back(CallAction::TabletState(CallView::Ringing));
        Ok(session)
    }

    /// Ends a call found in a checkpoint after the edge restarted (crash,
    /// kill -9, power cut): queues the cut, the tablet's "ended" and the CDR.
    ///
    /// Charged for the connected time of the **last checkpoint**, not up to
    /// "now": the process that owned the call's sockets died, so the call
    /// most likely dropped moments after the last sign of life, and the
    /// edge was down for an unknown time after that. Billing up to "now"
    /// would charge the family for the edge's downtime, time we cannot prove
    /// the call was up. The last checkpoint is proven; at most one
    /// checkpoint interval goes unbilled, an error towards the family like
    /// every other money error of the edge. A checkpoint read from disk is
    /// trusted no further than the limit it carries. No `now` is taken: the
    /// restarted process's monotonic clock has another epoch and could not
    /// be compared with anything in the checkpoint anyway.
    pub fn recover(checkpoint: &Checkpoint, config: CallConfig) -> Self {
        let mut session = Self {
            id: checkpoint.id,
            setup: checkpoint.setup.clone(),
            config,
            started_at: checkpoint.started_at,
            max_duration_secs: checkpoint.max_duration_secs,
            warn_at_secs: checkpoint.max_duration_secs,
            phase: Phase::Ended,
            last_now: Duration::ZERO,
            outcome: None,
            actions: VecDeque::new(),
        };
        let connected = checkpoint.connected_secs.unwrap_or(0).min(checkpoint.max_duration_secs);
        session.finish(EndReason::EdgeRestarted, connected);
        session
    }

    pub fn id(&self) -> CallId {
        self.id
    }

    pub fn setup(&self) -> &CallSetup {
        &self.setup
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// How the call ended, once it has.
    pub fn outcome(&self) -> Option<EndReason> {
        self.outcome
    }

    /// What the tablet should show now (for a tablet that reconnects).
    pub fn view(&self, now: Duration) -> CallView {
        match self.phase {
            Phase::Ringing { .. } => CallView::Ringing,
            Phase::Connected { at, warned, .. } => CallView::Connected {
                elapsed_secs: self.connected_secs(at, now.max(self.last_now)),
                limit_secs: self.max_duration_secs,
                warned,
            },
            Phase::Ended => CallView::Ended { outcome: self.outcome.unwrap_or(EndReason::EdgeRestarted) },
        }
    }

    /// The next action for the shell, in order.
    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    /// When the shell must call [`Self::handle_timeout`] next: the exact
    /// deadline of the ring timeout, the warning, the cut or the next
    /// checkpoint. `None` once ended.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Ringing { since } => Some(since.saturating_add(self.config.ring_timeout)),
            Phase::Connected { at, warned, next_checkpoint } => {
                let cut = self.cut_at(at);
                let mut next = cut.min(next_checkpoint);
                if !warned && self.warn_at_secs < self.max_duration_secs {
                    next = next.min(self.warn_deadline(at));
                }
                Some(next)
            }
            Phase::Ended => None,
        }
    }

    /// Runs every deadline due at `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        let now = self.observe(now);
        self.advance(now);
    }

    /// Applies an event at `now`. Deadlines already due are run first, so a
    /// hangup reported after the limit passed still ends as `TimeLimit`.
    /// Ignored (no actions) once the call has ended.
    pub fn handle_event(&mut self, now: Duration, event: CallEvent) {
        let now = self.observe(now);
        self.advance(now);
        match (self.phase, event) {
            (Phase::Ended, _) => {}
            (Phase::Ringing { .. }, CallEvent::Answered) => {
                self.phase = Phase::Connected {
                    at: now,
                    warned: false,
                    next_checkpoint: now.saturating_add(self.config.checkpoint_interval),
                };
                self.actions.push_back(CallAction::Checkpoint(self.checkpoint(Some(0))));
                self.actions.push_back(CallAction::TabletState(CallView::Connected {
                    elapsed_secs: 0,
                    limit_secs: self.max_duration_secs,
                    warned: false,
                }));
            }
            // A repeated answer changes nothing.
            (Phase::Connected { .. }, CallEvent::Answered) => {}
            (Phase::Ringing { .. }, CallEvent::Declined | CallEvent::ContactHungUp) => {
                self.finish(EndReason::DidNotAnswer, 0)
            }
            (Phase::Ringing { .. }, other) => self.finish(end_reason(other), 0),
            (Phase::Connected { at, .. }, other) => {
                // A "decline" after the answer can only mean the contact's
                // leg went away: a hangup, never "declined".
                let reason = match other {
                    CallEvent::Declined => EndReason::ContactHungUp,
                    other => end_reason(other),
                };
                let connected = self.connected_secs(at, now);
                self.finish(reason, connected);
            }
        }
    }

    fn observe(&mut self, now: Duration) -> Duration {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    fn cut_at(&self, at: Duration) -> Duration {
        at.saturating_add(Duration::from_secs(u64::from(self.max_duration_secs)))
    }

    fn warn_deadline(&self, at: Duration) -> Duration {
        at.saturating_add(Duration::from_secs(u64::from(self.warn_at_secs)))
    }

    /// Whole connected seconds at `now`, never beyond the limit. Whole, not
    /// rounded up: a hangup that lands a fraction of a second into the next
    /// minute (signalling latency) must not bill that minute.
    fn connected_secs(&self, at: Duration, now: Duration) -> u32 {
        let secs = now.saturating_sub(at).as_secs();
        u32::try_from(secs).unwrap_or(u32::MAX).min(self.max_duration_secs)
    }

    fn advance(&mut self, now: Duration) {
        match self.phase {
            Phase::Ended => {}
            Phase::Ringing { since } => {
                if now >= since.saturating_add(self.config.ring_timeout) {
                    self.finish(EndReason::DidNotAnswer, 0);
                }
            }
            Phase::Connected { at, warned, next_checkpoint } => {
                let cut = self.cut_at(at);
                if now >= cut {
                    // A wakeup that came too late to warn does not warn
                    // after the fact: the call is already over.
                    self.finish(EndReason::TimeLimit, self.max_duration_secs);
                    return;
                }
                let mut warned = warned;
                if !warned && self.warn_at_secs < self.max_duration_secs && now >= self.warn_deadline(at) {
                    warned = true;
                    // Exact on time; on a late wakeup, the truth (rounded up
                    // so it never says 0 while the call is still up).
                    let left = cut - now;
                    let remaining_secs = u32::try_from(left.as_secs() + u64::from(left.subsec_nanos() > 0))
                        .unwrap_or(u32::MAX);
                    self.actions.push_back(CallAction::Warn { remaining_secs });
                    self.actions.push_back(CallAction::TabletState(CallView::Connected {
                        elapsed_secs: self.connected_secs(at, now),
                        limit_secs: self.max_duration_secs,
                        warned: true,
                    }));
                }
                let mut next_checkpoint = next_checkpoint;
                if now >= next_checkpoint {
                    let proven = self.connected_secs(at, now);
                    self.actions.push_back(CallAction::Checkpoint(self.checkpoint(Some(proven))));
                    // From now, not from the missed deadline: a stalled
                    // shell gets one checkpoint, not a burst of them.
                    next_checkpoint =
                        now.saturating_add(self.config.checkpoint_interval.max(Duration::from_millis(1)));
                }
                self.phase = Phase::Connected { at, warned, next_checkpoint };
            }
        }
    }

    fn checkpoint(&self, connected_secs: Option<u32>) -> Checkpoint {
        Checkpoint {
            id: self.id,
            setup: self.setup.clone(),
            started_at: self.started_at,
            max_duration_secs: self.max_duration_secs,
            connected_secs,
        }
    }

    /// The only way a call ends: cut, tell the tablet, record. Nothing is
    /// queued after the CDR.
    fn finish(&mut self, reason: EndReason, connected_secs: u32) {
        let connected_secs = connected_secs.min(self.max_duration_secs);
        self.phase = Phase::Ended;
        self.outcome = Some(reason);
        let charged_cents = charge_cents(self.setup.kind, connected_secs, self.setup.rate_cents_per_min);
        self.actions.push_back(CallAction::CutBothLegs { reason });
        self.actions.push_back(CallAction::TabletState(CallView::Ended { outcome: reason }));
        self.actions.push_back(CallAction::EmitCdr(CallDetailRecord {
            resident: self.setup.resident.clone(),
            contact: self.setup.contact,
            kind: self.setup.kind,
            number: self.setup.number.clone(),
            started_at: self.started_at,
            connected_secs,
            charged_cents,
        }));
    }
}

fn end_reason(event: CallEvent) -> EndReason {
    match event {
        CallEvent::Answered | CallEvent::Declined => EndReason::DidNotAnswer,
        CallEvent::ResidentHungUp => EndReason::ResidentHungUp,
        CallEvent::ContactHungUp => EndReason::ContactHungUp,
        CallEvent::ConnectionLost => EndReason::ConnectionLost,
        CallEvent::Revoked(r) => r.into(),
        CallEvent::Shutdown => EndReason::EdgeShutdown,
    }
}

/// Every call of the edge, keyed by id, at most one live call per resident.
/// An ended call stays until its last action was polled, then goes.
#[derive(Debug, Clone, Default)]
pub struct CallTable {
    config: CallConfig,
    calls: BTreeMap<CallId, CallSession>,
}

impl CallTable {
    pub fn new(config: CallConfig) -> Self {
        Self { config, calls: BTreeMap::new() }
    }

    /// Rebuilds after a restart: every persisted checkpoint becomes an
    /// ended call whose cut, tablet view and CDR are waiting to be polled.
    pub fn recover<'a>(config: CallConfig, checkpoints: impl IntoIterator<Item = &'a Checkpoint>) -> Self {
        let calls =
            checkpoints.into_iter().map(|cp| (cp.id, CallSession::recover(cp, config.clone()))).collect();
        Self { config, calls }
    }

    /// Places a call; see [`CallSession::place`]. A reused id and a busy
    /// resident are refused before the decision is looked at.
    pub fn place(
        &mut self,
        id: CallId,
        setup: CallSetup,
        decision: &CallDecision,
        now: Duration,
        wall_now: Timestamp,
    ) -> Result<(), PlaceError> {
        if self.calls.contains_key(&id) {
            return Err(PlaceError::DuplicateId(id));
        }
        if let Some(existing) = self.live_call_of(&setup.resident) {
            return Err(PlaceError::ResidentBusy { existing });
        }
        let session = CallSession::place(id, setup, decision, self.config.clone(), now, wall_now)?;
        self.calls.insert(id, session);
        Ok(())
    }

    /// The resident's live (not ended) call, if any.
    pub fn live_call_of(&self, resident: &ResidentId) -> Option<CallId> {
        self.calls.values().find(|s| !s.is_ended() && &s.setup.resident == resident).map(|s| s.id)
    }

    pub fn get(&self, id: CallId) -> Option<&CallSession> {
        self.calls.get(&id)
    }

    /// Live calls, for the shell's views.
    pub fn live(&self) -> impl Iterator<Item = &CallSession> {
        self.calls.values().filter(|s| !s.is_ended())
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// An event for one call. Events for calls the table no longer holds
    /// are ignored like events after the end: a hangup racing the cut at
    /// the limit is normal, not an error.
    pub fn handle_event(&mut self, id: CallId, now: Duration, event: CallEvent) {
        if let Some(session) = self.calls.get_mut(&id) {
            session.handle_event(now, event);
        }
    }

    /// Runs every call's due deadlines.
    pub fn handle_timeout(&mut self, now: Duration) {
        for session in self.calls.values_mut() {
            session.handle_timeout(now);
        }
    }

    /// After a lockdown, suspension, block or account closure: asks
    /// `affected` about every live call and cuts each one it names, all in
    /// this one call. Returns how many were cut.
    pub fn on_policy_change(
        &mut self,
        now: Duration,
        mut affected: impl FnMut(&CallSession) -> Option<Revocation>,
    ) -> usize {
        let mut cut = 0;
        for session in self.calls.values_mut() {
            // Deadlines first, so a call already past its limit ends as
            // TimeLimit rather than being counted as revoked.
            session.handle_timeout(now);
            if session.is_ended() {
                continue;
            }
            if let Some(revocation) = affected(session) {
                session.handle_event(now, CallEvent::Revoked(revocation));
                cut += 1;
            }
        }
        cut
    }

    /// The earliest deadline over every call.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.calls.values().filter_map(CallSession::poll_timeout).min()
    }

    /// The next action of any call, in call-id order; a call's own actions
    /// keep their order. Drops a call once its last action is out.
    pub fn poll_action(&mut self) -> Option<(CallId, CallAction)> {
        let mut found = None;
        let mut drained = None;
        for (id, session) in self.calls.iter_mut() {
            if let Some(action) = session.poll_action() {
                if session.is_ended() && session.actions.is_empty() {
                    drained = Some(*id);
                }
                found = Some((*id, action));
                break;
            }
        }
        if let Some(id) = drained {
            self.calls.remove(&id);
        }
        found
    }
}
