//! The tokio shell around [`crate::supervisor::LinkCore`]: opens the
//! panel's UART (a serial device, or `tcp:HOST:PORT` for QEMU and tests),
//! moves frames, and carries out the core's actions on the edge state.
//!
//! The lockdown key goes through the same path as `edge-agent lockdown`:
//! `Store::set_lockdown` (persisted and audited in one transaction, actor
//! `panel:key`), then the tablets are told and calls cut at once
//! ([`crate::service::lockdowns_changed`]).
//!
//! Must not: decide anything the core decides; hold the state lock across
//! an await.

use std::time::Duration;

use anyhow::Context;
use proto::domain::LockdownScope;
use supervisor_frame::{Decoder, ToAgent, MAX_FRAME};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{
    service,
    state::{EdgeState, Shared},
    supervisor::{LinkAction, LinkCore, SupervisorConfig, KEY_ACTOR},
};

/// How long to wait before opening the UART again after it failed or closed.
const REOPEN_DELAY: Duration = Duration::from_secs(1);
/// How often the agent's own state (uplink, lockdowns) is looked at for the LEDs.
const LED_CHECK: Duration = Duration::from_millis(250);

trait Uart: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Uart for T {}

async fn open(config: &SupervisorConfig) -> anyhow::Result<Box<dyn Uart>> {
    if config.uart == "gpio" {
        #[cfg(feature = "panel-gpio")]
        return Ok(Box::new(crate::panel_gpio::open(&config.gpio.clone().unwrap_or_default())?));
        #[cfg(not(feature = "panel-gpio"))]
        anyhow::bail!("uart = \"gpio\" needs an edge-agent built with the panel-gpio feature");
    }
    if let Some(addr) = config.uart.strip_prefix("tcp:") {
        let stream =
            tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        return Ok(Box::new(stream));
    }
    use tokio_serial::SerialPortBuilderExt;
    let port = tokio_serial::new(&config.uart, config.baud)
        .open_native_async()
        .with_context(|| format!("opening {}", config.uart))?;
    Ok(Box::new(port))
}

/// Runs the link until the process ends, reopening the UART whenever it fails.
pub async fn run(config: SupervisorConfig, shared: Shared) {
    let epoch = tokio::time::Instant::now();
    let mut core = LinkCore::new(config.clone());
    loop {
        match open(&config).await {
            Ok(uart) => {
                tracing::info!(uart = %config.uart, "supervisor link open");
                if let Err(error) = session(&mut core, uart, &shared, epoch).await {
                    tracing::warn!(uart = %config.uart, %error, "supervisor link lost");
                }
                core.on_disconnected();
                shared.lock().panel = core.view();
            }
            Err(error) => {
                tracing::debug!(uart = %config.uart, error = %format!("{error:#}"), "supervisor UART not open")
            }
        }
        tokio::time::sleep(REOPEN_DELAY).await;
    }
}

