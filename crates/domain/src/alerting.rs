//! Alert rules: which metrics can be watched, the conditions, and how an evaluation moves an alert
//! between `ok` and `firing` — with a cooldown that keeps a firing alert from repeating itself.

use crate::clock::Timestamp;
use crate::error::{DomainError, Result};
use serde::{Deserialize, Serialize};

/// Metrics an alert can watch.
pub const METRICS: [&str; 20] = [
    "data_drift_score",
    "max_psi",
    "concept_drift",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "auc",
    "log_loss",
    "rmse",
    "mae",
    "r2",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_avg_ms",
    "error_rate",
    "throughput_rps",
    "requests",
    "shadow_dropped",
];

pub fn validate_metric(field: &str, m: &str) -> Result<()> {
    if METRICS.contains(&m) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!("unknown metric `{m}`; use one of {}", METRICS.join(", ")),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    Equal,
    NotEqual,
}

impl Condition {
    pub fn parse(field: &str, s: &str) -> Result<Condition> {
        Ok(match s {
            "greater_than" | "gt" | ">" => Condition::GreaterThan,
            "greater_than_or_equal" | "gte" | ">=" => Condition::GreaterThanOrEqual,
            "less_than" | "lt" | "<" => Condition::LessThan,
            "less_than_or_equal" | "lte" | "<=" => Condition::LessThanOrEqual,
            "equal" | "eq" | "==" => Condition::Equal,
            "not_equal" | "ne" | "!=" => Condition::NotEqual,
            other => {
                return Err(DomainError::invalid(
                    field,
                    format!("unknown condition `{other}`; use greater_than, greater_than_or_equal, less_than, less_than_or_equal, equal or not_equal"),
                ))
            }
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::GreaterThan => "greater_than",
            Condition::GreaterThanOrEqual => "greater_than_or_equal",
            Condition::LessThan => "less_than",
            Condition::LessThanOrEqual => "less_than_or_equal",
            Condition::Equal => "equal",
            Condition::NotEqual => "not_equal",
        }
    }
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Condition::GreaterThan => value > threshold,
            Condition::GreaterThanOrEqual => value >= threshold,
            Condition::LessThan => value < threshold,
            Condition::LessThanOrEqual => value <= threshold,
            Condition::Equal => value == threshold,
            Condition::NotEqual => value != threshold,
        }
    }
}

/// What one evaluation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The condition started to hold: notify.
    Fired,
    /// Still holding after the cooldown: notify again.
    Repeated,
    /// Holding, but a notification went out less than the cooldown ago.
    Suppressed,
    /// The condition stopped holding: notify that it resolved.
    Resolved,
    /// Not holding, and was not.
    Quiet,
    /// No data in the window: nothing changes.
    NoData,
}

impl Outcome {
    pub fn notifies(self) -> bool {
        matches!(self, Outcome::Fired | Outcome::Repeated | Outcome::Resolved)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Fired => "fired",
            Outcome::Repeated => "repeated",
            Outcome::Suppressed => "suppressed",
            Outcome::Resolved => "resolved",
            Outcome::Quiet => "quiet",
            Outcome::NoData => "no_data",
        }
    }
}

/// One evaluation: the alert's new state (`ok` or `firing`) and what happened.
pub fn evaluate(
    firing: bool,
    value: Option<f64>,
    condition: Condition,
    threshold: f64,
    last_notified_at: Option<Timestamp>,
    cooldown_minutes: i64,
    now: Timestamp,
) -> (bool, Outcome) {
    let Some(v) = value.filter(|v| v.is_finite()) else {
        return (firing, Outcome::NoData);
    };
    let cooled = last_notified_at
        .map(|t| now - t >= cooldown_minutes * 60_000)
        .unwrap_or(true);
    match (condition.holds(v, threshold), firing) {
        (true, false) if cooled => (true, Outcome::Fired),
        (true, false) => (true, Outcome::Suppressed),
        (true, true) if cooled => (true, Outcome::Repeated),
        (true, true) => (true, Outcome::Suppressed),
        (false, true) => (false, Outcome::Resolved),
        (false, false) => (false, Outcome::Quiet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MIN: i64 = 60_000;

    #[test]
    fn fires_suppresses_repeats_after_cooldown_and_resolves() {
        let c = Condition::GreaterThan;
        let (f, o) = evaluate(false, Some(0.3), c, 0.15, None, 240, 0);
        assert_eq!((f, o), (true, Outcome::Fired));
        let (f, o) = evaluate(f, Some(0.4), c, 0.15, Some(0), 240, 60 * MIN);
        assert_eq!((f, o), (true, Outcome::Suppressed));
        let (f, o) = evaluate(f, Some(0.4), c, 0.15, Some(0), 240, 241 * MIN);
        assert_eq!((f, o), (true, Outcome::Repeated));
        let (f, o) = evaluate(f, Some(0.1), c, 0.15, Some(241 * MIN), 240, 300 * MIN);
        assert_eq!((f, o), (false, Outcome::Resolved));
        // Firing again soon after the last notification stays quiet until the cooldown passes.
        let (_, o) = evaluate(f, Some(0.5), c, 0.15, Some(300 * MIN), 240, 310 * MIN);
        assert_eq!(o, Outcome::Suppressed);
        assert_eq!(
            evaluate(false, None, c, 0.15, None, 0, 0),
            (false, Outcome::NoData)
        );
    }

    #[test]
    fn conditions_and_metrics_are_validated() {
        assert!(Condition::parse("condition", "less_than")
            .unwrap()
            .holds(0.8, 0.85));
        assert!(Condition::parse("condition", "above")
            .unwrap_err()
            .to_string()
            .starts_with("condition: unknown condition"));
        assert!(validate_metric("metric", "data_drift_score").is_ok());
        assert!(validate_metric("metric", "vibes")
            .unwrap_err()
            .to_string()
            .starts_with("metric: unknown metric `vibes`"));
    }
}
