//! Wire protocol of Facility Edge.
//!
//! Owns: the message types exchanged between tablets and the edge box
//! ([`tablet`]) and between the edge box and central ([`central`]), the shared
//! domain vocabulary those messages speak ([`domain`], and [`messaging`] for
//! messages, stamps and the outbox), and the framing that
//! carries them ([`frame`]): a 4-byte big-endian length, one version byte, then
//! a postcard body.
//!
//! Must not: do I/O, read clocks, or hold policy. Decoding arbitrary bytes never
//! panics and never allocates more than the caller's frame limit.

pub mod call;
pub mod central;
pub mod domain;
pub mod frame;
pub mod messaging;
pub mod tablet;

pub use frame::{decode_body, decode_frame, encode_frame, parse_header, FrameError, HEADER_LEN};

/// Version byte carried by every frame. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u8 = 1;

/// Largest tablet<->edge frame either side accepts.
pub const MAX_TABLET_FRAME: usize = 64 * 1024;

/// Largest edge<->central frame either side accepts (a page of the change feed).
pub const MAX_CENTRAL_FRAME: usize = 8 * 1024 * 1024;
