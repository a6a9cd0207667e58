//! Offline statistics commands (`coreplex drift`, `coreplex ab`): read local files, print reports.
//! No server involved.

use clap::{Args, Subcommand};
use std::process::ExitCode;

/// `coreplex drift`
#[derive(Debug, Args)]
pub struct DriftArgs {
    #[arg(long)]
    pub reference: std::path::PathBuf,
    #[arg(long)]
    pub current: std::path::PathBuf,
}

/// `coreplex ab …`
#[derive(Debug, Args)]
pub struct AbArgs {
    #[command(subcommand)]
    pub command: AbCommand,
}

#[derive(Debug, Subcommand)]
pub enum AbCommand {
    /// Analyze an A/B test from counts or summary statistics.
    Analyze,
    /// Required sample size per variant.
    SampleSize,
}

pub fn run_drift(_args: DriftArgs) -> ExitCode {
    eprintln!("error: not implemented yet");
    ExitCode::from(2)
}

pub fn run_ab(_args: AbArgs) -> ExitCode {
    eprintln!("error: not implemented yet");
    ExitCode::from(2)
}
