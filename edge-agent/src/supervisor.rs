//! The agent's side of the front-panel supervisor link, as a sans-IO core.
//!
//! Owns: the heartbeat schedule, what is (re)sent after every connect
//! (settings, LED state, a heartbeat), the rules from the panel's status to
//! the agent's actions: the lockdown key → the facility lockdown, tamper and
//! over-temperature → audit rows, main-board resets → an audit row after the
//! next boot, each acknowledged to the panel only once recorded. Also the
//! `[supervisor]` settings of `edge.toml`.
//!
//! Must not: do I/O, read a clock (time is a `Duration` from the shell's
//! epoch), or change the lockdown itself: it asks the shell
//! (`supervisor_link`), which uses the same path as `edge-agent lockdown`.

use std::{collections::VecDeque, time::Duration};

use serde::Deserialize;
use supervisor_frame::{FrameError, LedPattern, LedState, PanelConfig, PanelStatus, ToPanel};

/// Who the lockdown key's lockdowns are recorded as (audit log, `status`).
pub const KEY_ACTOR: &str = "panel:key";

/// What may lift a lockdown the key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyLift {
    /// Turning the key back lifts the lockdown the key set (one set from the
    /// CLI stays). `edge-agent lockdown off` lifts it too.
    #[default]
    Key,
    /// Turning the key back changes nothing: only an authorised
    /// `edge-agent lockdown off` lifts it (recorded with who ran it).
    Cli,
}

/// `[supervisor]` in `edge.toml`. Absent: no panel, no link.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    /// The panel's UART: a serial device (`/dev/ttyS1`) or `tcp:HOST:PORT`
    /// (QEMU's socket serial, tests); `gpio`: no MCU, the panel is wired to
    /// this board (`[supervisor.gpio]`, needs the `panel-gpio` feature).
    pub uart: String,
    pub baud: u32,
    /// The panel resets the main board after this long without a heartbeat.
    pub heartbeat_timeout_secs: u32,
    /// How long a (re)started main board has to send its first heartbeat.
    pub boot_grace_secs: u32,
    pub reset_pulse_ms: u16,
    /// Over-temperature alarm threshold, whole degrees Celsius.
    pub over_temp_celsius: i16,
    /// See [`KeyLift`].
    pub key_lift: KeyLift,
    /// The lines when `uart = "gpio"`.
    pub gpio: Option<GpioPanelConfig>,
}

/// `[supervisor.gpio]`: a panel wired to this board's GPIO and I2C.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpioPanelConfig {
    pub chip: String,
    pub key_line: u32,
    pub chassis_line: u32,
    /// Online, offline, lockdown, fault.
    pub led_lines: [u32; 4],
    pub i2c: String,
    pub sensor_address: u8,
}

impl Default for GpioPanelConfig {
    fn default() -> Self {
        Self {
            chip: "/dev/gpiochip0".into(),
            key_line: 5,
            chassis_line: 6,
            led_lines: [12, 13, 16, 19],
            i2c: "/dev/i2c-1".into(),
            sensor_address: supervisor_firmware::drivers::DEFAULT_SENSOR_ADDRESS,
        }
    }
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        let panel = PanelConfig::default();
        Self {
            uart: "/dev/ttyS1".into(),
            baud: 115_200,
            heartbeat_timeout_secs: panel.heartbeat_timeout_ms / 1000,
            boot_grace_secs: panel.boot_grace_ms / 1000,
            reset_pulse_ms: panel.reset_pulse_ms,
            over_temp_celsius: panel.over_temp_centi / 100,
            key_lift: KeyLift::Key,
            gpio: None,
        }
    }
}

impl SupervisorConfig {
    pub fn panel_config(&self) -> PanelConfig {
        PanelConfig {
            heartbeat_timeout_ms: self.heartbeat_timeout_secs.saturating_mul(1000),
            boot_grace_ms: self.boot_grace_secs.saturating_mul(1000),
            reset_pulse_ms: self.reset_pulse_ms,
            over_temp_centi: self.over_temp_celsius.saturating_mul(100),
        }
    }
}

