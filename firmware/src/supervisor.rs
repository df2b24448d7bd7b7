//! The supervisor's rules as a sans-IO state machine.
//!
//! Inputs: raw pin levels ([`Supervisor::handle_inputs`]), temperature
//! readings ([`Supervisor::handle_temperature`]), frames from the agent
//! ([`Supervisor::handle_frame`]), each with the time `now` in milliseconds
//! from any monotonic clock. Output: [`Supervisor::poll`] returns the levels
//! the reset line and LEDs must have now, and a status frame when one is due.
//! Nothing here reads a clock or touches hardware, so tests run hours of
//! panel life on a simulated clock.

use supervisor_frame::{LedPattern, LedState, PanelConfig, PanelStatus, ToAgent, ToPanel};

/// Fixed timings of the panel itself (the agent configures the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A switch level must hold this long to count (contact bounce lasts a
    /// few ms; a key turned halfway must not flap the facility).
    pub debounce_ms: u32,
    /// The link counts as down after this long without a heartbeat (the
    /// agent sends one a second); the LEDs then show the safe pattern.
    pub link_timeout_ms: u32,
    /// A status frame goes out at least this often, changes at once.
    pub status_interval_ms: u32,
    /// How often the temperature sensor is read.
    pub temperature_interval_ms: u32,
    /// The over-temperature alarm clears this far below the limit, so a
    /// reading hovering at the limit does not flap it.
    pub over_temp_hysteresis_centi: i16,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            debounce_ms: 30,
            link_timeout_ms: 3_000,
            status_interval_ms: 1_000,
            temperature_interval_ms: 1_000,
            over_temp_hysteresis_centi: 200,
        }
    }
}

/// Raw switch levels, already translated from pin polarity by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawInputs {
    pub key_lockdown: bool,
    pub chassis_open: bool,
}

/// LED levels, true = lit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedLevels {
    pub online: bool,
    pub offline: bool,
    pub lockdown: bool,
    pub fault: bool,
}

/// What the hardware must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outputs {
    /// Hold the main board in reset.
    pub reset_asserted: bool,
    pub leds: LedLevels,
    /// A status frame to send to the agent.
    pub send: Option<ToAgent>,
}

/// A switch that changes state only after its raw level held for the
/// debounce time.
#[derive(Debug, Clone, Copy)]
struct Debounced {
    stable: bool,
    candidate: bool,
    since: u64,
}

impl Debounced {
    const fn new(level: bool) -> Self {
        Self { stable: level, candidate: level, since: 0 }
    }

    /// Returns true when the debounced state changed.
    fn update(&mut self, raw: bool, now: u64, debounce_ms: u32) -> bool {
        if raw != self.candidate {
            self.candidate = raw;
            self.since = now;
        }
        if self.candidate != self.stable && now.saturating_sub(self.since) >= u64::from(debounce_ms) {
            self.stable = self.candidate;
            return true;
        }
        false
    }
}

/// The front-panel supervisor.
pub struct Supervisor {
    config: PanelConfig,
    timing: Timing,
    key: Debounced,
    chassis: Debounced,
    /// Last heartbeat since the main board last (re)started.
    last_heartbeat: Option<u64>,
    /// When the main board last started: MCU power-on or the end of a reset pulse.
    board_started: u64,
    /// The reset line is held until then.
    reset_until: Option<u64>,
    link_up: bool,
    agent_leds: LedState,
    status: PanelStatus,
    status_dirty: bool,
    next_status_at: u64,
    next_temperature_at: u64,
}

impl Supervisor {
    /// A supervisor that just powered up at `now` with the switches at `inputs`
    /// (read before the first poll, so a key already turned counts at once and
    /// an already open chassis is not a fresh tamper event).
    pub fn new(now: u64, inputs: RawInputs, timing: Timing) -> Self {
        Self {
            config: PanelConfig::default(),
            timing,
            key: Debounced::new(inputs.key_lockdown),
            chassis: Debounced::new(inputs.chassis_open),
            last_heartbeat: None,
            board_started: now,
            reset_until: None,
            link_up: false,
            agent_leds: LedState::default(),
            status: PanelStatus {
                key_lockdown: inputs.key_lockdown,
                chassis_open: inputs.chassis_open,
                ..PanelStatus::default()
            },
            status_dirty: true,
            next_status_at: now,
            next_temperature_at: now,
        }
    }

    pub fn config(&self) -> PanelConfig {
        self.config
    }

