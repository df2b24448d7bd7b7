//! The headless command vocabulary: the words of `tablet-shell cli <command>`
//! and of the lines `tablet-shell cli session` reads from stdin.
//!
//! # Session lines
//!
//! A line is split into words the way a POSIX shell splits them, without
//! expansion: words are separated by blanks; `'single quotes'` keep
//! everything between them; inside `"double quotes"` a backslash escapes
//! `"`, `\`, `$` and `` ` `` only; outside quotes a backslash escapes any
//! character; a word starting with `#` begins a comment that runs to the
//! end of the line. An unclosed quote is a usage error. A line cannot hold a
//! line break, so a body with several lines comes from `--body-file PATH`.
//!
//! ```text
//! login RESIDENT [PIN]
//! logout | contacts | hours | balances | quit
//! call CONTACT voice|video [NUMBER]
//! wait-event SECONDS
//! messages inbox|sent|drafts
//! send CONTACT SUBJECT [BODY] [--ecard N]... [--draft ID] [--body-file PATH]
//! draft CONTACT SUBJECT [BODY] [--ecard N]... [--id ID] [--body-file PATH]
//! read ID | delete-draft ID | hide ID
//! ecards
//! stamps packages | stamps balance | stamps buy CONTACT PACKAGE
//! ```
//!
//! `message send|draft|read|delete-draft|hide ...` is accepted as well, as
//! on the command line. Exactly one of BODY and `--body-file` is given;
//! options may also be written `--name=value`, and `--` ends the options.
//! Message IDs are the 32 hex digits the edge's answers show.

use std::path::PathBuf;
use std::time::Duration;

use proto::domain::{CallKind, ContactId, PhoneNumber, ResidentId};
use proto::messaging::{Attachment, Compose, ECardId, MediaId, MessageId, PackageId};
use proto::tablet::Folder;

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
    Mailbox(Folder),
    ReadMessage(MessageId),
    /// Creates a draft (`id: None`) or replaces draft `id`.
    SaveDraft {
        id: Option<MessageId>,
        compose: ComposeArgs,
    },
    /// Sends a new message, or draft `draft` with this content.
    SendMessage {
        draft: Option<MessageId>,
        compose: ComposeArgs,
    },
    DeleteDraft(MessageId),
    HideSent(MessageId),
    ECards,
    StampPackages,
    BuyStamps {
        contact: ContactId,
        package: PackageId,
    },
    StampBalance,
    /// Fetches an attachment's photo or VideoGram and writes it to `out`.
    FetchMedia {
        media: MediaId,
        out: PathBuf,
    },
    Quit,
}

/// A message as typed: its body may still have to be read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeArgs {
    pub contact: ContactId,
    pub subject: String,
    pub body: Body,
    pub ecards: Vec<ECardId>,
}

impl ComposeArgs {
    /// The compose to send, with the body once read.
    pub fn into_compose(self, body: String) -> Compose {
        Compose {
            contact: self.contact,
            subject: self.subject,
            body,
            attachments: self.ecards.into_iter().map(Attachment::ECard).collect(),
        }
    }
}

/// Where a message body comes from. Files are read when the command runs,
/// not when it is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Text(String),
    File(PathBuf),
    /// Standard input (`--body-file -`); only on the command line, since in
    /// a session stdin carries the commands.
    Stdin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionLineError {
    #[error(
        "unknown command {0:?} (expected login, logout, contacts, hours, call, balances, wait-event, \
         messages, send, draft, read, delete-draft, hide, media, ecards, stamps, quit)"
    )]
    UnknownCommand(String),
    #[error("unclosed quote or a backslash at the end of the line")]
    Quoting,
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("{what} {value:?} is not valid: {why}")]
    BadValue { what: &'static str, value: String, why: String },
}

