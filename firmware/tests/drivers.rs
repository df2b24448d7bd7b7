//! The drivers against embedded-hal-mock: every pin and bus transaction.

use embedded_hal_mock::eh1::{
    delay::{CheckedDelay, Transaction as DelayTransaction},
    digital::{Mock as PinMock, State, Transaction as PinTransaction},
    i2c::{Mock as I2cMock, Transaction as I2cTransaction},
    MockError,
};
use supervisor_firmware::{
    drivers::{
        centi_from_register, PanelSwitches, ResetLine, StatusLeds, TemperatureSensor, DEFAULT_SENSOR_ADDRESS,
    },
    supervisor::{LedLevels, RawInputs},
};

#[test]
fn switches_resolve_polarity_key_low_is_lockdown_chassis_high_is_open() {
    let key = PinMock::new(&[PinTransaction::get(State::Low), PinTransaction::get(State::High)]);
    let chassis = PinMock::new(&[PinTransaction::get(State::Low), PinTransaction::get(State::High)]);
    let mut switches = PanelSwitches::new(key, chassis);
    assert_eq!(switches.sample().unwrap(), RawInputs { key_lockdown: true, chassis_open: false });
    assert_eq!(switches.sample().unwrap(), RawInputs { key_lockdown: false, chassis_open: true });
    let (mut key, mut chassis) = switches.release();
    key.done();
    chassis.done();
}

#[test]
fn a_pin_error_is_returned_not_swallowed() {
    let key =
        PinMock::new(&[PinTransaction::get(State::Low).with_error(MockError::Io(std::io::ErrorKind::Other))]);
    let chassis = PinMock::new(&[]);
    let mut switches = PanelSwitches::new(key, chassis);
    assert!(switches.sample().is_err());
    let (mut key, mut chassis) = switches.release();
    key.done();
    chassis.done();
}

#[test]
fn reset_line_is_released_on_take_and_is_active_low() {
    let pin = PinMock::new(&[
        PinTransaction::set(State::High),
        PinTransaction::set(State::Low),
        PinTransaction::set(State::High),
    ]);
    let mut reset = ResetLine::new(pin).unwrap();
    reset.set_asserted(true).unwrap();
    reset.set_asserted(false).unwrap();
    reset.release().done();
}

#[test]
fn a_blocking_reset_pulse_holds_the_line_low_for_the_width() {
    let pin = PinMock::new(&[
        PinTransaction::set(State::High),
        PinTransaction::set(State::Low),
        PinTransaction::set(State::High),
    ]);
    let mut delay = CheckedDelay::new(&[DelayTransaction::delay_ms(200)]);
    let mut reset = ResetLine::new(pin).unwrap();
    reset.pulse(&mut delay, 200).unwrap();
    reset.release().done();
    delay.done();
}

#[test]
fn leds_show_each_level_on_its_pin() {
    let expect =
        |states: &[State]| PinMock::new(&states.iter().map(|s| PinTransaction::set(*s)).collect::<Vec<_>>());
    let mut leds = StatusLeds::new(
        expect(&[State::High, State::Low]),
        expect(&[State::Low, State::High]),
        expect(&[State::Low, State::High]),
        expect(&[State::High, State::Low]),
    );
    leds.show(LedLevels { online: true, offline: false, lockdown: false, fault: true }).unwrap();
    leds.show(LedLevels { online: false, offline: true, lockdown: true, fault: false }).unwrap();
    for mut pin in leds.release() {
        pin.done();
    }
}

#[test]
fn temperature_is_read_from_register_zero_in_hundredths() {
    let i2c = I2cMock::new(&[
        I2cTransaction::write_read(DEFAULT_SENSOR_ADDRESS, vec![0x00], vec![0x19, 0x00]),
        I2cTransaction::write_read(DEFAULT_SENSOR_ADDRESS, vec![0x00], vec![0xE7, 0x00]),
        I2cTransaction::write_read(DEFAULT_SENSOR_ADDRESS, vec![0x00], vec![0x4B, 0x10]),
    ]);
    let mut sensor = TemperatureSensor::new(i2c, DEFAULT_SENSOR_ADDRESS);
    assert_eq!(sensor.read_centi().unwrap(), 2_500);
    assert_eq!(sensor.read_centi().unwrap(), -2_500);
    assert_eq!(sensor.read_centi().unwrap(), 7_506); // 75.0625 °C
    sensor.release().done();
}

#[test]
fn a_sensor_that_does_not_answer_is_an_error() {
    let i2c = I2cMock::new(&[I2cTransaction::write_read(DEFAULT_SENSOR_ADDRESS, vec![0x00], vec![0, 0])
        .with_error(embedded_hal::i2c::ErrorKind::NoAcknowledge(
            embedded_hal::i2c::NoAcknowledgeSource::Address,
        ))]);
    let mut sensor = TemperatureSensor::new(i2c, DEFAULT_SENSOR_ADDRESS);
    assert!(sensor.read_centi().is_err());
    sensor.release().done();
}

#[test]
fn register_conversion_covers_the_range() {
    assert_eq!(centi_from_register([0x7F, 0xF0]), 12_793);
    assert_eq!(centi_from_register([0xC9, 0x00]), -5_500);
    assert_eq!(centi_from_register([0x00, 0x10]), 6);
    assert_eq!(centi_from_register([0x00, 0x00]), 0);
}
