//! Client side of the tablet API: one QUIC connection to the edge, one
//! request/response per bidirectional stream, server events on the
//! unidirectional streams the edge opens.
//!
//! A resident session lives exactly as long as this connection: dropping the
//! client (or the connection failing) ends it on the edge.

use std::net::SocketAddr;
use std::time::Duration;

use net::quic::TABLET_ALPN;
use net::{Bundle, NetError, RpcError};
use proto::call::CallId;
use proto::domain::{CallKind, ContactId, PhoneNumber, ResidentId};
use proto::messaging::{Compose, ECardRecord, MediaId, MediaType, MessageId, PackageId};
use proto::tablet::{
    ApiError, BalancesView, CallDecision, ContactList, Folder, HoursView, MailboxView, MessageView,
    PurchaseView, ServerEvent, SessionInfo, StampBalances, StampShop, TabletRequest, TabletResponse,
};
use proto::{FrameError, MAX_TABLET_FRAME};

/// How long [`EdgeClient::close`] waits for the close to reach the edge, so
/// the edge ends the session at once instead of after its idle timeout.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The edge answered, with a refusal.
    #[error("{0}")]
    Api(ApiError),
    #[error("cannot set up the QUIC client: {0}")]
    Setup(NetError),
    /// Unreachable edge, or the TLS handshake failed (e.g. this device's
    /// certificate is unknown or revoked).
    #[error("cannot connect to the edge: {0}")]
    Connect(NetError),
    /// The edge closed the connection. Right after connecting this is how a
    /// refused device certificate shows up: TLS 1.3 lets the client finish its
    /// half of the handshake before the server has checked its certificate.
    #[error(
        "the edge closed the connection (a revoked or unknown device certificate is refused this way): {0}"
    )]
    ConnectionLost(String),
    /// The request does not fit in one tablet frame (e.g. a very long
    /// message body); nothing was sent.
    #[error(
        "the request is {len} bytes; the edge takes at most {max} (a message body is far shorter than that)"
    )]
    RequestTooLarge { len: usize, max: usize },
    #[error("exchange with the edge failed: {0}")]
    Rpc(RpcError),
    #[error("the edge answered {got} to a {asked} request")]
    UnexpectedResponse { asked: &'static str, got: &'static str },
    /// The chunks of a media blob did not add up (wrong offset, a size that
    /// changed, more bytes than the size).
    #[error("the edge sent inconsistent media chunks: {0}")]
    BadMedia(String),
}

/// A whole photo or VideoGram, fetched chunk by chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFile {
    pub media: MediaId,
    pub content_type: MediaType,
    pub bytes: Vec<u8>,
}

/// Puts a media blob together from `MediaChunk`s, checking each against
/// what came before (sans IO, so the kiosk and the CLI share it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaAssembly {
    media: MediaId,
    first: Option<(MediaType, u64)>,
    bytes: Vec<u8>,
}

impl MediaAssembly {
    pub fn new(media: MediaId) -> Self {
        Self { media, first: None, bytes: Vec::new() }
    }

    /// The offset to ask for next; `None` once the blob is whole.
    pub fn next_offset(&self) -> Option<u64> {
        match self.first {
            Some((_, total)) if self.bytes.len() as u64 >= total => None,
            _ => Some(self.bytes.len() as u64),
        }
    }

    /// Takes one chunk (the fields of `TabletResponse::MediaChunk`).
    pub fn accept(
        &mut self,
        media: MediaId,
        content_type: MediaType,
        total: u64,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), ClientError> {
        let bad = |what: String| Err(ClientError::BadMedia(what));
        if media != self.media {
            return bad(format!("asked for media {}, got {media}", self.media));
        }
        if let Some((t, n)) = self.first {
            if (t, n) != (content_type, total) {
                return bad(format!("media {media} changed from {n} to {total} bytes mid-way"));
            }
        }
        let have = self.bytes.len() as u64;
        if offset != have {
            return bad(format!("chunk at {offset}, expected {have}"));
        }
        let end = have.checked_add(bytes.len() as u64);
        if end.is_none_or(|end| end > total) {
            return bad(format!("chunk of {} bytes at {offset} overruns {total}", bytes.len()));
        }
        if bytes.is_empty() && have < total {
            return bad(format!("empty chunk at {offset} of {total}"));
        }
        self.first = Some((content_type, total));
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    /// The whole blob, once [`MediaAssembly::next_offset`] is `None`.
    pub fn finish(self) -> Result<MediaFile, ClientError> {
        match self.first {
            Some((content_type, total)) if self.bytes.len() as u64 == total => {
                Ok(MediaFile { media: self.media, content_type, bytes: self.bytes })
            }
            _ => Err(ClientError::BadMedia(format!("media {} is incomplete", self.media))),
        }
    }
}

/// A call the edge placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStarted {
    pub call_id: CallId,
    pub max_duration_secs: u32,
    pub warn_at_secs: u32,
    pub media: Option<proto::call::CallMedia>,
}

