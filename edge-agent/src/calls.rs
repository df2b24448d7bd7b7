//! The calls shell (issue 5): carries out what the sans-IO call core
//! ([`edge_core::call::CallTable`]) asks, feeds it the contact's events, the
//! tablet's hangups and connection losses, policy changes and time.
//!
//! - One task ([`run`]) sleeps until the table's earliest deadline (ring
//!   timeout, warning, cut at the limit, next checkpoint) or until something
//!   changed, and sends the contact-side requests to central (`RingContact`,
//!   `EndCall`) each from its own task, so a slow central never delays a cut.
//! - Another ([`poll_status`]) asks central every 250 ms for the contact's
//!   events of the calls that ring or run.
//! - Every change of the table happens under the state lock and is drained
//!   at once ([`EdgeState::drain_calls`]): checkpoints to SQLite, updates to
//!   the resident's tablet, the record to the outbox in the transaction
//!   that deletes the checkpoint.
//! - Time into the core is the monotonic time since the agent started
//!   (`EdgeState::call_epoch`); the wall clock only stamps the record.

use std::time::Duration;

use edge_core::call::{CallAction, CallEvent, CallId, CallSetup, CallTable, CallView, EndReason, Revocation};
use edge_core::policy::{self, CallRequest};
use jiff::Timestamp;
use net::rpc;
use proto::call::{CallState, CallUpdate, ContactEvent};
use proto::central::{CentralToEdge, EdgeToCentral};
use proto::domain::{CallKind, ContactId, FacilityId, PhoneNumber, ResidentId};
use proto::messaging::{IdempotencyKey, OutboxBody, OutboxItem};
use proto::tablet::{ApiError, CallDecision, ServerEvent, TabletResponse};
use proto::MAX_CENTRAL_FRAME;
use rand::{rngs::OsRng, RngCore};
use tokio::sync::mpsc;

use crate::state::{EdgeState, Shared};

/// How often central is asked for the contact's events while calls ring or run.
pub const STATUS_INTERVAL: Duration = Duration::from_millis(250);
/// Longest wait for central's answer to a call request.
const CALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an `EndCall` waits for an uplink (calls recovered at startup end
/// before the uplink is up).
const END_CALL_PATIENCE: Duration = Duration::from_secs(30);
/// Longest sleep of the calls task when nothing is due.
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// A request to central the calls task sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CentralOp {
    Ring { call_id: CallId, request: EdgeToCentral },
    End { call_id: CallId, reason: EndReason },
    Warn { call_id: CallId, remaining_secs: u32 },
}

fn contact_event(event: ContactEvent) -> CallEvent {
    match event {
        ContactEvent::Answered => CallEvent::Answered,
        ContactEvent::Declined => CallEvent::Declined,
        ContactEvent::HungUp => CallEvent::ContactHungUp,
    }
}

fn random_call_id() -> Result<CallId, rand::Error> {
    let mut bytes = [0u8; 8];
    OsRng.try_fill_bytes(&mut bytes)?;
    Ok(CallId(u64::from_be_bytes(bytes)))
}

fn random_key() -> Result<IdempotencyKey, rand::Error> {
    let mut bytes = [0u8; 16];
    OsRng.try_fill_bytes(&mut bytes)?;
    Ok(IdempotencyKey::from_u128(u128::from_be_bytes(bytes)))
}

impl EdgeState {
    /// Monotonic time for the call core.
    pub fn call_now(&self) -> Duration {
        self.call_epoch.elapsed()
    }

