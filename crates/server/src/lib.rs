//! The CorePlexML server: HTTP API (axum), authentication, the background job worker and the
//! controllers' scheduler.
//!
//! Architecture invariant: this is the only crate that knows HTTP. Handlers parse and check input,
//! call the domain for rules and the store for persistence, and shape records for the wire.

pub mod ab;
pub mod alerts;
pub mod auth;
pub mod config;
pub mod drift;
pub mod error;
pub mod experiments;
pub mod extract;
pub mod idempotency;
pub mod ingest;
pub mod monitoring;
pub mod notify;
pub mod retraining;
pub mod rollouts;
pub mod routes;
pub mod serving;
pub mod startup;
pub mod state;
pub mod upload;
pub mod worker;

pub use config::Config;
pub use startup::{app, Application, StartupError};
pub use state::AppState;
