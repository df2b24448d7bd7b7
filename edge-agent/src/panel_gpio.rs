//! A front panel wired straight to this board's GPIO and I2C (no
//! supervisor MCU): the firmware's state machine and drivers run here, on a
//! thread of their own, and talk to the link over a socket pair carrying the
//! same frames as the UART. The link (`supervisor_link`) cannot tell the
//! difference, so every rule is the same as with the MCU.
//!
//! Owns: [`LocalPanel`] (one pass: frames in, pins sampled, LEDs set, frames
//! out; generic over embedded-hal, tested with mocks), and with the
//! `panel-gpio` feature, opening the lines with linux-embedded-hal.
//!
//! Must not: reset anything. There is no separate main board to reset: a
//! hung agent is systemd's watchdog's business (`WatchdogSec=`), so the
//! heartbeat timeout is switched off here and no reset is ever counted.

use embedded_hal::{
    digital::{InputPin, OutputPin},
    i2c::I2c,
};
use supervisor_firmware::{
    drivers::{PanelSwitches, StatusLeds, TemperatureSensor},
    frame::{self, Decoder, ToPanel, MAX_FRAME},
    supervisor::{Supervisor, Timing},
};

/// A panel part failed; the pass stops and the next one tries again.
#[derive(Debug, thiserror::Error)]
pub enum PanelError {
    #[error("switch input: {0:?}")]
    Switch(embedded_hal::digital::ErrorKind),
    #[error("LED output: {0:?}")]
    Led(embedded_hal::digital::ErrorKind),
}

/// How often the thread runs a pass (the debounce counts in these steps).
pub const STEP_MS: u64 = 5;

pub struct LocalPanel<K, C, L, I> {
    switches: PanelSwitches<K, C>,
    leds: StatusLeds<L>,
    sensor: TemperatureSensor<I>,
    supervisor: Supervisor,
    decoder: Decoder,
}

impl<K, C, L, I> LocalPanel<K, C, L, I>
where
    K: InputPin,
    C: InputPin<Error = K::Error>,
    L: OutputPin,
    I: I2c,
{
    pub fn new(
        now: u64,
        mut switches: PanelSwitches<K, C>,
        leds: StatusLeds<L>,
        sensor: TemperatureSensor<I>,
    ) -> Result<Self, PanelError> {
        let inputs =
            switches.sample().map_err(|e| PanelError::Switch(embedded_hal::digital::Error::kind(&e)))?;
        let mut supervisor = Supervisor::new(now, inputs, Timing::default());
        // No watchdog from the first moment, not only once the link configures it.
        supervisor.handle_frame(now, without_reset(ToPanel::Configure(Default::default())));
        Ok(Self { switches, leds, sensor, supervisor, decoder: Decoder::new() })
    }

    /// One pass at `now` (ms): `incoming` are bytes from the link; frames for
    /// the link are appended to `outgoing`.
    pub fn step(&mut self, now: u64, incoming: &[u8], outgoing: &mut Vec<u8>) -> Result<(), PanelError> {
        for &byte in incoming {
            if let Some(Ok(message)) = self.decoder.push::<ToPanel>(byte) {
                self.supervisor.handle_frame(now, without_reset(message));
            }
        }
        let inputs =
            self.switches.sample().map_err(|e| PanelError::Switch(embedded_hal::digital::Error::kind(&e)))?;
        self.supervisor.handle_inputs(now, inputs);
        if self.supervisor.temperature_due(now) {
            self.supervisor.handle_temperature(now, self.sensor.read_centi().ok());
        }
        let outputs = self.supervisor.poll(now);
        self.leds.show(outputs.leds).map_err(|e| PanelError::Led(embedded_hal::digital::Error::kind(&e)))?;
        if let Some(message) = outputs.send {
            let mut buf = [0u8; MAX_FRAME];
            if let Ok(bytes) = frame::encode(&message, &mut buf) {
                outgoing.extend_from_slice(bytes);
            }
        }
        Ok(())
    }
}

/// Settings from the agent, with the watchdog switched off (see the module docs).
fn without_reset(message: ToPanel) -> ToPanel {
    match message {
        ToPanel::Configure(mut config) => {
            config.heartbeat_timeout_ms = u32::MAX;
            config.boot_grace_ms = u32::MAX;
            ToPanel::Configure(config)
        }
        other => other,
    }
}

#[cfg(feature = "panel-gpio")]
pub use linux::open;

#[cfg(feature = "panel-gpio")]
mod linux {
    use std::{
        io::{Read, Write},
        os::unix::net::UnixStream,
        time::{Duration, Instant},
    };

    use anyhow::Context;
    use linux_embedded_hal::{
        gpio_cdev::{Chip, LineRequestFlags},
        CdevPin, I2cdev,
    };
    use supervisor_firmware::drivers::{PanelSwitches, StatusLeds, TemperatureSensor};

    use super::{LocalPanel, STEP_MS};
    use crate::supervisor::GpioPanelConfig;

    /// Opens the lines and the sensor bus, starts the panel thread, and
    /// returns the link's end of the socket pair.
    pub fn open(config: &GpioPanelConfig) -> anyhow::Result<tokio::net::UnixStream> {
        let mut chip = Chip::new(&config.chip).with_context(|| format!("opening {}", config.chip))?;
        let mut line = |offset: u32, flags: LineRequestFlags| -> anyhow::Result<CdevPin> {
            let handle = chip
                .get_line(offset)
                .and_then(|line| line.request(flags, 0, "edge-agent-panel"))
                .with_context(|| format!("{} line {offset}", config.chip))?;
            CdevPin::new(handle).with_context(|| format!("{} line {offset}", config.chip))
        };
        let switches = PanelSwitches::new(
            line(config.key_line, LineRequestFlags::INPUT)?,
            line(config.chassis_line, LineRequestFlags::INPUT)?,
        );
        let [online, offline, lockdown, fault] = config.led_lines;
        let leds = StatusLeds::new(
            line(online, LineRequestFlags::OUTPUT)?,
            line(offline, LineRequestFlags::OUTPUT)?,
            line(lockdown, LineRequestFlags::OUTPUT)?,
            line(fault, LineRequestFlags::OUTPUT)?,
        );
        let bus = I2cdev::new(&config.i2c).with_context(|| format!("opening {}", config.i2c))?;
        let sensor = TemperatureSensor::new(bus, config.sensor_address);
        let started = Instant::now();
        let mut panel = LocalPanel::new(0, switches, leds, sensor).context("reading the panel switches")?;
        let (ours, theirs) = UnixStream::pair().context("creating the panel socket pair")?;
        ours.set_read_timeout(Some(Duration::from_millis(STEP_MS)))?;
        theirs.set_nonblocking(true)?;
        std::thread::Builder::new().name("panel-gpio".into()).spawn(move || {
            let mut ours = ours;
            let mut input = [0u8; 256];
            let mut output = Vec::new();
            loop {
                let incoming = match ours.read(&mut input) {
                    Ok(0) => return, // the link is gone: the agent is shutting down
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        0
                    }
                    Err(error) => {
                        tracing::error!(%error, "panel socket failed");
                        return;
                    }
                };
                output.clear();
                let now = started.elapsed().as_millis() as u64;
                if let Err(error) = panel.step(now, &input[..incoming], &mut output) {
                    tracing::warn!(%error, "panel pass failed");
                }
                if !output.is_empty() && ours.write_all(&output).is_err() {
                    return;
                }
            }
        })?;
        tokio::net::UnixStream::from_std(theirs).context("registering the panel socket")
    }
}

#[cfg(test)]
#[path = "panel_gpio_tests.rs"]
mod tests;
