//! The tablet API over QUIC: mutual TLS with device certificates from the
//! facility CA, one request/response per bidirectional stream, server events
//! on unidirectional streams. A resident's session lives and dies with the
//! device's connection.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use net::{quic, rpc};
use proto::{
    tablet::{ApiError, ServerEvent, TabletRequest, TabletResponse},
    MAX_TABLET_FRAME,
};
use tokio::sync::mpsc;

use crate::{
    api::{self, LoginStart},
    state::{Admitted, Device, Shared},
};

/// Admits provisioned, unrevoked devices during the handshake.
#[derive(Debug)]
pub struct ProvisionedDevices(pub Admitted);

impl quic::ClientGate for ProvisionedDevices {
    fn admit(&self, peer: &quic::PeerCert) -> Result<(), String> {
        let admitted = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        if admitted.contains(&peer.fingerprint) {
            Ok(())
        } else {
            Err("device is not provisioned or has been revoked".into())
        }
    }
}

/// QUIC application close code sent to a device whose certificate was revoked.
pub const CLOSE_REVOKED: u32 = 0x10;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

pub fn bind(
    addr: SocketAddr,
    identity: &net::Bundle,
    shared: &Shared,
) -> Result<quinn::Endpoint, net::NetError> {
    quic::server_endpoint_alpns(
        addr,
        identity,
        Arc::new(ProvisionedDevices(shared.admitted.clone())),
        &[quic::TABLET_ALPN, media_link::MOQT_ALPN],
    )
}

pub async fn serve(endpoint: quinn::Endpoint, shared: Shared) {
    while let Some(incoming) = endpoint.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve_connection(conn, shared).await,
                Err(error) => tracing::info!(%remote, %error, "tablet handshake failed"),
            }
        });
    }
}

async fn serve_connection(conn: quinn::Connection, shared: Shared) {
    let Some(peer) = quic::peer_cert(&conn) else {
        tracing::warn!(remote = %conn.remote_address(), "connection without a readable client certificate");
        conn.close(0u32.into(), b"no certificate");
        return;
    };
    if quic::negotiated_alpn(&conn).as_deref() == Some(media_link::MOQT_ALPN) {
        return crate::bridge::serve_media(conn, shared, peer.fingerprint).await;
    }
    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    shared.lock().devices.insert(
        id,
        Device {
            name: peer.common_name.clone(),
            fingerprint: peer.fingerprint.clone(),
            events: events_tx,
            connection: conn.clone(),
        },
    );
    tracing::info!(device = %peer.common_name, remote = %conn.remote_address(), connection = id, "tablet connected");
    let pusher = tokio::spawn(push_events(conn.clone(), events_rx));

    let reason = loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                let shared = shared.clone();
                tokio::spawn(async move { answer(shared, id, send, recv).await });
            }
            Err(reason) => break reason,
        }
    };
    pusher.abort();
    let mut state = shared.lock();
    // The tablet leg is gone: its calls end before the device is forgotten.
    state.calls_connection_lost(id, jiff::Timestamp::now());
    state.devices.remove(&id);
    if let Some(session) = state.sessions.end_connection(id) {
        tracing::info!(resident = %session.resident, connection = id, "session ended: device disconnected");
    }
    tracing::info!(device = %peer.common_name, connection = id, %reason, "tablet disconnected");
}

async fn push_events(conn: quinn::Connection, mut events: mpsc::UnboundedReceiver<ServerEvent>) {
    while let Some(event) = events.recv().await {
        let pushed = async {
            let mut send = conn.open_uni().await?;
            rpc::write_frame(&mut send, &event, MAX_TABLET_FRAME).await?;
            send.finish()?;
            Ok::<_, rpc::RpcError>(())
        }
        .await;
        if let Err(error) = pushed {
            tracing::debug!(%error, "could not push an event to a tablet");
            if error.is_connection_lost() {
                return;
            }
        }
    }
}

async fn answer(shared: Shared, connection: u64, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let response = match rpc::read_frame::<TabletRequest>(&mut recv, MAX_TABLET_FRAME).await {
        Ok(request) => respond(&shared, connection, request).await,
        Err(error) => {
            tracing::warn!(connection, %error, "malformed tablet request");
            TabletResponse::Error(ApiError::Malformed(error.to_string()))
        }
    };
    let written = async {
        rpc::write_frame(&mut send, &response, MAX_TABLET_FRAME).await?;
        send.finish()?;
        Ok::<_, rpc::RpcError>(())
    }
    .await;
    if let Err(error) = written {
        tracing::debug!(connection, %error, "could not answer a tablet");
    }
}

async fn respond(shared: &Shared, connection: u64, request: TabletRequest) -> TabletResponse {
    let now = jiff::Timestamp::now();
    match request {
        TabletRequest::Login { resident, pin } => {
            let start = api::login_start(&shared.lock(), &resident, now);
            match start {
                LoginStart::Answer(answer) => answer,
                LoginStart::Verify { pin_hash } => {
                    let verified =
                        tokio::task::spawn_blocking(move || api::verify_pin(pin_hash.as_deref(), &pin)).await;
                    let pin_ok = verified.unwrap_or(false);
                    api::login_finish(
                        &mut shared.lock(),
                        connection,
                        &resident,
                        pin_ok,
                        jiff::Timestamp::now(),
                    )
                }
            }
        }
        other => api::handle(&mut shared.lock(), connection, other, now),
    }
}
