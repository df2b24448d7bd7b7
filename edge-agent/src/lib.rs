//! The edge box service.
//!
//! Owns: the shells around the sans-IO cores of `edge-core`: the SQLite
//! store, the tablet API over QUIC, the uplink to central, the calls shell, the metrics
//! endpoint, the facility PKI on the box, the facility IT command line, and
//! update delivery (download unprivileged, install as a root one-shot).
//!
//! Must not: decide policy itself (that is `edge-core::policy`), render UI,
//! or read central's database (only `proto` messages cross the uplink).

/// mimalloc rather than glibc's malloc for every process built on this
/// crate (the service and its benchmarks): the media bridge allocates per
/// object and per packet, and with mimalloc the bridge benchmark carried
/// about 8 % more calls per core at 25 and 50 calls, with about 15 % more
/// resident memory per call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod api;
pub mod appliance;
pub mod bridge;
pub mod calls;
pub mod config;
pub mod logging;
pub mod media_core;
pub mod media_fetch;
pub mod messaging_api;
pub mod metrics;
pub mod panel_gpio;
pub mod pki;
pub mod running;
pub mod service;
pub mod state;
pub mod store;
pub mod supervisor;
pub mod supervisor_link;
pub mod tablet_api;
pub mod update_core;
pub mod update_install;
pub mod updater;
pub mod uplink;