/// One heartbeat a second: a few lost frames never come near the panel's
/// timeout, and the panel's link LED reacts within its 3 s link timeout.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// The panel sends its status at least once a second; three missing means
/// the link is down (shown in `status` and metrics).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkAction {
    /// Write this frame to the panel.
    Send(ToPanel),
    /// Turn the facility lockdown on or off through the lockdown path, as
    /// [`KEY_ACTOR`]. Off only ever lifts a lockdown the key set.
    KeyLockdown { on: bool },
    /// Append an audit row; when it is committed, send `ack` (if any) and
    /// report the outcome with [`LinkCore::recorded`].
    Record { action: &'static str, detail: serde_json::Value, ack: Option<ToPanel> },
}

/// What the agent knows of the panel (metrics, `edge-agent status`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PanelView {
    pub link_up: bool,
    pub status: Option<PanelStatus>,
    pub frame_errors: u64,
    pub reconnects: u64,
}

/// The link's state machine.
pub struct LinkCore {
    config: SupervisorConfig,
    connected: bool,
    next_heartbeat: Option<Duration>,
    heartbeat_seq: u32,
    last_status_at: Option<Duration>,
    /// Key position last acted on in this connection; None right after a
    /// (re)connect, so the first status is always acted on.
    key_acted: Option<bool>,
    over_temp_recorded: Option<bool>,
    /// Totals recorded (audit) and not yet known to be acknowledged.
    resets_recorded: u32,
    tampers_recorded: u32,
    leds: LedState,
    view: PanelView,
    actions: VecDeque<LinkAction>,
}

impl LinkCore {
    pub fn new(config: SupervisorConfig) -> Self {
        Self {
            config,
            connected: false,
            next_heartbeat: None,
            heartbeat_seq: 0,
            last_status_at: None,
            key_acted: None,
            over_temp_recorded: None,
            resets_recorded: 0,
            tampers_recorded: 0,
            leds: leds_for(false, false, false),
            view: PanelView::default(),
            actions: VecDeque::new(),
        }
    }

    pub fn view(&self) -> PanelView {
        self.view
    }

