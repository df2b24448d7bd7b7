//! The local panel over embedded-hal-mock pins and bus: every transaction
//! of each pass is expected, in order.

use embedded_hal_mock::eh1::{
    digital::{Mock as PinMock, State, Transaction as PinTransaction},
    i2c::{Mock as I2cMock, Transaction as I2cTransaction},
};
use supervisor_firmware::{
    drivers::{PanelSwitches, StatusLeds, TemperatureSensor, DEFAULT_SENSOR_ADDRESS},
    frame::{self, Decoder, PanelConfig, ToAgent, ToPanel, MAX_FRAME},
};

use super::LocalPanel;

/// Key levels per pass (pin low = lockdown), chassis closed throughout.
fn switches(key_levels: &[State]) -> (PinMock, PinMock) {
    // `new` samples once before the passes.
    let mut key = vec![PinTransaction::get(State::High)];
    key.extend(key_levels.iter().map(|s| PinTransaction::get(*s)));
    let chassis = vec![PinTransaction::get(State::Low); key_levels.len() + 1];
    (PinMock::new(&key), PinMock::new(&chassis))
}

fn decode(bytes: &[u8]) -> Vec<ToAgent> {
    let mut decoder = Decoder::new();
    bytes.iter().filter_map(|&b| decoder.push::<ToAgent>(b)).map(|r| r.expect("valid frame")).collect()
}

fn encoded(message: &ToPanel) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    frame::encode(message, &mut buf).expect("fits").to_vec()
}

#[test]
fn the_key_is_debounced_and_reported_and_no_reset_is_ever_counted() {
    // 20 passes of 5 ms: key turned from the 2nd pass on (30 ms debounce).
    let passes = 20;
    let mut levels = vec![State::High];
    levels.extend(std::iter::repeat_n(State::Low, passes - 1));
    let (key, chassis) = switches(&levels);
    // The safe pattern while the link is down: offline blinks (on for
    // the first 500 ms), everything else off, lockdown lit once the key counts.
    let led = |lit_from: Option<usize>| {
        PinMock::new(
            &(0..passes)
                .map(|i| {
                    PinTransaction::set(if lit_from.is_some_and(|from| i >= from) {
                        State::High
                    } else {
                        State::Low
                    })
                })
                .collect::<Vec<_>>(),
        )
    };
    // Key seen at pass 1 (5 ms), stable at 35 ms: pass 7.
    let leds = StatusLeds::new(led(None), led(Some(0)), led(Some(7)), led(None));
    let i2c = I2cMock::new(&[I2cTransaction::write_read(DEFAULT_SENSOR_ADDRESS, vec![0], vec![0x19, 0x00])]);
    let mut panel = LocalPanel::new(
        0,
        PanelSwitches::new(key, chassis),
        leds,
        TemperatureSensor::new(i2c, DEFAULT_SENSOR_ADDRESS),
    )
    .expect("panel");

    // The agent's settings ask for a 1 s heartbeat timeout: ignored here.
    let configure = encoded(&ToPanel::Configure(PanelConfig {
        heartbeat_timeout_ms: 1,
        boot_grace_ms: 1,
        ..PanelConfig::default()
    }));
    let mut sent = Vec::new();
    for pass in 0..passes {
        let incoming = if pass == 0 { &configure[..] } else { &[][..] };
        panel.step(pass as u64 * 5, incoming, &mut sent).expect("pass");
    }
    let statuses: Vec<_> = decode(&sent).into_iter().map(|ToAgent::Status(s)| s).collect();
    assert_eq!(statuses.first().map(|s| (s.key_lockdown, s.temperature_centi)), Some((false, Some(2_500))));
    let turned = statuses.iter().find(|s| s.key_lockdown).expect("the key reported");
    assert_eq!(turned.uptime_ms, 35);
    assert!(statuses.iter().all(|s| s.main_board_resets == 0));
    let LocalPanel { switches, leds, sensor, .. } = panel;
    let (mut key, mut chassis) = switches.release();
    key.done();
    chassis.done();
    for mut pin in leds.release() {
        pin.done();
    }
    sensor.release().done();
}
