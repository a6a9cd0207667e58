//! `coreplex`: the server (`serve`), offline statistics tools (`drift`, `ab`) and client commands for
//! every resource of a running server (reading `COREPLEX_URL` and `COREPLEX_API_KEY`).

mod client;
mod client_ml;
mod offline;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "coreplex",
    version,
    about = "CorePlexML: model registry, serving, monitoring and retraining"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the server.
    Serve(serve::ServeArgs),
    /// Offline drift report of two CSV files.
    Drift(offline::DriftArgs),
    /// Offline A/B test analysis and sample sizes.
    Ab(offline::AbArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
    #[command(flatten)]
    Ml(Box<client_ml::MlCommand>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Drift(args) => offline::run_drift(args),
        Command::Ab(args) => offline::run_ab(args),
        Command::Client(cmd) => client::run(cmd),
        Command::Ml(cmd) => client_ml::run(*cmd),
    }
}
