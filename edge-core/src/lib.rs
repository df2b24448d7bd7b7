//! Sans-IO cores of the edge agent.
//!
//! Owns: the decisions and state machines that must be deterministic and
//! testable faster than real time: [`policy`] (may this call happen, and for
//! how long), [`directory`] (the in-memory view of everything central synced
//! down), [`login`] (PIN failure counting and lockout), [`sync`] (the
//! downlink change-feed state machine).
//!
//! Must not: do I/O, spawn tasks, take locks, or read a clock. Time always
//! comes in as an argument; effects always go out as values.

pub mod directory;
pub mod login;
pub mod policy;
pub mod sync;
