//! The supervisor's rules on a simulated clock.

use supervisor_firmware::{
    frame::{LedPattern, LedState, PanelConfig, PanelStatus, ToAgent, ToPanel},
    supervisor::{Outputs, RawInputs, Supervisor, Timing},
};

const IDLE: RawInputs = RawInputs { key_lockdown: false, chassis_open: false };
const KEY: RawInputs = RawInputs { key_lockdown: true, chassis_open: false };
const OPEN: RawInputs = RawInputs { key_lockdown: false, chassis_open: true };

/// A supervisor, a clock, and everything it said.
struct Bench {
    sup: Supervisor,
    now: u64,
    sent: Vec<(u64, PanelStatus)>,
    outputs: Vec<(u64, Outputs)>,
}

impl Bench {
    fn new(inputs: RawInputs) -> Self {
        Self {
            sup: Supervisor::new(0, inputs, Timing::default()),
            now: 0,
            sent: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Advances 1 ms at a time, feeding `inputs` every ms and polling.
    fn run(&mut self, ms: u64, inputs: RawInputs) {
        for _ in 0..ms {
            self.now += 1;
            self.sup.handle_inputs(self.now, inputs);
            self.poll();
        }
    }

    fn poll(&mut self) -> Outputs {
        let out = self.sup.poll(self.now);
        if let Some(ToAgent::Status(status)) = out.send {
            self.sent.push((self.now, status));
        }
        self.outputs.push((self.now, out));
        out
    }

    fn frame(&mut self, frame: ToPanel) {
        self.sup.handle_frame(self.now, frame);
    }

    /// Runs with a heartbeat every second.
    fn run_with_heartbeats(&mut self, ms: u64, inputs: RawInputs) {
        for _ in 0..ms {
            if self.now.is_multiple_of(1000) {
                let seq = (self.now / 1000) as u32;
                self.frame(ToPanel::Heartbeat { seq });
            }
            self.run(1, inputs);
        }
    }

    fn last_sent(&self) -> PanelStatus {
        self.sent.last().expect("a status was sent").1
    }

    /// (start, end) of every reset pulse seen.
    fn reset_pulses(&self) -> Vec<(u64, u64)> {
        let mut pulses = Vec::new();
        let mut start = None;
        for &(at, out) in &self.outputs {
            match (out.reset_asserted, start) {
                (true, None) => start = Some(at),
                (false, Some(s)) => {
                    pulses.push((s, at));
                    start = None;
                }
                _ => {}
            }
        }
        pulses
    }
}

fn short_watchdog() -> PanelConfig {
    PanelConfig {
        heartbeat_timeout_ms: 5_000,
        boot_grace_ms: 20_000,
        reset_pulse_ms: 200,
        over_temp_centi: 7_000,
    }
}

#[test]
fn key_bounce_shorter_than_the_debounce_time_changes_nothing() {
    let mut bench = Bench::new(IDLE);
    bench.run_with_heartbeats(100, IDLE);
    // Contact bounce: 10 ms on, 5 ms off, repeatedly, never 30 ms steady.
    for _ in 0..10 {
        bench.run(10, KEY);
        bench.run(5, IDLE);
    }
    bench.run(100, IDLE);
    assert!(bench.sent.iter().all(|(_, s)| !s.key_lockdown), "bounce reached the agent");
}

#[test]
fn a_key_held_for_the_debounce_time_is_sent_at_once() {
    let mut bench = Bench::new(IDLE);
    bench.run_with_heartbeats(100, IDLE);
    // The first sample at the new level is at `turned`.
    let turned = bench.now + 1;
    bench.run(30, KEY);
    assert!(!bench.last_sent().key_lockdown, "changed before 30 ms");
    bench.run(1, KEY);
    let (at, status) = *bench.sent.last().unwrap();
    assert!(status.key_lockdown);
    assert_eq!(at, turned + 30, "sent on the poll that saw the change, not at the next interval");
    // Released again: the same rule.
    bench.run(31, IDLE);
    assert!(!bench.last_sent().key_lockdown);
}

#[test]
fn a_key_already_turned_at_power_up_counts_at_once() {
    let mut bench = Bench::new(KEY);
    bench.run(1, KEY);
    assert!(bench.last_sent().key_lockdown);
}

#[test]
fn tamper_is_latched_and_counted_until_the_agent_acknowledges() {
    let mut bench = Bench::new(IDLE);
    // Opened twice while the main board is off (no heartbeats yet).
    bench.run(100, OPEN);
    bench.run(100, IDLE);
    bench.run(100, OPEN);
    bench.run(100, IDLE);
    let status = bench.last_sent();
    assert_eq!(status.tamper_events, 2);
    assert_eq!(status.tampers_acked, 0);
    assert!(!status.chassis_open, "closed again, still latched by the count");
    // Reported again and again (once a second) until acknowledged.
    bench.run(3_000, IDLE);
    assert!(bench.sent.iter().filter(|(_, s)| s.tamper_events == 2).count() >= 3);
    bench.frame(ToPanel::AckEvents { resets: 0, tampers: 2 });
    bench.run(1, IDLE);
    assert_eq!(bench.last_sent().tampers_acked, 2);
    // An ack beyond what happened does not pre-acknowledge the future.
    bench.frame(ToPanel::AckEvents { resets: 9, tampers: 9 });
    bench.run(100, OPEN);
    let status = bench.last_sent();
    assert_eq!((status.tamper_events, status.tampers_acked), (3, 2));
    assert_eq!(status.resets_acked, 0);
}

#[test]
fn tamper_latch_blinks_the_fault_led_until_acknowledged() {
    let mut bench = Bench::new(IDLE);
    bench.run(100, OPEN);
    bench.run(1_000, IDLE);
    let window = &bench.outputs[bench.outputs.len() - 500..];
    assert!(window.iter().any(|(_, o)| o.leds.fault) && window.iter().any(|(_, o)| !o.leds.fault));
    bench.frame(ToPanel::AckEvents { resets: 0, tampers: 1 });
    bench.run(1_000, IDLE);
    assert!(bench.outputs[bench.outputs.len() - 500..].iter().all(|(_, o)| !o.leds.fault));
}

#[test]
fn heartbeats_stopping_pulse_reset_after_the_timeout_for_the_pulse_width() {
    let mut bench = Bench::new(IDLE);
    bench.frame(ToPanel::Configure(short_watchdog()));
    bench.run_with_heartbeats(10_000, IDLE);
    assert!(bench.reset_pulses().is_empty());
    let last_beat = 9_000; // heartbeats at every whole second up to 9 s
    bench.run(10_000, IDLE);
    let pulses = bench.reset_pulses();
    assert_eq!(pulses, [(last_beat + 5_000, last_beat + 5_200)], "one pulse, 200 ms, at the timeout");
    let status = bench.last_sent();
    assert_eq!((status.main_board_resets, status.resets_acked), (1, 0));
}

#[test]
fn the_reset_is_counted_and_reported_after_the_next_boot_until_acknowledged() {
    let mut bench = Bench::new(IDLE);
    bench.frame(ToPanel::Configure(short_watchdog()));
    bench.run_with_heartbeats(2_000, IDLE);
    bench.run(6_000, IDLE);
    assert_eq!(bench.reset_pulses().len(), 1);
    // The board boots again and its agent reconnects.
    bench.run(3_000, IDLE);
    let before = bench.sent.len();
    bench.frame(ToPanel::Heartbeat { seq: 0 });
    bench.run(1, IDLE);
    assert_eq!(bench.sent.len(), before + 1, "the reconnect re-sends the status at once");
    assert_eq!(bench.last_sent().main_board_resets, 1);
    assert_eq!(bench.last_sent().resets_acked, 0);
    bench.frame(ToPanel::AckEvents { resets: 1, tampers: 0 });
    bench.run(1, IDLE);
    assert_eq!(bench.last_sent().resets_acked, 1);
}

#[test]
fn a_board_that_never_boots_is_reset_after_each_boot_grace() {
    let mut bench = Bench::new(IDLE);
    bench.frame(ToPanel::Configure(short_watchdog()));
    bench.run(45_000, IDLE);
    // Power-on at 0: grace 20 s → pulse 20.0–20.2 s; then 20 s more from its end.
    assert_eq!(bench.reset_pulses(), [(20_000, 20_200), (40_200, 40_400)]);
    assert_eq!(bench.last_sent().main_board_resets, 2);
}

#[test]
fn a_heartbeat_during_the_pulse_does_not_cut_it_short() {
    let mut bench = Bench::new(IDLE);
    bench.frame(ToPanel::Configure(short_watchdog()));
    // One heartbeat, at 0: the pulse runs from 5.0 to 5.2 s.
    bench.run_with_heartbeats(1_000, IDLE);
    bench.run(4_100, IDLE);
    bench.frame(ToPanel::Heartbeat { seq: 99 });
    bench.run(1_000, IDLE);
    assert_eq!(bench.reset_pulses(), [(5_000, 5_200)]);
    assert_eq!(bench.last_sent().heartbeats_seen, 1, "the dying board's heartbeat is not counted");
}

#[test]
fn the_default_heartbeat_timeout_is_30_seconds() {
    let mut bench = Bench::new(IDLE);
    // One heartbeat, at 0.
    bench.run_with_heartbeats(1_000, IDLE);
    bench.run(28_999, IDLE);
    assert!(bench.reset_pulses().is_empty());
    bench.run(300, IDLE);
    assert_eq!(bench.reset_pulses(), [(30_000, 30_200)]);
}

#[test]
fn the_key_state_is_resent_after_every_reconnect() {
    let mut bench = Bench::new(IDLE);
    bench.run_with_heartbeats(2_000, IDLE);
    assert!(bench.sup.link_up());
    // Link drops; the key is turned while nobody listens.
    bench.run(4_000, KEY);
    assert!(!bench.sup.link_up());
    let before = bench.sent.len();
    bench.frame(ToPanel::Heartbeat { seq: 1 });
    let out = bench.poll();
    assert_eq!(bench.sent.len(), before + 1);
    assert!(matches!(out.send, Some(ToAgent::Status(s)) if s.key_lockdown));
}

#[test]
fn leds_follow_the_agent_while_linked_and_fall_back_to_the_safe_pattern() {
    let mut bench = Bench::new(IDLE);
    bench.frame(ToPanel::Leds(LedState {
        online: LedPattern::On,
        offline: LedPattern::Off,
        lockdown: LedPattern::Off,
        fault: LedPattern::Off,
    }));
    bench.run_with_heartbeats(2_000, IDLE);
    let out = bench.poll();
    assert!(out.leds.online && !out.leds.offline && !out.leds.lockdown && !out.leds.fault);
    // Link down for longer than the link timeout, key turned: safe pattern.
    bench.run(4_000, KEY);
    let recent = &bench.outputs[bench.outputs.len() - 1_000..];
    assert!(recent.iter().all(|(_, o)| !o.leds.online && o.leds.lockdown));
    assert!(recent.iter().any(|(_, o)| o.leds.offline) && recent.iter().any(|(_, o)| !o.leds.offline));
}

#[test]
fn over_temperature_alarm_has_hysteresis_and_a_dead_sensor_keeps_it() {
    let mut bench = Bench::new(IDLE);
    assert!(bench.sup.temperature_due(0));
    bench.sup.handle_temperature(0, Some(6_999));
    assert!(!bench.sup.temperature_due(999));
    assert!(bench.sup.temperature_due(1_000));
    bench.run(1, IDLE);
    assert!(!bench.last_sent().over_temp);
    bench.sup.handle_temperature(bench.now, Some(7_000));
    bench.run(1, IDLE);
    assert!(bench.last_sent().over_temp);
    assert_eq!(bench.last_sent().temperature_centi, Some(7_000));
    bench.sup.handle_temperature(bench.now, Some(6_850));
    bench.run(1, IDLE);
    assert!(bench.last_sent().over_temp, "inside the 2 °C hysteresis");
    bench.sup.handle_temperature(bench.now, None);
    bench.run(1_000, IDLE);
    assert!(bench.last_sent().over_temp && bench.last_sent().temperature_centi.is_none());
    bench.sup.handle_temperature(bench.now, Some(6_800));
    bench.run(1, IDLE);
    assert!(!bench.last_sent().over_temp);
}

#[test]
fn a_status_goes_out_every_second_without_changes() {
    let mut bench = Bench::new(IDLE);
    bench.run(10_000, IDLE);
    let times: Vec<u64> = bench.sent.iter().map(|(at, _)| *at).collect();
    assert_eq!(times, (1..=10).map(|s| if s == 1 { 1 } else { (s - 1) * 1000 + 1 }).collect::<Vec<_>>());
}
