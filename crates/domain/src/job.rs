//! The durable job queue's rules: statuses, leases and the retry back-off.

use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            _ => return None,
        })
    }
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// How long a claimed job stays leased without a heartbeat before another worker may take it over.
pub const LEASE_MS: i64 = 30_000;

/// Delay before retry number `attempt` (1-based): 2s, 4s, 8s … capped at 5 minutes.
pub fn retry_delay_ms(attempt: u32) -> i64 {
    let exp = attempt.saturating_sub(1).min(20);
    (2_000i64 << exp).min(300_000)
}

/// When a failed attempt should run again, or `None` when the attempts are used up.
pub fn next_attempt_at(now: Timestamp, attempts: u32, max_attempts: u32) -> Option<Timestamp> {
    (attempts < max_attempts).then(|| now + retry_delay_ms(attempts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(retry_delay_ms(1), 2_000);
        assert_eq!(retry_delay_ms(2), 4_000);
        assert_eq!(retry_delay_ms(30), 300_000);
        assert_eq!(next_attempt_at(100, 1, 3), Some(2_100));
        assert_eq!(next_attempt_at(100, 3, 3), None);
    }
}
