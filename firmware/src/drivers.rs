//! Drivers for the panel's parts, generic over embedded-hal 1.0 traits, so
//! the same code runs on the MCU (register-level pins) and on a main board
//! whose panel is wired to its own GPIO (linux-embedded-hal).
//!
//! Wiring (the panel's schematic): the key switch and the chassis switch
//! pull their lines to ground when closed, with pull-ups. The key closes in
//! the lockdown position; the chassis switch is held closed by the lid, so
//! an open chassis reads high (a cut wire also reads as open: fail-safe).
//! The main board's reset line is active low; LEDs are lit high.

use embedded_hal::{
    delay::DelayNs,
    digital::{InputPin, OutputPin},
    i2c::I2c,
};

use crate::supervisor::{LedLevels, RawInputs};

/// The key switch and the chassis (tamper) switch.
pub struct PanelSwitches<K, C> {
    key: K,
    chassis: C,
}

impl<K: InputPin, C: InputPin<Error = K::Error>> PanelSwitches<K, C> {
    pub fn new(key: K, chassis: C) -> Self {
        Self { key, chassis }
    }

    /// Raw levels, polarity resolved; debouncing is the supervisor's job.
    pub fn sample(&mut self) -> Result<RawInputs, K::Error> {
        Ok(RawInputs { key_lockdown: self.key.is_low()?, chassis_open: self.chassis.is_high()? })
    }

    pub fn release(self) -> (K, C) {
        (self.key, self.chassis)
    }
}

/// The main board's active-low reset line.
pub struct ResetLine<P> {
    pin: P,
}

impl<P: OutputPin> ResetLine<P> {
    /// Takes the pin and releases reset (drives it high) at once, so the
    /// main board is not held in reset by a floating line.
    pub fn new(mut pin: P) -> Result<Self, P::Error> {
        pin.set_high()?;
        Ok(Self { pin })
    }

    pub fn set_asserted(&mut self, asserted: bool) -> Result<(), P::Error> {
        if asserted {
            self.pin.set_low()
        } else {
            self.pin.set_high()
        }
    }

    /// A blocking pulse, for a caller without a main loop (the agent's
    /// GPIO mode resets a companion board this way).
    pub fn pulse(&mut self, delay: &mut impl DelayNs, width_ms: u32) -> Result<(), P::Error> {
        self.pin.set_low()?;
        delay.delay_ms(width_ms);
        self.pin.set_high()
    }

    pub fn release(self) -> P {
        self.pin
    }
}

/// The four status LEDs.
pub struct StatusLeds<P> {
    online: P,
    offline: P,
    lockdown: P,
    fault: P,
}

impl<P: OutputPin> StatusLeds<P> {
    pub fn new(online: P, offline: P, lockdown: P, fault: P) -> Self {
        Self { online, offline, lockdown, fault }
    }

    pub fn show(&mut self, levels: LedLevels) -> Result<(), P::Error> {
        self.online.set_state(levels.online.into())?;
        self.offline.set_state(levels.offline.into())?;
        self.lockdown.set_state(levels.lockdown.into())?;
        self.fault.set_state(levels.fault.into())
    }

    pub fn release(self) -> [P; 4] {
        [self.online, self.offline, self.lockdown, self.fault]
    }
}

/// An LM75/TMP102-class temperature sensor: register 0 holds the
/// temperature as a left-aligned two's-complement value in 1/16 °C steps
/// (the LM75's 9- or 11-bit values have zeros in the bits it lacks).
pub struct TemperatureSensor<I> {
    i2c: I,
    address: u8,
}

/// The usual address with A0..A2 tied low.
pub const DEFAULT_SENSOR_ADDRESS: u8 = 0x48;
const TEMPERATURE_REGISTER: u8 = 0x00;

impl<I: I2c> TemperatureSensor<I> {
    pub fn new(i2c: I, address: u8) -> Self {
        Self { i2c, address }
    }

    /// Hundredths of a degree Celsius.
    pub fn read_centi(&mut self) -> Result<i16, I::Error> {
        let mut raw = [0u8; 2];
        self.i2c.write_read(self.address, &[TEMPERATURE_REGISTER], &mut raw)?;
        Ok(centi_from_register(raw))
    }

    pub fn release(self) -> I {
        self.i2c
    }
}

/// Register value → hundredths of a degree (1/16 °C = 6.25 centi-degrees,
/// rounded towards zero).
pub fn centi_from_register(raw: [u8; 2]) -> i16 {
    let sixteenths = i32::from(i16::from_be_bytes(raw) >> 4);
    (sixteenths * 625 / 100) as i16
}
