//! Deployment strategies and the rules that move a rollout forward: which model gets which share of
//! traffic, when a canary advances or rolls back, when a blue-green switch is confirmed or undone, and
//! when a shadow comparison is complete. Pure decisions from observations the server measures.

use crate::clock::Timestamp;
use crate::error::{DomainError, Result};
use crate::registry::Task;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    #[serde(rename = "direct")]
    Direct,
    #[serde(rename = "canary")]
    Canary,
    #[serde(rename = "blue-green")]
    BlueGreen,
    #[serde(rename = "shadow")]
    Shadow,
}

impl Strategy {
    pub fn parse(field: &str, s: &str) -> Result<Strategy> {
        Ok(match s {
            "direct" => Strategy::Direct,
            "canary" => Strategy::Canary,
            "blue-green" | "blue_green" | "bluegreen" => Strategy::BlueGreen,
            "shadow" => Strategy::Shadow,
            other => {
                return Err(DomainError::invalid(
                    field,
                    format!("unknown strategy `{other}`; use direct, canary, blue-green or shadow"),
                ))
            }
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Direct => "direct",
            Strategy::Canary => "canary",
            Strategy::BlueGreen => "blue-green",
            Strategy::Shadow => "shadow",
        }
    }
}

/// A quality metric a rollout can be gated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum QualityMetric {
    Auc,
    Accuracy,
    Precision,
    Recall,
    F1,
    LogLoss,
    Rmse,
    Mae,
    R2,
}

impl QualityMetric {
    pub fn parse(field: &str, s: &str) -> Result<QualityMetric> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auc" | "roc_auc" => QualityMetric::Auc,
            "accuracy" => QualityMetric::Accuracy,
            "precision" => QualityMetric::Precision,
            "recall" => QualityMetric::Recall,
            "f1" => QualityMetric::F1,
            "log_loss" | "logloss" => QualityMetric::LogLoss,
            "rmse" => QualityMetric::Rmse,
            "mae" => QualityMetric::Mae,
            "r2" => QualityMetric::R2,
            other => {
                return Err(DomainError::invalid(
                    field,
                    format!("unknown metric `{other}`; use auc, accuracy, precision, recall, f1, log_loss, rmse, mae or r2"),
                ))
            }
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            QualityMetric::Auc => "auc",
            QualityMetric::Accuracy => "accuracy",
            QualityMetric::Precision => "precision",
            QualityMetric::Recall => "recall",
            QualityMetric::F1 => "f1",
            QualityMetric::LogLoss => "log_loss",
            QualityMetric::Rmse => "rmse",
            QualityMetric::Mae => "mae",
            QualityMetric::R2 => "r2",
        }
    }
    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            QualityMetric::LogLoss | QualityMetric::Rmse | QualityMetric::Mae
        )
    }
    pub fn for_classification(self) -> bool {
        !matches!(
            self,
            QualityMetric::Rmse | QualityMetric::Mae | QualityMetric::R2
        )
    }
    /// Refuses a metric of the other kind of task; `field` names it in the error.
    pub fn require_task(self, field: &str, task: Task) -> Result<()> {
        if self.for_classification() != task.is_classification() {
            return Err(DomainError::invalid(
                field,
                format!(
                    "`{}` does not apply to a {} deployment",
                    self.as_str(),
                    task.as_str()
                ),
            ));
        }
        Ok(())
    }
    /// The default gate: AUC for classification, RMSE for regression.
    pub fn default_for(task: Task) -> QualityMetric {
        if task.is_classification() {
            QualityMetric::Auc
        } else {
            QualityMetric::Rmse
        }
    }

    /// How much worse `candidate` is than `baseline`, relative to the baseline (0.03 = 3% worse;
    /// negative when better).
    pub fn relative_drop(self, baseline: f64, candidate: f64) -> f64 {
        let scale = baseline.abs().max(1e-12);
        if self.higher_is_better() {
            (baseline - candidate) / scale
        } else {
            (candidate - baseline) / scale
        }
    }
}

