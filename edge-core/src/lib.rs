//! Sans-IO cores of the edge agent.
//!
//! Owns: the decisions and state machines that must be deterministic and
//! testable faster than real time: [`policy`] (may this call happen, and for
//! how long), [`directory`] (the in-memory view of everything central synced
//! down), [`login`] (PIN failure counting and lockout), [`sync`] (the
//! downlink change-feed state machine), [`messaging`] (may this message be
//! sent or kept as a draft), [`ledger`] (what a resident may spend, offline
//! included, and what happens when central refuses a purchase), [`outbox`]
//! (exactly-once delivery of everything the edge owes central) and [`call`] (one allowed call from ringing to its record: the limit,
//! the warning, the cut, the charge, the crash checkpoint).
//!
//! Must not: do I/O, spawn tasks, take locks, or read a clock. Time always
//! comes in as an argument; effects always go out as values.

pub mod call;
pub mod directory;
pub mod ledger;
pub mod login;
pub mod messaging;
pub mod outbox;
pub mod policy;
pub mod sync;