/// A connection to the edge's tablet API.
#[derive(Debug)]
pub struct EdgeClient {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
}

impl EdgeClient {
    /// Connects to the edge at `edge` presenting the device certificate of
    /// `identity`, and trusting only the facility CA in it.
    pub async fn connect(
        edge: SocketAddr,
        identity: &Bundle,
        server_name: &str,
    ) -> Result<Self, ClientError> {
        let bind = if edge.is_ipv6() {
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
        } else {
            SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
        };
        let endpoint =
            net::quic::client_endpoint_on(identity, TABLET_ALPN, bind).map_err(ClientError::Setup)?;
        let conn = net::quic::connect(&endpoint, edge, server_name).await.map_err(ClientError::Connect)?;
        tracing::debug!(%edge, "connected to the edge");
        Ok(Self { endpoint, conn })
    }

    /// Sends one request and returns the edge's answer as it came.
    pub async fn request(&self, request: &TabletRequest) -> Result<TabletResponse, ClientError> {
        // Checked here so an oversized request is told apart from an
        // oversized answer, which would be the edge's fault.
        if let Err(FrameError::TooLarge { len, max }) = proto::encode_frame(request, MAX_TABLET_FRAME) {
            return Err(ClientError::RequestTooLarge { len, max });
        }
        net::rpc::call(&self.conn, request, MAX_TABLET_FRAME).await.map_err(|e| self.rpc_error(e))
    }

    /// Stream errors only say "connection lost"; the connection knows why
    /// (e.g. the TLS alert a refused certificate got).
    fn rpc_error(&self, error: RpcError) -> ClientError {
        if error.is_connection_lost() {
            let why = self.conn.close_reason().map_or_else(|| error.to_string(), |reason| reason.to_string());
            ClientError::ConnectionLost(why)
        } else {
            ClientError::Rpc(error)
        }
    }

    pub async fn login(&self, resident: ResidentId, pin: String) -> Result<SessionInfo, ClientError> {
        match self.request(&TabletRequest::Login { resident, pin }).await? {
            TabletResponse::LoggedIn(info) => Ok(info),
            other => Err(unexpected("Login", other)),
        }
    }

    pub async fn logout(&self) -> Result<(), ClientError> {
        match self.request(&TabletRequest::Logout).await? {
            TabletResponse::LoggedOut => Ok(()),
            other => Err(unexpected("Logout", other)),
        }
    }

    pub async fn contacts(&self) -> Result<ContactList, ClientError> {
        match self.request(&TabletRequest::Contacts).await? {
            TabletResponse::Contacts(list) => Ok(list),
            other => Err(unexpected("Contacts", other)),
        }
    }

    pub async fn hours(&self) -> Result<HoursView, ClientError> {
        match self.request(&TabletRequest::Hours).await? {
            TabletResponse::Hours(hours) => Ok(hours),
            other => Err(unexpected("Hours", other)),
        }
    }

    /// Asks the edge to decide on a call. A denial is a successful answer
    /// ([`CallDecision::Denied`]), not an error.
    pub async fn place_call(
        &self,
        contact: ContactId,
        kind: CallKind,
        number: Option<PhoneNumber>,
    ) -> Result<CallDecision, ClientError> {
        match self.request(&TabletRequest::PlaceCall { contact, kind, number }).await? {
            TabletResponse::Call(decision) => Ok(decision),
            other => Err(unexpected("PlaceCall", other)),
        }
    }

    /// Places a call: `Ok(Err(decision))` when the policy denied it.
    pub async fn start_call(
        &self,
        contact: ContactId,
        kind: CallKind,
        number: Option<PhoneNumber>,
    ) -> Result<Result<CallStarted, CallDecision>, ClientError> {
        match self.request(&TabletRequest::StartCall { contact, kind, number }).await? {
            TabletResponse::CallStarted { call_id, max_duration_secs, warn_at_secs, media } => {
                Ok(Ok(CallStarted { call_id, max_duration_secs, warn_at_secs, media }))
            }
            TabletResponse::Call(decision) => Ok(Err(decision)),
            other => Err(unexpected("StartCall", other)),
        }
    }

