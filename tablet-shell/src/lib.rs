//! Tablet shell: what runs on resident tablets and wall kiosks.
//!
//! The shell shows; the edge decides. It sends [`proto::tablet`] requests to
//! the edge box over mutual-TLS QUIC and displays what comes back; it never
//! judges by itself whether a call is allowed, how long it may last or what a
//! resident may see.
//!
//! Owns: the kiosk's view-models ([`vm`]), its sans-IO controller
//! ([`kiosk`]) and Slint shell (`ui`, feature `ui`); the client side of the
//! tablet API ([`client::EdgeClient`]), the headless command vocabulary
//! shared by `tablet-shell cli` and its `session` mode ([`command`]),
//! placing and following a call ([`dial`]), running those commands on one
//! connection ([`session`]), their JSON output contract ([`output`]), and
//! the call media leg (`media_call`, feature `media`).
//!
//! Must not: hold policy, cache decisions, or store resident data on disk.

pub mod client;
pub mod command;
pub mod dial;
pub mod kiosk;
#[cfg(feature = "media")]
pub mod media_call;
pub mod output;
pub mod photo;
pub mod session;
#[cfg(feature = "ui")]
pub mod ui;
pub mod vm;

pub use client::{ClientError, EdgeClient};
pub use command::{parse_session_line, Body, Command, ComposeArgs, SessionLineError};
pub use output::{ErrorBody, ErrorKind, ExitStatus, Line, Reply};
pub use session::Session;