const LOGIN_USAGE: &str = "login RESIDENT [PIN]";
const CALL_USAGE: &str = "call CONTACT voice|video [NUMBER]";
const WAIT_USAGE: &str = "wait-event SECONDS";
const MESSAGES_USAGE: &str = "messages inbox|sent|drafts";
const SEND_USAGE: &str = "send CONTACT SUBJECT (BODY | --body-file PATH) [--ecard N]... [--draft ID]";
const DRAFT_USAGE: &str = "draft CONTACT SUBJECT (BODY | --body-file PATH) [--ecard N]... [--id ID]";
const READ_USAGE: &str = "read ID";
const DELETE_DRAFT_USAGE: &str = "delete-draft ID";
const HIDE_USAGE: &str = "hide ID";
const MESSAGE_USAGE: &str = "message send|draft|read|delete-draft|hide|media ...";
const MEDIA_USAGE: &str = "media MEDIA_ID OUT_FILE";
const STAMPS_USAGE: &str = "stamps packages | stamps balance | stamps buy CONTACT PACKAGE";

/// Parses one line of a `session` script (see the module docs for the
/// quoting rules). Blank lines and comments are `Ok(None)`.
pub fn parse_session_line(line: &str) -> Result<Option<Command>, SessionLineError> {
    let words = shlex::split(line).ok_or(SessionLineError::Quoting)?;
    let Some((word, rest)) = words.split_first() else { return Ok(None) };
    let mut args: Vec<&str> = rest.iter().map(String::as_str).collect();
    let mut word = word.as_str();
    if word == "message" {
        if args.is_empty() {
            return Err(SessionLineError::Usage(MESSAGE_USAGE));
        }
        word = args.remove(0);
        if !matches!(word, "send" | "draft" | "read" | "delete-draft" | "hide" | "media") {
            return Err(SessionLineError::Usage(MESSAGE_USAGE));
        }
    }
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
        "ecards" => no_args(&args, Command::ECards, "ecards")?,
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
        "messages" => match args[..] {
            [folder] => Command::Mailbox(parse_folder(folder)?),
            _ => return Err(SessionLineError::Usage(MESSAGES_USAGE)),
        },
        "send" => {
            let (compose, draft) = parse_compose_line(&args, "draft", SEND_USAGE)?;
            Command::SendMessage { draft, compose }
        }
        "draft" => {
            let (compose, id) = parse_compose_line(&args, "id", DRAFT_USAGE)?;
            Command::SaveDraft { id, compose }
        }
        "read" => Command::ReadMessage(one_id(&args, READ_USAGE)?),
        "delete-draft" => Command::DeleteDraft(one_id(&args, DELETE_DRAFT_USAGE)?),
        "hide" => Command::HideSent(one_id(&args, HIDE_USAGE)?),
        "media" => match args[..] {
            [media, out] if !out.is_empty() => Command::FetchMedia {
                media: parse_number("media ID", media, MediaId)?,
                out: PathBuf::from(out),
            },
            _ => return Err(SessionLineError::Usage(MEDIA_USAGE)),
        },
        "stamps" => match args[..] {
            ["packages"] => Command::StampPackages,
            ["balance"] => Command::StampBalance,
            ["buy", contact, package] => {
                Command::BuyStamps { contact: parse_contact(contact)?, package: parse_package(package)? }
            }
            _ => return Err(SessionLineError::Usage(STAMPS_USAGE)),
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

fn one_id(args: &[&str], usage: &'static str) -> Result<MessageId, SessionLineError> {
    match args {
        [id] => parse_message_id(id),
        _ => Err(SessionLineError::Usage(usage)),
    }
}

/// `CONTACT SUBJECT [BODY]` plus `--ecard N` (repeatable), `--body-file
/// PATH` and `--ID_OPTION ID` (the draft to send, or to replace).
fn parse_compose_line(
    args: &[&str],
    id_option: &str,
    usage: &'static str,
) -> Result<(ComposeArgs, Option<MessageId>), SessionLineError> {
    let mut positional = Vec::new();
    let mut ecards = Vec::new();
    let mut body_file = None;
    let mut id = None;
    let mut words = args.iter().copied();
    let mut options_ended = false;
    while let Some(word) = words.next() {
        let option = word.strip_prefix("--").filter(|_| !options_ended);
        let Some(option) = option else {
            positional.push(word);
            continue;
        };
        if option.is_empty() {
            options_ended = true;
            continue;
        }
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name, value),
            None => (option, words.next().ok_or(SessionLineError::Usage(usage))?),
        };
        match name {
            "ecard" => ecards.push(parse_ecard(value)?),
            "body-file" if body_file.is_none() => body_file = Some(parse_body_file(value)?),
            name if name == id_option && id.is_none() => id = Some(parse_message_id(value)?),
            _ => return Err(SessionLineError::Usage(usage)),
        }
    }
    let (contact, subject, body) = match (&positional[..], body_file) {
        ([contact, subject, body], None) => (*contact, *subject, Body::Text((*body).into())),
        ([contact, subject], Some(path)) => (*contact, *subject, Body::File(path)),
        _ => return Err(SessionLineError::Usage(usage)),
    };
    let compose = ComposeArgs { contact: parse_contact(contact)?, subject: subject.into(), body, ecards };
    Ok((compose, id))
}

