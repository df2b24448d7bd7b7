//! Tablet requests answered from the agent's state: what each RPC means,
//! independent of QUIC (the transport is in `tablet_api`).

use edge_core::{
    login::{Gate, GuardState, LoginOutcome, LoginPolicy},
    policy::{self, CallRequest},
};
use jiff::Timestamp;
use proto::{
    domain::{FacilityRecord, ResidentId, Service},
    tablet::{
        ApiError, BalancesView, CallDecision, ContactBalance, ContactList, ContactView, ServerEvent,
        SessionEndReason, SessionInfo, TabletRequest, TabletResponse,
    },
};
use serde_json::json;

use crate::state::EdgeState;

/// The first half of a login: everything that needs the state, before the
/// slow PIN hash check that must run without it.
pub enum LoginStart {
    Answer(TabletResponse),
    Verify { pin_hash: Option<String> },
}

fn login_policy(state: &EdgeState) -> LoginPolicy {
    match state.directory.facility() {
        Some(f) => LoginPolicy::new(f.login_max_failures, f.login_lockout_secs),
        None => LoginPolicy::new(
            FacilityRecord::DEFAULT_LOGIN_MAX_FAILURES,
            FacilityRecord::DEFAULT_LOGIN_LOCKOUT_SECS,
        ),
    }
}

fn guard_of(state: &EdgeState, resident: &ResidentId) -> Result<GuardState, Box<TabletResponse>> {
    state
        .store
        .login_guard(resident)
        .map(|row| {
            row.map(|r| GuardState { failures: r.failures, locked_until: r.locked_until }).unwrap_or_default()
        })
        .map_err(|e| Box::new(internal("login guard", &e)))
}

pub(crate) fn internal(what: &str, error: &dyn std::fmt::Display) -> TabletResponse {
    tracing::error!(%error, what, "store failure while answering a tablet");
    TabletResponse::Error(ApiError::Internal(format!("{what}: storage unavailable")))
}

pub fn login_start(state: &EdgeState, resident: &ResidentId, now: Timestamp) -> LoginStart {
    let guard = match guard_of(state, resident) {
        Ok(guard) => guard,
        Err(answer) => return LoginStart::Answer(*answer),
    };
    if let Gate::Locked { until } = guard.gate(now) {
        tracing::info!(%resident, %until, "login refused: ID locked");
        return LoginStart::Answer(TabletResponse::Error(ApiError::LockedOut { until }));
    }
    // Unknown and inactive IDs go through the same counting as wrong PINs so
    // that a tablet cannot tell which IDs exist.
    let pin_hash = state.directory.resident(resident).filter(|r| r.active).map(|r| r.pin_hash.clone());
    LoginStart::Verify { pin_hash }
}

/// Checks a PIN against an argon2 PHC hash. Slow by design: run it off the
/// async runtime.
pub fn verify_pin(pin_hash: Option<&str>, pin: &str) -> bool {
    use argon2::{password_hash::PasswordHash, Argon2, PasswordVerifier};
    let Some(hash) = pin_hash else { return false };
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(pin.as_bytes(), &parsed).is_ok(),
        Err(error) => {
            tracing::error!(%error, "stored PIN hash is not a valid PHC string");
            false
        }
    }
}

/// The second half of a login, with the PIN check's result.
pub fn login_finish(
    state: &mut EdgeState,
    connection: u64,
    resident: &ResidentId,
    pin_ok: bool,
    now: Timestamp,
) -> TabletResponse {
    let guard = match guard_of(state, resident) {
        Ok(guard) => guard,
        Err(answer) => return *answer,
    };
    let (next, outcome) = guard.record(login_policy(state), pin_ok, now);
    if let Err(e) = state.store.save_login_guard(resident, next.failures, next.locked_until) {
        return internal("login guard", &e);
    }
    let device = state.devices.get(&connection).map(|d| d.name.clone()).unwrap_or_default();
    match outcome {
        LoginOutcome::Success => {
            let Some(record) = state.directory.resident(resident).cloned() else {
                return TabletResponse::Error(ApiError::BadCredentials { remaining_attempts: 0 });
            };
            let (session, displaced) = state.sessions.login(resident.clone(), connection);
            if let Some(old) = displaced.elsewhere {
                if let Some(old_device) = state.devices.get(&old.connection) {
                    let _ = old_device
                        .events
                        .send(ServerEvent::SessionEnded { reason: SessionEndReason::LoggedInElsewhere });
                }
                tracing::info!(%resident, old_session = old.session_id, "older session ended by a new login");
            }
            state.counters.logins_ok += 1;
            audit(state, &device, "login", json!({"resident": resident, "session": session.session_id}), now);
            tracing::info!(%resident, %device, session = session.session_id, "resident logged in");
            TabletResponse::LoggedIn(SessionInfo {
                resident: record.id,
                name: record.name,
                unit: record.unit,
                session_id: session.session_id,
            })
        }
        LoginOutcome::Failed { remaining_attempts } => {
            state.counters.logins_failed += 1;
            audit(state, &device, "login-failed", json!({"resident": resident}), now);
            tracing::info!(%resident, %device, remaining_attempts, "login failed");
            TabletResponse::Error(ApiError::BadCredentials { remaining_attempts })
        }
        LoginOutcome::LockedOut { until } => {
            state.counters.logins_failed += 1;
            audit(state, &device, "login-locked", json!({"resident": resident, "until": until}), now);
            tracing::warn!(%resident, %device, %until, "resident ID locked after repeated failures");
            TabletResponse::Error(ApiError::LockedOut { until })
        }
    }
}

