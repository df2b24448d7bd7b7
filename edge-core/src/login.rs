//! Resident login rules: PIN failure counting with lockout, and the one live
//! session per resident.
//!
//! Owns: when an ID is locked, how many attempts remain, which session a new
//! login ends. Must not: verify PINs (argon2 is the shell's work, done off the
//! async runtime) or store anything; the shell persists [`GuardState`].

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use proto::domain::ResidentId;

/// Failure count and lock of one resident ID, as persisted by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuardState {
    pub failures: u32,
    pub locked_until: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    pub max_failures: u32,
    pub lockout: SignedDuration,
}

impl LoginPolicy {
    pub fn new(max_failures: u32, lockout_secs: u32) -> Self {
        // A zero limit would lock every ID forever on the first typo.
        Self {
            max_failures: max_failures.max(1),
            lockout: SignedDuration::from_secs(i64::from(lockout_secs)),
        }
    }
}

/// Whether a PIN may be checked at all right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Locked { until: Timestamp },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    Failed { remaining_attempts: u32 },
    LockedOut { until: Timestamp },
}

impl GuardState {
    /// The state as it stands at `now`: an expired lock is lifted and its
    /// failures forgotten.
    pub fn at(self, now: Timestamp) -> GuardState {
        match self.locked_until {
            Some(until) if until <= now => GuardState::default(),
            _ => self,
        }
    }

    pub fn gate(self, now: Timestamp) -> Gate {
        match self.at(now).locked_until {
            Some(until) => Gate::Locked { until },
            None => Gate::Open,
        }
    }

    /// Records the result of a PIN check made while the gate was open.
    pub fn record(self, policy: LoginPolicy, pin_ok: bool, now: Timestamp) -> (GuardState, LoginOutcome) {
        let current = self.at(now);
        if let Some(until) = current.locked_until {
            return (current, LoginOutcome::LockedOut { until });
        }
        if pin_ok {
            return (GuardState::default(), LoginOutcome::Success);
        }
        let failures = current.failures.saturating_add(1);
        if failures >= policy.max_failures {
            let until = now.saturating_add(policy.lockout).unwrap_or(Timestamp::MAX);
            (GuardState { failures, locked_until: Some(until) }, LoginOutcome::LockedOut { until })
        } else {
            (
                GuardState { failures, locked_until: None },
                LoginOutcome::Failed { remaining_attempts: policy.max_failures - failures },
            )
        }
    }
}

/// Identifies one device connection in the shell.
pub type ConnectionId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub session_id: u64,
    pub resident: ResidentId,
    pub connection: ConnectionId,
}

/// The live sessions: at most one per resident and one per connection.
#[derive(Debug, Default)]
pub struct SessionTable {
    by_resident: HashMap<ResidentId, LiveSession>,
    by_connection: HashMap<ConnectionId, ResidentId>,
    next_id: u64,
}

/// What a successful login displaced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Displaced {
    /// The resident's earlier session on another connection, which must be
    /// told it ended because of a login elsewhere.
    pub elsewhere: Option<LiveSession>,
    /// The session that was on this connection before (another resident, or
    /// the same resident logging in again).
    pub on_this_connection: Option<LiveSession>,
}

impl SessionTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a session for `resident` bound to `connection`, ending the
    /// resident's older session and whatever this connection held before.
    pub fn login(&mut self, resident: ResidentId, connection: ConnectionId) -> (LiveSession, Displaced) {
        let on_this_connection = self.end_connection(connection);
        let elsewhere = self.by_resident.remove(&resident).inspect(|old| {
            self.by_connection.remove(&old.connection);
        });
        self.next_id += 1;
        let session = LiveSession { session_id: self.next_id, resident: resident.clone(), connection };
        self.by_connection.insert(connection, resident.clone());
        self.by_resident.insert(resident, session.clone());
        (session, Displaced { elsewhere, on_this_connection })
    }

    /// Ends the session bound to `connection` (logout or disconnect).
    pub fn end_connection(&mut self, connection: ConnectionId) -> Option<LiveSession> {
        let resident = self.by_connection.remove(&connection)?;
        self.by_resident.remove(&resident)
    }

    /// Ends a resident's session wherever it is (e.g. the resident was deactivated).
    pub fn end_resident(&mut self, resident: &ResidentId) -> Option<LiveSession> {
        let session = self.by_resident.remove(resident)?;
        self.by_connection.remove(&session.connection);
        Some(session)
    }

    pub fn session_of(&self, connection: ConnectionId) -> Option<&LiveSession> {
        self.by_resident.get(self.by_connection.get(&connection)?)
    }

    pub fn len(&self) -> usize {
        self.by_resident.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_resident.is_empty()
    }

    pub fn sessions(&self) -> impl Iterator<Item = &LiveSession> {
        self.by_resident.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    const POLICY: LoginPolicy = LoginPolicy { max_failures: 5, lockout: SignedDuration::from_secs(900) };

    #[test]
    fn five_failures_lock_for_fifteen_minutes() {
        let mut state = GuardState::default();
        for attempt in 1..=4u32 {
            let (next, outcome) = state.record(POLICY, false, t(attempt.into()));
            assert_eq!(outcome, LoginOutcome::Failed { remaining_attempts: 5 - attempt });
            state = next;
        }
        let (state, outcome) = state.record(POLICY, false, t(5));
        assert_eq!(outcome, LoginOutcome::LockedOut { until: t(905) });
        assert_eq!(state.gate(t(904)), Gate::Locked { until: t(905) });
        // Even the right PIN does not open a locked ID.
        assert_eq!(state.record(POLICY, true, t(600)).1, LoginOutcome::LockedOut { until: t(905) });
        assert_eq!(state.gate(t(905)), Gate::Open);
        assert_eq!(state.record(POLICY, true, t(905)), (GuardState::default(), LoginOutcome::Success));
    }

    #[test]
    fn success_resets_the_count_and_expired_lock_forgets_failures() {
        let (state, _) = GuardState::default().record(POLICY, false, t(0));
        let (state, _) = state.record(POLICY, false, t(1));
        let (state, outcome) = state.record(POLICY, true, t(2));
        assert_eq!(outcome, LoginOutcome::Success);
        assert_eq!(state, GuardState::default());

        let locked = GuardState { failures: 5, locked_until: Some(t(10)) };
        let (after, outcome) = locked.record(POLICY, false, t(11));
        assert_eq!(outcome, LoginOutcome::Failed { remaining_attempts: 4 });
        assert_eq!(after.failures, 1);
    }

    #[test]
    fn a_new_login_ends_the_residents_older_session() {
        let mut table = SessionTable::new();
        let r = ResidentId::new("R1001");
        let (first, displaced) = table.login(r.clone(), 1);
        assert_eq!(displaced, Displaced::default());
        let (second, displaced) = table.login(r.clone(), 2);
        assert_eq!(displaced.elsewhere, Some(first));
        assert_ne!(second.session_id, displaced.elsewhere.unwrap().session_id);
        assert!(table.session_of(1).is_none(), "the old connection has no session any more");
        assert_eq!(table.session_of(2), Some(&second));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_connection_holds_one_session_and_disconnect_ends_it() {
        let mut table = SessionTable::new();
        let (a, _) = table.login(ResidentId::new("R1"), 7);
        let (_, displaced) = table.login(ResidentId::new("R2"), 7);
        assert_eq!(displaced.on_this_connection, Some(a));
        assert_eq!(table.len(), 1);
        assert!(table.end_connection(7).is_some());
        assert!(table.is_empty());
        assert!(table.end_connection(7).is_none());
    }
}
