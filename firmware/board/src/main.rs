//! The supervisor firmware for the LM3S6965 (Cortex-M3), as QEMU's
//! `lm3s6965evb` emulates it.
//!
//! Owns: the board's wiring and main loop: sample the switches, read the
//! sensor, feed UART0 bytes to the frame decoder and the supervisor, drive
//! the reset line and LEDs, send status frames. Every rule lives in
//! `supervisor-firmware`; this file only moves bytes and levels.
//!
//! Wiring: PB0 key switch, PB1 chassis switch (inputs, pull-ups); PD0 main
//! board reset (active low); PD1..PD4 LEDs online, offline, lockdown,
//! fault; I2C0 temperature sensor at 0x48; UART0 to the main board at
//! 115200 8N1. With `test-inputs`, UART1 carries the test's switch and
//! temperature commands instead of PB0/PB1 and the sensor.

#![no_std]
#![no_main]

mod hw;

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use panic_halt as _;
use supervisor_firmware::{
    drivers::{PanelSwitches, ResetLine, StatusLeds, TemperatureSensor, DEFAULT_SENSOR_ADDRESS},
    frame::{self, Decoder, ToPanel, MAX_FRAME},
    supervisor::{Supervisor, Timing},
};

/// The core clock after reset (the 12 MHz internal oscillator).
const CORE_HZ: u32 = 12_000_000;

static TICKS_MS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    TICKS_MS.fetch_add(1, Ordering::Relaxed);
}

/// Milliseconds since start, widened to u64 across the u32 tick wrap.
struct Clock {
    last: u32,
    high: u64,
}

impl Clock {
    fn now(&mut self) -> u64 {
        let ticks = TICKS_MS.load(Ordering::Relaxed);
        if ticks < self.last {
            self.high += 1 << 32;
        }
        self.last = ticks;
        self.high | u64::from(ticks)
    }
}

/// The test build measures the stack's high-water mark: the stack below
/// `main`'s frame is painted before anything else runs (SysTick is not on
/// yet), and `S` on UART1 reports how deep the paint was overwritten.
#[cfg(feature = "test-inputs")]
mod stack {
    use core::ptr::{read_volatile, write_volatile};

    const PAINT: u32 = 0x5AFE_C0DE;
    /// How far below `main`'s frame to paint (the panel needs far less).
    const DEPTH: usize = 16 * 1024;
    /// Room left for the painting function's own frame.
    const MARGIN: usize = 256;

    extern "C" {
        static _stack_start: u32;
    }

    pub struct Painted {
        bottom: usize,
        top: usize,
    }

    pub fn paint() -> Painted {
        let sp = cortex_m::register::msp::read() as usize;
        let painted = Painted { bottom: sp - DEPTH, top: sp - MARGIN };
        for addr in (painted.bottom..painted.top).step_by(4) {
            // SAFETY: RAM below the current stack pointer, not in use by
            // anything yet (no interrupts are enabled).
            unsafe { write_volatile(addr as *mut u32, PAINT) };
        }
        painted
    }

    /// Bytes of stack used so far, from its top.
    pub fn high_water(painted: &Painted) -> usize {
        // The linker script defines `_stack_start`; only its address is used.
        let start = core::ptr::addr_of!(_stack_start) as usize;
        let lowest = (painted.bottom..painted.top)
            .step_by(4)
            // SAFETY: the same painted RAM.
            .find(|&addr| unsafe { read_volatile(addr as *const u32) } != PAINT)
            .unwrap_or(painted.top);
        start - lowest
    }
}

#[entry]
fn main() -> ! {
    #[cfg(feature = "test-inputs")]
    let painted = stack::paint();
    let Some(core) = cortex_m::Peripherals::take() else {
        panic!("core peripherals taken twice");
    };
    let mut syst = core.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CORE_HZ / 1_000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();

    hw::enable_clocks();
    let mut uart = hw::Uart::new(hw::UART0);

    #[cfg(feature = "test-inputs")]
    let levels = hw::test_inputs::TestLevels::new();
    #[cfg(feature = "test-inputs")]
    let mut test_uart = hw::Uart::new(hw::UART1);
    #[cfg(feature = "test-inputs")]
    let (mut switches, mut sensor) = (
        PanelSwitches::new(
            hw::test_inputs::TestPin(&levels.key_pin_high),
            hw::test_inputs::TestPin(&levels.chassis_pin_high),
        ),
        TemperatureSensor::new(
            hw::test_inputs::TestSensorBus(&levels.temperature_register),
            DEFAULT_SENSOR_ADDRESS,
        ),
    );
    #[cfg(not(feature = "test-inputs"))]
    let (mut switches, mut sensor) = (
        PanelSwitches::new(hw::GpioInput::new(hw::GPIO_B, 0), hw::GpioInput::new(hw::GPIO_B, 1)),
        TemperatureSensor::new(hw::I2cMaster::new(), DEFAULT_SENSOR_ADDRESS),
    );

    let Ok(mut reset) = ResetLine::new(hw::GpioOutput::new(hw::GPIO_D, 0));
    let mut leds = StatusLeds::new(
        hw::GpioOutput::new(hw::GPIO_D, 1),
        hw::GpioOutput::new(hw::GPIO_D, 2),
        hw::GpioOutput::new(hw::GPIO_D, 3),
        hw::GpioOutput::new(hw::GPIO_D, 4),
    );

    let mut clock = Clock { last: 0, high: 0 };
    let Ok(inputs) = switches.sample();
    let mut supervisor = Supervisor::new(clock.now(), inputs, Timing::default());
    let mut decoder = Decoder::new();
    let mut out = [0u8; MAX_FRAME];
    loop {
        let now = clock.now();
        while let Some(byte) = uart.read_byte() {
            // A bad frame is dropped alone; the agent re-sends what matters
            // (heartbeats every second, settings after every reconnect).
            if let Some(Ok(message)) = decoder.push::<ToPanel>(byte) {
                supervisor.handle_frame(now, message);
            }
        }
        #[cfg(feature = "test-inputs")]
        while let Some(byte) = test_uart.read_byte() {
            if byte == b'S' {
                report_stack(&mut test_uart, stack::high_water(&painted));
            }
            levels.apply(byte);
        }
        let Ok(inputs) = switches.sample();
        supervisor.handle_inputs(now, inputs);
        if supervisor.temperature_due(now) {
            supervisor.handle_temperature(now, sensor.read_centi().ok());
        }
        let outputs = supervisor.poll(now);
        let Ok(()) = reset.set_asserted(outputs.reset_asserted);
        let Ok(()) = leds.show(outputs.leds);
        if let Some(message) = outputs.send {
            if let Ok(bytes) = frame::encode(&message, &mut out) {
                uart.write_all(bytes);
            }
        }
        // Sleep until the next tick (1 ms); UART bytes wait in the FIFO.
        cortex_m::asm::wfi();
    }
}

/// `STACK <bytes>\n` on the test UART.
#[cfg(feature = "test-inputs")]
fn report_stack(uart: &mut hw::Uart, bytes: usize) {
    let mut digits = [0u8; 10];
    let mut n = bytes;
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    uart.write_all(b"STACK ");
    uart.write_all(&digits[at..]);
    uart.write_all(b"\n");
}
