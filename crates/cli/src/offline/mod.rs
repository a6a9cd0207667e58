//! Offline statistics commands (`coreplex drift`, `coreplex ab`): read local files or flags,
//! compute with `coreplex-stats`, print a report. No server involved.
//!
//! Exit codes: 0 success, 2 bad input (a one-line `error: …` on stderr naming the problem).
//! Output: `--format json|table`, table by default when stdout is a terminal, JSON otherwise.

mod ab;
mod csv_columns;
mod drift;

pub use ab::{run_ab, AbArgs};
pub use drift::{run_drift, DriftArgs};

use std::io::IsTerminal;
use std::process::ExitCode;

/// Output format of an offline report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
}

impl Format {
    /// The requested format, or table on a terminal and JSON when piped.
    fn resolve(requested: Option<Format>) -> Format {
        requested.unwrap_or_else(|| {
            if std::io::stdout().is_terminal() {
                Format::Table
            } else {
                Format::Json
            }
        })
    }
}

/// A problem with the user's input, reported as one line and exit code 2.
#[derive(Debug)]
pub(crate) struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<coreplex_stats::Error> for InputError {
    fn from(e: coreplex_stats::Error) -> Self {
        InputError(e.to_string())
    }
}

pub(crate) fn input_error(msg: impl Into<String>) -> InputError {
    InputError(msg.into())
}

/// Print a result or its error and turn it into the exit code.
fn finish(result: Result<String, InputError>) -> ExitCode {
    match result {
        Ok(text) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Keep it to one line whatever the message contains.
            let line = e.0.replace('\n', " ");
            eprintln!("error: {line}");
            ExitCode::from(2)
        }
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("reports serialize");
    text.push('\n');
    text
}

/// Check a probability-like flag lies strictly between 0 and 1.
fn check_unit(flag: &str, value: f64) -> Result<(), InputError> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(input_error(format!(
            "{flag} must be strictly between 0 and 1, got {value}"
        )))
    }
}

/// Format a number for tables: fixed for ordinary magnitudes, scientific for tiny ones.
fn num(x: Option<f64>) -> String {
    match x {
        None => "-".to_owned(),
        Some(0.0) => "0".to_owned(),
        Some(v) if v.abs() < 1e-4 || v.abs() >= 1e6 => format!("{v:.3e}"),
        Some(v) => format!("{v:.4}"),
    }
}
