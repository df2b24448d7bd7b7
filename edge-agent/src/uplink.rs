//! The uplink to central: a QUIC client with the edge's identity issued by
//! central, driving the sans-IO sync and outbox cores over one connection.
//! Pages are committed to the store first and applied to the in-memory
//! directory and ledger only after the commit. Each outbox batch is one
//! `Deliver` request on its own stream, sent from its own task so that a
//! slow answer holds up neither the change feed nor the other batch in
//! flight; its answer (or failure) goes back to the outbox core, and the
//! loop here carries out the durable removals and parkings that follow.
//! `Hello` and update downloads run in [`crate::updater`] on the same
//! connection, one check at a time; attachments of inbound mail are
//! prefetched by [`crate::media_fetch`] the same way.

use std::time::Duration;

use edge_core::{
    directory::Directory,
    outbox,
    sync::{SyncEvent, SyncInput, SyncOutput},
};
use net::{quic, rpc, Bundle};
use proto::{
    central::{CentralToEdge, EdgeToCentral},
    domain::FacilityId,
    MAX_CENTRAL_FRAME,
};

use crate::{
    config::Config,
    media_fetch,
    state::{EdgeState, Shared, Transmit},
    updater,
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
/// How often the media prefetcher looks for attachments of newly synced
/// mail while the uplink is up.
const MEDIA_PASS_INTERVAL: Duration = Duration::from_secs(2);

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
    let facility = FacilityId::new(config.facility.clone());
    let outbox_wake = shared.lock().outbox_wake.clone();
    // Hello (and with it the update check) goes out on every connect and
    // then every `update_check_secs`, from its own task so a download never
    // holds up the change feed.
    let mut next_update_check = tokio::time::Instant::now();
    let mut update_task: Option<tokio::task::JoinHandle<()>> = None;
    // Media of inbound mail is prefetched from its own task too, one pass at
    // a time, so a VideoGram never holds up the change feed.
    let mut next_media_pass = tokio::time::Instant::now();
    let mut media_task: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        if connection.as_ref().is_some_and(|c| c.close_reason().is_some()) {
            connection = None;
            shared.lock().uplink = None;
            feed(&shared, SyncInput::UplinkDown);
        }
        if connection.is_none() && tokio::time::Instant::now() >= next_connect {
            match quic::connect(&endpoint, config.central_addr, &config.central_server_name).await {
                Ok(conn) => {
                    tracing::info!(central = %config.central_addr, "uplink connected");
                    shared.lock().uplink = Some(conn.clone());
                    connection = Some(conn);
                    next_update_check = tokio::time::Instant::now();
                    reconnect_delay = RECONNECT_MIN;
                    feed(&shared, SyncInput::UplinkUp);
                    shared.lock().outbox_input(jiff::Timestamp::now(), outbox::Input::UplinkUp);
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

        if let Some(conn) = &connection {
            let idle = update_task.as_ref().is_none_or(|task| task.is_finished());
            if idle && tokio::time::Instant::now() >= next_update_check {
                update_task = Some(tokio::spawn(updater::check(
                    shared.clone(),
                    conn.clone(),
                    config.clone(),
                    facility.clone(),
                )));
                next_update_check =
                    tokio::time::Instant::now() + Duration::from_secs(config.update_check_secs.max(1));
            }
            let idle = media_task.as_ref().is_none_or(|task| task.is_finished());
            if idle && tokio::time::Instant::now() >= next_media_pass {
                media_task = Some(tokio::spawn(media_fetch::prefetch(
                    shared.clone(),
                    conn.clone(),
                    facility.clone(),
                    config.media_cache_max_bytes,
                )));
                next_media_pass = tokio::time::Instant::now() + MEDIA_PASS_INTERVAL;
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
                                shared.lock().uplink = None;
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
                            state.after_page(&batch, &outcome);
                            // A suspension, block or closed account ends
                            // the calls it covers at once.
                            state.recheck_calls(now);
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
        let outbox_due = drive_outbox(&shared, connection.as_ref(), &facility);
        let wake = [wake, outbox_due].into_iter().flatten().min();
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
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = outbox_wake.notified() => {}
            }
        }
        feed(&shared, SyncInput::Tick);
        shared.lock().outbox_input(jiff::Timestamp::now(), outbox::Input::Tick);
    }
}

/// Carries out the outbox's outputs: durable ones under the lock, each
/// `Deliver` on its own task. Returns when the outbox next needs a tick.
fn drive_outbox(
    shared: &Shared,
    connection: Option<&quinn::Connection>,
    facility: &FacilityId,
) -> Option<jiff::Timestamp> {
    let now = jiff::Timestamp::now();
    let mut state = shared.lock();
    let transmits = state.drain_outbox(now);
    for transmit in transmits {
        match connection {
            Some(conn) => {
                tokio::spawn(deliver(shared.clone(), conn.clone(), facility.clone(), transmit));
            }
            None => state.outbox_input(now, outbox::Input::DeliveryFailed { batch: transmit.batch }),
        }
    }
    // Failures reported just above may have produced more outputs (none are
    // transmits while the uplink backs off); carry them out now.
    let more = state.drain_outbox(now);
    for transmit in more {
        state.outbox_input(now, outbox::Input::DeliveryFailed { batch: transmit.batch });
    }
    state.outbox.poll_timeout()
}

/// Sends one outbox batch and reports central's answer to the outbox.
async fn deliver(shared: Shared, conn: quinn::Connection, facility: FacilityId, transmit: Transmit) {
    let Transmit { batch, items } = transmit;
    let count = items.len();
    let request = EdgeToCentral::Deliver { facility, items };
    let input =
        match rpc::call_within::<_, CentralToEdge>(&conn, &request, MAX_CENTRAL_FRAME, REQUEST_TIMEOUT).await
        {
            Ok(CentralToEdge::Delivered { acks }) => {
                tracing::debug!(batch, items = count, acks = acks.len(), "outbox batch answered");
                outbox::Input::Delivered { batch, acks }
            }
            Ok(other) => {
                tracing::warn!(batch, answer = ?other, "central did not take an outbox batch");
                outbox::Input::DeliveryFailed { batch }
            }
            Err(error) => {
                tracing::warn!(batch, %error, "outbox delivery failed");
                outbox::Input::DeliveryFailed { batch }
            }
        };
    let wake = {
        let mut state = shared.lock();
        state.outbox_input(jiff::Timestamp::now(), input);
        state.outbox_wake.clone()
    };
    wake.notify_one();
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
