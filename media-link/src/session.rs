//! MoQ sessions over raw QUIC connections the caller established (TLS and
//! certificates stay with the caller).

use std::sync::Arc;

use moq_transport::session::{Publisher, Session, SessionError, Subscriber, Transport};
use tokio::task::JoinHandle;

use crate::MOQT_ALPN;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("MoQ session setup failed: {0}")]
    Setup(#[from] SessionError),
    #[error("the peer's MoQ session offers no {0} role")]
    NoRole(&'static str),
    #[error("MoQ serve error: {0}")]
    Serve(#[from] moq_transport::serve::ServeError),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("no answer to the subscription within {0:?}")]
    Unanswered(std::time::Duration),
    #[error("the track is already being published")]
    DuplicateTrack,
}

/// A running MoQ session: `Session::run` is driven by a task this owns, and
/// dropping the session closes the QUIC connection.
pub struct MoqSession {
    pub publisher: Publisher,
    pub subscriber: Subscriber,
    connection: quinn::Connection,
    runner: JoinHandle<()>,
}

fn raw(connection: quinn::Connection) -> web_transport_quinn::Session {
    // Raw QUIC carries no URL; MoQ wants one for its PATH parameter.
    let url = url::Url::parse("moqt://localhost").expect("a constant URL parses");
    web_transport_quinn::Session::raw(connection, url, web_transport_quinn::proto::ConnectResponse::default())
}

impl MoqSession {
    /// The client side: sends SETUP on `connection` (ALPN `moqt-18`).
    pub async fn connect(connection: quinn::Connection) -> Result<MoqSession, LinkError> {
        let (session, publisher, subscriber) =
            Session::connect(raw(connection.clone()).into(), None, Transport::RawQuic).await?;
        Ok(Self::running(session, publisher, subscriber, connection))
    }

    /// The server side: answers the peer's SETUP.
    pub async fn accept(connection: quinn::Connection) -> Result<MoqSession, LinkError> {
        let (session, publisher, subscriber) =
            Session::accept(raw(connection.clone()).into(), None, Transport::RawQuic).await?;
        let publisher = publisher.ok_or(LinkError::NoRole("subscriber"))?;
        let subscriber = subscriber.ok_or(LinkError::NoRole("publisher"))?;
        Ok(Self::running(session, publisher, subscriber, connection))
    }

    fn running(
        session: Session,
        publisher: Publisher,
        subscriber: Subscriber,
        connection: quinn::Connection,
    ) -> MoqSession {
        let remote = connection.remote_address();
        let runner = tokio::spawn(async move {
            if let Err(error) = session.run().await {
                tracing::debug!(%remote, %error, "MoQ session ended");
            }
        });
        MoqSession { publisher, subscriber, connection, runner }
    }

    pub fn connection(&self) -> &quinn::Connection {
        &self.connection
    }

    /// Ends the session now: every track on it stops at once.
    pub fn close(&self, code: u32, reason: &str) {
        self.connection.close(code.into(), reason.as_bytes());
    }

    /// Resolves when the QUIC connection is gone, for whatever reason.
    pub async fn closed(&self) -> quinn::ConnectionError {
        self.connection.closed().await
    }
}

impl Drop for MoqSession {
    fn drop(&mut self) {
        self.connection.close(0u32.into(), b"session dropped");
        self.runner.abort();
    }
}

/// A QUIC client configuration for a MoQ relay that proves itself with a
/// certificate chaining to one of `roots`. No client certificate: the relay
/// admits by network position and the edge's namespace rules.
pub fn relay_client_config(roots: rustls::RootCertStore) -> Result<quinn::ClientConfig, LinkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| LinkError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![MOQT_ALPN.to_vec()];
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| LinkError::Tls(e.to_string()))?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}
