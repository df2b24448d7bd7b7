//! The QUIC server answering `EdgeToCentral` requests from edge boxes.
//!
//! Owns: the accept loop, per-request authorisation (the client
//! certificate's common name is the facility id; a request for any other
//! facility is refused), decoding errors, and clean shutdown. The answers
//! themselves come from [`answer`], a plain function over the database so it
//! can be tested without sockets. Must not: change the database other than
//! through [`crate::deliver`] and [`crate::releases`] (media is only read) (the feed itself is written by admin commands
//! and by applied deliveries).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use net::quic::{self, AnyValidClient, CENTRAL_ALPN};
use net::rpc::{self, RpcError};
use proto::central::{CentralError, CentralToEdge, EdgeToCentral};
use proto::MAX_CENTRAL_FRAME;

use crate::contact_media::ContactMedia;
use crate::db::{Db, DbError};
use crate::{calls, releases, state};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot load the server bundle {path}: {source} (run `central-sim init` first)")]
    Bundle { path: PathBuf, source: net::PkiError },
    #[error("no database in {0} (run `central-sim init` first)")]
    NotInitialized(PathBuf),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Net(#[from] net::NetError),
    #[error("cannot write {path}: {source}")]
    AddrFile { path: PathBuf, source: std::io::Error },
    #[error("cannot read the socket address: {0}")]
    LocalAddr(std::io::Error),
}

