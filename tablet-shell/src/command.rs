//! The headless command vocabulary: the words of `tablet-shell cli <command>`
//! and of the lines `tablet-shell cli session` reads from stdin.

use std::time::Duration;

use proto::domain::{CallKind, ContactId, PhoneNumber, ResidentId};

/// Longest `wait-event` accepted, so a typo cannot hang a script for days.
pub const MAX_EVENT_WAIT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `pin: None` means "use the PIN given on the command line or in
    /// `TABLET_PIN`".
    Login {
        resident: ResidentId,
        pin: Option<String>,
    },
    Logout,
    Contacts,
    Hours,
    Call {
        contact: ContactId,
        kind: CallKind,
        number: Option<PhoneNumber>,
    },
    Balances,
    WaitEvent(Duration),
    Quit,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionLineError {
    #[error(
        "unknown command {0:?} (expected login, logout, contacts, hours, call, balances, wait-event, quit)"
    )]
    UnknownCommand(String),
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("{what} {value:?} is not valid: {why}")]
    BadValue { what: &'static str, value: String, why: String },
}

const LOGIN_USAGE: &str = "login RESIDENT [PIN]";
const CALL_USAGE: &str = "call CONTACT voice|video [NUMBER]";
const WAIT_USAGE: &str = "wait-event SECONDS";

/// Parses one line of a `session` script. Blank lines and lines starting
/// with `#` are `Ok(None)`.
pub fn parse_session_line(line: &str) -> Result<Option<Command>, SessionLineError> {
    let mut words = line.split_whitespace();
    let Some(word) = words.next() else { return Ok(None) };
    if word.starts_with('#') {
        return Ok(None);
    }
    let args: Vec<&str> = words.collect();
    let command = match word {
        "login" => match args[..] {
            [resident] => Command::Login { resident: ResidentId::new(resident), pin: None },
            [resident, pin] => Command::Login { resident: ResidentId::new(resident), pin: Some(pin.into()) },
            _ => return Err(SessionLineError::Usage(LOGIN_USAGE)),
        },
        "logout" => no_args(&args, Command::Logout, "logout")?,
        "contacts" => no_args(&args, Command::Contacts, "contacts")?,
        "hours" => no_args(&args, Command::Hours, "hours")?,
        "balances" => no_args(&args, Command::Balances, "balances")?,
        "quit" | "exit" => no_args(&args, Command::Quit, "quit")?,
        "call" => match args[..] {
            [contact, kind] => {
                Command::Call { contact: parse_contact(contact)?, kind: parse_kind(kind)?, number: None }
            }
            [contact, kind, number] => Command::Call {
                contact: parse_contact(contact)?,
                kind: parse_kind(kind)?,
                number: Some(number.into()),
            },
            _ => return Err(SessionLineError::Usage(CALL_USAGE)),
        },
        "wait-event" => match args[..] {
            [secs] => Command::WaitEvent(parse_wait(secs)?),
            _ => return Err(SessionLineError::Usage(WAIT_USAGE)),
        },
        other => return Err(SessionLineError::UnknownCommand(other.into())),
    };
    Ok(Some(command))
}

fn no_args(args: &[&str], command: Command, usage: &'static str) -> Result<Command, SessionLineError> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(SessionLineError::Usage(usage))
    }
}

fn parse_contact(s: &str) -> Result<ContactId, SessionLineError> {
    s.parse::<u64>().map(ContactId).map_err(|e| SessionLineError::BadValue {
        what: "contact ID",
        value: s.into(),
        why: e.to_string(),
    })
}

/// Parses `voice` or `video`, in any letter case.
pub fn parse_kind(s: &str) -> Result<CallKind, SessionLineError> {
    match s.to_ascii_lowercase().as_str() {
        "voice" => Ok(CallKind::Voice),
        "video" => Ok(CallKind::Video),
        _ => Err(SessionLineError::BadValue {
            what: "call kind",
            value: s.into(),
            why: "expected voice or video".into(),
        }),
    }
}

