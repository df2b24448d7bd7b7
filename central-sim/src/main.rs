//! `central-sim`: init a state directory, serve the change feed over QUIC,
//! and change central's records from the command line. Logic lives in the
//! library; this file only parses arguments and prints results.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use central_sim::{admin, fixture, server, state};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "central-sim", version, about = "Stand-in for the provider's central API (demo and tests)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates the database, CA and bundles in DIR; re-running changes nothing.
    Init {
        #[arg(long)]
        state: PathBuf,
        /// Fixture JSON to seed from (default: the embedded demo fixture).
        #[arg(long)]
        fixture: Option<PathBuf>,
    },
    /// Serves the change feed to edge boxes over QUIC until SIGTERM/ctrl-c.
    Serve {
        #[arg(long)]
        state: PathBuf,
        /// Use port 0 for any free port; the bound address goes to DIR/central.addr.
        #[arg(long, default_value = "127.0.0.1:7400")]
        listen: SocketAddr,
        /// The MoQ relay answering contacts join their calls through.
        #[arg(long, value_name = "ADDR")]
        media_relay: Option<SocketAddr>,
        /// PEM CA certificate(s) the relay's certificate chains to.
        #[arg(long, value_name = "PEM", requires = "media_relay")]
        media_relay_ca: Option<PathBuf>,
        #[arg(long, default_value = "localhost")]
        media_relay_server_name: String,
    },
    /// Changes central's records (safe while `serve` runs).
    Admin {
        #[arg(long)]
        state: PathBuf,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Writes the deterministic demo fixture (fixtures/demo.json).
    GenFixture {
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // As the edge: moq-transport logs routine refusals and hangups as
        // warnings and errors.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,moq_transport=off"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("central-sim: cannot print the result: {error}"),
    }
}

fn fail(error: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("central-sim: {error}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Init { state: dir, fixture } => match state::init(&dir, fixture.as_deref()) {
            Ok(report) => {
                print_json(&report);
                ExitCode::SUCCESS
            }
            Err(error @ (state::StateError::Fixture(_) | state::StateError::ReadFixture { .. })) => {
                fail(&error, 2)
            }
            Err(error) => fail(&error, 1),
        },
        Command::Serve { state: dir, listen, media_relay, media_relay_ca, media_relay_server_name } => {
            init_tracing();
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => return fail(&error, 1),
            };
            let result = runtime.block_on(async {
                let mut server = server::Server::bind(&dir, listen)?;
                if let Some(relay) = media_relay {
                    let ca = media_relay_ca.clone().unwrap_or_else(|| dir.join("relay").join("ca.crt"));
                    let client = media_link::RelayClient::new(relay, media_relay_server_name.clone(), &ca)
                        .map_err(|e| anyhow::anyhow!("media relay: {e}"))?;
                    server = server.with_media_relay(client);
                    tracing::info!(%relay, "contacts join calls through the media relay");
                }
                server.run(server::shutdown_signal()).await.map_err(anyhow::Error::from)
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "central-sim serve failed");
                    fail(&error, 1)
                }
            }
        }
        Command::Admin { state: dir, command } => {
            if !dir.join(central_sim::db::DB_FILE).exists() {
                return fail(&format!("no database in {} (run `central-sim init` first)", dir.display()), 2);
            }
            let mut db = match central_sim::db::Db::open(&dir) {
                Ok(db) => db,
                Err(error) => return fail(&error, 1),
            };
            match admin::run(&mut db, &command) {
                Ok(result) => {
                    print_json(&result);
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error, error.exit_code()),
            }
        }
        Command::GenFixture { out } => {
            let text = match fixture::generate() {
                Ok(fixture) => fixture.to_json(),
                Err(error) => return fail(&error, 1),
            };
            match out {
                Some(path) => match std::fs::write(&path, text) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => fail(&format!("cannot write {}: {error}", path.display()), 1),
                },
                None => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
            }
        }
    }
}
