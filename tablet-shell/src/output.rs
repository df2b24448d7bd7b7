//! The JSON output contract of the headless CLI: one JSON object per line,
//! either `{"ok": <reply>}` or `{"error": {"kind": .., "message": .., "api": ..}}`,
//! where `<reply>` is serde JSON of the proto types, tagged by what it is
//! (`{"LoggedIn": {..}}`, `{"Call": {"Denied": {..}}}`, `{"Event": {..}}`).
//! Scripts and tests parse this; keep it stable.
//!
//! One deviation from the proto types' own serde form: message IDs and
//! idempotency keys are 16 raw bytes on the wire (a JSON array of numbers),
//! so here they are written as the 32 hex digits the commands take back
//! (`"id": "0123456789abcdef0123456789abcdef"`).

use proto::messaging::{ECardRecord, MessageId};
use proto::tablet::{
    ApiError, BalancesView, CallDecision, ContactList, HoursView, MailboxView, MessageView, PurchaseView,
    ServerEvent, SessionInfo, StampBalances, StampShop, TabletResponse,
};
use serde::Serialize;

use crate::client::ClientError;

/// What the edge answered, tagged with the same names as [`TabletResponse`]
/// plus `Event` for pushed [`ServerEvent`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Reply {
    LoggedIn(SessionInfo),
    LoggedOut,
    Contacts(ContactList),
    Hours(HoursView),
    Call(CallDecision),
    Balances(BalancesView),
    #[serde(serialize_with = "json::event")]
    Event(ServerEvent),
    #[serde(serialize_with = "json::mailbox")]
    Mailbox(MailboxView),
    #[serde(serialize_with = "json::message")]
    Message(MessageView),
    DraftSaved {
        #[serde(serialize_with = "json::hex")]
        id: MessageId,
    },
    DraftDeleted {
        #[serde(serialize_with = "json::hex")]
        id: MessageId,
    },
    #[serde(serialize_with = "json::message")]
    MessageQueued(MessageView),
    SentHidden {
        #[serde(serialize_with = "json::hex")]
        id: MessageId,
    },
    ECards(Vec<ECardRecord>),
    StampPackages(StampShop),
    #[serde(serialize_with = "json::purchase")]
    StampsBought(PurchaseView),
    #[serde(serialize_with = "json::stamps")]
    Stamps(StampBalances),
    CallStarted {
        call_id: proto::call::CallId,
        max_duration_secs: u32,
        warn_at_secs: u32,
        media: Option<proto::call::CallMedia>,
    },
    HungUp {
        call_id: proto::call::CallId,
    },
    /// The last line of `call --place`.
    CallSummary(crate::dial::CallSummary),
    /// An attachment written to a file by `message media`.
    Media {
        media: proto::messaging::MediaId,
        content_type: String,
        size: u64,
        sha256: String,
        path: String,
    },
}

impl Reply {
    /// A successful answer that still says no (a denied call) exits with
    /// [`ExitStatus::Refused`].
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Reply::Call(CallDecision::Denied(_)) => ExitStatus::Refused,
            _ => ExitStatus::Success,
        }
    }
}