    /// A resident places a call from the tablet on `connection`: the policy
    /// decides, then the call core rings the contact.
    #[allow(clippy::too_many_arguments)]
    pub fn start_call(
        &mut self,
        connection: u64,
        device: &str,
        resident: &ResidentId,
        contact: ContactId,
        kind: CallKind,
        number: Option<PhoneNumber>,
        wall_now: Timestamp,
    ) -> TabletResponse {
        if let Some(existing) = self.calls.live_call_of(resident) {
            return TabletResponse::Error(ApiError::CallInProgress { call_id: existing.0 });
        }
        let request = CallRequest { resident: resident.clone(), contact, kind, number: number.clone() };
        let decision = policy::decide_call(&self.directory, &self.lockdowns, &request, wall_now);
        match &decision {
            CallDecision::Allowed { .. } => self.counters.calls_allowed += 1,
            CallDecision::Denied(_) => self.counters.calls_denied += 1,
        }
        let detail = serde_json::json!({"resident": resident, "contact": contact, "kind": kind,
            "number": request.number, "decision": decision, "placed": true});
        if let Err(error) = self.audit(device, "call-decision", &detail, wall_now) {
            // The decision stands; a missing audit row is loud, not silent.
            tracing::error!(%error, "audit append failed");
        }
        let (max_duration_secs, warn_at_secs) = match &decision {
            CallDecision::Allowed { max_duration_secs, warn_at_secs, .. } => {
                (*max_duration_secs, *warn_at_secs)
            }
            CallDecision::Denied(reason) => {
                tracing::info!(%resident, %contact, ?kind, ?reason, "call denied");
                return TabletResponse::Call(decision);
            }
        };
        let (Some(record), Some(contact_record)) =
            (self.directory.resident(resident), self.directory.contact(contact))
        else {
            return TabletResponse::Error(ApiError::Malformed("unknown resident or contact".into()));
        };
        // Video is checked against the primary number, voice against the
        // dialled one (the policy's rule); either way the number rung is one
        // the policy just approved.
        let primary = contact_record.numbers.first().cloned();
        let number = match kind {
            CallKind::Video => primary,
            CallKind::Voice => number.or(primary),
        };
        let Some(number) = number else {
            return TabletResponse::Error(ApiError::Malformed("the contact has no number".into()));
        };
        let setup = CallSetup {
            resident: resident.clone(),
            unit: record.unit.clone(),
            contact,
            kind,
            number,
            rate_cents_per_min: contact_record.video_rate_cents_per_min,
            balance_cents: contact_record.video_balance_cents,
        };
        let id = match random_call_id() {
            Ok(id) => id,
            Err(error) => return crate::api::internal("call id", &error),
        };
        let now = self.call_now();
        if let Err(error) = self.calls.place(id, setup, &decision, now, wall_now) {
            tracing::warn!(%resident, %contact, %error, "call not placed");
            return TabletResponse::Error(ApiError::Internal(format!("call not placed: {error}")));
        }
        self.call_owners.insert(id, connection);
        self.call_limits.insert(id, max_duration_secs);
        tracing::info!(call = id.0, %resident, %contact, ?kind, max_duration_secs, warn_at_secs, "call placed");
        self.drain_calls(wall_now);
        self.calls_wake.notify_one();
        let media = self.relay.as_ref().map(|_| proto::call::CallMedia {
            publish: media_link::call_path(&self.facility, id.0, media_link::Side::Resident),
            subscribe: media_link::call_path(&self.facility, id.0, media_link::Side::Contact),
        });
        TabletResponse::CallStarted { call_id: id.0, max_duration_secs, warn_at_secs, media }
    }

    /// The resident hangs up.
    pub fn hang_up(&mut self, resident: &ResidentId, call_id: u64, wall_now: Timestamp) -> TabletResponse {
        let id = CallId(call_id);
        let live = self.calls.get(id).is_some_and(|s| !s.is_ended() && &s.setup().resident == resident);
        if !live {
            return TabletResponse::Error(ApiError::UnknownCall { call_id });
        }
        self.call_event(id, CallEvent::ResidentHungUp, wall_now);
        TabletResponse::HungUp { call_id }
    }

    /// One event for one call, carried out at once.
    pub fn call_event(&mut self, id: CallId, event: CallEvent, wall_now: Timestamp) {
        let now = self.call_now();
        self.calls.handle_event(id, now, event);
        self.drain_calls(wall_now);
        self.calls_wake.notify_one();
    }

    /// The tablet connection dropped: its calls end.
    pub fn calls_connection_lost(&mut self, connection: u64, wall_now: Timestamp) {
        let ids: Vec<CallId> =
            self.call_owners.iter().filter(|(_, c)| **c == connection).map(|(id, _)| *id).collect();
        for id in ids {
            self.call_event(id, CallEvent::ConnectionLost, wall_now);
        }
    }

    /// After a lockdown, or a sync page that may carry a suspension, block
    /// or closed account: decides every live call again and cuts those a
    /// fresh decision revokes. Returns how many were cut.
    pub fn recheck_calls(&mut self, wall_now: Timestamp) -> usize {
        let now = self.call_now();
        let (directory, lockdowns) = (&self.directory, &self.lockdowns);
        let cut = self.calls.on_policy_change(now, |session| {
            let setup = session.setup();
            let request = CallRequest {
                resident: setup.resident.clone(),
                contact: setup.contact,
                kind: setup.kind,
                number: Some(setup.number.clone()),
            };
            match policy::decide_call(directory, lockdowns, &request, wall_now) {
                CallDecision::Denied(reason) => Revocation::from_deny(&reason),
                CallDecision::Allowed { .. } => None,
            }
        });
        if cut > 0 {
            tracing::warn!(cut, "live calls cut by a policy change");
        }
        self.drain_calls(wall_now);
        self.calls_wake.notify_one();
        cut
    }