    pub async fn hang_up(&self, call_id: CallId) -> Result<(), ClientError> {
        match self.request(&TabletRequest::HangUp { call_id }).await? {
            TabletResponse::HungUp { .. } => Ok(()),
            other => Err(unexpected("HangUp", other)),
        }
    }

    pub async fn balances(&self) -> Result<BalancesView, ClientError> {
        match self.request(&TabletRequest::Balances).await? {
            TabletResponse::Balances(balances) => Ok(balances),
            other => Err(unexpected("Balances", other)),
        }
    }

    /// One folder, newest first, with the unread count.
    pub async fn mailbox(&self, folder: Folder) -> Result<MailboxView, ClientError> {
        match self.request(&TabletRequest::Mailbox { folder }).await? {
            TabletResponse::Mailbox(view) => Ok(view),
            other => Err(unexpected("Mailbox", other)),
        }
    }

    pub async fn read_message(&self, id: MessageId) -> Result<MessageView, ClientError> {
        match self.request(&TabletRequest::ReadMessage { id }).await? {
            TabletResponse::Message(view) => Ok(view),
            other => Err(unexpected("ReadMessage", other)),
        }
    }

    /// Fetches a whole attachment, chunk by chunk.
    pub async fn fetch_media(&self, media: MediaId) -> Result<MediaFile, ClientError> {
        let mut assembly = MediaAssembly::new(media);
        while let Some(offset) = assembly.next_offset() {
            match self.request(&TabletRequest::Media { media, offset }).await? {
                TabletResponse::MediaChunk { media, content_type, total, offset, bytes } => {
                    assembly.accept(media, content_type, total, offset, &bytes)?
                }
                other => return Err(unexpected("Media", other)),
            }
        }
        assembly.finish()
    }

    /// Creates a draft (`draft: None`) or replaces one; returns its ID.
    pub async fn save_draft(
        &self,
        draft: Option<MessageId>,
        compose: Compose,
    ) -> Result<MessageId, ClientError> {
        match self.request(&TabletRequest::SaveDraft { draft, compose }).await? {
            TabletResponse::DraftSaved { id } => Ok(id),
            other => Err(unexpected("SaveDraft", other)),
        }
    }

    pub async fn delete_draft(&self, id: MessageId) -> Result<MessageId, ClientError> {
        match self.request(&TabletRequest::DeleteDraft { id }).await? {
            TabletResponse::DraftDeleted { id } => Ok(id),
            other => Err(unexpected("DeleteDraft", other)),
        }
    }

    /// Queues a message (spending a stamp); `draft` names the draft it
    /// replaces.
    pub async fn send_message(
        &self,
        draft: Option<MessageId>,
        compose: Compose,
    ) -> Result<MessageView, ClientError> {
        match self.request(&TabletRequest::SendMessage { draft, compose }).await? {
            TabletResponse::MessageQueued(view) => Ok(view),
            other => Err(unexpected("SendMessage", other)),
        }
    }

    pub async fn hide_sent(&self, id: MessageId) -> Result<MessageId, ClientError> {
        match self.request(&TabletRequest::HideSent { id }).await? {
            TabletResponse::SentHidden { id } => Ok(id),
            other => Err(unexpected("HideSent", other)),
        }
    }

    pub async fn ecards(&self) -> Result<Vec<ECardRecord>, ClientError> {
        match self.request(&TabletRequest::ECards).await? {
            TabletResponse::ECards(cards) => Ok(cards),
            other => Err(unexpected("ECards", other)),
        }
    }

    pub async fn stamp_packages(&self) -> Result<StampShop, ClientError> {
        match self.request(&TabletRequest::StampPackages).await? {
            TabletResponse::StampPackages(shop) => Ok(shop),
            other => Err(unexpected("StampPackages", other)),
        }
    }

    pub async fn buy_stamps(
        &self,
        contact: ContactId,
        package: PackageId,
    ) -> Result<PurchaseView, ClientError> {
        match self.request(&TabletRequest::BuyStamps { contact, package }).await? {
            TabletResponse::StampsBought(purchase) => Ok(purchase),
            other => Err(unexpected("BuyStamps", other)),
        }
    }

    pub async fn stamp_balance(&self) -> Result<StampBalances, ClientError> {
        match self.request(&TabletRequest::StampBalance).await? {
            TabletResponse::Stamps(stamps) => Ok(stamps),
            other => Err(unexpected("StampBalance", other)),
        }
    }