impl From<TabletResponse> for Line {
    fn from(response: TabletResponse) -> Self {
        Line::Ok(match response {
            TabletResponse::LoggedIn(info) => Reply::LoggedIn(info),
            TabletResponse::LoggedOut => Reply::LoggedOut,
            TabletResponse::Contacts(list) => Reply::Contacts(list),
            TabletResponse::Hours(hours) => Reply::Hours(hours),
            TabletResponse::Call(decision) => Reply::Call(decision),
            TabletResponse::Balances(balances) => Reply::Balances(balances),
            TabletResponse::Error(e) => return Line::Error(ErrorBody::api(e)),
            TabletResponse::Mailbox(view) => Reply::Mailbox(view),
            TabletResponse::Message(view) => Reply::Message(view),
            TabletResponse::DraftSaved { id } => Reply::DraftSaved { id },
            TabletResponse::DraftDeleted { id } => Reply::DraftDeleted { id },
            TabletResponse::MessageQueued(view) => Reply::MessageQueued(view),
            TabletResponse::SentHidden { id } => Reply::SentHidden { id },
            TabletResponse::ECards(cards) => Reply::ECards(cards),
            TabletResponse::StampPackages(shop) => Reply::StampPackages(shop),
            TabletResponse::StampsBought(purchase) => Reply::StampsBought(purchase),
            TabletResponse::Stamps(stamps) => Reply::Stamps(stamps),
            TabletResponse::CallStarted { call_id, max_duration_secs, warn_at_secs, media } => {
                Reply::CallStarted { call_id, max_duration_secs, warn_at_secs, media }
            }
            TabletResponse::HungUp { call_id } => Reply::HungUp { call_id },
            TabletResponse::MediaChunk { media, total, .. } => {
                return Line::Error(ErrorBody::new(
                    ErrorKind::Protocol,
                    format!("a lone chunk of media {media} ({total} bytes) is not an answer"),
                ))
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The edge refused with an [`ApiError`] (wrong PIN, not logged in, ...).
    Api,
    /// The command line or a session line was wrong.
    Usage,
    /// The certificate bundle could not be read.
    Bundle,
    /// No connection, TLS refused (unknown or revoked device), or the
    /// connection dropped.
    Connection,
    /// The edge's answer made no sense (bad frame, wrong answer type, or no
    /// answer in time).
    Protocol,
    /// `wait-event` saw no event in time.
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub kind: ErrorKind,
    /// Plain words for a person.
    pub message: String,
    /// The edge's typed refusal, when `kind` is `api`. Boxed: it is large
    /// and rare, and error bodies travel in every `Result` here.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "json::api_error")]
    pub api: Option<Box<ApiError>>,
}

impl ErrorBody {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), api: None }
    }

    pub fn api(error: ApiError) -> Self {
        Self { kind: ErrorKind::Api, message: error.to_string(), api: Some(Box::new(error)) }
    }

    pub fn exit_status(&self) -> ExitStatus {
        match self.kind {
            ErrorKind::Api | ErrorKind::Timeout => ExitStatus::Refused,
            ErrorKind::Usage | ErrorKind::Bundle => ExitStatus::Usage,
            ErrorKind::Connection | ErrorKind::Protocol => ExitStatus::Connection,
        }
    }
}

impl From<ClientError> for ErrorBody {
    fn from(error: ClientError) -> Self {
        let kind = match &error {
            ClientError::Api(e) => return ErrorBody::api(e.clone()),
            ClientError::Setup(_) | ClientError::Connect(_) | ClientError::ConnectionLost(_) => {
                ErrorKind::Connection
            }
            ClientError::Rpc(_) | ClientError::UnexpectedResponse { .. } | ClientError::BadMedia(_) => {
                ErrorKind::Protocol
            }
            ClientError::RequestTooLarge { .. } => ErrorKind::Usage,
        };
        ErrorBody::new(kind, error.to_string())
    }
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    Ok(Reply),
    Error(ErrorBody),
}

impl Line {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Line::Ok(reply) => reply.exit_status(),
            Line::Error(error) => error.exit_status(),
        }
    }

    /// The line as compact JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            // Only reachable if a proto type stops being JSON-representable;
            // still emit a parseable line.
            serde_json::json!({"error": {"kind": "protocol", "message": format!("cannot render answer: {e}")}})
                .to_string()
        })
    }
}

impl From<Result<Reply, ClientError>> for Line {
    fn from(result: Result<Reply, ClientError>) -> Self {
        match result {
            Ok(reply) => Line::Ok(reply),
            Err(e) => Line::Error(e.into()),
        }
    }
}