    /// Ends every call a crashed agent left behind (as `EdgeRestarted`,
    /// billed to its last checkpoint). Run once at startup.
    pub fn recover_calls(&mut self, wall_now: Timestamp) -> Result<usize, crate::store::StoreError> {
        let checkpoints = self.store.call_checkpoints()?;
        for checkpoint in &checkpoints {
            tracing::warn!(call = checkpoint.id.0, resident = %checkpoint.setup.resident,
                connected_secs = ?checkpoint.connected_secs, "ending a call the previous run left behind");
        }
        // At startup the table is empty; the recovered calls are ended,
        // and drained they leave it empty again.
        self.calls = CallTable::recover(Default::default(), &checkpoints);
        self.drain_calls(wall_now);
        Ok(checkpoints.len())
    }

    /// Carries out every action the call core has queued, in order.
    pub fn drain_calls(&mut self, wall_now: Timestamp) {
        while let Some((id, action)) = self.calls.poll_action() {
            match action {
                CallAction::Checkpoint(checkpoint) => {
                    if let Err(error) = self.store.save_call_checkpoint(&checkpoint) {
                        tracing::error!(call = id.0, %error, "cannot persist a call checkpoint");
                    }
                }
                CallAction::Ring => {
                    let Some(session) = self.calls.get(id) else { continue };
                    let setup = session.setup().clone();
                    let caller_name =
                        self.directory.resident(&setup.resident).map(|r| r.name.clone()).unwrap_or_default();
                    let max_duration_secs = match session.view(self.call_now()) {
                        CallView::Connected { limit_secs, .. } => limit_secs,
                        _ => self.call_limits.get(&id).copied().unwrap_or(0),
                    };
                    let request = EdgeToCentral::RingContact {
                        facility: FacilityId::new(self.facility.clone()),
                        call_id: id.0,
                        resident: setup.resident,
                        caller_name,
                        contact: setup.contact,
                        kind: setup.kind,
                        number: setup.number,
                        max_duration_secs,
                        rate_cents_per_min: setup.rate_cents_per_min,
                        balance_cents: setup.balance_cents,
                    };
                    self.send_central(CentralOp::Ring { call_id: id, request });
                }
                CallAction::TabletState(view) => {
                    let state = match view {
                        CallView::Ringing => CallState::Ringing,
                        CallView::Connected { warned: false, limit_secs, .. } => {
                            CallState::Connected { limit_secs }
                        }
                        // The warning itself went out with `Warn`.
                        CallView::Connected { warned: true, .. } => continue,
                        CallView::Ended { outcome } => CallState::Ended { reason: outcome },
                    };
                    self.push_call(id, state);
                    if matches!(view, CallView::Ended { .. }) {
                        self.close_media(id);
                        self.call_owners.remove(&id);
                        self.call_limits.remove(&id);
                    }
                }
                CallAction::Warn { remaining_secs } => {
                    tracing::info!(call = id.0, remaining_secs, "call warned");
                    self.push_call(id, CallState::Warned { remaining_secs });
                    self.send_central(CentralOp::Warn { call_id: id, remaining_secs });
                }
                CallAction::CutBothLegs { reason } => {
                    tracing::info!(call = id.0, ?reason, "call cut");
                    self.close_media(id);
                    self.send_central(CentralOp::End { call_id: id, reason });
                }
                CallAction::EmitCdr(cdr) => {
                    let key = match random_key() {
                        Ok(key) => key,
                        Err(error) => {
                            // The checkpoint stays: the next start records the call.
                            tracing::error!(call = id.0, %error, "no random key for a call record");
                            continue;
                        }
                    };
                    tracing::info!(
                        call = id.0,
                        connected_secs = cdr.connected_secs,
                        charged_cents = cdr.charged_cents,
                        "call recorded"
                    );
                    let item = OutboxItem { key, created_at: wall_now, body: OutboxBody::CallRecord(cdr) };
                    match self.store.finish_call(id, &item) {
                        Ok(_) => self.feed_after_commit(wall_now),
                        // The checkpoint stays, so the next start records it.
                        Err(error) => tracing::error!(call = id.0, %error, "cannot commit a call record"),
                    }
                }
            }
        }
    }

