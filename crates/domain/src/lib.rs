//! CorePlexML's entities and the rules that govern them: ids, time, tenancy roles, the model registry
//! lifecycle, datasets' column kinds and the job queue's retry policy.
//!
//! Architecture invariant: this crate does no IO. No tokio, no SQL, no HTTP, no file system. Time is
//! handed in through [`Clock`]; randomness only mints ids.

pub mod alerting;
pub mod clock;
pub mod dataset;
pub mod error;
pub mod ids;
pub mod job;
pub mod registry;
pub mod retraining;
pub mod rollout;
pub mod tenancy;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{DomainError, Result};