/// Process exit codes of `tablet-shell cli`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    Success = 0,
    /// The edge answered with an [`ApiError`], or denied the call.
    Refused = 1,
    /// Bad arguments or an unreadable certificate bundle.
    Usage = 2,
    /// Could not reach the edge or the TLS handshake was refused.
    Connection = 3,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// JSON renderings of the proto types that carry random IDs, so that the IDs
/// come out as hex. Each borrows the proto value and names every one of its
/// fields, so a field added to proto fails to compile here instead of going
/// missing from the output; variants without IDs are written by proto's own
/// serde form, which the partial enums here match by variant name.
mod json {
    use std::fmt::Display;

    use jiff::Timestamp;
    use proto::domain::{Cents, ContactId};
    use proto::messaging::{Attachment, Direction, IdempotencyKey, MessageId, MessagingError, RefusalReason};
    use proto::tablet::{
        ApiError, ContactStamps, Folder, Freshness, MailboxView, MessageState, MessageSummary, MessageView,
        PurchaseState, PurchaseView, ServerEvent, StampBalances,
    };
    use serde::{Serialize, Serializer};

    pub fn hex<S: Serializer, T: Display>(id: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    /// A random ID as hex.
    struct Hex<T>(T);

    impl<T: Display> Serialize for Hex<T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&self.0)
        }
    }

    pub fn event<S: Serializer>(event: &ServerEvent, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        enum Event {
            MailChanged { id: Hex<MessageId>, unread: u32 },
        }
        match event {
            ServerEvent::MailChanged { id, unread } => {
                Event::MailChanged { id: Hex(*id), unread: *unread }.serialize(s)
            }
            ServerEvent::SessionEnded { .. } | ServerEvent::LockdownChanged { .. } | ServerEvent::Call(_) => {
                event.serialize(s)
            }
        }
    }

    pub fn api_error<S: Serializer>(error: &Option<Box<ApiError>>, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        enum Api {
            Messaging(Messaging),
        }
        #[derive(Serialize)]
        enum Messaging {
            UnknownDraft(Hex<MessageId>),
        }
        match error.as_deref() {
            Some(ApiError::Messaging(MessagingError::UnknownDraft(id))) => {
                Api::Messaging(Messaging::UnknownDraft(Hex(*id))).serialize(s)
            }
            _ => error.serialize(s),
        }
    }

    struct Refusal<'a>(&'a RefusalReason);

    impl Serialize for Refusal<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            enum Reason {
                FundingRefused { purchase: Hex<IdempotencyKey> },
            }
            match self.0 {
                RefusalReason::FundingRefused { purchase } => {
                    Reason::FundingRefused { purchase: Hex(*purchase) }.serialize(s)
                }
                other => other.serialize(s),
            }
        }
    }

    struct State<'a>(&'a MessageState);

    impl Serialize for State<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            enum WithRefusal<'a> {
                PaymentFailed { reason: Refusal<'a> },
                Refused { reason: Refusal<'a> },
            }
            match self.0 {
                MessageState::PaymentFailed { reason } => {
                    WithRefusal::PaymentFailed { reason: Refusal(reason) }.serialize(s)
                }
                MessageState::Refused { reason } => {
                    WithRefusal::Refused { reason: Refusal(reason) }.serialize(s)
                }
                other => other.serialize(s),
            }
        }
    }

    #[derive(Serialize)]
    struct Summary<'a> {
        id: Hex<MessageId>,
        contact: ContactId,
        contact_name: &'a str,
        direction: Direction,
        subject: &'a str,
        at: Timestamp,
        attachments: u32,
        state: State<'a>,
    }

    impl<'a> From<&'a MessageSummary> for Summary<'a> {
        fn from(summary: &'a MessageSummary) -> Self {
            let MessageSummary { id, contact, contact_name, direction, subject, at, attachments, state } =
                summary;
            Summary {
                id: Hex(*id),
                contact: *contact,
                contact_name,
                direction: *direction,
                subject,
                at: *at,
                attachments: *attachments,
                state: State(state),
            }
        }
    }

    pub fn mailbox<S: Serializer>(view: &MailboxView, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Mailbox<'a> {
            folder: Folder,
            messages: Vec<Summary<'a>>,
            unread: u32,
        }
        let MailboxView { folder, messages, unread } = view;
        Mailbox { folder: *folder, messages: messages.iter().map(Summary::from).collect(), unread: *unread }
            .serialize(s)
    }

    pub fn message<S: Serializer>(view: &MessageView, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Message<'a> {
            id: Hex<MessageId>,
            contact: ContactId,
            contact_name: &'a str,
            direction: Direction,
            subject: &'a str,
            body: &'a str,
            attachments: &'a [Attachment],
            at: Timestamp,
            state: State<'a>,
        }
        let MessageView { id, contact, contact_name, direction, subject, body, attachments, at, state } =
            view;
        Message {
            id: Hex(*id),
            contact: *contact,
            contact_name,
            direction: *direction,
            subject,
            body,
            attachments,
            at: *at,
            state: State(state),
        }
        .serialize(s)
    }

    #[derive(Serialize)]
    struct Purchase<'a> {
        key: Hex<IdempotencyKey>,
        contact: ContactId,
        stamps: u32,
        price_cents: Cents,
        state: PurchaseStatus<'a>,
    }

    impl<'a> From<&'a PurchaseView> for Purchase<'a> {
        fn from(view: &'a PurchaseView) -> Self {
            let PurchaseView { key, contact, stamps, price_cents, state } = view;
            Purchase {
                key: Hex(*key),
                contact: *contact,
                stamps: *stamps,
                price_cents: *price_cents,
                state: PurchaseStatus(state),
            }
        }
    }

    struct PurchaseStatus<'a>(&'a PurchaseState);

    impl Serialize for PurchaseStatus<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            enum WithRefusal<'a> {
                PaymentFailed { reason: Refusal<'a> },
            }
            match self.0 {
                PurchaseState::PaymentFailed { reason } => {
                    WithRefusal::PaymentFailed { reason: Refusal(reason) }.serialize(s)
                }
                other => other.serialize(s),
            }
        }
    }

    pub fn purchase<S: Serializer>(view: &PurchaseView, s: S) -> Result<S::Ok, S::Error> {
        Purchase::from(view).serialize(s)
    }

    pub fn stamps<S: Serializer>(balances: &StampBalances, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Stamps<'a> {
            contacts: &'a [ContactStamps],
            purchases: Vec<Purchase<'a>>,
            debit_available_cents: Cents,
            freshness: Freshness,
        }
        let StampBalances { contacts, purchases, debit_available_cents, freshness } = balances;
        Stamps {
            contacts,
            purchases: purchases.iter().map(Purchase::from).collect(),
            debit_available_cents: *debit_available_cents,
            freshness: *freshness,
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use proto::domain::{Approval, ContactId, ResidentId, UnitId};
    use proto::messaging::{
        Attachment, Direction, ECardId, IdempotencyKey, MessagingError, PackageId, RefusalReason,
        StampPackageRecord, TextField,
    };
    use proto::tablet::{
        ContactStamps, DenyReason, Folder, Freshness, LimitedBy, MessageState, MessageSummary, PurchaseState,
        SessionEndReason,
    };
    use serde_json::{json, Value};

    use super::*;

    fn parsed(line: &Line) -> Value {
        let text = line.to_json();
        assert!(!text.contains('\n'), "one object per line: {text}");
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn login_prints_session_info_under_ok() {
        let info = SessionInfo {
            resident: ResidentId::new("R1001"),
            name: "Ada".into(),
            unit: UnitId::new("A"),
            session_id: 7,
        };
        let line = Line::from(TabletResponse::LoggedIn(info));
        assert_eq!(
            parsed(&line),
            json!({"ok": {"LoggedIn": {"resident": "R1001", "name": "Ada", "unit": "A", "session_id": 7}}})
        );
        assert_eq!(line.exit_status(), ExitStatus::Success);
    }

    #[test]
    fn allowed_call_exits_0_and_denied_call_exits_1_with_its_reason() {
        let allowed = Line::Ok(Reply::Call(CallDecision::Allowed {
            max_duration_secs: 900,
            warn_at_secs: 840,
            limited_by: LimitedBy::CallLength,
        }));
        assert_eq!(
            parsed(&allowed),
            json!({"ok": {"Call": {"Allowed": {"max_duration_secs": 900, "warn_at_secs": 840, "limited_by": "CallLength"}}}})
        );
        assert_eq!(allowed.exit_status(), ExitStatus::Success);

        let denied = Line::Ok(Reply::Call(CallDecision::Denied(DenyReason::AccountClosed)));
        assert_eq!(parsed(&denied), json!({"ok": {"Call": {"Denied": "AccountClosed"}}}));
        assert_eq!(denied.exit_status(), ExitStatus::Refused);
    }

    #[test]
    fn api_errors_carry_kind_message_and_the_typed_error() {
        let line = Line::from(TabletResponse::Error(ApiError::BadCredentials { remaining_attempts: 4 }));
        assert_eq!(
            parsed(&line),
            json!({"error": {
                "kind": "api",
                "message": "resident ID or PIN is wrong; 4 attempts left",
                "api": {"BadCredentials": {"remaining_attempts": 4}}
            }})
        );
        assert_eq!(line.exit_status(), ExitStatus::Refused);
    }

    #[test]
    fn pushed_events_are_tagged_as_events() {
        let line =
            Line::Ok(Reply::Event(ServerEvent::SessionEnded { reason: SessionEndReason::LoggedInElsewhere }));
        assert_eq!(
            parsed(&line),
            json!({"ok": {"Event": {"SessionEnded": {"reason": "LoggedInElsewhere"}}}})
        );
    }

    #[test]
    fn local_errors_have_no_api_field_and_map_to_exit_codes() {
        let cases = [
            (ErrorKind::Usage, "usage", ExitStatus::Usage),
            (ErrorKind::Bundle, "bundle", ExitStatus::Usage),
            (ErrorKind::Connection, "connection", ExitStatus::Connection),
            (ErrorKind::Protocol, "protocol", ExitStatus::Connection),
            (ErrorKind::Timeout, "timeout", ExitStatus::Refused),
        ];
        for (kind, name, status) in cases {
            let line = Line::Error(ErrorBody::new(kind, "what happened"));
            assert_eq!(parsed(&line), json!({"error": {"kind": name, "message": "what happened"}}));
            assert_eq!(line.exit_status(), status);
        }
        assert_eq!(ExitStatus::Connection.code(), 3);
        assert_eq!(ExitStatus::Usage.code(), 2);
    }

    #[test]
    fn client_errors_map_to_kinds() {
        let e = ErrorBody::from(ClientError::UnexpectedResponse { asked: "Hours", got: "LoggedOut" });
        assert_eq!(e.kind, ErrorKind::Protocol);
        let e = ErrorBody::from(ClientError::Api(ApiError::NotLoggedIn));
        assert_eq!((e.kind, e.api.as_deref()), (ErrorKind::Api, Some(&ApiError::NotLoggedIn)));
    }

    const HEX: &str = "0123456789abcdef00112233445566ff";

    fn id() -> MessageId {
        MessageId::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_66ff)
    }

    fn at() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn view(state: MessageState) -> MessageView {
        MessageView {
            id: id(),
            contact: ContactId(3),
            contact_name: "Bo".into(),
            direction: Direction::ResidentToContact,
            subject: "Hi".into(),
            body: "line one\nline two é".into(),
            attachments: vec![Attachment::ECard(ECardId(7))],
            at: at(),
            state,
        }
    }

    #[test]
    fn message_ids_print_as_hex() {
        assert_eq!(
            parsed(&Line::from(TabletResponse::DraftSaved { id: id() })),
            json!({"ok": {"DraftSaved": {"id": HEX}}})
        );
        assert_eq!(
            parsed(&Line::from(TabletResponse::DraftDeleted { id: id() })),
            json!({"ok": {"DraftDeleted": {"id": HEX}}})
        );
        assert_eq!(
            parsed(&Line::from(TabletResponse::SentHidden { id: id() })),
            json!({"ok": {"SentHidden": {"id": HEX}}})
        );
        let line = Line::Ok(Reply::Event(ServerEvent::MailChanged { id: id(), unread: 2 }));
        assert_eq!(parsed(&line), json!({"ok": {"Event": {"MailChanged": {"id": HEX, "unread": 2}}}}));
    }

    #[test]
    fn a_message_prints_whole_with_its_id_in_hex() {
        let line = Line::from(TabletResponse::MessageQueued(view(MessageState::Queued)));
        assert_eq!(
            parsed(&line),
            json!({"ok": {"MessageQueued": {
                "id": HEX,
                "contact": 3,
                "contact_name": "Bo",
                "direction": "ResidentToContact",
                "subject": "Hi",
                "body": "line one\nline two é",
                "attachments": [{"ECard": 7}],
                "at": "2027-01-15T08:00:00Z",
                "state": "Queued",
            }}})
        );
        assert_eq!(line.exit_status(), ExitStatus::Success);
        let read = parsed(&Line::from(TabletResponse::Message(view(MessageState::Rejected {
            reason: "threat".into(),
        }))));
        assert_eq!(read["ok"]["Message"]["state"], json!({"Rejected": {"reason": "threat"}}));
    }

    /// Every field but the IDs is written exactly as proto's own serde form
    /// writes it.
    #[test]
    fn views_match_proto_json_apart_from_the_ids() {
        let summary = MessageSummary {
            id: id(),
            contact: ContactId(3),
            contact_name: "Bo".into(),
            direction: Direction::ContactToResident,
            subject: "Re: Hi".into(),
            at: at(),
            attachments: 2,
            state: MessageState::Received { read: false },
        };
        let mailbox = MailboxView { folder: Folder::Inbox, messages: vec![summary.clone()], unread: 1 };
        let mut expected = serde_json::to_value(&mailbox).unwrap();
        expected["messages"][0]["id"] = json!(HEX);
        assert_eq!(parsed(&Line::from(TabletResponse::Mailbox(mailbox)))["ok"]["Mailbox"], expected);

        let message = view(MessageState::InReview);
        let mut expected = serde_json::to_value(&message).unwrap();
        expected["id"] = json!(HEX);
        assert_eq!(parsed(&Line::from(TabletResponse::Message(message)))["ok"]["Message"], expected);
    }

    #[test]
    fn refusals_inside_states_show_purchase_keys_in_hex() {
        let key = IdempotencyKey::from_u128(0xabc);
        let key_hex = "00000000000000000000000000000abc";
        let state = MessageState::PaymentFailed { reason: RefusalReason::FundingRefused { purchase: key } };
        let json = parsed(&Line::from(TabletResponse::Message(view(state))));
        assert_eq!(
            json["ok"]["Message"]["state"],
            json!({"PaymentFailed": {"reason": {"FundingRefused": {"purchase": key_hex}}}})
        );
        let state = MessageState::Refused { reason: RefusalReason::NoStamps };
        let json = parsed(&Line::from(TabletResponse::Message(view(state))));
        assert_eq!(json["ok"]["Message"]["state"], json!({"Refused": {"reason": "NoStamps"}}));

        let purchase = PurchaseView {
            key,
            contact: ContactId(3),
            stamps: 5,
            price_cents: 250,
            state: PurchaseState::PaymentFailed {
                reason: RefusalReason::InsufficientFunds { balance_cents: 100, price_cents: 250 },
            },
        };
        let bought = parsed(&Line::from(TabletResponse::StampsBought(purchase.clone())));
        assert_eq!(
            bought,
            json!({"ok": {"StampsBought": {
                "key": key_hex, "contact": 3, "stamps": 5, "price_cents": 250,
                "state": {"PaymentFailed": {"reason": {"InsufficientFunds": {"balance_cents": 100, "price_cents": 250}}}}
            }}})
        );

        let freshness = Freshness { uplink_up: false, cache_age_secs: Some(90) };
        let contacts = vec![ContactStamps {
            contact: ContactId(3),
            name: "Bo".into(),
            available: 4,
            awaiting_payment: 1,
        }];
        let balances = StampBalances {
            contacts,
            purchases: vec![PurchaseView { state: PurchaseState::Queued, ..purchase }],
            debit_available_cents: 750,
            freshness,
        };
        let mut expected = serde_json::to_value(&balances).unwrap();
        expected["purchases"][0]["key"] = json!(key_hex);
        assert_eq!(parsed(&Line::from(TabletResponse::Stamps(balances)))["ok"]["Stamps"], expected);
    }

    #[test]
    fn catalog_and_shop_are_proto_json() {
        let cards = vec![ECardRecord { id: ECardId(7), category: "Birthdays".into(), title: "Cake".into() }];
        assert_eq!(
            parsed(&Line::from(TabletResponse::ECards(cards))),
            json!({"ok": {"ECards": [{"id": 7, "category": "Birthdays", "title": "Cake"}]}})
        );
        let shop = StampShop {
            packages: vec![StampPackageRecord { id: PackageId(1), stamps: 5, price_cents: 250 }],
            debit_available_cents: 1000,
            freshness: Freshness { uplink_up: true, cache_age_secs: None },
        };
        assert_eq!(
            parsed(&Line::from(TabletResponse::StampPackages(shop))),
            json!({"ok": {"StampPackages": {
                "packages": [{"id": 1, "stamps": 5, "price_cents": 250}],
                "debit_available_cents": 1000,
                "freshness": {"uplink_up": true, "cache_age_secs": null}
            }}})
        );
    }

    #[test]
    fn messaging_refusals_are_typed_api_errors_exiting_1() {
        let cases = [
            (MessagingError::NoStamps { contact: ContactId(3) }, json!({"NoStamps": {"contact": 3}})),
            (
                MessagingError::TooLong { field: TextField::Body, chars: 4001, limit: 4000 },
                json!({"TooLong": {"field": "Body", "chars": 4001, "limit": 4000}}),
            ),
            (
                MessagingError::TooManyAttachments { count: 6, max: 5 },
                json!({"TooManyAttachments": {"count": 6, "max": 5}}),
            ),
            (MessagingError::UnknownECard(ECardId(99)), json!({"UnknownECard": 99})),
            (
                MessagingError::InsufficientFunds { available_cents: 100, price_cents: 250 },
                json!({"InsufficientFunds": {"available_cents": 100, "price_cents": 250}}),
            ),
            (
                MessagingError::ContactNotApproved { status: Approval::Pending },
                json!({"ContactNotApproved": {"status": "Pending"}}),
            ),
            (MessagingError::UnknownDraft(id()), json!({"UnknownDraft": HEX})),
            (MessagingError::Empty, json!("Empty")),
        ];
        for (error, api) in cases {
            let message = error.to_string();
            let line = Line::from(TabletResponse::Error(ApiError::Messaging(error)));
            assert_eq!(
                parsed(&line),
                json!({"error": {"kind": "api", "message": message, "api": {"Messaging": api}}})
            );
            assert_eq!(line.exit_status(), ExitStatus::Refused);
        }
    }

    #[test]
    fn oversized_requests_are_usage_errors() {
        let e = ErrorBody::from(ClientError::RequestTooLarge { len: 70_000, max: 65_536 });
        assert_eq!((e.kind, e.exit_status()), (ErrorKind::Usage, ExitStatus::Usage));
    }
}