    /// Waits for the next event the edge pushes. Events that arrived earlier
    /// wait in the connection until read, so none is missed between calls.
    pub async fn next_event(&self) -> Result<ServerEvent, ClientError> {
        let mut recv = self.conn.accept_uni().await.map_err(|e| self.rpc_error(RpcError::from(e)))?;
        net::rpc::read_frame(&mut recv, MAX_TABLET_FRAME).await.map_err(|e| self.rpc_error(e))
    }

    /// Whether the connection is gone (closed by either side or timed out).
    pub fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }

    /// Closes the connection and waits briefly for the edge to be told.
    pub async fn close(self) {
        self.conn.close(quinn::VarInt::from_u32(0), b"bye");
        if tokio::time::timeout(CLOSE_GRACE, self.endpoint.wait_idle()).await.is_err() {
            tracing::debug!("edge did not acknowledge the close in time");
        }
    }
}

fn unexpected(asked: &'static str, got: TabletResponse) -> ClientError {
    let got = match got {
        TabletResponse::Error(e) => return ClientError::Api(e),
        TabletResponse::LoggedIn(_) => "LoggedIn",
        TabletResponse::LoggedOut => "LoggedOut",
        TabletResponse::Contacts(_) => "Contacts",
        TabletResponse::Hours(_) => "Hours",
        TabletResponse::Call(_) => "Call",
        TabletResponse::Balances(_) => "Balances",
        TabletResponse::Mailbox(_) => "Mailbox",
        TabletResponse::Message(_) => "Message",
        TabletResponse::DraftSaved { .. } => "DraftSaved",
        TabletResponse::DraftDeleted { .. } => "DraftDeleted",
        TabletResponse::MessageQueued(_) => "MessageQueued",
        TabletResponse::SentHidden { .. } => "SentHidden",
        TabletResponse::ECards(_) => "ECards",
        TabletResponse::StampPackages(_) => "StampPackages",
        TabletResponse::StampsBought(_) => "StampsBought",
        TabletResponse::Stamps(_) => "Stamps",
        TabletResponse::CallStarted { .. } => "CallStarted",
        TabletResponse::HungUp { .. } => "HungUp",
        TabletResponse::MediaChunk { .. } => "MediaChunk",
    };
    ClientError::UnexpectedResponse { asked, got }
}

impl From<Result<TabletResponse, ClientError>> for crate::kiosk::EdgeReply {
    fn from(result: Result<TabletResponse, ClientError>) -> Self {
        use crate::kiosk::EdgeReply;
        match result {
            Ok(TabletResponse::Error(error)) | Err(ClientError::Api(error)) => EdgeReply::Refused(error),
            Ok(response) => EdgeReply::Answer(response),
            Err(error) => {
                tracing::warn!(%error, "no answer from the edge");
                EdgeReply::Unreachable
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_answers_become_api_errors() {
        let e = unexpected("Contacts", TabletResponse::Error(ApiError::NotLoggedIn));
        assert!(matches!(e, ClientError::Api(ApiError::NotLoggedIn)));
    }

    #[test]
    fn media_chunks_must_follow_each_other_exactly() {
        let m = MediaId(4);
        let mut a = MediaAssembly::new(m);
        assert_eq!(a.next_offset(), Some(0));
        assert!(a.accept(MediaId(5), MediaType::Png, 5, 0, b"ab").is_err());
        assert!(a.accept(m, MediaType::Png, 5, 1, b"ab").is_err());
        assert!(a.accept(m, MediaType::Png, 5, 0, b"abcdef").is_err());
        assert!(a.accept(m, MediaType::Png, 5, 0, b"").is_err());
        a.accept(m, MediaType::Png, 5, 0, b"abc").unwrap();
        assert!(a.accept(m, MediaType::Png, 6, 3, b"de").is_err(), "the size may not change");
        assert!(a.clone().finish().is_err());
        assert_eq!(a.next_offset(), Some(3));
        a.accept(m, MediaType::Png, 5, 3, b"de").unwrap();
        assert_eq!(a.next_offset(), None);
        assert_eq!(
            a.finish().unwrap(),
            MediaFile { media: m, content_type: MediaType::Png, bytes: b"abcde".to_vec() }
        );
        // An empty blob is whole after one empty chunk.
        let mut empty = MediaAssembly::new(m);
        empty.accept(m, MediaType::Jpeg, 0, 0, b"").unwrap();
        assert_eq!(empty.next_offset(), None);
    }

    #[test]
    fn mismatched_answers_are_reported_by_name() {
        let e = unexpected("Hours", TabletResponse::LoggedOut);
        assert!(matches!(e, ClientError::UnexpectedResponse { asked: "Hours", got: "LoggedOut" }));
    }
}