/// Strategy settings, with the defaults users get when they leave a field out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyConfig {
    pub traffic_percentage: f64,
    pub promotion_steps: Vec<f64>,
    pub auto_rollback: bool,
    pub rollback_threshold: f64,
    pub metric: Option<QualityMetric>,
    pub min_samples_per_step: u64,
    pub step_duration_minutes: u64,
    pub rollback_window_minutes: u64,
    pub comparison_window_days: f64,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        StrategyConfig {
            traffic_percentage: 10.0,
            promotion_steps: vec![10.0, 25.0, 50.0, 100.0],
            auto_rollback: true,
            rollback_threshold: 0.03,
            metric: None,
            min_samples_per_step: 100,
            step_duration_minutes: 60,
            rollback_window_minutes: 30,
            comparison_window_days: 7.0,
        }
    }
}

impl StrategyConfig {
    /// Checks the settings, naming the field at fault. A canary's steps must rise and end at 100;
    /// a `traffic_percentage` not among the steps becomes the first step.
    pub fn normalise(mut self, task: Task) -> Result<StrategyConfig> {
        let pct = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 100.0 {
                Ok(())
            } else {
                Err(DomainError::invalid(
                    field,
                    format!("{v} is not a percentage in (0, 100]"),
                ))
            }
        };
        pct("traffic_percentage", self.traffic_percentage)?;
        if self.promotion_steps.is_empty() {
            return Err(DomainError::invalid(
                "promotion_steps",
                "give at least one step, ending at 100",
            ));
        }
        for (i, s) in self.promotion_steps.iter().enumerate() {
            pct(&format!("promotion_steps[{i}]"), *s)?;
        }
        if self.promotion_steps.windows(2).any(|w| w[1] <= w[0]) {
            return Err(DomainError::invalid(
                "promotion_steps",
                "steps must increase",
            ));
        }
        if *self.promotion_steps.last().unwrap_or(&0.0) != 100.0 {
            return Err(DomainError::invalid(
                "promotion_steps",
                "the last step must be 100",
            ));
        }
        if self.traffic_percentage < self.promotion_steps[0] {
            self.promotion_steps.insert(0, self.traffic_percentage);
        } else if !self.promotion_steps.contains(&self.traffic_percentage) {
            return Err(DomainError::invalid(
                "traffic_percentage",
                "must be one of promotion_steps or below the first step",
            ));
        }
        if !(self.rollback_threshold.is_finite()
            && self.rollback_threshold >= 0.0
            && self.rollback_threshold < 1.0)
        {
            return Err(DomainError::invalid(
                "rollback_threshold",
                "a relative drop in [0, 1), e.g. 0.03 for 3%",
            ));
        }
        if let Some(m) = self.metric {
            m.require_task("metric", task)?;
        }
        if self.min_samples_per_step == 0 {
            return Err(DomainError::invalid(
                "min_samples_per_step",
                "must be at least 1",
            ));
        }
        if !(self.comparison_window_days.is_finite() && self.comparison_window_days > 0.0) {
            return Err(DomainError::invalid(
                "comparison_window_days",
                "must be positive",
            ));
        }
        Ok(self)
    }

    pub fn gate_metric(&self, task: Task) -> QualityMetric {
        self.metric.unwrap_or(QualityMetric::default_for(task))
    }

    /// The step whose share is `traffic_percentage`.
    pub fn first_step(&self) -> usize {
        self.promotion_steps
            .iter()
            .position(|s| *s == self.traffic_percentage)
            .unwrap_or(0)
    }
}