    fn push_call(&self, id: CallId, state: CallState) {
        let Some(connection) = self.call_owners.get(&id) else { return };
        if let Some(device) = self.devices.get(connection) {
            let _ = device.events.send(ServerEvent::Call(CallUpdate { call_id: id.0, state }));
        }
    }

    fn send_central(&self, op: CentralOp) {
        if self.call_ops.send(op).is_err() {
            tracing::warn!("the calls task is gone; a call request to central is dropped");
        }
    }
}

/// The calls task: runs deadlines on time and sends requests to central.
pub async fn run(shared: Shared, mut ops: mpsc::UnboundedReceiver<CentralOp>) {
    let (wake, epoch) = {
        let state = shared.lock();
        (state.calls_wake.clone(), state.call_epoch)
    };
    loop {
        let deadline = {
            let mut state = shared.lock();
            let now = state.call_now();
            state.calls.handle_timeout(now);
            state.drain_calls(Timestamp::now());
            state.calls.poll_timeout()
        };
        let idle = tokio::time::Instant::now() + IDLE_WAKE;
        let until = deadline.map_or(idle, |d| (epoch + d).min(idle));
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = wake.notified() => {}
            op = ops.recv() => match op {
                Some(op) => { tokio::spawn(send_op(shared.clone(), op)); }
                None => return,
            },
        }
    }
}

async fn call_central(shared: &Shared, request: &EdgeToCentral) -> Result<CentralToEdge, String> {
    let Some(conn) = shared.lock().uplink.clone() else { return Err("uplink down".into()) };
    rpc::call_within::<_, CentralToEdge>(&conn, request, MAX_CENTRAL_FRAME, CALL_REQUEST_TIMEOUT)
        .await
        .map_err(|e| e.to_string())
}

async fn send_op(shared: Shared, op: CentralOp) {
    match op {
        CentralOp::Ring { call_id, request } => match call_central(&shared, &request).await {
            Ok(CentralToEdge::Ringing { .. }) => tracing::debug!(call = call_id.0, "contact ringing"),
            other => {
                // Nobody can pick up a phone that never rang.
                tracing::warn!(call = call_id.0, answer = ?other, "central could not ring the contact");
                shared.lock().call_event(call_id, CallEvent::Declined, Timestamp::now());
            }
        },
        CentralOp::Warn { call_id, remaining_secs } => {
            let facility = FacilityId::new(shared.lock().facility.clone());
            let request = EdgeToCentral::WarnCall { facility, call_id: call_id.0, remaining_secs };
            // One try: a warning that arrives late is worse than none, and the
            // cut comes on the edge's clock either way.
            match call_central(&shared, &request).await {
                Ok(CentralToEdge::CallWarned { .. }) => {}
                other => {
                    tracing::warn!(call = call_id.0, answer = ?other, "the contact's warning did not reach central")
                }
            }
        }
        CentralOp::End { call_id, reason } => {
            let facility = FacilityId::new(shared.lock().facility.clone());
            let request = EdgeToCentral::EndCall { facility, call_id: call_id.0, reason };
            let give_up = tokio::time::Instant::now() + END_CALL_PATIENCE;
            loop {
                match call_central(&shared, &request).await {
                    Ok(CentralToEdge::CallEnded { .. }) => return,
                    other if tokio::time::Instant::now() >= give_up => {
                        tracing::warn!(call = call_id.0, answer = ?other, "central did not take the end of a call");
                        return;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        }
    }
}

/// Asks central for the contact's events while calls ring or run.
pub async fn poll_status(shared: Shared) {
    let mut ticker = tokio::time::interval(STATUS_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let (call_ids, facility) = {
            let state = shared.lock();
            let ids: Vec<u64> = state.calls.live().map(|s| s.id().0).collect();
            (ids, FacilityId::new(state.facility.clone()))
        };
        if call_ids.is_empty() {
            continue;
        }
        let request = EdgeToCentral::CallStatus { facility, call_ids };
        match call_central(&shared, &request).await {
            Ok(CentralToEdge::CallEvents { events }) => {
                if events.is_empty() {
                    continue;
                }
                let mut state = shared.lock();
                for event in events {
                    state.call_event(CallId(event.call_id), contact_event(event.event), Timestamp::now());
                }
            }
            other => tracing::debug!(answer = ?other, "no call status from central"),
        }
    }
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
