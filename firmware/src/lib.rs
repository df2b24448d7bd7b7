//! The front-panel supervisor MCU's logic and drivers.
//!
//! Owns: the supervisor rules ([`supervisor`]: heartbeat watchdog and reset
//! pulse, lockdown key and tamper switch debouncing, tamper latch,
//! over-temperature alarm, LED patterns with a safe default when the link is
//! down) as a sans-IO state machine, and the drivers for the panel's parts
//! ([`drivers`]) over embedded-hal 1.0 traits. The wire format is
//! [`supervisor_frame`], re-exported as [`frame`].
//!
//! Must not: touch registers or a particular board (that is `firmware/board`
//! for the MCU and the edge agent's GPIO mode for a main board), read a
//! clock, allocate, or panic on any input. `no_std`.

#![no_std]

pub mod drivers;
pub mod supervisor;

pub use supervisor_frame as frame;
