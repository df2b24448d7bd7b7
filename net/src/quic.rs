//! QUIC endpoints with rustls mutual TLS (TLS 1.3 only, ring provider).
//!
//! Servers demand a client certificate that chains to the bundle's CA and then
//! ask a [`ClientGate`] whether that particular certificate is admitted, all
//! inside the handshake: an unknown or revoked device never gets a connection.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rustls::{
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, UnixTime},
    server::{
        danger::{ClientCertVerified, ClientCertVerifier},
        WebPkiClientVerifier,
    },
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use crate::pki::{fingerprint_der, Bundle, PkiError};

pub const TABLET_ALPN: &[u8] = b"facility-edge/1";
pub const CENTRAL_ALPN: &[u8] = b"facility-central/1";

/// How long a silent peer is kept. Tablets send keep-alives well inside it, so
/// a tablet that vanishes (battery, Wi-Fi) is noticed within this time.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
pub const KEEP_ALIVE: Duration = Duration::from_secs(4);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("QUIC crypto configuration: {0}")]
    QuicCrypto(String),
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot connect to {addr}: {detail}")]
    Connect { addr: SocketAddr, detail: String },
    #[error("connection to {addr} timed out after {secs} s")]
    ConnectTimeout { addr: SocketAddr, secs: u64 },
}

/// Identity of the authenticated peer of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerCert {
    pub common_name: String,
    pub fingerprint: String,
}

impl PeerCert {
    pub fn from_der(der: &[u8]) -> Option<PeerCert> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let common_name = cert.subject().iter_common_name().next()?.as_str().ok()?.to_string();
        Some(PeerCert { common_name, fingerprint: fingerprint_der(der) })
    }
}

/// Decides during the TLS handshake whether a client certificate that already
/// chains to the CA is admitted (e.g. provisioned and not revoked).
pub trait ClientGate: Send + Sync + std::fmt::Debug {
    fn admit(&self, peer: &PeerCert) -> Result<(), String>;
}

/// Admits every certificate signed by the CA.
#[derive(Debug)]
pub struct AnyValidClient;

impl ClientGate for AnyValidClient {
    fn admit(&self, _peer: &PeerCert) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug)]
struct GatedVerifier {
    chain: Arc<dyn ClientCertVerifier>,
    gate: Arc<dyn ClientGate>,
}

impl ClientCertVerifier for GatedVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.chain.verify_client_cert(end_entity, intermediates, now).inspect_err(|e| {
            tracing::warn!(error = %e, "client certificate refused: does not chain to the CA");
        })?;
        let peer = PeerCert::from_der(end_entity)
            .ok_or(rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if let Err(why) = self.gate.admit(&peer) {
            tracing::warn!(device = %peer.common_name, fingerprint = %peer.fingerprint, reason = %why,
                "client certificate refused");
            return Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(identity: &Bundle) -> Result<RootCertStore, NetError> {
    let mut roots = RootCertStore::empty();
    roots.add(identity.ca_der()?)?;
    Ok(roots)
}

fn transport(keep_alive: bool) -> Result<Arc<quinn::TransportConfig>, NetError> {
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(IDLE_TIMEOUT).map_err(|e| NetError::QuicCrypto(e.to_string()))?;
    transport.max_idle_timeout(Some(idle));
    if keep_alive {
        transport.keep_alive_interval(Some(KEEP_ALIVE));
    } else {
        transport.ack_frequency_config(Some(sparse_acks()));
    }
    Ok(Arc::new(transport))
}

/// The transport of [`server_endpoint`]'s connections (the tablet port).
pub fn server_transport() -> Result<Arc<quinn::TransportConfig>, NetError> {
    transport(false)
}

/// Asks the peer (quinn peers support the ACK frequency extension) to
/// acknowledge every tenth ack-eliciting packet or within 10 ms, instead
/// of every second packet: a video frame is a burst of a few packets, and
/// the media bridge's CPU goes largely to packets (measured by the bridge
/// benchmark). Out-of-order packets are still acknowledged at once.
pub fn sparse_acks() -> quinn::AckFrequencyConfig {
    let mut acks = quinn::AckFrequencyConfig::default();
    acks.ack_eliciting_threshold(9u32.into()).max_ack_delay(Some(Duration::from_millis(10)));
    acks
}

/// A QUIC server that requires a client certificate chaining to the
/// identity's CA and admitted by `gate`.
pub fn server_endpoint(
    bind: SocketAddr,
    identity: &Bundle,
    gate: Arc<dyn ClientGate>,
    alpn: &[u8],
) -> Result<quinn::Endpoint, NetError> {
    server_endpoint_alpns(bind, identity, gate, &[alpn])
}

/// As [`server_endpoint`], offering several protocols on one port; see
/// [`negotiated_alpn`] for which one a connection chose.
pub fn server_endpoint_alpns(
    bind: SocketAddr,
    identity: &Bundle,
    gate: Arc<dyn ClientGate>,
    alpns: &[&[u8]],
) -> Result<quinn::Endpoint, NetError> {
    let provider = provider();
    let chain =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(identity)?), provider.clone()).build()?;
    let verifier = Arc::new(GatedVerifier { chain, gate });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert_der()?], identity.key_der()?)?;
    tls.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| NetError::QuicCrypto(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport(false)?);
    let (endpoint, _granted) = endpoint_with_recv_buffer(bind, Some(config), SERVER_RECV_BUFFER)
        .map_err(|source| NetError::Bind { addr: bind, source })?;
    Ok(endpoint)
}