fn parse_body_file(s: &str) -> Result<PathBuf, SessionLineError> {
    if s == "-" {
        return Err(SessionLineError::BadValue {
            what: "body file",
            value: s.into(),
            why: "stdin carries the session's commands; name a file".into(),
        });
    }
    Ok(PathBuf::from(s))
}

fn parse_number<T>(what: &'static str, s: &str, make: impl FnOnce(u64) -> T) -> Result<T, SessionLineError> {
    s.parse::<u64>().map(make).map_err(|e| SessionLineError::BadValue {
        what,
        value: s.into(),
        why: e.to_string(),
    })
}

pub fn parse_contact(s: &str) -> Result<ContactId, SessionLineError> {
    parse_number("contact ID", s, ContactId)
}

pub fn parse_ecard(s: &str) -> Result<ECardId, SessionLineError> {
    parse_number("eCard", s, ECardId)
}

pub fn parse_package(s: &str) -> Result<PackageId, SessionLineError> {
    parse_number("stamp package", s, PackageId)
}

/// Parses a message ID as the edge shows it: exactly 32 hex digits, in
/// either letter case. Shorter forms are refused, since a truncated copy of
/// an ID would otherwise name a different message.
pub fn parse_message_id(s: &str) -> Result<MessageId, SessionLineError> {
    let bad = |why: &str| SessionLineError::BadValue { what: "message ID", value: s.into(), why: why.into() };
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("expected 32 hex digits"));
    }
    u128::from_str_radix(s, 16).map(MessageId::from_u128).map_err(|e| bad(&e.to_string()))
}

