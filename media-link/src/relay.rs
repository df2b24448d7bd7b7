//! A client of the central MoQ relay: one QUIC endpoint trusting the
//! relay's CA, a fresh MoQ session per call.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::MoqSession;

/// Receive buffer asked for the relay client's UDP socket.
const UPSTREAM_RECV_BUFFER: usize = 4 << 20;

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
        let config = crate::relay_client_config(roots).map_err(|e| RelayError::Client(e.to_string()))?;
        let bind = if addr.is_ipv6() {
            SocketAddr::from(([0u16; 8], 0))
        } else {
            SocketAddr::from(([0, 0, 0, 0], 0))
        };
        let client = |e: std::io::Error| RelayError::Client(e.to_string());
        // Every call's downstream media arrives on this one socket: the
        // default receive buffer (about 200 KiB) overflows at a few hundred
        // Mbit/s while the runtime is busy (measured by the bridge
        // benchmark). Best effort: the kernel caps it at net.core.rmem_max.
        let socket = std::net::UdpSocket::bind(bind).map_err(client)?;
        if let Ok(state) = quinn::udp::UdpSocketState::new((&socket).into()) {
            let _ = state.set_recv_buffer_size((&socket).into(), UPSTREAM_RECV_BUFFER);
        }
        let runtime = Arc::new(quinn::TokioRuntime);
        let mut endpoint =
            quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime).map_err(client)?;
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