/// A quinn endpoint on a socket bound to `bind` that asked for
/// `recv_buffer` bytes of receive buffer, with what the kernel granted.
/// Asking is best effort: the kernel caps it at net.core.rmem_max (the edge
/// image raises that limit in /etc/sysctl.d); 0 granted means unknown. A
/// smaller grant is logged as a warning, since on a box whose limit was
/// not raised it is the first sign of media dropped under call load.
pub fn endpoint_with_recv_buffer(
    bind: SocketAddr,
    server: Option<quinn::ServerConfig>,
    recv_buffer: usize,
) -> std::io::Result<(quinn::Endpoint, usize)> {
    let socket = std::net::UdpSocket::bind(bind)?;
    let granted = match quinn::udp::UdpSocketState::new((&socket).into()) {
        Ok(state) => {
            let _ = state.set_recv_buffer_size((&socket).into(), recv_buffer);
            // Linux reports twice what it granted (the other half is its
            // own bookkeeping).
            state.recv_buffer_size((&socket).into()).unwrap_or(0) / 2
        }
        Err(_) => 0,
    };
    let local = socket.local_addr()?;
    if granted == 0 {
        tracing::debug!(%local, "QUIC receive buffer size unknown");
    } else if granted < recv_buffer {
        tracing::warn!(
            %local,
            granted,
            asked = recv_buffer,
            "QUIC receive buffer capped by net.core.rmem_max; under heavy call load datagrams may be dropped"
        );
    }
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime for the QUIC endpoint"))?;
    let endpoint = quinn::Endpoint::new(quinn::EndpointConfig::default(), server, socket, runtime)?;
    Ok((endpoint, granted))
}

/// Receive buffer asked for on a server's socket. Every tablet's call media
/// arrives on the one tablet port: at 100 calls (150 Mbit/s) the kernel's
/// default of about 200 KiB holds some 10 ms, and the bridge benchmark saw
/// datagrams dropped there whenever the runtime was busy for longer.
pub const SERVER_RECV_BUFFER: usize = 4 << 20;

/// A QUIC client presenting the identity's certificate and trusting only the
/// identity's CA. Binds an ephemeral IPv4 port.
pub fn client_endpoint(identity: &Bundle, alpn: &[u8]) -> Result<quinn::Endpoint, NetError> {
    client_endpoint_on(identity, alpn, SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// As [`client_endpoint`], bound to `bind` (use `[::]:0` to reach IPv6 peers).
pub fn client_endpoint_on(
    identity: &Bundle,
    alpn: &[u8],
    bind: SocketAddr,
) -> Result<quinn::Endpoint, NetError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(identity)?)
        .with_client_auth_cert(vec![identity.cert_der()?], identity.key_der()?)?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| NetError::QuicCrypto(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(true)?);
    let mut endpoint =
        quinn::Endpoint::client(bind).map_err(|source| NetError::Bind { addr: bind, source })?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}

/// Connects and completes the handshake, within [`CONNECT_TIMEOUT`].
pub async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    server_name: &str,
) -> Result<quinn::Connection, NetError> {
    let connecting =
        endpoint.connect(addr, server_name).map_err(|e| NetError::Connect { addr, detail: e.to_string() })?;
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(NetError::Connect { addr, detail: e.to_string() }),
        Err(_) => Err(NetError::ConnectTimeout { addr, secs: CONNECT_TIMEOUT.as_secs() }),
    }
}

/// The application protocol the handshake settled on.
pub fn negotiated_alpn(conn: &quinn::Connection) -> Option<Vec<u8>> {
    let data = conn.handshake_data()?;
    data.downcast::<quinn::crypto::rustls::HandshakeData>().ok()?.protocol
}

/// The verified certificate the peer presented, if any.
pub fn peer_cert(conn: &quinn::Connection) -> Option<PeerCert> {
    let identity = conn.peer_identity()?;
    let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    PeerCert::from_der(chain.first()?)
}
