//! central-sim: a stand-in for the provider's central API, used by the demo
//! and the end-to-end tests.
//!
//! Owns the central side of `proto::central`: its own SQLite database holding
//! a compacted change feed ([`db`]), the outbox deliveries edges send
//! ([`deliver`]), the contact's side of calls ([`calls`]) and its media through the MoQ relay ([`contact_media`]), the admin commands that change it ([`admin`]), the seed fixture ([`fixture`]), update releases and edge reports ([`releases`]), contacts' photos and VideoGrams ([`media`]), the state directory with the
//! central CA and bundles ([`state`]) and the QUIC server ([`server`]).
//! Must not: be imported by edge-agent (the edge only knows central through
//! `proto` over the network), or implement any edge policy.

pub mod admin;
pub mod calls;
pub mod contact_media;
pub mod db;
pub mod deliver;
pub mod fixture;
pub mod media;
pub mod releases;
pub mod server;
pub mod state;
