//! The uplink to central: a QUIC client with the edge's identity issued by
//! central, driving the sans-IO sync core. Pages are committed to the store
//! first and applied to the in-memory directory only after the commit.

use std::time::Duration;

use edge_core::sync::{SyncInput, SyncOutput};
use net::{quic, rpc, Bundle};
use proto::{
    central::{CentralToEdge, EdgeToCentral},
    MAX_CENTRAL_FRAME,
};

use crate::{config::Config, state::Shared};

/// Longest the loop sleeps when the core asks for nothing sooner.
const IDLE_WAKE: Duration = Duration::from_secs(1);

pub async fn run(config: Config, shared: Shared) {
    let path = config.uplink_bundle_path();
    let identity = match Bundle::load(&path) {
        Ok(identity) => identity,
        Err(error) => {
            tracing::error!(%error, path = %path.display(),
                "no uplink identity: running from the cache only (install the bundle central issued and restart)");
            return;
        }
    };
    let endpoint = match quic::client_endpoint(&identity, quic::CENTRAL_ALPN) {
        Ok(endpoint) => endpoint,
        Err(error) => {
            tracing::error!(%error, "cannot create the uplink endpoint");
            return;
        }
    };
    let mut connection: Option<quinn::Connection> = None;
    feed(&shared, SyncInput::Tick);
    loop {
        let outputs = {
            let mut state = shared.lock();
            std::iter::from_fn(|| state.sync.poll()).collect::<Vec<_>>()
        };
        let mut wake = None;
        for output in outputs {
            match output {
                SyncOutput::Send(request) => {
                    let input = exchange(&endpoint, &config, &mut connection, &request).await;
                    feed(&shared, input);
                }
                SyncOutput::Apply { batch, mode } => {
                    let mut state = shared.lock();
                    let now = jiff::Timestamp::now();
                    let input = match state.store.apply_batch(&batch, mode, now) {
                        Ok(outcome) => {
                            state.directory.apply_all(&batch.changes);
                            for key in &outcome.deleted {
                                state.directory.delete(key);
                            }
                            state.cursor = batch.next_cursor;
                            state.last_sync = Some(now);
                            state.counters.sync_batches += 1;
                            tracing::info!(since = batch.since, next = batch.next_cursor,
                                changes = batch.changes.len(), ?mode, "applied a change-feed page");
                            SyncInput::Applied { next_cursor: batch.next_cursor }
                        }
                        Err(error) => {
                            tracing::error!(%error, since = batch.since, "could not apply a change-feed page");
                            SyncInput::ApplyFailed { error: error.to_string() }
                        }
                    };
                    state.sync.handle(now, input);
                }
                SyncOutput::WakeAt(at) => wake = Some(at),
            }
        }
        let sleep = wake
            .map(|at| {
                let secs = at.duration_since(jiff::Timestamp::now()).as_secs_f64();
                Duration::from_secs_f64(secs.clamp(0.0, IDLE_WAKE.as_secs_f64()))
            })
            .unwrap_or(IDLE_WAKE);
        tokio::time::sleep(sleep).await;
        feed(&shared, SyncInput::Tick);
    }
}

fn feed(shared: &Shared, input: SyncInput) {
    let now = jiff::Timestamp::now();
    let mut state = shared.lock();
    let up = !matches!(input, SyncInput::UplinkDown | SyncInput::RequestFailed { .. });
    if matches!(input, SyncInput::Response(_)) {
        state.uplink_up = up;
    } else if !up {
        state.uplink_up = false;
        state.counters.sync_failures += 1;
    }
    if matches!(input, SyncInput::Response(CentralToEdge::Changes(ref batch)) if batch.changes.is_empty() && !batch.more)
    {
        if let Err(error) = state.store.record_sync_success(now) {
            tracing::warn!(%error, "cannot record the sync time");
        } else {
            state.last_sync = Some(now);
        }
    }
    state.sync.handle(now, input);
}

async fn exchange(
    endpoint: &quinn::Endpoint,
    config: &Config,
    connection: &mut Option<quinn::Connection>,
    request: &EdgeToCentral,
) -> SyncInput {
    if connection.as_ref().is_some_and(|c| c.close_reason().is_some()) {
        *connection = None;
    }
    if connection.is_none() {
        match quic::connect(endpoint, config.central_addr, &config.central_server_name).await {
            Ok(conn) => {
                tracing::info!(central = %config.central_addr, "uplink connected");
                *connection = Some(conn);
            }
            Err(error) => {
                tracing::warn!(%error, central = %config.central_addr, "central unreachable; deciding from the cache");
                return SyncInput::RequestFailed { error: error.to_string() };
            }
        }
    }
    let Some(conn) = connection.as_ref() else {
        return SyncInput::RequestFailed { error: "no connection".into() };
    };
    match rpc::call::<_, CentralToEdge>(conn, request, MAX_CENTRAL_FRAME).await {
        Ok(response) => SyncInput::Response(response),
        Err(error) => {
            if error.is_connection_lost() {
                *connection = None;
            }
            tracing::warn!(%error, "uplink request failed");
            SyncInput::RequestFailed { error: error.to_string() }
        }
    }
}
