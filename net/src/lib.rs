//! QUIC and mutual-TLS plumbing shared by the edge agent, central-sim and
//! tablet clients.
//!
//! Owns: the facility PKI ([`pki`]: a CA on disk, issuing server and client
//! certificates with rcgen, PEM bundles), QUIC endpoints with rustls mutual
//! TLS and a hook to admit or refuse client certificates during the handshake
//! ([`quic`]), and framed request/response over QUIC streams ([`rpc`]).
//!
//! Must not: know any message's meaning or hold product state. What a peer
//! may do is the caller's business; this crate only says who the peer is.

pub mod pki;
pub mod quic;
pub mod rpc;

pub use pki::{Authority, Bundle, PkiError};
pub use quic::{NetError, PeerCert};
pub use rpc::RpcError;