/// Where a rollout is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Canary at `promotion_steps[step]` percent since `step_started_at`.
    Canary {
        step: usize,
        percentage: f64,
        step_started_at: Timestamp,
    },
    /// Green serves everything since `switched_at`; blue stays ready until the window ends.
    BlueGreen { switched_at: Timestamp },
    /// The candidate sees a copy of every request since `started_at`; `compared` once the window ended.
    Shadow {
        started_at: Timestamp,
        compared: bool,
    },
}

/// A rollout in progress on a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub strategy: Strategy,
    pub candidate_model_id: String,
    pub started_at: Timestamp,
    pub paused: bool,
    pub phase: Phase,
}

/// Which model answers which share of requests, plus an optional shadow.
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    /// (model id, variant name, weight in percent); weights add up to 100.
    pub variants: Vec<(String, &'static str, f64)>,
    pub shadow: Option<String>,
}

/// Traffic for a deployment serving `serving` with an optional rollout.
pub fn routing(serving: Option<&str>, rollout: Option<&Rollout>) -> Routing {
    let base = |w: f64| serving.map(|m| (m.to_string(), "baseline", w));
    match rollout {
        None => Routing {
            variants: base(100.0).into_iter().collect(),
            shadow: None,
        },
        Some(r) => match &r.phase {
            Phase::Canary { percentage, .. } => {
                let mut v: Vec<_> = base(100.0 - percentage)
                    .into_iter()
                    .filter(|x| x.2 > 0.0)
                    .collect();
                v.push((
                    r.candidate_model_id.clone(),
                    "canary",
                    if serving.is_some() {
                        *percentage
                    } else {
                        100.0
                    },
                ));
                Routing {
                    variants: v,
                    shadow: None,
                }
            }
            Phase::BlueGreen { .. } => Routing {
                variants: vec![(r.candidate_model_id.clone(), "green", 100.0)],
                shadow: None,
            },
            Phase::Shadow { .. } => Routing {
                variants: base(100.0).into_iter().collect(),
                shadow: Some(r.candidate_model_id.clone()),
            },
        },
    }
}

/// What one variant did over an observation window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub requests: u64,
    pub errors: u64,
    pub labelled: u64,
    /// The gate metric on labelled predictions, when computable.
    pub metric: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

impl Observation {
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// What a controller should do now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Hold { reason: String },
    Advance { step: usize, percentage: f64 },
    Promote { reason: String },
    Rollback { reason: String },
}

/// Whether the candidate's error rate is clearly above the baseline's: at least 5 errors and a
/// one-sided two-proportion z-test at the 1% level.
pub fn errors_clearly_worse(baseline: &Observation, candidate: &Observation) -> bool {
    if candidate.errors < 5 || candidate.requests == 0 {
        return false;
    }
    let (pb, pc) = (baseline.error_rate(), candidate.error_rate());
    if pc <= pb {
        return false;
    }
    let (nb, nc) = (baseline.requests.max(1) as f64, candidate.requests as f64);
    let pooled = (baseline.errors + candidate.errors) as f64 / (nb + nc);
    let se = (pooled * (1.0 - pooled) * (1.0 / nb + 1.0 / nc)).sqrt();
    if se == 0.0 {
        return true;
    }
    coreplex_stats::special::norm_sf((pc - pb) / se) < 0.01
}

fn quality_verdict(
    cfg: &StrategyConfig,
    metric: QualityMetric,
    baseline: &Observation,
    candidate: &Observation,
) -> Option<std::result::Result<f64, String>> {
    if baseline.labelled < cfg.min_samples_per_step || candidate.labelled < cfg.min_samples_per_step
    {
        return None;
    }
    let (Some(b), Some(c)) = (baseline.metric, candidate.metric) else {
        return None;
    };
    let drop = metric.relative_drop(b, c);
    if drop > cfg.rollback_threshold {
        Some(Err(format!(
            "{} {:.4} is {:.1}% worse than the baseline's {:.4} (threshold {:.1}%)",
            metric.as_str(),
            c,
            drop * 100.0,
            b,
            cfg.rollback_threshold * 100.0
        )))
    } else {
        Some(Ok(drop))
    }
}

