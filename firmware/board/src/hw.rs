//! The LM3S6965's peripherals as small embedded-hal 1.0 implementations,
//! by volatile register access (no PAC for this part builds today: the
//! `lm3s6965` crate only has the interrupt table).
//!
//! Register offsets are from the LM3S6965 data sheet; QEMU's
//! `lm3s6965evb` emulates the same UART (PL011-like), GPIO (PL061-like) and
//! I2C master.

// The test build replaces the switch pins and the sensor bus but keeps their
// drivers compiled, so both builds check them.
#![cfg_attr(feature = "test-inputs", allow(dead_code))]

use core::{
    convert::Infallible,
    ptr::{read_volatile, write_volatile},
};

use embedded_hal::{
    digital::{ErrorType as PinErrorType, InputPin, OutputPin},
    i2c::{self, ErrorKind, Operation, SevenBitAddress},
};

fn read(addr: usize) -> u32 {
    // SAFETY: only called with the data sheet's register addresses, which
    // are always mapped on this part.
    unsafe { read_volatile(addr as *const u32) }
}

fn write(addr: usize, value: u32) {
    // SAFETY: as for `read`.
    unsafe { write_volatile(addr as *mut u32, value) }
}

fn modify(addr: usize, f: impl FnOnce(u32) -> u32) {
    write(addr, f(read(addr)));
}

const SYSCTL_RCGC1: usize = 0x400F_E104;
const SYSCTL_RCGC2: usize = 0x400F_E108;

/// Gates on the clocks of UART0/1, I2C0 and GPIO ports A..G.
pub fn enable_clocks() {
    modify(SYSCTL_RCGC1, |v| v | 0b11 | (1 << 12));
    modify(SYSCTL_RCGC2, |v| v | 0x7F);
}

pub const GPIO_B: usize = 0x4000_5000;
pub const GPIO_D: usize = 0x4000_7000;
const GPIO_DATA_ALL: usize = 0x3FC;
const GPIO_DIR: usize = 0x400;
const GPIO_PUR: usize = 0x510;
const GPIO_DEN: usize = 0x51C;

/// One GPIO pin as an input with the pull-up on.
pub struct GpioInput {
    port: usize,
    mask: u32,
}

impl GpioInput {
    pub fn new(port: usize, pin: u8) -> Self {
        let mask = 1 << pin;
        modify(port + GPIO_DIR, |v| v & !mask);
        modify(port + GPIO_PUR, |v| v | mask);
        modify(port + GPIO_DEN, |v| v | mask);
        Self { port, mask }
    }
}

impl PinErrorType for GpioInput {
    type Error = Infallible;
}

impl InputPin for GpioInput {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(read(self.port + GPIO_DATA_ALL) & self.mask != 0)
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|high| !high)
    }
}

/// One GPIO pin as a push-pull output.
pub struct GpioOutput {
    port: usize,
    mask: u32,
}

impl GpioOutput {
    pub fn new(port: usize, pin: u8) -> Self {
        let mask = 1 << pin;
        modify(port + GPIO_DIR, |v| v | mask);
        modify(port + GPIO_DEN, |v| v | mask);
        Self { port, mask }
    }
}

impl PinErrorType for GpioOutput {
    type Error = Infallible;
}

impl OutputPin for GpioOutput {
    fn set_high(&mut self) -> Result<(), Infallible> {
        // Address bits 9:2 mask the write to this pin alone: no read-modify-write race.
        write(self.port + ((self.mask as usize) << 2), 0xFF);
        Ok(())
    }

    fn set_low(&mut self) -> Result<(), Infallible> {
        write(self.port + ((self.mask as usize) << 2), 0);
        Ok(())
    }
}

pub const UART0: usize = 0x4000_C000;
#[cfg(feature = "test-inputs")]
pub const UART1: usize = 0x4000_D000;
const UART_DR: usize = 0x000;
const UART_FR: usize = 0x018;
const UART_IBRD: usize = 0x024;
const UART_FBRD: usize = 0x028;
const UART_LCRH: usize = 0x02C;
const UART_CTL: usize = 0x030;
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;

/// A polled UART, 8N1 with FIFOs.
pub struct Uart {
    base: usize,
}

impl Uart {
    /// 115200 baud from the 12 MHz reset clock (the data sheet's formula:
    /// 12e6 / (16 · 115200) = 6.5104 → IBRD 6, FBRD 33).
    pub fn new(base: usize) -> Self {
        write(base + UART_CTL, 0);
        write(base + UART_IBRD, 6);
        write(base + UART_FBRD, 33);
        write(base + UART_LCRH, 0x60 | 0x10); // 8 bits, FIFOs on
        write(base + UART_CTL, 0x301); // UART, TX, RX enabled
        Self { base }
    }

    pub fn read_byte(&mut self) -> Option<u8> {
        if read(self.base + UART_FR) & FR_RXFE != 0 {
            return None;
        }
        Some(read(self.base + UART_DR) as u8)
    }

    pub fn write_all(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            while read(self.base + UART_FR) & FR_TXFF != 0 {}
            write(self.base + UART_DR, u32::from(byte));
        }
    }
}

#[cfg_attr(feature = "test-inputs", allow(unused_imports))]
pub use master::I2cMaster;

mod master {
    use embedded_hal::i2c::NoAcknowledgeSource;

    use super::*;