/// Answers one request from a peer whose certificate names `peer_facility`.
pub fn answer(db: &mut Db, peer_facility: Option<&str>, request: &EdgeToCentral) -> CentralToEdge {
    let facility = match request {
        EdgeToCentral::Hello { facility, .. }
        | EdgeToCentral::Changes { facility, .. }
        | EdgeToCentral::Deliver { facility, .. }
        | EdgeToCentral::FetchRelease { facility, .. }
        | EdgeToCentral::RingContact { facility, .. }
        | EdgeToCentral::CallStatus { facility, .. }
        | EdgeToCentral::EndCall { facility, .. }
        | EdgeToCentral::WarnCall { facility, .. }
        | EdgeToCentral::FetchMedia { facility, .. } => facility,
    };
    if peer_facility != Some(facility.as_str()) {
        tracing::warn!(peer = peer_facility.unwrap_or("<none>"), requested = %facility,
            "request for another facility refused");
        return CentralToEdge::Error(CentralError::WrongFacility(facility.clone()));
    }
    let result = (|| -> Result<CentralToEdge, DbError> {
        if !db.facility_exists(facility)? {
            tracing::warn!(%facility, "request from an unknown facility");
            return Ok(CentralToEdge::Error(CentralError::UnknownFacility(facility.clone())));
        }
        match request {
            EdgeToCentral::Hello { agent_version, running, .. } => {
                let head_cursor = db.facility_head(facility)?;
                tracing::info!(%facility, %agent_version, head_cursor,
                    running_version = running.as_ref().map(|r| r.version.as_str()),
                    slot = running.as_ref().map(|r| r.slot.as_str()),
                    on_trial = running.as_ref().map(|r| r.on_trial),
                    last_update_failure = running.as_ref().and_then(|r| r.last_update_failure.as_deref()),
                    "hello");
                // A report or offer that cannot be made must not keep the
                // edge from syncing: both are logged and skipped.
                if let Err(error) = releases::record_hello(db, facility, agent_version, running.as_ref()) {
                    tracing::error!(%facility, %error, "cannot record the edge's report");
                }
                let release = releases::offer_for(db, running.as_ref()).unwrap_or_else(|error| {
                    tracing::error!(%facility, %error, "cannot decide on a release offer");
                    None
                });
                if let Some(offer) = &release {
                    tracing::info!(%facility, version = %offer.version, size = offer.size, "release offered");
                }
                Ok(CentralToEdge::Welcome { facility: facility.clone(), head_cursor, release })
            }
            EdgeToCentral::FetchRelease { version, offset, len, .. } => {
                match releases::read_chunk(db, version, *offset, *len) {
                    Ok(bytes) => {
                        tracing::debug!(%facility, %version, offset, len = bytes.len(), "release chunk served");
                        Ok(CentralToEdge::ReleaseChunk { version: version.clone(), offset: *offset, bytes })
                    }
                    Err(releases::ReleaseError::Unknown(v)) => {
                        Ok(CentralToEdge::Error(CentralError::UnknownRelease(v)))
                    }
                    Err(error @ releases::ReleaseError::PastEnd { .. }) => {
                        Ok(CentralToEdge::Error(CentralError::Malformed(error.to_string())))
                    }
                    Err(error) => {
                        tracing::error!(%facility, %version, %error, "cannot read a release chunk");
                        Ok(CentralToEdge::Error(CentralError::Unavailable("cannot read the release".into())))
                    }
                }
            }
            EdgeToCentral::FetchMedia { media, offset, len, .. } => {
                match crate::media::read_chunk(db.connection(), facility, *media, *offset, *len) {
                    Ok((info, bytes)) => {
                        tracing::debug!(%facility, %media, offset, len = bytes.len(), "media chunk served");
                        Ok(CentralToEdge::MediaChunk { media: *media, info, offset: *offset, bytes })
                    }
                    Err(crate::media::MediaError::Unknown(m)) => {
                        tracing::info!(%facility, media = %m, "unknown media asked for");
                        Ok(CentralToEdge::Error(CentralError::UnknownMedia(m)))
                    }
                    Err(error @ crate::media::MediaError::PastEnd { .. }) => {
                        Ok(CentralToEdge::Error(CentralError::Malformed(error.to_string())))
                    }
                    Err(error) => {
                        tracing::error!(%facility, %media, %error, "cannot read a media chunk");
                        Ok(CentralToEdge::Error(CentralError::Unavailable("cannot read the media".into())))
                    }
                }
            }
            EdgeToCentral::Changes { since, limit, resync_floor, .. } => {
                let answer = db.changes(facility, *since, *limit, *resync_floor)?;
                match &answer {
                    CentralToEdge::Changes(batch) => tracing::debug!(%facility, since, limit,
                        changes = batch.changes.len(), next_cursor = batch.next_cursor, more = batch.more,
                        "changes served"),
                    CentralToEdge::CursorExpired { oldest_valid, .. } => {
                        tracing::info!(%facility, since, resync_floor, oldest_valid, "cursor expired")
                    }
                    _ => {}
                }
                Ok(answer)
            }
            EdgeToCentral::RingContact {
                call_id,
                resident,
                caller_name,
                contact,
                kind,
                number,
                max_duration_secs,
                rate_cents_per_min,
                balance_cents,
                ..
            } => {
                let ring = calls::Ring {
                    call_id: *call_id,
                    resident: resident.clone(),
                    caller_name: caller_name.clone(),
                    contact: *contact,
                    kind: *kind,
                    number: number.clone(),
                    max_duration_secs: *max_duration_secs,
                    rate_cents_per_min: *rate_cents_per_min,
                    balance_cents: *balance_cents,
                };
                calls::ring(db, facility, &ring, now_ms())?;
                tracing::info!(%facility, call_id, %contact, ?kind, max_duration_secs, "contact ringing");
                Ok(CentralToEdge::Ringing { call_id: *call_id })
            }
            EdgeToCentral::CallStatus { call_ids, .. } => {
                let events = calls::status(db, facility, call_ids, now_ms())?;
                Ok(CentralToEdge::CallEvents { events })
            }
            EdgeToCentral::WarnCall { call_id, remaining_secs, .. } => {
                calls::warn(db, facility, *call_id, *remaining_secs, now_ms())?;
                tracing::info!(%facility, call_id, remaining_secs, "contact warned");
                Ok(CentralToEdge::CallWarned { call_id: *call_id })
            }
            EdgeToCentral::EndCall { call_id, reason, .. } => {
                calls::end(db, facility, *call_id, *reason, now_ms())?;
                tracing::info!(%facility, call_id, ?reason, "call ended by the edge");
                Ok(CentralToEdge::CallEnded { call_id: *call_id })
            }
            EdgeToCentral::Deliver { items, .. } => {
                let acks = crate::deliver::deliver(db, facility, items);
                tracing::debug!(%facility, items = items.len(), "delivery answered");
                Ok(CentralToEdge::Delivered { acks })
            }
        }
    })();
    result.unwrap_or_else(|error| {
        tracing::error!(%facility, %error, "database error while answering");
        CentralToEdge::Error(CentralError::Unavailable("database error".into()))
    })
}

/// Wall-clock milliseconds since the Unix epoch (call scripts run on it).
fn now_ms() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0)
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    endpoint: quinn::Endpoint,
    db: Arc<Mutex<Db>>,
    state: PathBuf,
    media: Option<Arc<ContactMedia>>,
}