/// The canary rule: roll back on a quality drop beyond the threshold or clearly more errors; advance
/// when the step has lasted its time and both variants have enough labelled samples and the canary is
/// no worse than allowed; promote after the last step.
pub fn canary_decision(
    cfg: &StrategyConfig,
    metric: QualityMetric,
    step: usize,
    step_started_at: Timestamp,
    baseline: &Observation,
    canary: &Observation,
    now: Timestamp,
) -> Decision {
    if cfg.auto_rollback && errors_clearly_worse(baseline, canary) {
        return Decision::Rollback {
            reason: format!(
                "error rate {:.2}% is clearly above the baseline's {:.2}%",
                canary.error_rate() * 100.0,
                baseline.error_rate() * 100.0
            ),
        };
    }
    let verdict = quality_verdict(cfg, metric, baseline, canary);
    if let Some(Err(reason)) = &verdict {
        if cfg.auto_rollback {
            return Decision::Rollback {
                reason: reason.clone(),
            };
        }
        return Decision::Hold {
            reason: format!("{reason}; automatic rollback is off"),
        };
    }
    let due = step_started_at + cfg.step_duration_minutes as i64 * 60_000;
    if now < due {
        return Decision::Hold {
            reason: format!("step runs until {}", crate::clock::to_rfc3339(due)),
        };
    }
    if verdict.is_none() {
        return Decision::Hold {
            reason: format!(
                "waiting for {} labelled predictions per variant (baseline {}, canary {})",
                cfg.min_samples_per_step, baseline.labelled, canary.labelled
            ),
        };
    }
    if step + 1 >= cfg.promotion_steps.len() {
        Decision::Promote {
            reason: format!(
                "{} held within the threshold at every step",
                metric.as_str()
            ),
        }
    } else {
        Decision::Advance {
            step: step + 1,
            percentage: cfg.promotion_steps[step + 1],
        }
    }
}

/// The blue-green rule: during the window, roll back when green errs clearly more than blue did, is
/// much slower (p95 over twice blue's), or its quality drops beyond the threshold; after the window,
/// confirm green and release blue.
pub fn blue_green_decision(
    cfg: &StrategyConfig,
    metric: QualityMetric,
    switched_at: Timestamp,
    blue: &Observation,
    green: &Observation,
    now: Timestamp,
) -> Decision {
    if cfg.auto_rollback {
        if errors_clearly_worse(blue, green) {
            return Decision::Rollback {
                reason: format!(
                    "green's error rate {:.2}% is clearly above blue's {:.2}%",
                    green.error_rate() * 100.0,
                    blue.error_rate() * 100.0
                ),
            };
        }
        if let (Some(b), Some(g)) = (blue.latency_p95_ms, green.latency_p95_ms) {
            if green.requests >= cfg.min_samples_per_step && g > 2.0 * b.max(1.0) {
                return Decision::Rollback {
                    reason: format!("green's p95 latency {g:.1} ms is over twice blue's {b:.1} ms"),
                };
            }
        }
        if let Some(Err(reason)) = quality_verdict(cfg, metric, blue, green) {
            return Decision::Rollback {
                reason: format!("green's {reason}"),
            };
        }
    }
    let end = switched_at + cfg.rollback_window_minutes as i64 * 60_000;
    if now >= end {
        Decision::Promote {
            reason: format!(
                "no degradation in the {} minute window",
                cfg.rollback_window_minutes
            ),
        }
    } else {
        Decision::Hold {
            reason: format!("watching green until {}", crate::clock::to_rfc3339(end)),
        }
    }
}

/// Whether a shadow comparison started at `started_at` has covered its window.
pub fn shadow_window_over(cfg: &StrategyConfig, started_at: Timestamp, now: Timestamp) -> bool {
    now >= started_at + (cfg.comparison_window_days * 86_400_000.0) as i64
}

