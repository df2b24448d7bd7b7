//! View-models: everything the kiosk screens show, as plain Rust.
//!
//! Owns: turning the edge's answers ([`proto::tablet`]) plus the current time
//! and the resident's language into display-ready state (strings, counters,
//! enabled flags, tones). Every user-visible word comes from here, in English
//! or Spanish, so the `.slint` files hold layout only and these modules are
//! unit-tested without a UI toolkit.
//!
//! Must not: talk to the edge, touch Slint types, read the clock (time is an
//! input), or decide policy: a refusal is shown in plain words, never judged
//! again here.

pub mod call;
pub mod common;
pub mod compose;
pub mod contacts;
pub mod home;
pub mod login;
pub mod messages;
mod messaging_text;
pub mod nav;
pub mod settings;
pub mod stamps;

pub use common::{Lang, Tone};