fn parse_wait(s: &str) -> Result<Duration, SessionLineError> {
    let bad = |why: String| SessionLineError::BadValue { what: "wait", value: s.into(), why };
    let secs: f64 = s.parse().map_err(|e: std::num::ParseFloatError| bad(e.to_string()))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad("expected a number of seconds".into()));
    }
    let wait = Duration::try_from_secs_f64(secs).map_err(|e| bad(e.to_string()))?;
    if wait > MAX_EVENT_WAIT {
        return Err(bad(format!("at most {} seconds", MAX_EVENT_WAIT.as_secs())));
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Option<Command>, SessionLineError> {
        parse_session_line(line)
    }

    #[test]
    fn blank_and_comment_lines_are_skipped() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   \t"), Ok(None));
        assert_eq!(parse("# log in twice"), Ok(None));
        assert_eq!(parse("  #contacts"), Ok(None));
    }

    #[test]
    fn login_takes_resident_and_optional_pin() {
        assert_eq!(
            parse("login R1001 1234"),
            Ok(Some(Command::Login { resident: ResidentId::new("R1001"), pin: Some("1234".into()) }))
        );
        assert_eq!(
            parse("  login   R1001  "),
            Ok(Some(Command::Login { resident: ResidentId::new("R1001"), pin: None }))
        );
        assert_eq!(parse("login"), Err(SessionLineError::Usage(LOGIN_USAGE)));
        assert_eq!(parse("login R1 1 2"), Err(SessionLineError::Usage(LOGIN_USAGE)));
    }

    #[test]
    fn plain_words_take_no_arguments() {
        assert_eq!(parse("logout"), Ok(Some(Command::Logout)));
        assert_eq!(parse("contacts"), Ok(Some(Command::Contacts)));
        assert_eq!(parse("hours"), Ok(Some(Command::Hours)));
        assert_eq!(parse("balances"), Ok(Some(Command::Balances)));
        assert_eq!(parse("quit"), Ok(Some(Command::Quit)));
        assert_eq!(parse("exit"), Ok(Some(Command::Quit)));
        assert_eq!(parse("contacts all"), Err(SessionLineError::Usage("contacts")));
    }

    #[test]
    fn call_takes_contact_kind_and_optional_number() {
        assert_eq!(
            parse("call 3 video"),
            Ok(Some(Command::Call { contact: ContactId(3), kind: CallKind::Video, number: None }))
        );
        assert_eq!(
            parse("call 7 Voice +15551234567"),
            Ok(Some(Command::Call {
                contact: ContactId(7),
                kind: CallKind::Voice,
                number: Some("+15551234567".into())
            }))
        );
        assert!(matches!(parse("call x video"), Err(SessionLineError::BadValue { what: "contact ID", .. })));
        assert!(matches!(parse("call -1 video"), Err(SessionLineError::BadValue { what: "contact ID", .. })));
        assert!(matches!(parse("call 3 fax"), Err(SessionLineError::BadValue { what: "call kind", .. })));
        assert_eq!(parse("call 3"), Err(SessionLineError::Usage(CALL_USAGE)));
    }

    #[test]
    fn wait_event_takes_bounded_seconds() {
        assert_eq!(parse("wait-event 5"), Ok(Some(Command::WaitEvent(Duration::from_secs(5)))));
        assert_eq!(parse("wait-event 0.25"), Ok(Some(Command::WaitEvent(Duration::from_millis(250)))));
        assert_eq!(parse("wait-event"), Err(SessionLineError::Usage(WAIT_USAGE)));
        for bad in ["-1", "NaN", "inf", "soon", "3601"] {
            assert!(
                matches!(
                    parse(&format!("wait-event {bad}")),
                    Err(SessionLineError::BadValue { what: "wait", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_words_are_named_in_the_error() {
        assert_eq!(parse("dial 5"), Err(SessionLineError::UnknownCommand("dial".into())));
        assert!(parse("dial 5").unwrap_err().to_string().contains("\"dial\""));
    }
}
