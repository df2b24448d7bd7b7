//! The uplink to central: a QUIC client with the edge's identity issued by
//! central, driving the sans-IO sync core. Pages are committed to the store
//! first and applied to the in-memory directory only after the commit.

use std::time::Duration;

use edge_core::{
    directory::Directory,
    sync::{SyncEvent, SyncInput, SyncOutput},
};
use net::{quic, rpc, Bundle};
use proto::{central::CentralToEdge, MAX_CENTRAL_FRAME};

use crate::{
    config::Config,
    state::{EdgeState, Shared},
};

/// Longest the loop sleeps when the core asks for nothing sooner.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// Reconnect pacing while central is unreachable.
const RECONNECT_MIN: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// A central that has not answered within this is treated as gone: the
/// connection is dropped so that staleness shows at once and a fresh
/// connection is tried, instead of waiting out QUIC's idle timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

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
    let mut reconnect_delay = RECONNECT_MIN;
    let mut next_connect = tokio::time::Instant::now();
    loop {
        if connection.as_ref().is_some_and(|c| c.close_reason().is_some()) {
            connection = None;
            feed(&shared, SyncInput::UplinkDown);
        }
        if connection.is_none() && tokio::time::Instant::now() >= next_connect {
            match quic::connect(&endpoint, config.central_addr, &config.central_server_name).await {
                Ok(conn) => {
                    tracing::info!(central = %config.central_addr, "uplink connected");
                    connection = Some(conn);
                    reconnect_delay = RECONNECT_MIN;
                    feed(&shared, SyncInput::UplinkUp);
                }
                Err(error) => {
                    tracing::warn!(%error, central = %config.central_addr, retry_in = ?reconnect_delay,
                        "central unreachable; deciding from the cache");
                    shared.lock().counters.sync_failures += 1;
                    next_connect = tokio::time::Instant::now() + reconnect_delay;
                    reconnect_delay = (reconnect_delay * 2).min(RECONNECT_MAX);
                }
            }
        }

        let outputs = {
            let mut state = shared.lock();
            std::iter::from_fn(|| state.sync.poll()).collect::<Vec<_>>()
        };
        let mut wake = None;
        for output in outputs {
            match output {
                SyncOutput::Send(request) => {
                    let Some(conn) = connection.clone() else {
                        feed(&shared, SyncInput::UplinkDown);
                        continue;
                    };
                    match rpc::call_within::<_, CentralToEdge>(
                        &conn,
                        &request,
                        MAX_CENTRAL_FRAME,
                        REQUEST_TIMEOUT,
                    )
                    .await
                    {
                        Ok(response) => feed(&shared, SyncInput::Response(response)),
                        Err(error) => {
                            tracing::warn!(%error, "uplink request failed");
                            shared.lock().counters.sync_failures += 1;
                            if error.is_connection_lost() || matches!(error, rpc::RpcError::Timeout(_)) {
                                conn.close(0u32.into(), b"no answer");
                                connection = None;
                                feed(&shared, SyncInput::UplinkDown);
                            } else {
                                feed(&shared, SyncInput::RequestFailed { error: error.to_string() });
                            }
                        }
                    }
                }
                SyncOutput::Apply { batch, mode } => {
                    let mut state = shared.lock();
                    let now = jiff::Timestamp::now();
                    let input = match state.store.apply_batch(&batch, mode, now) {
                        Ok(outcome) => {
                            if outcome.swept > 0 {
                                // A completed resync dropped entities central no
                                // longer has: rebuild from what was committed.
                                rebuild_directory(&mut state);
                            } else {
                                state.directory.apply_all(&batch.changes);
                            }
                            state.counters.sync_batches += 1;
                            tracing::info!(
                                since = batch.since,
                                next = batch.next_cursor,
                                changes = batch.changes.len(),
                                swept = outcome.swept,
                                ?mode,
                                "applied a change-feed page"
                            );
                            SyncInput::Applied { next_cursor: batch.next_cursor }
                        }
                        Err(error) => {
                            tracing::error!(%error, since = batch.since, "could not apply a change-feed page");
                            SyncInput::ApplyFailed { error: error.to_string() }
                        }
                    };
                    state.sync.handle(now, input);
                }
                SyncOutput::RecordSuccess { at } => {
                    if let Err(error) = shared.lock().store.record_sync_success(at) {
                        tracing::warn!(%error, "cannot record the sync time");
                    }
                }
                SyncOutput::WakeAt(at) => wake = Some(at),
                SyncOutput::Event(event) => log_event(&event),
            }
        }
        let mut sleep = wake
            .map(|at| {
                let secs = at.duration_since(jiff::Timestamp::now()).as_secs_f64();
                Duration::from_secs_f64(secs.clamp(0.0, IDLE_WAKE.as_secs_f64()))
            })
            .unwrap_or(IDLE_WAKE);
        if connection.is_none() {
            sleep = sleep.min(next_connect.saturating_duration_since(tokio::time::Instant::now()));
        }
        if !sleep.is_zero() {
            tokio::time::sleep(sleep).await;
        }
        feed(&shared, SyncInput::Tick);
    }
}

fn rebuild_directory(state: &mut EdgeState) {
    match state.store.load_entities() {
        Ok(entities) => {
            let mut directory = Directory::new();
            for entity in entities {
                directory.upsert(entity);
            }
            state.directory = directory;
        }
        Err(error) => tracing::error!(%error, "cannot reload the cache after a resync"),
    }
}

fn feed(shared: &Shared, input: SyncInput) {
    let now = jiff::Timestamp::now();
    shared.lock().sync.handle(now, input);
}

fn log_event(event: &SyncEvent) {
    match event {
        SyncEvent::BackingOff { cause, consecutive_failures, retry_at } => {
            tracing::warn!(?cause, consecutive_failures, %retry_at, "sync backing off")
        }
        SyncEvent::ResyncStarted { expired_cursor, oldest_valid } => {
            tracing::warn!(expired_cursor, oldest_valid, "cursor expired at central: full resync started")
        }
        SyncEvent::ResyncCompleted { cursor } => tracing::info!(cursor, "full resync completed"),
        SyncEvent::Ignored { what } => tracing::debug!(what, "sync ignored a stale report"),
    }
}