async fn session(
    core: &mut LinkCore,
    mut uart: Box<dyn Uart>,
    shared: &Shared,
    epoch: tokio::time::Instant,
) -> anyhow::Result<()> {
    let mut decoder = Decoder::new();
    let mut input = [0u8; 256];
    let mut frame = [0u8; MAX_FRAME];
    core.on_connected(epoch.elapsed());
    let mut led_check = tokio::time::interval(LED_CHECK);
    loop {
        while let Some(action) = core.poll_action() {
            perform(core, action, &mut uart, shared, &mut frame).await?;
        }
        // Taken on every pass, so an agent whose state lock is never free
        // again stops sending heartbeats and the panel resets the board.
        shared.lock().panel = core.view();
        let wake =
            core.poll_timeout().map(|at| epoch + at).unwrap_or_else(|| epoch + epoch.elapsed() + LED_CHECK);
        tokio::select! {
            read = uart.read(&mut input) => {
                let n = read.context("reading the UART")?;
                if n == 0 {
                    anyhow::bail!("the UART closed");
                }
                let now = epoch.elapsed();
                for &byte in &input[..n] {
                    match decoder.push::<ToAgent>(byte) {
                        None => {}
                        Some(Ok(ToAgent::Status(status))) => core.on_status(now, status),
                        Some(Err(error)) => {
                            tracing::warn!(%error, "bad frame from the supervisor dropped");
                            core.on_frame_error(error);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(wake) => core.handle_timeout(epoch.elapsed()),
            _ = led_check.tick() => {
                let (uplink_up, lockdown) = {
                    let state = shared.lock();
                    (state.freshness_at(jiff::Timestamp::now()).uplink_up, !state.lockdowns.is_empty())
                };
                core.set_led_inputs(uplink_up, lockdown);
            }
        }
    }
}

async fn perform(
    core: &mut LinkCore,
    action: LinkAction,
    uart: &mut Box<dyn Uart>,
    shared: &Shared,
    frame: &mut [u8; MAX_FRAME],
) -> anyhow::Result<()> {
    match action {
        LinkAction::Send(message) => {
            let bytes = supervisor_frame::encode(&message, frame).context("encoding a frame")?;
            uart.write_all(bytes).await.context("writing the UART")?;
        }
        LinkAction::KeyLockdown { on } => {
            let mut state = shared.lock();
            if let Err(error) = apply_key_lockdown(&mut state, on, jiff::Timestamp::now()) {
                // The key's state is re-sent after the next reconnect; the
                // panel's lockdown LED shows the key meanwhile.
                tracing::error!(%error, on, "cannot apply the lockdown key");
            }
        }
        LinkAction::Record { action, detail, ack } => {
            let recorded = shared.lock().audit(KEY_ACTOR_PANEL, action, &detail, jiff::Timestamp::now());
            match recorded {
                Ok(seq) => {
                    tracing::warn!(action, %detail, seq, "supervisor event recorded");
                    core.recorded(true);
                    if let Some(ack) = ack {
                        let bytes = supervisor_frame::encode(&ack, frame).context("encoding a frame")?;
                        uart.write_all(bytes).await.context("writing the UART")?;
                    }
                }
                Err(error) => {
                    tracing::error!(action, %error, "cannot record a supervisor event; retried at the next status");
                    core.recorded(false);
                }
            }
        }
    }
    Ok(())
}

/// The actor of the panel's own audit rows (tamper, resets, temperature).
const KEY_ACTOR_PANEL: &str = "panel";

/// The key turned (`on`) or back: the facility lockdown through the
/// lockdown path. Turning back lifts only a lockdown the key set; an
/// already applied state is not written again (no audit row per reconnect).
pub fn apply_key_lockdown(state: &mut EdgeState, on: bool, now: jiff::Timestamp) -> anyhow::Result<bool> {
    let facility = LockdownScope::Facility;
    if on {
        if state.lockdowns.contains(&facility) {
            return Ok(false);
        }
    } else {
        let rows = state.store.lockdown_rows()?;
        let set_by_key = rows.iter().any(|row| row.scope == facility && row.actor == KEY_ACTOR);
        if !set_by_key {
            return Ok(false);
        }
    }
    let changed = state.store.set_lockdown(&facility, on, KEY_ACTOR, now)?;
    state.feed_after_commit(now);
    let lockdowns = state.store.lockdowns()?;
    state.lockdowns = lockdowns.clone();
    service::lockdowns_changed(state, &lockdowns);
    Ok(changed)
}

/// The panel's figures for the metrics endpoint (and so `edge-agent status`).
/// Totals are the panel's own counts since it powered up, so they are
/// gauges: they restart from zero when the panel does.
pub fn render_metrics(panel: &crate::supervisor::PanelView, gauge: &mut impl FnMut(&str, &str, f64)) {
    let flag = |b: bool| f64::from(u8::from(b));
    gauge("edge_panel_link_up", "1 while the front-panel supervisor answers", flag(panel.link_up));
    gauge(
        "edge_panel_frame_errors",
        "frames from the panel dropped (bad CRC, COBS, size)",
        panel.frame_errors as f64,
    );
    gauge("edge_panel_reconnects", "times the agent opened the panel's UART", panel.reconnects as f64);
    let Some(status) = panel.status else { return };
    gauge("edge_panel_key_lockdown", "1 while the lockdown key is turned", flag(status.key_lockdown));
    gauge("edge_panel_chassis_open", "1 while the chassis is open", flag(status.chassis_open));
    gauge("edge_panel_tamper_events", "chassis openings the panel counted", f64::from(status.tamper_events));
    gauge(
        "edge_panel_main_board_resets",
        "main-board resets the panel gave (heartbeats stopped)",
        f64::from(status.main_board_resets),
    );
    gauge(
        "edge_panel_heartbeats_seen",
        "agent heartbeats the panel received",
        f64::from(status.heartbeats_seen),
    );
    gauge(
        "edge_panel_over_temperature",
        "1 while the over-temperature alarm is raised",
        flag(status.over_temp),
    );
    if let Some(centi) = status.temperature_centi {
        gauge("edge_panel_temperature_celsius", "the panel's temperature sensor", f64::from(centi) / 100.0);
    }
}
