use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    GenFixture {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::GenFixture { out } => {
            let text = central_sim::fixture::generate().unwrap().to_json();
            match out {
                Some(p) => std::fs::write(p, text).unwrap(),
                None => print!("{text}"),
            }
        }
    }
    ExitCode::SUCCESS
}