    /// The UART is open: settings, LEDs and a heartbeat go out at once.
    pub fn on_connected(&mut self, now: Duration) {
        self.connected = true;
        self.key_acted = None;
        self.last_status_at = None;
        self.view.reconnects += 1;
        self.actions.push_back(LinkAction::Send(ToPanel::Configure(self.config.panel_config())));
        self.actions.push_back(LinkAction::Send(ToPanel::Leds(self.leds)));
        self.next_heartbeat = Some(now);
        self.handle_timeout(now);
    }

    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.next_heartbeat = None;
        self.view.link_up = false;
        // Anything not yet sent belongs to the lost connection; the next one
        // starts over from the panel's status.
        self.actions.clear();
    }

    pub fn on_frame_error(&mut self, _error: FrameError) {
        self.view.frame_errors += 1;
    }

    /// The agent's own state, for the LEDs. Sent only when it changes (and
    /// after every reconnect).
    pub fn set_led_inputs(&mut self, uplink_up: bool, lockdown: bool) {
        let over_temp = self.view.status.is_some_and(|s| s.over_temp);
        let leds = leds_for(uplink_up, lockdown, over_temp);
        if leds != self.leds {
            self.leds = leds;
            if self.connected {
                self.actions.push_back(LinkAction::Send(ToPanel::Leds(leds)));
            }
        }
    }

    /// Due heartbeats, and the link's liveness.
    pub fn handle_timeout(&mut self, now: Duration) {
        if let Some(due) = self.next_heartbeat {
            if now >= due {
                self.actions.push_back(LinkAction::Send(ToPanel::Heartbeat { seq: self.heartbeat_seq }));
                self.heartbeat_seq = self.heartbeat_seq.wrapping_add(1);
                self.next_heartbeat = Some(now + HEARTBEAT_INTERVAL);
            }
        }
        if self.view.link_up && self.last_status_at.is_none_or(|at| now.saturating_sub(at) >= STATUS_TIMEOUT)
        {
            self.view.link_up = false;
        }
    }

    /// When `handle_timeout` has something to do.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let liveness = self.last_status_at.filter(|_| self.view.link_up).map(|at| at + STATUS_TIMEOUT);
        match (self.next_heartbeat, liveness) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_action(&mut self) -> Option<LinkAction> {
        self.actions.pop_front()
    }

    /// A status frame from the panel.
    pub fn on_status(&mut self, now: Duration, status: PanelStatus) {
        self.last_status_at = Some(now);
        self.view.link_up = true;
        self.view.status = Some(status);

        if self.key_acted != Some(status.key_lockdown) {
            let first = self.key_acted.is_none();
            self.key_acted = Some(status.key_lockdown);
            if status.key_lockdown {
                self.actions.push_back(LinkAction::KeyLockdown { on: true });
            } else if self.config.key_lift == KeyLift::Key {
                // Also right after a reconnect: the key may have been turned
                // back while the link was down. The shell lifts only a
                // lockdown the key set.
                self.actions.push_back(LinkAction::KeyLockdown { on: false });
            } else if !first {
                self.actions.push_back(LinkAction::Record {
                    action: "panel.key_released",
                    detail: serde_json::json!({"lockdown": "stays until lifted from the CLI"}),
                    ack: None,
                });
            }
        }

        // Events the panel counted and nobody has recorded yet (including
        // while this agent, or the whole main board, was down).
        let resets = status.main_board_resets;
        let tampers = status.tamper_events;
        let new_resets = resets.saturating_sub(status.resets_acked.max(self.resets_recorded));
        let new_tampers = tampers.saturating_sub(status.tampers_acked.max(self.tampers_recorded));
        if new_resets > 0 || new_tampers > 0 {
            // The ack carries both totals; recording one kind must not
            // acknowledge the other's unrecorded events.
            let resets_ack =
                if new_resets > 0 { resets } else { status.resets_acked.max(self.resets_recorded) };
            let tampers_ack =
                if new_tampers > 0 { tampers } else { status.tampers_acked.max(self.tampers_recorded) };
            let ack = Some(ToPanel::AckEvents { resets: resets_ack, tampers: tampers_ack });
            if new_resets > 0 {
                self.resets_recorded = resets;
                self.actions.push_back(LinkAction::Record {
                    action: "panel.main_board_reset",
                    detail: serde_json::json!({
                        "resets": new_resets,
                        "total_since_panel_start": resets,
                        "heartbeat_timeout_secs": self.config.heartbeat_timeout_secs,
                    }),
                    ack: if new_tampers > 0 { None } else { ack },
                });
            }
            if new_tampers > 0 {
                self.tampers_recorded = tampers;
                self.actions.push_back(LinkAction::Record {
                    action: "panel.tamper",
                    detail: serde_json::json!({
                        "openings": new_tampers,
                        "total_since_panel_start": tampers,
                        "chassis_open_now": status.chassis_open,
                    }),
                    ack,
                });
            }
        }

        if self.over_temp_recorded != Some(status.over_temp) {
            let first = self.over_temp_recorded.is_none();
            self.over_temp_recorded = Some(status.over_temp);
            // A cool panel at start is not an event.
            if status.over_temp || !first {
                self.actions.push_back(LinkAction::Record {
                    action: if status.over_temp {
                        "panel.over_temperature"
                    } else {
                        "panel.temperature_normal"
                    },
                    detail: serde_json::json!({
                        "celsius": status.temperature_centi.map(|c| f64::from(c) / 100.0),
                        "limit_celsius": self.config.over_temp_celsius,
                    }),
                    ack: None,
                });
            }
        }
    }

    /// The shell's report on a `Record`: on failure the events count as
    /// unrecorded again, so the next status retries them (never acked
    /// unrecorded).
    pub fn recorded(&mut self, ok: bool) {
        if !ok {
            self.resets_recorded = 0;
            self.tampers_recorded = 0;
            self.over_temp_recorded = None;
        }
    }
}

/// The LED patterns for the agent's state.
pub fn leds_for(uplink_up: bool, lockdown: bool, over_temp: bool) -> LedState {
    LedState {
        online: if uplink_up { LedPattern::On } else { LedPattern::Off },
        // Offline: tablets still work from the cache and outgoing items queue.
        offline: if uplink_up { LedPattern::Off } else { LedPattern::BlinkSlow },
        lockdown: if lockdown { LedPattern::On } else { LedPattern::Off },
        fault: if over_temp { LedPattern::BlinkFast } else { LedPattern::Off },
    }
}

#[cfg(test)]
#[path = "supervisor_tests.rs"]
mod tests;