/// Stable assignment of an entity to a bucket in [0, 100): the same entity always lands in the same
/// bucket, on every server and across restarts (FNV-1a; no process-specific seed).
pub fn bucket(key: &str) -> f64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    // Mix the high bits down so short keys spread evenly.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51afd7ed558ccd);
    h ^= h >> 33;
    (h % 10_000) as f64 / 100.0
}

/// Picks a variant for a point in [0, 100) given weights that add up to 100.
pub fn pick(point: f64, weights: &[f64]) -> usize {
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if point < acc {
            return i;
        }
    }
    weights.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> StrategyConfig {
        StrategyConfig {
            min_samples_per_step: 50,
            step_duration_minutes: 60,
            ..Default::default()
        }
    }

    fn obs(labelled: u64, metric: f64) -> Observation {
        Observation {
            requests: labelled,
            errors: 0,
            labelled,
            metric: Some(metric),
            latency_p95_ms: Some(2.0),
        }
    }

    #[test]
    fn steps_are_validated_and_traffic_percentage_becomes_the_first_step() {
        let c = StrategyConfig {
            traffic_percentage: 5.0,
            promotion_steps: vec![5.0, 25.0, 50.0, 100.0],
            ..cfg()
        };
        let c = c.normalise(Task::BinaryClassification).unwrap();
        assert_eq!(c.first_step(), 0);
        let c2 = StrategyConfig {
            traffic_percentage: 2.0,
            promotion_steps: vec![10.0, 100.0],
            ..cfg()
        }
        .normalise(Task::BinaryClassification)
        .unwrap();
        assert_eq!(c2.promotion_steps, vec![2.0, 10.0, 100.0]);
        let bad = StrategyConfig {
            promotion_steps: vec![10.0, 50.0],
            ..cfg()
        }
        .normalise(Task::Regression)
        .unwrap_err();
        assert_eq!(
            bad.to_string(),
            "promotion_steps: the last step must be 100"
        );
        let bad = StrategyConfig {
            promotion_steps: vec![50.0, 10.0, 100.0],
            ..cfg()
        }
        .normalise(Task::Regression)
        .unwrap_err();
        assert_eq!(bad.to_string(), "promotion_steps: steps must increase");
        let bad = StrategyConfig {
            metric: Some(QualityMetric::Auc),
            ..cfg()
        }
        .normalise(Task::Regression)
        .unwrap_err();
        assert!(bad.to_string().starts_with("metric: `auc` does not apply"));
        let bad = StrategyConfig {
            traffic_percentage: 150.0,
            ..cfg()
        }
        .normalise(Task::Regression)
        .unwrap_err();
        assert!(bad.to_string().starts_with("traffic_percentage: "));
    }

    #[test]
    fn canary_waits_for_time_and_samples_then_advances_and_promotes() {
        let c = cfg();
        let m = QualityMetric::Auc;
        let d = canary_decision(&c, m, 0, 0, &obs(100, 0.90), &obs(100, 0.90), 30 * 60_000);
        assert!(matches!(d, Decision::Hold { .. }), "{d:?}");
        let d = canary_decision(&c, m, 0, 0, &obs(100, 0.90), &obs(10, 0.90), 61 * 60_000);
        assert!(
            matches!(d, Decision::Hold { ref reason } if reason.contains("waiting for 50")),
            "{d:?}"
        );
        let d = canary_decision(&c, m, 0, 0, &obs(100, 0.90), &obs(60, 0.885), 61 * 60_000);
        assert_eq!(
            d,
            Decision::Advance {
                step: 1,
                percentage: 25.0
            }
        );
        let d = canary_decision(&c, m, 3, 0, &obs(100, 0.90), &obs(60, 0.91), 61 * 60_000);
        assert!(matches!(d, Decision::Promote { .. }));
    }

    #[test]
    fn canary_worse_than_threshold_rolls_back_at_once_and_rmse_counts_upwards() {
        let c = cfg();
        let d = canary_decision(
            &c,
            QualityMetric::Auc,
            1,
            0,
            &obs(60, 0.90),
            &obs(60, 0.85),
            1,
        );
        assert!(
            matches!(d, Decision::Rollback { ref reason } if reason.contains("5.6% worse")),
            "{d:?}"
        );
        let d = canary_decision(
            &c,
            QualityMetric::Rmse,
            1,
            0,
            &obs(60, 1.0),
            &obs(60, 1.05),
            1,
        );
        assert!(matches!(d, Decision::Rollback { .. }));
        let d = canary_decision(
            &c,
            QualityMetric::Rmse,
            1,
            0,
            &obs(60, 1.0),
            &obs(60, 0.95),
            61 * 60_000,
        );
        assert!(matches!(d, Decision::Advance { .. }));
        let off = StrategyConfig {
            auto_rollback: false,
            ..c
        };
        let d = canary_decision(
            &off,
            QualityMetric::Auc,
            1,
            0,
            &obs(60, 0.90),
            &obs(60, 0.80),
            1,
        );
        assert!(matches!(d, Decision::Hold { .. }));
    }

    #[test]
    fn clearly_more_errors_rolls_back() {
        let base = Observation {
            requests: 1000,
            errors: 2,
            ..Default::default()
        };
        let bad = Observation {
            requests: 100,
            errors: 10,
            ..Default::default()
        };
        let noise = Observation {
            requests: 100,
            errors: 1,
            ..Default::default()
        };
        assert!(errors_clearly_worse(&base, &bad));
        assert!(!errors_clearly_worse(&base, &noise));
        let d = canary_decision(&cfg(), QualityMetric::Auc, 0, 0, &base, &bad, 1);
        assert!(matches!(d, Decision::Rollback { .. }));
    }

    #[test]
    fn blue_green_rolls_back_inside_the_window_and_confirms_after_it() {
        let c = cfg();
        let m = QualityMetric::Auc;
        let d = blue_green_decision(&c, m, 0, &obs(100, 0.9), &obs(100, 0.8), 10 * 60_000);
        assert!(matches!(d, Decision::Rollback { .. }));
        let d = blue_green_decision(&c, m, 0, &obs(100, 0.9), &obs(100, 0.9), 10 * 60_000);
        assert!(matches!(d, Decision::Hold { .. }));
        let d = blue_green_decision(&c, m, 0, &obs(100, 0.9), &obs(100, 0.9), 31 * 60_000);
        assert!(matches!(d, Decision::Promote { .. }));
    }

    #[test]
    fn routing_follows_the_phase() {
        let r = Rollout {
            strategy: Strategy::Canary,
            candidate_model_id: "new".into(),
            started_at: 0,
            paused: false,
            phase: Phase::Canary {
                step: 0,
                percentage: 5.0,
                step_started_at: 0,
            },
        };
        let rt = routing(Some("old"), Some(&r));
        assert_eq!(
            rt.variants,
            vec![
                ("old".into(), "baseline", 95.0),
                ("new".into(), "canary", 5.0)
            ]
        );
        let s = Rollout {
            phase: Phase::Shadow {
                started_at: 0,
                compared: false,
            },
            ..r.clone()
        };
        assert_eq!(
            routing(Some("old"), Some(&s)).shadow.as_deref(),
            Some("new")
        );
        assert_eq!(routing(Some("old"), None).variants.len(), 1);
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket("customer-42"), bucket("customer-42"));
        let below_10 = (0..10_000)
            .filter(|i| bucket(&format!("e{i}")) < 10.0)
            .count();
        assert!((800..1200).contains(&below_10), "{below_10}");
        assert_eq!(pick(4.99, &[5.0, 95.0]), 0);
        assert_eq!(pick(5.0, &[5.0, 95.0]), 1);
    }
}
