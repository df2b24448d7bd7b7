//! `tablet-shell`: for now only its headless client, `tablet-shell cli`, used
//! by tests, the demo and facility IT diagnostics. Prints JSON lines on
//! stdout (see [`tablet_shell::output`]) and human messages on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use proto::domain::{CallKind, ContactId, ResidentId};
use proto::messaging::{ECardId, MessageId, PackageId};
use proto::tablet::Folder;
use tablet_shell::command::{parse_message_id, Body, ComposeArgs};
use tablet_shell::session::emit;
use tablet_shell::{Command, EdgeClient, ErrorBody, ErrorKind, ExitStatus, Line, Session};

#[derive(Debug, Parser)]
#[command(name = "tablet-shell", version, about = "Facility Edge tablet shell")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Headless client of the edge's tablet API, with JSON output.
    ///
    /// Each invocation connects, logs in when --resident is given, runs the
    /// command, logs out and disconnects. Exit codes: 0 success, 1 refused by
    /// the edge (error or denied call), 2 usage or certificate bundle error,
    /// 3 connection or TLS failure.
    Cli(CliArgs),
    /// The kiosk UI. Needs a display: SLINT_BACKEND=winit for a desktop
    /// window, SLINT_BACKEND=linuxkms-software on tablets (no compositor).
    #[cfg(feature = "ui")]
    Kiosk(KioskArgs),
    /// A scripted kiosk session against an edge that writes a picture of
    /// every screen; needs no display (the demo's fallback).
    #[cfg(feature = "ui")]
    Screenshots(ScreenshotArgs),
}

#[cfg(feature = "ui")]
#[derive(Debug, Args)]
struct KioskArgs {
    /// Edge address, e.g. edge.local:4433.
    #[arg(long, value_name = "ADDR")]
    edge: String,
    /// Device bundle (certificate, key, facility CA) from `edge-agent provision-device`.
    #[arg(long = "cert", value_name = "BUNDLE")]
    bundle: PathBuf,
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Letters that start every resident ID here and that the keypad cannot type (e.g. R).
    #[arg(long, default_value = "")]
    id_prefix: String,
    /// Language at start and after each logout: en or es.
    #[arg(long, default_value = "en")]
    lang: String,
}

