//! `edge-agent run`: opens the store, makes sure the facility PKI exists,
//! and runs the tablet API, the uplink, the metrics endpoint and the watcher
//! until SIGTERM or Ctrl-C. Tells systemd when it is ready and pets its
//! watchdog.

use std::time::Duration;

use anyhow::Context;
use proto::tablet::ServerEvent;

use crate::{
    calls,
    config::Config,
    metrics, pki,
    state::{EdgeState, Shared},
    store::Store,
    supervisor_link, tablet_api, uplink,
};

/// How often the agent looks for writes made by other processes (the IT
/// CLI's lockdowns and revocations); well inside the 1 s the rules allow.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(200);

pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating state directory {}", config.state_dir.display()))?;
    let store = Store::open(&config.db_path()).context("opening the edge database")?;
    let server_identity = pki::server_identity(&config)?;
    let (state, admitted) = EdgeState::load(
        config.facility.clone(),
        store,
        sync_config(&config),
        outbox_config(),
        jiff::Timestamp::now(),
    )
    .context("loading the cache")?;
    let mut state = state;
    let call_ops = state.call_ops_rx.take();
    // Calls a crashed run left behind are recorded before anything else runs.
    match state.recover_calls(jiff::Timestamp::now()) {
        Ok(0) => {}
        Ok(recovered) => tracing::warn!(recovered, "calls of the previous run ended as EdgeRestarted"),
        Err(error) => tracing::error!(%error, "cannot read call checkpoints"),
    }
    if let Some(relay) = config.media_relay {
        // A relay that cannot be set up costs media, not calls: say so and go on.
        match media_link::RelayClient::new(
            relay,
            config.media_relay_server_name.clone(),
            &config.media_relay_ca_path(),
        ) {
            Ok(uplink) => {
                tracing::info!(%relay, "calls bridged to the media relay");
                state.relay = Some(std::sync::Arc::new(media_link::RelayUplinks::new(uplink)));
            }
            Err(error) => tracing::error!(%relay, %error, "media relay not usable; calls run without media"),
        }
    }
    let shared = Shared::new(state, admitted);

    let tablets = tablet_api::bind(config.tablet_listen, &server_identity, &shared)
        .with_context(|| format!("binding the tablet API on {}", config.tablet_listen))?;
    let metrics_listener = metrics::bind(config.metrics_listen)
        .await
        .with_context(|| format!("binding metrics on {}", config.metrics_listen))?;
    tracing::info!(
        tablet_api = %tablets.local_addr().unwrap_or(config.tablet_listen),
        metrics = %metrics_listener.local_addr().unwrap_or(config.metrics_listen),
        central = %config.central_addr,
        facility = %config.facility,
        "edge agent listening"
    );

    tokio::spawn(tablet_api::serve(tablets.clone(), shared.clone()));
    tokio::spawn(metrics::serve(metrics_listener, shared.clone()));
    tokio::spawn(watch(shared.clone()));
    tokio::spawn(uplink::run(config.clone(), shared.clone()));
    if let Some(ops) = call_ops {
        tokio::spawn(calls::run(shared.clone(), ops));
    }
    tokio::spawn(calls::poll_status(shared.clone()));
    if let Some(panel) = config.supervisor.clone() {
        tokio::spawn(supervisor_link::run(panel, shared.clone()));
    }

    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let mut watchdog_usec = 0;
    if sd_notify::watchdog_enabled(false, &mut watchdog_usec) {
        let period = Duration::from_micros(watchdog_usec / 2);
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                // Pet only while the state lock is obtainable: a wedged agent
                // is restarted by systemd instead of limping on.
                drop(shared.lock());
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
        });
    }

    shutdown_signal().await;
    tracing::info!("shutting down");
    {
        // Live calls end now, recorded, instead of as EdgeRestarted later.
        let mut state = shared.lock();
        let live: Vec<_> = state.calls.live().map(|s| s.id()).collect();
        for id in live {
            state.call_event(id, edge_core::call::CallEvent::Shutdown, jiff::Timestamp::now());
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tablets.close(0u32.into(), b"edge shutting down");
    tokio::time::timeout(Duration::from_secs(2), tablets.wait_idle()).await.ok();
    Ok(())
}

fn sync_config(config: &Config) -> edge_core::sync::SyncConfig {
    edge_core::sync::SyncConfig {
        poll_interval: Duration::from_secs(config.sync_interval_secs.max(1)),
        // Boxes in a fleet must not retry central in step.
        jitter_seed: rand::random(),
        ..Default::default()
    }
}

fn outbox_config() -> edge_core::outbox::OutboxConfig {
    edge_core::outbox::OutboxConfig {
        // Boxes in a fleet must not retry central in step either.
        seed: rand::random(),
        ..Default::default()
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Applies lockdowns and revocations written by the IT CLI.
async fn watch(shared: Shared) {
    let mut ticker = tokio::time::interval(WATCH_INTERVAL);
    loop {
        ticker.tick().await;
        let mut state = shared.lock();
        let changes = match state.poll_external_changes(jiff::Timestamp::now()) {
            Ok(changes) => changes,
            Err(error) => {
                tracing::error!(%error, "cannot read external changes");
                continue;
            }
        };
        if let Some(lockdowns) = changes.lockdowns {
            lockdowns_changed(&mut state, &lockdowns);
        }
        if let Some(admitted) = changes.admitted {
            for (id, device) in &state.devices {
                if !admitted.contains(&device.fingerprint) {
                    tracing::warn!(device = %device.name, connection = id, "closing a revoked device's connection");
                    device.connection.close(tablet_api::CLOSE_REVOKED.into(), b"device revoked");
                }
            }
            *shared.admitted.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = admitted;
        }
    }
}

/// A lockdown change committed to the store (by the IT CLI or the panel's
/// key) takes effect: tablets are told and affected calls cut at once.
pub fn lockdowns_changed(state: &mut EdgeState, lockdowns: &edge_core::directory::Lockdowns) {
    tracing::warn!(?lockdowns, "lockdown state changed");
    let active = if lockdowns.contains(&proto::domain::LockdownScope::Facility) {
        Some(proto::domain::LockdownScope::Facility)
    } else {
        lockdowns.iter().next().cloned()
    };
    state.broadcast(&ServerEvent::LockdownChanged { active });
    // Calls are cut on the change, not at their next wakeup.
    state.recheck_calls(jiff::Timestamp::now());
}
