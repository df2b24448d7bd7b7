//! Downlink change-feed state machine.
//!
//! Owns: when to ask central for the next page of the change feed, what to do
//! with the answer (apply it, resync from scratch, back off), and how fresh the
//! edge's cached copy is. One request is in flight at a time; pages are asked
//! for back to back while central says `more`, then every
//! [`SyncConfig::poll_interval`]. Failures back off exponentially with jitter
//! drawn from a seeded generator, so runs are reproducible.
//!
//! Must not: do I/O or read a clock. The shell feeds [`SyncInput`]s with the
//! current time and carries out [`SyncOutput`]s: sending a request, applying a
//! batch to the store (and reporting back with [`SyncInput::Applied`]),
//! persisting an empty poll's success time, and waking the core up at a given
//! instant. The core trusts the store as the durable copy: after a crash, build
//! a new core from the store's persisted cursor, resync flag and last success.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;
use proto::central::{CentralError, CentralToEdge, ChangeBatch, EdgeToCentral};
use proto::domain::FacilityId;
use proto::tablet::Freshness;
use rand::{rngs::StdRng, Rng, SeedableRng};

#[cfg(any(test, feature = "testkit"))]
pub mod sim;

/// How the shell must apply a batch of the change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplyMode {
    /// An incremental page: apply the changes and the new cursor.
    Normal,
    /// A page of a full resync from cursor 0: keep serving the old data; when
    /// the final page (`more == false`) commits, drop every entity the resync
    /// did not re-send.
    Resync,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// Pause between polls once caught up.
    pub poll_interval: Duration,
    /// Most changes asked for per page.
    pub page_limit: u32,
    /// Backoff before the first retry; doubles per consecutive failure.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A request with no answer by then counts as failed.
    pub request_timeout: Duration,
    /// Seeds the backoff jitter; vary it per box so a fleet does not retry in step.
    pub jitter_seed: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            page_limit: 5000,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            jitter_seed: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncInput {
    /// Time passed (a timer the core asked for fired, or any other wake-up).
    Tick,
    /// The shell has a working connection to central.
    UplinkUp,
    /// The connection to central is gone; any request in flight is lost.
    UplinkDown,
    /// Central answered the request in flight.
    Response(CentralToEdge),
    /// The request in flight failed at the transport level.
    RequestFailed { error: String },
    /// The shell committed the batch of the last [`SyncOutput::Apply`].
    Applied { next_cursor: u64 },
    /// The shell could not commit that batch.
    ApplyFailed { error: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutput {
    /// Send this request to central; answer with `Response` or `RequestFailed`.
    Send(EdgeToCentral),
    /// Apply this batch, its cursor and the current time as the last success in
    /// one transaction; answer with `Applied` or `ApplyFailed`.
    Apply { batch: ChangeBatch, mode: ApplyMode },
    /// Central had nothing new: persist `at` as the last successful sync (no
    /// answer needed; losing it only makes the cache look older after a crash).
    RecordSuccess { at: Timestamp },
    /// Call `handle(now, Tick)` at this instant (replaces earlier requests).
    WakeAt(Timestamp),
    /// Something worth logging.
    Event(SyncEvent),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// A request or apply failed; the next request waits until `retry_at`.
    BackingOff { cause: FailureCause, consecutive_failures: u32, retry_at: Timestamp },
    /// Central no longer has the changes after `expired_cursor`: everything is
    /// fetched again from cursor 0 while the old data keeps being served.
    ResyncStarted { expired_cursor: u64, oldest_valid: u64 },
    /// The final page of a resync was applied.
    ResyncCompleted { cursor: u64 },
    /// A response or report that does not belong to the current request.
    Ignored { what: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureCause {
    Transport(String),
    Timeout,
    Central(CentralError),
    /// Central's answer made no sense (e.g. a cursor going backwards).
    BadResponse(String),
    Apply(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Waiting to send the next request: at `at`, or as soon as the uplink is
    /// up when `None`.
    Waiting {
        at: Option<Timestamp>,
    },
    InFlight {
        since: u64,
        deadline: Timestamp,
    },
    /// The shell is applying a batch.
    Applying {
        more: bool,
    },
}

#[derive(Debug, Clone)]
pub struct SyncCore {
    facility: FacilityId,
    config: SyncConfig,
    cursor: u64,
    resync: bool,
    /// `oldest_valid` of the expiry that started the resync; 0 after a
    /// restart, which at worst costs one more expiry and restart.
    resync_floor: u64,
    last_success: Option<Timestamp>,
    uplink_up: bool,
    phase: Phase,
    consecutive_failures: u32,
    jitter: StdRng,
    outputs: VecDeque<SyncOutput>,
    announced_wakeup: Option<Timestamp>,
}

fn after(now: Timestamp, delay: Duration) -> Timestamp {
    now.saturating_add(delay).unwrap_or(Timestamp::MAX)
}

impl SyncCore {
    /// Builds the core from what the store persisted. A core starting from
    /// cursor 0 fetches a full snapshot, which is applied as a resync.
    pub fn new(
        facility: FacilityId,
        cursor: u64,
        resync_in_progress: bool,
        last_success: Option<Timestamp>,
        mut config: SyncConfig,
    ) -> Self {
        config.page_limit = config.page_limit.max(1);
        let jitter = StdRng::seed_from_u64(config.jitter_seed);
        Self {
            facility,
            config,
            cursor,
            resync: resync_in_progress || cursor == 0,
            resync_floor: 0,
            last_success,
            uplink_up: false,
            phase: Phase::Waiting { at: None },
            consecutive_failures: 0,
            jitter,
            outputs: VecDeque::new(),
            announced_wakeup: None,
        }
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    pub fn resync_in_progress(&self) -> bool {
        self.resync
    }

    pub fn last_success(&self) -> Option<Timestamp> {
        self.last_success
    }

    pub fn uplink_up(&self) -> bool {
        self.uplink_up
    }

    pub fn freshness(&self, now: Timestamp) -> Freshness {
        Freshness {
            uplink_up: self.uplink_up,
            cache_age_secs: self
                .last_success
                .map(|at| u64::try_from(now.duration_since(at).as_secs()).unwrap_or(0)),
        }
    }

    /// When the core next needs a `Tick`, if it is waiting on time at all.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Waiting { at: Some(at) } if self.uplink_up => Some(at),
            Phase::InFlight { deadline, .. } => Some(deadline),
            Phase::Waiting { .. } | Phase::Applying { .. } => None,
        }
    }

    pub fn poll(&mut self) -> Option<SyncOutput> {
        self.outputs.pop_front()
    }

    pub fn handle(&mut self, now: Timestamp, input: SyncInput) {
        match input {
            SyncInput::Tick => {}
            SyncInput::UplinkUp => {
                if !self.uplink_up {
                    self.uplink_up = true;
                    // A fresh connection is worth trying at once, backoff or not.
                    if let Phase::Waiting { at } = &mut self.phase {
                        *at = None;
                    }
                }
            }
            SyncInput::UplinkDown => {
                self.uplink_up = false;
                if let Phase::InFlight { .. } = self.phase {
                    self.phase = Phase::Waiting { at: None };
                }
            }
            SyncInput::Response(response) => self.on_response(now, response),
            SyncInput::RequestFailed { error } => {
                if let Phase::InFlight { .. } = self.phase {
                    self.fail(now, FailureCause::Transport(error));
                } else {
                    self.ignore(format!("transport failure with no request in flight: {error}"));
                }
            }
            SyncInput::Applied { next_cursor } => {
                if let Phase::Applying { more } = self.phase {
                    self.cursor = next_cursor;
                    self.last_success = Some(now);
                    self.consecutive_failures = 0;
                    if self.resync && !more {
                        self.resync = false;
                        self.resync_floor = 0;
                        self.emit(SyncOutput::Event(SyncEvent::ResyncCompleted { cursor: next_cursor }));
                    }
                    self.phase = Phase::Waiting {
                        at: if more { None } else { Some(after(now, self.config.poll_interval)) },
                    };
                } else {
                    self.ignore(format!("Applied({next_cursor}) with no batch being applied"));
                }
            }
            SyncInput::ApplyFailed { error } => {
                if let Phase::Applying { .. } = self.phase {
                    self.fail(now, FailureCause::Apply(error));
                } else {
                    self.ignore(format!("ApplyFailed with no batch being applied: {error}"));
                }
            }
        }
        self.drive(now);
    }

    fn on_response(&mut self, now: Timestamp, response: CentralToEdge) {
        let Phase::InFlight { since, .. } = self.phase else {
            self.ignore(format!("response with no request in flight: {}", describe(&response)));
            return;
        };
        match response {
            CentralToEdge::Changes(batch) if batch.since != since => {
                self.ignore(format!("page from cursor {} while asking from {since}", batch.since));
            }
            CentralToEdge::Changes(batch) if batch.next_cursor < batch.since => {
                let problem =
                    format!("page moves the cursor back from {} to {}", batch.since, batch.next_cursor);
                self.fail(now, FailureCause::BadResponse(problem));
            }
            CentralToEdge::Changes(batch) => {
                let nothing_new = batch.changes.is_empty() && batch.next_cursor == batch.since && !batch.more;
                if nothing_new && !self.resync {
                    self.last_success = Some(now);
                    self.consecutive_failures = 0;
                    self.emit(SyncOutput::RecordSuccess { at: now });
                    self.phase = Phase::Waiting { at: Some(after(now, self.config.poll_interval)) };
                } else {
                    let mode = if self.resync { ApplyMode::Resync } else { ApplyMode::Normal };
                    self.phase = Phase::Applying { more: batch.more };
                    self.emit(SyncOutput::Apply { batch, mode });
                }
            }
            CentralToEdge::CursorExpired { since: expired, .. } if expired != since => {
                self.ignore(format!("CursorExpired for {expired} while asking from {since}"));
            }
            CentralToEdge::CursorExpired { since: 0, oldest_valid } => {
                let problem = format!("cursor 0 reported expired (oldest valid {oldest_valid})");
                self.fail(now, FailureCause::BadResponse(problem));
            }
            CentralToEdge::CursorExpired { since: expired, oldest_valid } => {
                self.cursor = 0;
                self.resync = true;
                self.resync_floor = oldest_valid;
                self.phase = Phase::Waiting { at: None };
                self.emit(SyncOutput::Event(SyncEvent::ResyncStarted {
                    expired_cursor: expired,
                    oldest_valid,
                }));
            }
            CentralToEdge::Error(error) => self.fail(now, FailureCause::Central(error)),
            CentralToEdge::Welcome { .. }
            | CentralToEdge::Delivered { .. }
            | CentralToEdge::ReleaseChunk { .. }
            | CentralToEdge::Ringing { .. }
            | CentralToEdge::CallEvents { .. }
            | CentralToEdge::CallEnded { .. }
            | CentralToEdge::CallWarned { .. }
            | CentralToEdge::MediaChunk { .. } => {
                self.ignore(format!("{} in answer to a change request", describe(&response)));
            }
        }
    }

    fn fail(&mut self, now: Timestamp, cause: FailureCause) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let retry_at = after(now, self.backoff_delay());
        self.phase = Phase::Waiting { at: Some(retry_at) };
        self.emit(SyncOutput::Event(SyncEvent::BackingOff {
            cause,
            consecutive_failures: self.consecutive_failures,
            retry_at,
        }));
    }

    /// Exponential backoff with "equal jitter": a uniform pick in the upper
    /// half of the capped exponential delay.
    fn backoff_delay(&mut self) -> Duration {
        let doublings = self.consecutive_failures.saturating_sub(1).min(32);
        let ceiling = self
            .config
            .backoff_initial
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.config.backoff_max);
        let half = ceiling / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.jitter.gen_range(0..=spread))
    }

    fn ignore(&mut self, what: String) {
        self.emit(SyncOutput::Event(SyncEvent::Ignored { what }));
    }

    fn emit(&mut self, output: SyncOutput) {
        self.outputs.push_back(output);
    }

    /// Sends when due, times out a silent request, and announces the next
    /// wake-up when it changed.
    fn drive(&mut self, now: Timestamp) {
        if let Phase::InFlight { deadline, .. } = self.phase {
            if now >= deadline {
                self.fail(now, FailureCause::Timeout);
            }
        }
        if let Phase::Waiting { at } = self.phase {
            if self.uplink_up && at.is_none_or(|at| at <= now) {
                self.phase =
                    Phase::InFlight { since: self.cursor, deadline: after(now, self.config.request_timeout) };
                self.emit(SyncOutput::Send(EdgeToCentral::Changes {
                    facility: self.facility.clone(),
                    since: self.cursor,
                    limit: self.config.page_limit,
                    resync_floor: if self.resync { self.resync_floor } else { 0 },
                }));
            }
        }
        let wakeup = self.next_wakeup();
        if wakeup != self.announced_wakeup {
            self.announced_wakeup = wakeup;
            if let Some(at) = wakeup {
                self.emit(SyncOutput::WakeAt(at));
            }
        }
    }
}

fn describe(response: &CentralToEdge) -> String {
    match response {
        CentralToEdge::Welcome { .. } => "Welcome".to_owned(),
        CentralToEdge::Changes(batch) => format!("page from cursor {}", batch.since),
        CentralToEdge::CursorExpired { since, .. } => format!("CursorExpired for {since}"),
        CentralToEdge::Error(error) => format!("error: {error}"),
        CentralToEdge::Delivered { acks } => format!("Delivered ({} acks)", acks.len()),
        CentralToEdge::ReleaseChunk { version, offset, bytes } => {
            format!("ReleaseChunk of {version} ({} bytes at {offset})", bytes.len())
        }
        CentralToEdge::Ringing { call_id } => format!("Ringing for call {call_id}"),
        CentralToEdge::CallEvents { events } => format!("CallEvents ({} events)", events.len()),
        CentralToEdge::CallEnded { call_id } => format!("CallEnded for call {call_id}"),
        CentralToEdge::CallWarned { call_id } => format!("CallWarned for call {call_id}"),
        CentralToEdge::MediaChunk { media, offset, bytes, .. } => {
            format!("MediaChunk of {media} ({} bytes at {offset})", bytes.len())
        }
    }
}

#[cfg(test)]
mod tests;
