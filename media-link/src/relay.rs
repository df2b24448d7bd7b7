//! A client of the central MoQ relay: one QUIC endpoint trusting the
//! relay's CA, and [`RelayUplinks`], the MoQ sessions to the relay that the
//! edge's calls share (up to [`CALLS_PER_UPLINK`] calls per session).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::MoqSession;

/// Receive buffer asked for the relay client's UDP socket.
const UPSTREAM_RECV_BUFFER: usize = 4 << 20;

/// Streams of each kind the relay may open on one session to us.
const RELAY_OPENED_STREAMS: u32 = 512;

/// Calls one shared upstream session carries at most. `moq-relay-ietf`
/// lets a peer open quinn's default of 100 concurrent streams of each kind;
/// a call opens, per track (video, audio), a request stream (the
/// announcement, the subscription) and one data stream per group, two for
/// a moment at a group boundary: about four per call at worst.
pub const CALLS_PER_UPLINK: usize = 25;

/// A client of one MoQ relay (the central SFU side).
pub struct RelayClient {
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    server_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("relay CA {path}: {detail}")]
    Ca { path: String, detail: String },
    #[error("relay client: {0}")]
    Client(String),
    #[error("relay {addr} unreachable: {detail}")]
    Connect { addr: SocketAddr, detail: String },
    #[error("relay session: {0}")]
    Session(#[from] crate::LinkError),
}

impl RelayClient {
    /// A client for the relay at `addr`, trusting the CA certificates in `ca_pem`.
    pub fn new(addr: SocketAddr, server_name: String, ca_pem: &Path) -> Result<RelayClient, RelayError> {
        let ca = |detail: String| RelayError::Ca { path: ca_pem.display().to_string(), detail };
        let text = std::fs::read(ca_pem).map_err(|e| ca(e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&text) {
            roots.add(cert.map_err(|e| ca(e.to_string()))?).map_err(|e| ca(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(ca("no certificate in the file".into()));
        }
        let mut config = crate::relay_client_config(roots).map_err(|e| RelayError::Client(e.to_string()))?;
        // A shared session carries many calls: the relay opens a request
        // stream per subscription and a data stream per group on it.
        let mut transport = quinn::TransportConfig::default();
        transport.max_concurrent_uni_streams(RELAY_OPENED_STREAMS.into());
        transport.max_concurrent_bidi_streams(RELAY_OPENED_STREAMS.into());
        transport.ack_frequency_config(Some(net::quic::sparse_acks()));
        config.transport_config(Arc::new(transport));
        let bind = if addr.is_ipv6() {
            SocketAddr::from(([0u16; 8], 0))
        } else {
            SocketAddr::from(([0, 0, 0, 0], 0))
        };
        let client = |e: std::io::Error| RelayError::Client(e.to_string());
        // Every call's downstream media arrives on this one socket: the
        // default receive buffer (about 200 KiB) overflows at a few hundred
        // Mbit/s while the runtime is busy (measured by the bridge
        // benchmark). Best effort: the kernel caps it at net.core.rmem_max,
        // and a capped grant is logged.
        let (mut endpoint, _granted) =
            net::quic::endpoint_with_recv_buffer(bind, None, UPSTREAM_RECV_BUFFER).map_err(client)?;
        endpoint.set_default_client_config(config);
        Ok(RelayClient { endpoint, addr, server_name })
    }

    pub async fn connect(&self) -> Result<MoqSession, RelayError> {
        let connect = |detail: String| RelayError::Connect { addr: self.addr, detail };
        let connecting =
            self.endpoint.connect(self.addr, &self.server_name).map_err(|e| connect(e.to_string()))?;
        let connection = tokio::time::timeout(Duration::from_secs(5), connecting)
            .await
            .map_err(|_| connect("handshake timed out".into()))?
            .map_err(|e| connect(e.to_string()))?;
        Ok(MoqSession::connect(connection).await?)
    }
}

/// MoQ sessions to the relay shared by calls: a call leases a session with
/// room ([`CALLS_PER_UPLINK`]), or a new one is connected; a session whose
/// last call ends is closed. One session per call would cost a handshake,
/// a connection's timers and acknowledgements, and its own packets for
/// every call (the bridge benchmark measures the difference).
pub struct RelayUplinks {
    client: RelayClient,
    sessions: Arc<Mutex<Vec<Pooled>>>,
    /// One connection attempt at a time: calls arriving together share it.
    connecting: tokio::sync::Mutex<()>,
}

struct Pooled {
    session: Arc<MoqSession>,
    calls: usize,
}

/// One call's share of an upstream session; dropping it ends the share.
/// The call's announcements and subscriptions on the session are the
/// caller's to drop: the session stays up for the other calls on it.
pub struct Uplink {
    session: Arc<MoqSession>,
    sessions: Arc<Mutex<Vec<Pooled>>>,
}

impl Uplink {
    pub fn session(&self) -> &MoqSession {
        &self.session
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = sessions.iter().position(|p| Arc::ptr_eq(&p.session, &self.session)) {
            sessions[i].calls = sessions[i].calls.saturating_sub(1);
            if sessions[i].calls == 0 {
                // Dropping the last handle closes the connection.
                sessions.swap_remove(i);
            }
        }
    }
}

impl RelayUplinks {
    pub fn new(client: RelayClient) -> RelayUplinks {
        RelayUplinks { client, sessions: Arc::default(), connecting: tokio::sync::Mutex::new(()) }
    }

    /// A share of a live session with room for another call, connecting a
    /// new session when none has.
    pub async fn lease(&self) -> Result<Uplink, RelayError> {
        if let Some(uplink) = self.share() {
            return Ok(uplink);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(uplink) = self.share() {
            return Ok(uplink);
        }
        let session = Arc::new(self.client.connect().await?);
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.push(Pooled { session: session.clone(), calls: 1 });
        Ok(Uplink { session, sessions: self.sessions.clone() })
    }

    fn share(&self) -> Option<Uplink> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        // A session the relay closed serves no new call; its calls end on
        // their own (their forwarding sees the connection go).
        sessions.retain(|p| p.session.connection().close_reason().is_none());
        let pooled = sessions.iter_mut().find(|p| p.calls < CALLS_PER_UPLINK)?;
        pooled.calls += 1;
        Some(Uplink { session: pooled.session.clone(), sessions: self.sessions.clone() })
    }

    /// Upstream sessions open now.
    pub fn sessions(&self) -> usize {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The `moq-relay-ietf` version central runs here; `cargo xtask test`
/// installs it.
pub const RELAY_VERSION: &str = "0.8.0";

/// The installed `moq-relay-ietf`: `$MOQ_RELAY`, else the first on `PATH`,
/// else in cargo's bin directory; the error says how to install it.
pub fn relay_binary() -> Result<std::path::PathBuf, String> {
    if let Some(path) = std::env::var_os("MOQ_RELAY") {
        return Ok(path.into());
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin"));
    let path_dirs =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    path_dirs.into_iter().chain(cargo_bin).map(|dir| dir.join("moq-relay-ietf")).find(|c| c.is_file()).ok_or_else(|| {
        format!("moq-relay-ietf is not installed: cargo install moq-relay-ietf --version {RELAY_VERSION} --locked")
    })
}
