//! `tablet-shell`: for now only its headless client, `tablet-shell cli`, used
//! by tests, the demo and facility IT diagnostics. Prints JSON lines on
//! stdout (see [`tablet_shell::output`]) and human messages on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use proto::domain::{CallKind, ContactId, ResidentId};
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
    /// Ask the edge to decide on a call.
    Call {
        #[arg(long)]
        contact: u64,
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Number to dial (voice); the contact's primary number if omitted.
        #[arg(long)]
        number: Option<String>,
    },
    /// Debit and per-contact video balances.
    Balances,
    /// Read commands from stdin, one per line, on one connection:
    /// login ID [PIN] | logout | contacts | hours | call CONTACT voice|video [NUMBER]
    /// | balances | wait-event SECONDS | quit.
    Session,
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
            CliCommand::Call { contact, kind, number } => Some(Command::Call {
                contact: ContactId(*contact),
                kind: (*kind).into(),
                number: number.clone(),
            }),
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
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
            let first_line =
                e.to_string().lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
            return finish_with(&Line::Error(ErrorBody::new(ErrorKind::Usage, first_line)), false);
        }
    };
    let Mode::Cli(args) = cli.mode;
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            let error = ErrorBody::new(ErrorKind::Connection, format!("cannot start the async runtime: {e}"));
            return finish_with(&Line::Error(error), true);
        }
    };
    ExitCode::from(runtime.block_on(run(args)).code())
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
mod tests {
    use super::*;

    const BASE: [&str; 6] = ["tablet-shell", "cli", "--edge", "127.0.0.1:4433", "--cert", "t.bundle"];

    fn parse(extra: &[&str]) -> Result<CliArgs, clap::Error> {
        let argv: Vec<&str> = BASE.iter().chain(extra).copied().collect();
        Cli::try_parse_from(argv).map(|cli| {
            let Mode::Cli(args) = cli.mode;
            args
        })
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn call_takes_contact_kind_and_number() {
        let args = parse(&["call", "--contact", "3", "--kind", "video"]).unwrap();
        assert_eq!(args.command, CliCommand::Call { contact: 3, kind: KindArg::Video, number: None });
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
        let Mode::Cli(args) = Cli::try_parse_from(argv).unwrap().mode;
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
}