    const I2C0: usize = 0x4002_0000;
    const MSA: usize = 0x000;
    const MCS: usize = 0x004;
    const MDR: usize = 0x008;
    const MTPR: usize = 0x00C;
    const MCR: usize = 0x020;
    // MCS written: commands.
    const RUN: u32 = 1 << 0;
    const START: u32 = 1 << 1;
    const STOP: u32 = 1 << 2;
    const ACK: u32 = 1 << 3;
    // MCS read: status.
    const BUSY: u32 = 1 << 0;
    const ERROR: u32 = 1 << 1;
    const ADRACK: u32 = 1 << 2;
    const DATACK: u32 = 1 << 3;
    const ARBLST: u32 = 1 << 4;
    /// A transfer that never finishes (a wedged bus) gives up instead of
    /// stalling the watchdog loop.
    const BUSY_SPINS: u32 = 100_000;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct I2cError(ErrorKind);

    impl i2c::Error for I2cError {
        fn kind(&self) -> ErrorKind {
            self.0
        }
    }

    /// I2C0 as a 100 kHz master.
    pub struct I2cMaster;

    impl I2cMaster {
        pub fn new() -> Self {
            write(I2C0 + MCR, 0x10); // master function enable
                                     // 12 MHz / (20 · (1 + 5)) = 100 kHz.
            write(I2C0 + MTPR, 5);
            Self
        }

        fn command(&mut self, command: u32) -> Result<(), I2cError> {
            write(I2C0 + MCS, command);
            let mut spins = 0;
            while read(I2C0 + MCS) & BUSY != 0 {
                spins += 1;
                if spins == BUSY_SPINS {
                    return Err(I2cError(ErrorKind::Other));
                }
            }
            let status = read(I2C0 + MCS);
            if status & ERROR == 0 {
                return Ok(());
            }
            let kind = if status & ARBLST != 0 {
                ErrorKind::ArbitrationLoss
            } else if status & ADRACK != 0 {
                ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
            } else if status & DATACK != 0 {
                ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data)
            } else {
                ErrorKind::Bus
            };
            if kind != ErrorKind::ArbitrationLoss {
                write(I2C0 + MCS, STOP);
            }
            Err(I2cError(kind))
        }
    }

    impl i2c::ErrorType for I2cMaster {
        type Error = I2cError;
    }

    impl i2c::I2c<SevenBitAddress> for I2cMaster {
        fn transaction(&mut self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), I2cError> {
            let count = operations.len();
            for (index, operation) in operations.iter_mut().enumerate() {
                let last_operation = index + 1 == count;
                match operation {
                    Operation::Write(bytes) => {
                        write(I2C0 + MSA, u32::from(address) << 1);
                        let len = bytes.len();
                        for (at, byte) in bytes.iter().enumerate() {
                            write(I2C0 + MDR, u32::from(*byte));
                            let mut command = RUN;
                            if at == 0 {
                                command |= START;
                            }
                            if last_operation && at + 1 == len {
                                command |= STOP;
                            }
                            self.command(command)?;
                        }
                    }
                    Operation::Read(buffer) => {
                        write(I2C0 + MSA, (u32::from(address) << 1) | 1);
                        let len = buffer.len();
                        for (at, slot) in buffer.iter_mut().enumerate() {
                            let mut command = RUN;
                            if at == 0 {
                                command |= START;
                            }
                            if at + 1 < len {
                                command |= ACK;
                            } else if last_operation {
                                command |= STOP;
                            }
                            self.command(command)?;
                            *slot = read(I2C0 + MDR) as u8;
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

/// Switch levels and a temperature set over UART1 by the QEMU test, behind
/// the same embedded-hal traits as the real pins and sensor.
#[cfg(feature = "test-inputs")]
pub mod test_inputs {
    use core::cell::Cell;

    use super::*;

    pub struct TestLevels {
        /// Pin levels as the real wiring would show them.
        pub key_pin_high: Cell<bool>,
        pub chassis_pin_high: Cell<bool>,
        /// The sensor's register 0.
        pub temperature_register: Cell<[u8; 2]>,
    }

    impl TestLevels {
        pub const fn new() -> Self {
            Self {
                key_pin_high: Cell::new(true),
                chassis_pin_high: Cell::new(false),
                temperature_register: Cell::new([25, 0]),
            }
        }

        /// `K`/`k`: key to lockdown / back; `T`/`t`: chassis opened / closed;
        /// `H`/`C`: 80 °C / 25 °C. Anything else is ignored.
        pub fn apply(&self, command: u8) {
            match command {
                b'K' => self.key_pin_high.set(false),
                b'k' => self.key_pin_high.set(true),
                b'T' => self.chassis_pin_high.set(true),
                b't' => self.chassis_pin_high.set(false),
                b'H' => self.temperature_register.set([80, 0]),
                b'C' => self.temperature_register.set([25, 0]),
                _ => {}
            }
        }
    }

    pub struct TestPin<'a>(pub &'a Cell<bool>);

    impl PinErrorType for TestPin<'_> {
        type Error = Infallible;
    }

    impl InputPin for TestPin<'_> {
        fn is_high(&mut self) -> Result<bool, Infallible> {
            Ok(self.0.get())
        }

        fn is_low(&mut self) -> Result<bool, Infallible> {
            Ok(!self.0.get())
        }
    }

    /// A bus with one LM75-like sensor whose register 0 is `register`.
    pub struct TestSensorBus<'a>(pub &'a Cell<[u8; 2]>);

    impl i2c::ErrorType for TestSensorBus<'_> {
        type Error = ErrorKind;
    }

    impl i2c::I2c<SevenBitAddress> for TestSensorBus<'_> {
        fn transaction(&mut self, _address: u8, operations: &mut [Operation<'_>]) -> Result<(), ErrorKind> {
            for operation in operations {
                if let Operation::Read(buffer) = operation {
                    let register = self.0.get();
                    for (slot, byte) in buffer.iter_mut().zip(register) {
                        *slot = byte;
                    }
                }
            }
            Ok(())
        }
    }
}