fn audit(state: &mut EdgeState, actor: &str, action: &str, detail: serde_json::Value, now: Timestamp) {
    if let Err(error) = state.audit(actor, action, &detail, now) {
        // The decision already stands; a missing audit row is loud, not silent.
        tracing::error!(%error, action, "audit append failed");
    }
}

/// Answers every request except `Login` (see [`login_start`]).
pub fn handle(
    state: &mut EdgeState,
    connection: u64,
    request: TabletRequest,
    now: Timestamp,
) -> TabletResponse {
    let Some(session) = state.sessions.session_of(connection).cloned() else {
        return TabletResponse::Error(ApiError::NotLoggedIn);
    };
    let resident_id = session.resident.clone();
    let Some(resident) = state.directory.resident(&resident_id).cloned() else {
        state.sessions.end_connection(connection);
        return TabletResponse::Error(ApiError::SessionEnded { reason: SessionEndReason::ResidentInactive });
    };
    let device = state.devices.get(&connection).map(|d| d.name.clone()).unwrap_or_default();
    match request {
        TabletRequest::Login { .. } => {
            TabletResponse::Error(ApiError::Malformed("login is handled separately".into()))
        }
        TabletRequest::Logout => {
            state.sessions.end_connection(connection);
            audit(state, &device, "logout", json!({"resident": resident_id}), now);
            TabletResponse::LoggedOut
        }
        TabletRequest::Contacts => {
            let contacts = state
                .directory
                .contacts_of(&resident_id)
                .map(|c| {
                    let available = |service| {
                        policy::availability(
                            &state.directory,
                            &state.lockdowns,
                            &resident_id,
                            c,
                            service,
                            now,
                        )
                    };
                    ContactView {
                        id: c.id,
                        name: c.name.clone(),
                        numbers: c.numbers.clone(),
                        voice: available(Service::Voice),
                        video: available(Service::Video),
                        message: available(Service::Message),
                        video_balance_cents: c.video_balance_cents,
                        video_rate_cents_per_min: c.video_rate_cents_per_min,
                    }
                })
                .collect();
            TabletResponse::Contacts(ContactList { contacts, freshness: state.freshness_at(now) })
        }
        TabletRequest::Hours => {
            match policy::hours(&state.directory, &state.lockdowns, &resident.unit, now) {
                Ok(view) => TabletResponse::Hours(view),
                Err(reason) => TabletResponse::Error(ApiError::Unavailable { reason }),
            }
        }
        TabletRequest::PlaceCall { contact, kind, number } => {
            let request = CallRequest { resident: resident_id.clone(), contact, kind, number };
            let decision = policy::decide_call(&state.directory, &state.lockdowns, &request, now);
            match &decision {
                CallDecision::Allowed { .. } => state.counters.calls_allowed += 1,
                CallDecision::Denied(_) => state.counters.calls_denied += 1,
            }
            tracing::info!(resident = %resident_id, %contact, ?kind, ?decision, "call decision");
            audit(
                state,
                &device,
                "call-decision",
                json!({"resident": resident_id, "contact": contact, "kind": kind, "number": request.number,
                       "decision": decision}),
                now,
            );
            TabletResponse::Call(decision)
        }
        TabletRequest::StartCall { contact, kind, number } => {
            state.start_call(connection, &device, &resident_id, contact, kind, number, now)
        }
        TabletRequest::HangUp { call_id } => state.hang_up(&resident_id, call_id, now),
        request @ (TabletRequest::Mailbox { .. }
        | TabletRequest::ReadMessage { .. }
        | TabletRequest::SaveDraft { .. }
        | TabletRequest::DeleteDraft { .. }
        | TabletRequest::SendMessage { .. }
        | TabletRequest::HideSent { .. }
        | TabletRequest::ECards
        | TabletRequest::StampPackages
        | TabletRequest::BuyStamps { .. }
        | TabletRequest::StampBalance
        | TabletRequest::Media { .. }) => {
            crate::messaging_api::handle(state, &resident_id, &device, request, now)
        }
        TabletRequest::Balances => {
            let contacts = state
                .directory
                .contacts_of(&resident_id)
                .map(|c| ContactBalance {
                    contact: c.id,
                    name: c.name.clone(),
                    video_balance_cents: c.video_balance_cents,
                    video_rate_cents_per_min: c.video_rate_cents_per_min,
                })
                .collect();
            TabletResponse::Balances(BalancesView {
                debit_balance_cents: resident.debit_balance_cents,
                contacts,
                freshness: state.freshness_at(now),
            })
        }
    }
}