#[cfg(feature = "ui")]
#[derive(Debug, Args)]
struct ScreenshotArgs {
    #[command(flatten)]
    kiosk: KioskArgs,
    /// Digits of the resident ID to log in with (after --id-prefix).
    #[arg(long)]
    resident_digits: String,
    #[arg(long, env = "TABLET_PIN", hide_env_values = true)]
    pin: String,
    /// Directory for the pictures.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct CliArgs {
    /// Edge address, e.g. 127.0.0.1:4433 or edge.local:4433.
    #[arg(long, value_name = "ADDR")]
    edge: String,
    /// Device bundle (certificate, key, facility CA) from `edge-agent provision-device`.
    #[arg(long = "cert", value_name = "BUNDLE")]
    bundle: PathBuf,
    /// Name the edge's certificate must carry.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Log in as this resident before running the command.
    #[arg(long, value_name = "ID")]
    resident: Option<String>,
    /// The resident's PIN.
    #[arg(long, env = "TABLET_PIN", hide_env_values = true)]
    pin: Option<String>,
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
enum CliCommand {
    /// Log in and print the session (needs --resident and a PIN).
    Login,
    /// The resident's contacts, with per-service availability and reasons.
    Contacts,
    /// Today's calling hours and the next window.
    Hours,
    /// Ask the edge to decide on a call; with --place, place it for real.
    ///
    /// With --place the contact's phone rings; each update prints as a JSON
    /// line ({"ok":{"Event":{"Call":..}}}) and the last line is
    /// {"ok":{"CallSummary":{outcome, connected_secs, warned_after_secs,
    /// ..}}}, measured on this side.
    Call {
        #[arg(long)]
        contact: u64,
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Number to dial (voice); the contact's primary number if omitted.
        #[arg(long)]
        number: Option<String>,
        /// Place the call and follow it to its end.
        #[arg(long)]
        place: bool,
        /// With --place: hang up this many seconds after the contact answers.
        #[arg(long, value_name = "SECS", requires = "place", value_parser = parse_secs)]
        hangup_after: Option<Duration>,
        /// With --place: send and receive media through the edge, from
        /// GStreamer test sources (`test`) or the camera and microphone
        /// (`camera`, /dev/video0). The summary reports frames both ways.
        #[arg(long, value_enum, requires = "place")]
        media: Option<MediaArg>,
    },
    /// Debit and per-contact video balances.
    Balances,
    /// One folder of the resident's mail, newest first, with the unread count.
    Messages {
        #[arg(value_enum)]
        folder: FolderArg,
    },
    /// Write, send, read and tidy messages. Message IDs are the 32 hex
    /// digits the answers show.
    #[command(subcommand)]
    Message(MessageAction),
    /// The eCard catalog residents may attach.
    Ecards,
    /// Stamp packages, buying stamps for a contact, and stamps held.
    #[command(subcommand)]
    Stamps(StampsAction),
    /// Read commands from stdin, one per line, on one connection.
    ///
    /// login ID [PIN] | logout | contacts | hours | call CONTACT voice|video [NUMBER]
    /// | balances | wait-event SECONDS | messages inbox|sent|drafts
    /// | send CONTACT SUBJECT [BODY] [--ecard N]... [--draft ID] [--body-file PATH]
    /// | draft CONTACT SUBJECT [BODY] [--ecard N]... [--id ID] [--body-file PATH]
    /// | read ID | delete-draft ID | hide ID | ecards
    /// | stamps packages|balance | stamps buy CONTACT PACKAGE | quit.
    ///
    /// Words are split as a POSIX shell splits them ('single' and "double"
    /// quotes, backslash escapes, # comments), without expansions. A body
    /// of several lines comes from --body-file PATH.
    Session,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
enum MessageAction {
    /// Queue a message to a contact; spends one stamp for that contact.
    Send {
        #[command(flatten)]
        compose: ComposeOpts,
        /// The draft this message is sent from (it is removed once queued).
        #[arg(long, value_name = "ID", value_parser = parse_message_id)]
        draft: Option<MessageId>,
    },
    /// Save a draft (no stamp needed); prints its ID.
    Draft {
        #[command(flatten)]
        compose: ComposeOpts,
        /// Replace this draft instead of creating a new one.
        #[arg(long, value_name = "ID", value_parser = parse_message_id)]
        id: Option<MessageId>,
    },
    /// Show one message in full (an inbox message becomes read).
    Read {
        #[arg(value_parser = parse_message_id)]
        id: MessageId,
    },
    /// Delete a draft.
    DeleteDraft {
        #[arg(value_parser = parse_message_id)]
        id: MessageId,
    },
    /// Hide a sent message from the Sent folder (its history is kept).
    Hide {
        #[arg(value_parser = parse_message_id)]
        id: MessageId,
    },
    /// Fetch an attachment's photo or VideoGram (the media ID a message's
    /// attachments name) and write it to a file.
    Media {
        #[arg(long, value_name = "MEDIA_ID")]
        media: u64,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
struct ComposeOpts {
    /// The contact to write to.
    #[arg(long, value_name = "ID")]
    contact: u64,
    #[arg(long)]
    subject: String,
    /// The message text (or use --body-file).
    #[arg(long, required_unless_present = "body_file", conflicts_with = "body_file")]
    body: Option<String>,
    /// Read the body from a UTF-8 file, or from stdin with `-`; the line
    /// break ending the file is dropped.
    #[arg(long, value_name = "PATH")]
    body_file: Option<PathBuf>,
    /// Attach this eCard from the catalog (repeatable).
    #[arg(long = "ecard", value_name = "N")]
    ecards: Vec<u64>,
}

impl ComposeOpts {
    fn to_args(&self) -> ComposeArgs {
        let body = match (&self.body, &self.body_file) {
            (Some(text), _) => Body::Text(text.clone()),
            (None, Some(path)) if path.as_os_str() == "-" => Body::Stdin,
            (None, Some(path)) => Body::File(path.clone()),
            // clap requires one of the two; an empty body is the edge's to judge.
            (None, None) => Body::Text(String::new()),
        };
        ComposeArgs {
            contact: ContactId(self.contact),
            subject: self.subject.clone(),
            body,
            ecards: self.ecards.iter().copied().map(ECardId).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
enum StampsAction {
    /// Packages on sale, and the debit money available to buy them.
    Packages,
    /// Buy a stamp package for one contact from the debit account.
    Buy {
        /// The contact the stamps are for.
        #[arg(long, value_name = "ID")]
        contact: u64,
        /// The package, by the ID `stamps packages` shows.
        #[arg(long, value_name = "N")]
        package: u64,
    },
    /// Stamps per contact, and purchases still queued or refused.
    Balance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FolderArg {
    Inbox,
    Sent,
    Drafts,
}

impl From<FolderArg> for Folder {
    fn from(folder: FolderArg) -> Self {
        match folder {
            FolderArg::Inbox => Folder::Inbox,
            FolderArg::Sent => Folder::Sent,
            FolderArg::Drafts => Folder::Drafts,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MediaArg {
    Test,
    Camera,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KindArg {
    Voice,
    Video,
}

impl From<KindArg> for CallKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Voice => CallKind::Voice,
            KindArg::Video => CallKind::Video,
        }
    }
}

impl CliArgs {
    /// The login to do before the command, checked for completeness.
    fn login(&self) -> Result<Option<Command>, ErrorBody> {
        let needs_login = self.command == CliCommand::Login;
        match (&self.resident, &self.pin) {
            (Some(resident), Some(pin)) => {
                Ok(Some(Command::Login { resident: ResidentId::new(resident), pin: Some(pin.clone()) }))
            }
            (Some(_), None) => Err(ErrorBody::new(ErrorKind::Usage, "--resident needs --pin or TABLET_PIN")),
            (None, _) if needs_login => {
                Err(ErrorBody::new(ErrorKind::Usage, "login needs --resident and --pin"))
            }
            (None, _) => Ok(None),
        }
    }

    /// The command to run after logging in; `None` for `login` (the login is
    /// the command) and `session` (commands come from stdin).
    fn one_shot(&self) -> Option<Command> {
        match &self.command {
            CliCommand::Login | CliCommand::Session => None,
            CliCommand::Contacts => Some(Command::Contacts),
            CliCommand::Hours => Some(Command::Hours),
            CliCommand::Balances => Some(Command::Balances),
            CliCommand::Call { contact, kind, number, .. } => Some(Command::Call {
                contact: ContactId(*contact),
                kind: (*kind).into(),
                number: number.clone(),
            }),
            CliCommand::Messages { folder } => Some(Command::Mailbox((*folder).into())),
            CliCommand::Message(action) => Some(match action {
                MessageAction::Send { compose, draft } => {
                    Command::SendMessage { draft: *draft, compose: compose.to_args() }
                }
                MessageAction::Draft { compose, id } => {
                    Command::SaveDraft { id: *id, compose: compose.to_args() }
                }
                MessageAction::Read { id } => Command::ReadMessage(*id),
                MessageAction::DeleteDraft { id } => Command::DeleteDraft(*id),
                MessageAction::Hide { id } => Command::HideSent(*id),
                MessageAction::Media { media, out } => {
                    Command::FetchMedia { media: proto::messaging::MediaId(*media), out: out.clone() }
                }
            }),
            CliCommand::Ecards => Some(Command::ECards),
            CliCommand::Stamps(action) => Some(match action {
                StampsAction::Packages => Command::StampPackages,
                StampsAction::Buy { contact, package } => {
                    Command::BuyStamps { contact: ContactId(*contact), package: PackageId(*package) }
                }
                StampsAction::Balance => Command::StampBalance,
            }),
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // moq-transport logs routine media events (a subscription
                // refused until the contact's tracks reach the relay, a
                // stream reset at hangup) as warnings and errors.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,moq_transport=off")),
        )
        .init();

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help / --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return finish_with(&Line::Error(ErrorBody::new(ErrorKind::Usage, clap_summary(&e))), false);
        }
    };
    #[allow(clippy::infallible_destructuring_match)] // more modes with the `ui` feature
    let args = match cli.mode {
        Mode::Cli(args) => args,
        #[cfg(feature = "ui")]
        Mode::Kiosk(args) => return kiosk(&args),
        #[cfg(feature = "ui")]
        Mode::Screenshots(args) => return screenshots(args),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            let error = ErrorBody::new(ErrorKind::Connection, format!("cannot start the async runtime: {e}"));
            return finish_with(&Line::Error(error), true);
        }
    };
    ExitCode::from(runtime.block_on(run(args)).code())
}

#[cfg(feature = "ui")]
fn kiosk_setup(args: &KioskArgs) -> anyhow::Result<(SocketAddr, net::Bundle, tablet_shell::vm::Lang)> {
    use anyhow::Context;
    let bundle = net::Bundle::load(&args.bundle)
        .with_context(|| format!("cannot use device bundle {}", args.bundle.display()))?;
    let edge = std::net::ToSocketAddrs::to_socket_addrs(args.edge.as_str())
        .with_context(|| format!("cannot resolve edge address {:?}", args.edge))?
        .next()
        .with_context(|| format!("edge address {:?} resolves to nothing", args.edge))?;
    let lang = tablet_shell::vm::Lang::from_code(&args.lang)
        .with_context(|| format!("unknown language {:?}; use en or es", args.lang))?;
    Ok((edge, bundle, lang))
}

#[cfg(feature = "ui")]
fn kiosk(args: &KioskArgs) -> ExitCode {
    let outcome = kiosk_setup(args).and_then(|(edge, bundle, lang)| {
        tablet_shell::ui::run::run(tablet_shell::ui::run::KioskOptions {
            edge,
            bundle,
            server_name: args.server_name.clone(),
            id_prefix: args.id_prefix.clone(),
            settings: tablet_shell::vm::settings::Settings { lang, large_text: false },
        })
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "the kiosk stopped");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "ui")]
fn screenshots(args: ScreenshotArgs) -> ExitCode {
    let outcome = kiosk_setup(&args.kiosk).and_then(|(edge, bundle, _)| {
        tablet_shell::ui::tour::run_tour(tablet_shell::ui::tour::TourOptions {
            edge,
            bundle,
            server_name: args.kiosk.server_name.clone(),
            id_prefix: args.kiosk.id_prefix.clone(),
            resident_digits: args.resident_digits.clone(),
            pin: args.pin.clone(),
            out: args.out.clone(),
            width: 1280,
            height: 800,
        })
    });
    match outcome {
        Ok(pictures) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for picture in pictures {
                let line = serde_json::json!({ "ok": { "Screenshot": picture.display().to_string() } });
                let _ = writeln!(out, "{line}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "the scripted kiosk session failed");
            ExitCode::FAILURE
        }
    }
}

/// The first paragraph of a clap error on one line: the complaint plus the
/// arguments it lists (e.g. which required ones are missing), without the
/// usage text that follows.
fn clap_summary(error: &clap::Error) -> String {
    let text = error.to_string();
    let paragraph: Vec<&str> = text.lines().map(str::trim).take_while(|line| !line.is_empty()).collect();
    paragraph.join(" ").trim_start_matches("error: ").to_string()
}

/// Prints a final line on stdout, and on stderr a human message unless clap
/// already printed one, and gives the exit code for it.
fn finish_with(line: &Line, explain_on_stderr: bool) -> ExitCode {
    emit(&mut std::io::stdout().lock(), line);
    if explain_on_stderr {
        explain(line);
    }
    ExitCode::from(line.exit_status().code())
}

fn explain(line: &Line) {
    if let Line::Error(error) = line {
        eprintln!("tablet-shell: {}", error.message);
    }
}

async fn run(args: CliArgs) -> ExitStatus {
    let mut stdout = std::io::stdout();
    let fail = |line: Line| {
        emit(&mut std::io::stdout().lock(), &line);
        explain(&line);
        line.exit_status()
    };

    let login = match args.login() {
        Ok(login) => login,
        Err(error) => return fail(Line::Error(error)),
    };
    let bundle = match net::Bundle::load(&args.bundle) {
        Ok(bundle) => bundle,
        Err(e) => {
            return fail(Line::Error(ErrorBody::new(
                ErrorKind::Bundle,
                format!("cannot use device bundle {}: {e}", args.bundle.display()),
            )))
        }
    };
    let edge = match resolve(&args.edge).await {
        Ok(edge) => edge,
        Err(error) => return fail(Line::Error(error)),
    };
    let client = match EdgeClient::connect(edge, &bundle, &args.server_name).await {
        Ok(client) => client,
        Err(e) => return fail(Line::Error(e.into())),
    };
    let mut session = Session::new(client, args.pin.clone());

    let status = 'run: {
        if let Some(login) = login {
            let line = session.execute(login).await;
            let failed = matches!(line, Line::Error(_));
            if failed || args.command == CliCommand::Login || args.command == CliCommand::Session {
                emit(&mut stdout, &line);
            }
            if failed {
                explain(&line);
                break 'run line.exit_status();
            }
            if args.command == CliCommand::Login {
                break 'run line.exit_status();
            }
        }
        if args.command == CliCommand::Session {
            let stdin = tokio::io::BufReader::new(tokio::io::stdin());
            let status = session.run_script(stdin, &mut stdout).await;
            if status == ExitStatus::Connection {
                eprintln!("tablet-shell: the connection to the edge was lost");
            }
            break 'run status;
        }
        if let CliCommand::Call { contact, kind, number, place: true, hangup_after, media } = &args.command {
            #[cfg(not(feature = "media"))]
            if media.is_some() {
                eprintln!("tablet-shell: this build has no call media (built without the `media` feature)");
                break 'run ExitStatus::Usage;
            }
            #[cfg(feature = "media")]
            let media = media.map(|media| tablet_shell::dial::MediaOptions {
                edge,
                server_name: args.server_name.clone(),
                identity: bundle.clone(),
                on_video: None,
                on_self_view: None,
                sources: match media {
                    MediaArg::Test => facility_media::Sources::Test,
                    MediaArg::Camera => {
                        facility_media::Sources::Devices { video_device: "/dev/video0".into() }
                    }
                },
                // A call from the camera and microphone is a person's call,
                // so the contact is heard; test sources stay silent.
                audio_output: match media {
                    MediaArg::Test => facility_media::AudioOutput::Fake,
                    MediaArg::Camera => facility_media::AudioOutput::Device,
                },
            });
            let status = tablet_shell::dial::place(
                session.client(),
                &mut stdout,
                ContactId(*contact),
                (*kind).into(),
                number.clone(),
                *hangup_after,
                #[cfg(feature = "media")]
                media,
            )
            .await;
            break 'run status;
        }
        match args.one_shot() {
            Some(command) => {
                let line = session.execute(command).await;
                emit(&mut stdout, &line);
                explain(&line);
                line.exit_status()
            }
            None => ExitStatus::Success,
        }
    };
    session.finish().await;
    status
}

/// Seconds, fractions allowed.
fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Accepts `IP:PORT` or `HOST:PORT`.
async fn resolve(edge: &str) -> Result<SocketAddr, ErrorBody> {
    if let Ok(addr) = edge.parse() {
        return Ok(addr);
    }
    let mut addrs = tokio::net::lookup_host(edge).await.map_err(|e| {
        ErrorBody::new(ErrorKind::Connection, format!("cannot resolve edge address {edge:?}: {e}"))
    })?;
    addrs.next().ok_or_else(|| {
        ErrorBody::new(ErrorKind::Connection, format!("edge address {edge:?} resolves to nothing"))
    })
}

#[cfg(test)]
#[cfg_attr(not(feature = "ui"), allow(irrefutable_let_patterns))]
mod tests {
    use super::*;

    const BASE: [&str; 6] = ["tablet-shell", "cli", "--edge", "127.0.0.1:4433", "--cert", "t.bundle"];

    fn parse(extra: &[&str]) -> Result<CliArgs, clap::Error> {
        let argv: Vec<&str> = BASE.iter().chain(extra).copied().collect();
        Cli::try_parse_from(argv).map(|cli| match cli.mode {
            Mode::Cli(args) => args,
            #[allow(unreachable_patterns)]
            _ => unreachable!("the test arguments name the cli mode"),
        })
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn call_place_takes_a_hangup_delay_only_with_place() {
        let args = parse(&["call", "--contact", "1", "--kind", "video", "--place", "--hangup-after", "2.5"])
            .unwrap();
        let CliCommand::Call { place, hangup_after, .. } = args.command else { panic!("not a call") };
        assert!(place);
        assert_eq!(hangup_after, Some(Duration::from_millis(2500)));
        assert!(parse(&["call", "--contact", "1", "--kind", "video", "--hangup-after", "2"]).is_err());
        assert!(
            parse(&["call", "--contact", "1", "--kind", "video", "--media", "test"]).is_err(),
            "media needs --place"
        );
        let args =
            parse(&["call", "--contact", "1", "--kind", "video", "--place", "--media", "test"]).unwrap();
        assert!(matches!(args.command, CliCommand::Call { media: Some(MediaArg::Test), .. }));
        assert!(
            parse(&["call", "--contact", "1", "--kind", "video", "--place", "--hangup-after", "-1"]).is_err()
        );
    }

    #[test]
    fn call_takes_contact_kind_and_number() {
        let args = parse(&["call", "--contact", "3", "--kind", "video"]).unwrap();
        assert_eq!(
            args.command,
            CliCommand::Call {
                contact: 3,
                kind: KindArg::Video,
                number: None,
                place: false,
                hangup_after: None,
                media: None
            }
        );
        assert_eq!(args.server_name, "localhost");
        assert_eq!(
            args.one_shot(),
            Some(Command::Call { contact: ContactId(3), kind: CallKind::Video, number: None })
        );

        let args = parse(&["call", "--contact", "4", "--kind", "voice", "--number", "+15551234567"]).unwrap();
        assert_eq!(
            args.one_shot(),
            Some(Command::Call {
                contact: ContactId(4),
                kind: CallKind::Voice,
                number: Some("+15551234567".into())
            })
        );
    }

    #[test]
    fn call_refuses_bad_kind_and_missing_contact() {
        assert!(parse(&["call", "--contact", "3", "--kind", "fax"]).is_err());
        assert!(parse(&["call", "--kind", "voice"]).is_err());
        assert!(parse(&["call", "--contact", "-3", "--kind", "voice"]).is_err());
    }

    #[test]
    fn edge_and_cert_are_required() {
        assert!(Cli::try_parse_from(["tablet-shell", "cli", "--edge", "127.0.0.1:1", "contacts"]).is_err());
        assert!(Cli::try_parse_from(["tablet-shell", "cli", "--cert", "b", "contacts"]).is_err());
        // A command is required.
        assert!(Cli::try_parse_from(["tablet-shell", "cli", "--edge", "x:1", "--cert", "b"]).is_err());
    }

    #[test]
    fn resident_and_pin_become_a_login_before_the_command() {
        let argv: Vec<&str> = BASE
            .iter()
            .copied()
            .chain(["--server-name", "edge.local", "--resident", "R1001", "--pin", "1234", "contacts"])
            .collect();
        let Mode::Cli(args) = Cli::try_parse_from(argv).unwrap().mode else {
            panic!("the arguments name the cli mode");
        };
        assert_eq!(args.server_name, "edge.local");
        assert_eq!(
            args.login().unwrap(),
            Some(Command::Login { resident: ResidentId::new("R1001"), pin: Some("1234".into()) })
        );
        assert_eq!(args.one_shot(), Some(Command::Contacts));
    }

    // The PIN's env fallback is clap's; these set the fields directly so that
    // a TABLET_PIN in the test environment cannot change the outcome.
    #[test]
    fn login_needs_resident_and_pin() {
        let mut args = parse(&["login"]).unwrap();
        args.resident = None;
        args.pin = Some("1234".into());
        assert_eq!(args.login().unwrap_err().kind, ErrorKind::Usage);
        args.resident = Some("R1001".into());
        args.pin = None;
        assert_eq!(args.login().unwrap_err().kind, ErrorKind::Usage);
        args.pin = Some("1234".into());
        assert!(args.login().unwrap().is_some());
        assert_eq!(args.one_shot(), None);
    }

    #[test]
    fn commands_without_resident_do_not_log_in() {
        for (word, command) in
            [("contacts", Command::Contacts), ("hours", Command::Hours), ("balances", Command::Balances)]
        {
            let mut args = parse(&[word]).unwrap();
            args.pin = None;
            assert_eq!(args.login().unwrap(), None);
            assert_eq!(args.one_shot(), Some(command));
        }
        let mut args = parse(&["session"]).unwrap();
        args.pin = None;
        assert_eq!(args.command, CliCommand::Session);
        assert_eq!(args.login().unwrap(), None);
        assert_eq!(args.one_shot(), None);
    }

    #[tokio::test]
    async fn edge_address_accepts_ip_and_host_names() {
        assert_eq!(resolve("127.0.0.1:4433").await.unwrap(), "127.0.0.1:4433".parse().unwrap());
        assert_eq!(resolve("[::1]:4433").await.unwrap(), "[::1]:4433".parse().unwrap());
        assert!(resolve("localhost:4433").await.unwrap().ip().is_loopback());
        assert_eq!(resolve("no-port").await.unwrap_err().kind, ErrorKind::Connection);
    }

    const HEX: &str = "0123456789abcdef0123456789abcdef";

    fn hex_id() -> MessageId {
        MessageId::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
    }

    #[test]
    fn messages_takes_a_folder() {
        for (word, folder) in [("inbox", Folder::Inbox), ("sent", Folder::Sent), ("drafts", Folder::Drafts)] {
            assert_eq!(parse(&["messages", word]).unwrap().one_shot(), Some(Command::Mailbox(folder)));
        }
        assert!(parse(&["messages", "trash"]).is_err());
        assert!(parse(&["messages"]).is_err());
    }

    #[test]
    fn message_send_builds_a_compose_with_ecards() {
        let args = parse(&[
            "message",
            "send",
            "--contact",
            "3",
            "--subject",
            "Hi",
            "--body",
            "Hello\nthere",
            "--ecard",
            "1",
            "--ecard",
            "2",
            "--draft",
            HEX,
        ])
        .unwrap();
        assert_eq!(
            args.one_shot(),
            Some(Command::SendMessage {
                draft: Some(hex_id()),
                compose: ComposeArgs {
                    contact: ContactId(3),
                    subject: "Hi".into(),
                    body: Body::Text("Hello\nthere".into()),
                    ecards: vec![ECardId(1), ECardId(2)],
                },
            })
        );
    }

    #[test]
    fn body_comes_from_exactly_one_place() {
        let base = ["message", "draft", "--contact", "3", "--subject", "S"];
        let body_of = |extra: &[&str]| {
            let argv: Vec<&str> = base.iter().chain(extra).copied().collect();
            match parse(&argv).map(|args| args.one_shot()) {
                Ok(Some(Command::SaveDraft { compose, .. })) => Ok(compose.body),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e.kind()),
            }
        };
        assert_eq!(body_of(&["--body-file", "-"]), Ok(Body::Stdin));
        assert_eq!(body_of(&["--body-file", "letter.txt"]), Ok(Body::File("letter.txt".into())));
        assert_eq!(body_of(&["--body", ""]), Ok(Body::Text(String::new())));
        assert_eq!(body_of(&[]), Err(clap::error::ErrorKind::MissingRequiredArgument));
        assert_eq!(
            body_of(&["--body", "b", "--body-file", "f"]),
            Err(clap::error::ErrorKind::ArgumentConflict)
        );
    }

    #[test]
    fn message_draft_takes_an_optional_id_to_replace() {
        let args = parse(&["message", "draft", "--contact", "3", "--subject", "S", "--body", "B"]).unwrap();
        assert!(matches!(args.one_shot(), Some(Command::SaveDraft { id: None, .. })));
        let args =
            parse(&["message", "draft", "--contact", "3", "--subject", "S", "--body", "B", "--id", HEX])
                .unwrap();
        assert!(matches!(args.one_shot(), Some(Command::SaveDraft { id: Some(id), .. }) if id == hex_id()));
        // `--draft` belongs to send, `--id` to draft.
        assert!(parse(&[
            "message",
            "draft",
            "--contact",
            "3",
            "--subject",
            "S",
            "--body",
            "B",
            "--draft",
            HEX
        ])
        .is_err());
    }

    #[test]
    fn message_id_commands_take_hex_ids() {
        assert_eq!(
            parse(&["message", "read", HEX]).unwrap().one_shot(),
            Some(Command::ReadMessage(hex_id()))
        );
        assert_eq!(
            parse(&["message", "delete-draft", HEX]).unwrap().one_shot(),
            Some(Command::DeleteDraft(hex_id()))
        );
        assert_eq!(parse(&["message", "hide", HEX]).unwrap().one_shot(), Some(Command::HideSent(hex_id())));
        let e = parse(&["message", "read", "42"]).unwrap_err();
        assert!(e.to_string().contains("32 hex digits"), "{e}");
        assert!(parse(&["message", "read"]).is_err());
    }

    #[test]
    fn ecards_and_stamps_subcommands() {
        assert_eq!(parse(&["ecards"]).unwrap().one_shot(), Some(Command::ECards));
        assert_eq!(parse(&["stamps", "packages"]).unwrap().one_shot(), Some(Command::StampPackages));
        assert_eq!(parse(&["stamps", "balance"]).unwrap().one_shot(), Some(Command::StampBalance));
        assert_eq!(
            parse(&["stamps", "buy", "--contact", "3", "--package", "2"]).unwrap().one_shot(),
            Some(Command::BuyStamps { contact: ContactId(3), package: PackageId(2) })
        );
        assert!(parse(&["stamps", "buy", "--contact", "3"]).is_err());
        assert!(parse(&["stamps"]).is_err());
    }

    #[test]
    fn clap_errors_are_summed_up_on_one_line() {
        let e = parse(&["message", "send", "--contact", "3", "--subject", "S"]).unwrap_err();
        let summary = clap_summary(&e);
        assert!(summary.starts_with("the following required arguments were not provided:"), "{summary}");
        assert!(summary.contains("--body"), "{summary}");
        assert!(!summary.contains('\n') && !summary.contains("Usage"), "{summary}");
    }
}