impl Server {
    /// Opens the state directory's database and server identity and binds.
    pub fn bind(state_dir: &Path, listen: SocketAddr) -> Result<Server, ServerError> {
        let db_path = state_dir.join(crate::db::DB_FILE);
        if !db_path.exists() {
            return Err(ServerError::NotInitialized(state_dir.to_path_buf()));
        }
        let db = Db::open(state_dir)?;
        let bundle_path = state::server_bundle_path(state_dir);
        let identity = net::Bundle::load(&bundle_path)
            .map_err(|source| ServerError::Bundle { path: bundle_path.clone(), source })?;
        let endpoint = quic::server_endpoint(listen, &identity, Arc::new(AnyValidClient), CENTRAL_ALPN)?;
        Ok(Server { endpoint, db: Arc::new(Mutex::new(db)), state: state_dir.to_path_buf(), media: None })
    }

    /// Contacts who answer join their calls through this MoQ relay.
    pub fn with_media_relay(mut self, relay: media_link::RelayClient) -> Server {
        self.media = Some(ContactMedia::new(relay, self.db.clone()));
        self
    }

    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        self.endpoint.local_addr().map_err(ServerError::LocalAddr)
    }

    /// Writes the bound address to `DIR/central.addr` (atomically, so a
    /// reader never sees half an address), then serves until `shutdown`
    /// resolves, and removes the file again.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let addr = self.local_addr()?;
        let addr_path = state::addr_path(&self.state);
        let tmp = addr_path.with_extension("addr.tmp");
        std::fs::write(&tmp, format!("{addr}\n"))
            .and_then(|()| std::fs::rename(&tmp, &addr_path))
            .map_err(|source| ServerError::AddrFile { path: addr_path.clone(), source })?;
        tracing::info!(%addr, "listening");

        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let db = self.db.clone();
                    let media = self.media.clone();
                    tokio::spawn(async move { serve_connection(incoming, db, media).await });
                }
                () = &mut shutdown => {
                    tracing::info!("shutting down");
                    break;
                }
            }
        }
        self.endpoint.close(0u32.into(), b"central shutting down");
        if tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await.is_err() {
            tracing::warn!("connections did not close within 2 s");
        }
        if let Err(error) = std::fs::remove_file(&addr_path) {
            tracing::warn!(%error, path = %addr_path.display(), "could not remove the address file");
        }
        Ok(())
    }
}

async fn serve_connection(incoming: quinn::Incoming, db: Arc<Mutex<Db>>, media: Option<Arc<ContactMedia>>) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%remote, %error, "handshake failed");
            return;
        }
    };
    let peer = quic::peer_cert(&conn);
    let facility = peer.as_ref().map(|p| p.common_name.clone());
    tracing::info!(%remote, facility = facility.as_deref().unwrap_or("<none>"), "edge connected");
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(error) => {
                tracing::info!(%remote, %error, "edge disconnected");
                return;
            }
        };
        let db = db.clone();
        let facility = facility.clone();
        let media = media.clone();
        tokio::spawn(async move { serve_stream(send, recv, db, facility, remote, media).await });
    }
}

async fn serve_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    db: Arc<Mutex<Db>>,
    facility: Option<String>,
    remote: SocketAddr,
    media: Option<Arc<ContactMedia>>,
) {
    let response = match rpc::read_frame::<EdgeToCentral>(&mut recv, MAX_CENTRAL_FRAME).await {
        Ok(request) => {
            let peer = facility.clone();
            let answered = tokio::task::spawn_blocking(move || {
                let answered = match db.lock() {
                    Ok(mut db) => answer(&mut db, peer.as_deref(), &request),
                    Err(_) => {
                        CentralToEdge::Error(CentralError::Unavailable("database lock poisoned".into()))
                    }
                };
                answered
            })
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, "request handler panicked");
                CentralToEdge::Error(CentralError::Unavailable("internal error".into()))
            });
            // The contact's media follows what was answered, never the reverse.
            if let (Some(media), Some(facility)) = (&media, &facility) {
                match answered {
                    CentralToEdge::Ringing { call_id } => media.rung(facility, call_id),
                    CentralToEdge::CallEnded { call_id } => media.ended(facility, call_id),
                    _ => {}
                }
            }
            answered
        }
        Err(RpcError::Frame(error)) => {
            tracing::warn!(%remote, %error, "malformed request refused");
            CentralToEdge::Error(CentralError::Malformed(error.to_string()))
        }
        Err(error) => {
            tracing::warn!(%remote, %error, "request not read");
            return;
        }
    };
    let written = async {
        rpc::write_frame(&mut send, &response, MAX_CENTRAL_FRAME).await?;
        send.finish()?;
        Ok::<_, RpcError>(())
    };
    if let Err(error) = written.await {
        tracing::warn!(%remote, %error, "response not sent");
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
