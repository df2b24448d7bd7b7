//! The JSON output contract of the headless CLI: one JSON object per line,
//! either `{"ok": <reply>}` or `{"error": {"kind": .., "message": .., "api": ..}}`,
//! where `<reply>` is serde JSON of the proto types, tagged by what it is
//! (`{"LoggedIn": {..}}`, `{"Call": {"Denied": {..}}}`, `{"Event": {..}}`).
//! Scripts and tests parse this; keep it stable.

use proto::tablet::{
    ApiError, BalancesView, CallDecision, ContactList, HoursView, ServerEvent, SessionInfo, TabletResponse,
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
    Event(ServerEvent),
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
    /// The edge's typed refusal, when `kind` is `api`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiError>,
}

impl ErrorBody {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), api: None }
    }

    pub fn api(error: ApiError) -> Self {
        Self { kind: ErrorKind::Api, message: error.to_string(), api: Some(error) }
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
            ClientError::Rpc(_) | ClientError::UnexpectedResponse { .. } => ErrorKind::Protocol,
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

#[cfg(test)]
mod tests {
    use proto::domain::{ResidentId, UnitId};
    use proto::tablet::{DenyReason, LimitedBy, SessionEndReason};
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
        assert_eq!((e.kind, e.api), (ErrorKind::Api, Some(ApiError::NotLoggedIn)));
    }
}