/// Parses `inbox`, `sent` or `drafts`, in any letter case.
pub fn parse_folder(s: &str) -> Result<Folder, SessionLineError> {
    match s.to_ascii_lowercase().as_str() {
        "inbox" => Ok(Folder::Inbox),
        "sent" => Ok(Folder::Sent),
        "drafts" => Ok(Folder::Drafts),
        _ => Err(SessionLineError::BadValue {
            what: "folder",
            value: s.into(),
            why: "expected inbox, sent or drafts".into(),
        }),
    }
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

    const ID: &str = "0123456789abcdef0123456789ABCDEF";

    fn id() -> MessageId {
        MessageId::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
    }

    fn compose(contact: u64, subject: &str, body: Body, ecards: &[u64]) -> ComposeArgs {
        ComposeArgs {
            contact: ContactId(contact),
            subject: subject.into(),
            body,
            ecards: ecards.iter().copied().map(ECardId).collect(),
        }
    }

    #[test]
    fn messages_takes_a_folder() {
        assert_eq!(parse("messages inbox"), Ok(Some(Command::Mailbox(Folder::Inbox))));
        assert_eq!(parse("messages Sent"), Ok(Some(Command::Mailbox(Folder::Sent))));
        assert_eq!(parse("messages drafts"), Ok(Some(Command::Mailbox(Folder::Drafts))));
        assert!(matches!(parse("messages trash"), Err(SessionLineError::BadValue { what: "folder", .. })));
        assert_eq!(parse("messages"), Err(SessionLineError::Usage(MESSAGES_USAGE)));
    }

    #[test]
    fn send_takes_quoted_subject_and_body() {
        assert_eq!(
            parse(r#"send 1 "Hello there" 'It'"'"'s me, "Ada"'"#),
            Ok(Some(Command::SendMessage {
                draft: None,
                compose: compose(1, "Hello there", Body::Text(r#"It's me, "Ada""#.into()), &[]),
            }))
        );
        // Backslash escapes inside double quotes; an empty body is the edge's to judge.
        assert_eq!(
            parse(r#"send 2 "say \"hi\" \\ bye" """#),
            Ok(Some(Command::SendMessage {
                draft: None,
                compose: compose(2, r#"say "hi" \ bye"#, Body::Text(String::new()), &[]),
            }))
        );
        // Unicode passes through untouched.
        assert_eq!(
            parse("send 3 Grüße 'é😀 🎂'"),
            Ok(Some(Command::SendMessage {
                draft: None,
                compose: compose(3, "Grüße", Body::Text("é😀 🎂".into()), &[]),
            }))
        );
    }

    #[test]
    fn send_takes_ecards_draft_and_body_file_anywhere() {
        let line = format!("send --ecard 4 1 Hi --draft {ID} 'body' --ecard=9");
        assert_eq!(
            parse(&line),
            Ok(Some(Command::SendMessage {
                draft: Some(id()),
                compose: compose(1, "Hi", Body::Text("body".into()), &[4, 9])
            }))
        );
        assert_eq!(
            parse("message send 1 Hi --body-file '/tmp/my letter.txt'"),
            Ok(Some(Command::SendMessage {
                draft: None,
                compose: compose(1, "Hi", Body::File("/tmp/my letter.txt".into()), &[]),
            }))
        );
        // `--` lets a body start with dashes.
        assert_eq!(
            parse("send 1 Hi -- '--- P.S. ---'"),
            Ok(Some(Command::SendMessage {
                draft: None,
                compose: compose(1, "Hi", Body::Text("--- P.S. ---".into()), &[]),
            }))
        );
    }

    #[test]
    fn send_refuses_bad_shapes() {
        let usage = Err(SessionLineError::Usage(SEND_USAGE));
        assert_eq!(parse("send 1 Hi"), usage, "no body");
        assert_eq!(parse("send 1 Hi body extra"), usage, "too many words");
        assert_eq!(parse("send 1 Hi body --body-file b.txt"), usage, "body twice");
        assert_eq!(parse("send 1 Hi body --id 00"), usage, "--id is for drafts");
        assert_eq!(parse("send 1 Hi body --ecard"), usage, "option without value");
        assert_eq!(parse(&format!("send 1 Hi b --draft {ID} --draft {ID}")), usage);
        assert!(matches!(
            parse("send 1 Hi b --ecard x"),
            Err(SessionLineError::BadValue { what: "eCard", .. })
        ));
        assert!(matches!(parse("send one Hi b"), Err(SessionLineError::BadValue { what: "contact ID", .. })));
        assert!(matches!(
            parse("send 1 Hi --body-file -"),
            Err(SessionLineError::BadValue { what: "body file", .. })
        ));
        assert_eq!(parse("send 1 \"Hi body"), Err(SessionLineError::Quoting));
        assert_eq!(parse("send 1 Hi body\\"), Err(SessionLineError::Quoting));
    }

    #[test]
    fn draft_creates_or_replaces() {
        assert_eq!(
            parse("draft 5 'Not yet' 'half a thought' --ecard 2"),
            Ok(Some(Command::SaveDraft {
                id: None,
                compose: compose(5, "Not yet", Body::Text("half a thought".into()), &[2]),
            }))
        );
        assert_eq!(
            parse(&format!("message draft 5 S B --id={ID}")),
            Ok(Some(Command::SaveDraft {
                id: Some(id()),
                compose: compose(5, "S", Body::Text("B".into()), &[])
            }))
        );
        assert_eq!(parse(&format!("draft 5 S B --draft {ID}")), Err(SessionLineError::Usage(DRAFT_USAGE)));
    }

    #[test]
    fn id_commands_take_32_hex_digits() {
        assert_eq!(parse(&format!("read {ID}")), Ok(Some(Command::ReadMessage(id()))));
        assert_eq!(parse(&format!("message read {ID}")), Ok(Some(Command::ReadMessage(id()))));
        assert_eq!(parse(&format!("delete-draft {ID}")), Ok(Some(Command::DeleteDraft(id()))));
        assert_eq!(parse(&format!("message hide {ID}")), Ok(Some(Command::HideSent(id()))));
        assert_eq!(parse("read"), Err(SessionLineError::Usage(READ_USAGE)));
        assert_eq!(parse(&format!("hide {ID} {ID}")), Err(SessionLineError::Usage(HIDE_USAGE)));
        for bad in [
            "1",
            &ID[1..],
            &format!("{ID}0"),
            "+123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert!(
                matches!(parse_message_id(bad), Err(SessionLineError::BadValue { what: "message ID", .. })),
                "{bad}"
            );
        }
        // What the edge prints reads back as the same ID.
        assert_eq!(parse_message_id(&id().to_string()), Ok(id()));
        assert_eq!(parse_message_id(&MessageId::from_u128(0).to_string()), Ok(MessageId::from_u128(0)));
    }

    #[test]
    fn media_takes_an_id_and_a_file() {
        let want = Command::FetchMedia { media: MediaId(7), out: PathBuf::from("/tmp/p.png") };
        assert_eq!(parse("media 7 /tmp/p.png"), Ok(Some(want.clone())));
        assert_eq!(parse("message media 7 /tmp/p.png"), Ok(Some(want)));
        assert_eq!(parse("media 7"), Err(SessionLineError::Usage(MEDIA_USAGE)));
        assert!(matches!(parse("media seven x"), Err(SessionLineError::BadValue { .. })));
    }

    #[test]
    fn message_prefix_takes_only_message_verbs() {
        assert_eq!(parse("message"), Err(SessionLineError::Usage(MESSAGE_USAGE)));
        assert_eq!(parse("message stamps packages"), Err(SessionLineError::Usage(MESSAGE_USAGE)));
    }

    #[test]
    fn ecards_and_stamps() {
        assert_eq!(parse("ecards"), Ok(Some(Command::ECards)));
        assert_eq!(parse("ecards all"), Err(SessionLineError::Usage("ecards")));
        assert_eq!(parse("stamps packages"), Ok(Some(Command::StampPackages)));
        assert_eq!(parse("stamps balance"), Ok(Some(Command::StampBalance)));
        assert_eq!(
            parse("stamps buy 3 40"),
            Ok(Some(Command::BuyStamps { contact: ContactId(3), package: PackageId(40) }))
        );
        assert_eq!(parse("stamps buy 3"), Err(SessionLineError::Usage(STAMPS_USAGE)));
        assert_eq!(parse("stamps"), Err(SessionLineError::Usage(STAMPS_USAGE)));
        assert!(matches!(
            parse("stamps buy 3 ten"),
            Err(SessionLineError::BadValue { what: "stamp package", .. })
        ));
    }

    #[test]
    fn comments_may_follow_a_command() {
        assert_eq!(parse("messages inbox # unread first"), Ok(Some(Command::Mailbox(Folder::Inbox))));
        // Inside quotes a # is text.
        assert_eq!(
            parse("send 1 '#1 fan' 'see #2'"),
            Ok(Some(Command::SendMessage {
                draft: None,
                compose: compose(1, "#1 fan", Body::Text("see #2".into()), &[]),
            }))
        );
    }

    #[test]
    fn compose_args_become_ecard_attachments() {
        let compose = compose(4, "S", Body::Text("unused".into()), &[1, 2]).into_compose("B".into());
        assert_eq!(
            compose,
            Compose {
                contact: ContactId(4),
                subject: "S".into(),
                body: "B".into(),
                attachments: vec![Attachment::ECard(ECardId(1)), Attachment::ECard(ECardId(2))],
            }
        );
    }
}