    pub fn status(&self) -> PanelStatus {
        self.status
    }

    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// A frame from the agent.
    pub fn handle_frame(&mut self, now: u64, frame: ToPanel) {
        match frame {
            ToPanel::Heartbeat { seq } => {
                // A heartbeat while the reset line is held comes from a board
                // that is about to go down; it must not cancel the reset.
                if self.reset_until.is_some() {
                    return;
                }
                self.last_heartbeat = Some(now);
                self.status.heartbeats_seen = self.status.heartbeats_seen.wrapping_add(1);
                self.status.last_heartbeat_seq = seq;
                if !self.link_up {
                    // Reconnected: everything is re-sent at once, so a key
                    // turned while the link was down is not lost.
                    self.link_up = true;
                    self.status_dirty = true;
                }
            }
            ToPanel::Configure(config) => self.config = config,
            ToPanel::Leds(leds) => self.agent_leds = leds,
            ToPanel::AckEvents { resets, tampers } => {
                let resets = resets.min(self.status.main_board_resets);
                let tampers = tampers.min(self.status.tamper_events);
                if resets != self.status.resets_acked || tampers != self.status.tampers_acked {
                    self.status.resets_acked = resets;
                    self.status.tampers_acked = tampers;
                    self.status_dirty = true;
                }
            }
        }
    }

    /// The switches' raw levels, sampled as often as the board likes (at
    /// least every few ms for the debounce to be accurate).
    pub fn handle_inputs(&mut self, now: u64, inputs: RawInputs) {
        let debounce = self.timing.debounce_ms;
        if self.key.update(inputs.key_lockdown, now, debounce) {
            self.status.key_lockdown = self.key.stable;
            self.status_dirty = true;
        }
        if self.chassis.update(inputs.chassis_open, now, debounce) {
            self.status.chassis_open = self.chassis.stable;
            if self.chassis.stable {
                // Latched until the agent acknowledges the count.
                self.status.tamper_events = self.status.tamper_events.wrapping_add(1);
            }
            self.status_dirty = true;
        }
    }

    /// True when the board should read the temperature sensor now.
    pub fn temperature_due(&self, now: u64) -> bool {
        now >= self.next_temperature_at
    }

    /// A temperature reading in hundredths of a degree, or None when the
    /// sensor did not answer (the alarm keeps its state: a dead sensor is not
    /// evidence that the box cooled down).
    pub fn handle_temperature(&mut self, now: u64, centi: Option<i16>) {
        self.next_temperature_at = now + u64::from(self.timing.temperature_interval_ms);
        self.status.temperature_centi = centi;
        let Some(centi) = centi else { return };
        let limit = self.config.over_temp_centi;
        let over = if self.status.over_temp {
            centi > limit.saturating_sub(self.timing.over_temp_hysteresis_centi)
        } else {
            centi >= limit
        };
        if over != self.status.over_temp {
            self.status.over_temp = over;
            self.status_dirty = true;
        }
    }

    /// Runs the timers and says what the outputs must be at `now`.
    pub fn poll(&mut self, now: u64) -> Outputs {
        self.run_watchdog(now);
        if self.link_up
            && self
                .last_heartbeat
                .is_none_or(|at| now.saturating_sub(at) >= u64::from(self.timing.link_timeout_ms))
        {
            self.link_up = false;
            self.status_dirty = true;
        }
        let send = if self.status_dirty || now >= self.next_status_at {
            self.status_dirty = false;
            self.next_status_at = now + u64::from(self.timing.status_interval_ms);
            self.status.uptime_ms = now as u32;
            Some(ToAgent::Status(self.status))
        } else {
            None
        };
        Outputs { reset_asserted: self.reset_until.is_some(), leds: self.leds(now), send }
    }

    fn run_watchdog(&mut self, now: u64) {
        if let Some(until) = self.reset_until {
            if now >= until {
                self.reset_until = None;
                self.board_started = now;
                self.last_heartbeat = None;
            }
            return;
        }
        let deadline = match self.last_heartbeat {
            Some(at) => at + u64::from(self.config.heartbeat_timeout_ms),
            None => self.board_started + u64::from(self.config.boot_grace_ms),
        };
        if now >= deadline {
            self.reset_until = Some(now + u64::from(self.config.reset_pulse_ms));
            self.status.main_board_resets = self.status.main_board_resets.wrapping_add(1);
            self.link_up = false;
            self.status_dirty = true;
        }
    }

    fn leds(&self, now: u64) -> LedLevels {
        let alarm = self.status.over_temp || self.status.tamper_events != self.status.tampers_acked;
        let patterns = if self.link_up {
            self.agent_leds
        } else {
            // The safe pattern: the agent cannot be trusted to say anything.
            LedState {
                online: LedPattern::Off,
                offline: LedPattern::BlinkSlow,
                lockdown: if self.status.key_lockdown { LedPattern::On } else { LedPattern::Off },
                fault: LedPattern::Off,
            }
        };
        // A local alarm shows whatever the agent asked for.
        let fault = if alarm { LedPattern::BlinkFast } else { patterns.fault };
        LedLevels {
            online: lit(patterns.online, now),
            offline: lit(patterns.offline, now),
            lockdown: lit(patterns.lockdown, now),
            fault: lit(fault, now),
        }
    }
}

fn lit(pattern: LedPattern, now: u64) -> bool {
    match pattern {
        LedPattern::Off => false,
        LedPattern::On => true,
        LedPattern::BlinkSlow => (now / 500).is_multiple_of(2),
        LedPattern::BlinkFast => (now / 125).is_multiple_of(2),
    }
}
