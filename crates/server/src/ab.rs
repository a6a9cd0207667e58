//! A/B tests inside the serving layer: weighted, sticky assignment of requests to variants, success
//! metrics from labels or outcomes, and the statistics that say which variant is better.
//!
//! How a test runs: while a test is running on a deployment (and no rollout is), the deployment's
//! serving entry routes requests by the test's weights — by a hash of the test id and the request's
//! `entity_id` when there is one, so an entity keeps its variant across requests, restarts and
//! servers, and at random otherwise. Predictions are logged with `variant = "ab:<name>"`, and the
//! prediction log writer also records each routed request for the test's assignment counts (off the
//! response path). Results are computed when asked, from the log's labels or the posted outcomes, by
//! [`analyze`], a pure function over the observations in the order they arrived.
//!
//! The statistics are `coreplex_stats::ab`'s: the pooled two-proportion z-test or Welch's t-test
//! against the control (the first variant), sample size from power, the sample-ratio-mismatch check,
//! and in sequential mode the mSPRT's always-valid p-value and interval, folded over every prefix of
//! the data so that looking at any time, however often, keeps the false-positive rate at `alpha`.

use crate::error::{ApiError, ApiResult};
use crate::monitoring::norm_label;
use crate::serving;
use crate::state::AppState;
use coreplex_domain::registry::{ModelStatus, Task};
use coreplex_stats::ab as st;
use coreplex_store::{
    AbAssignmentCount, AbOutcome, AbStop, AbTest, Ctx, Deployment, PromotionChange,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use utoipa::ToSchema;

/// The prefix of A/B variants in the prediction log and in predict answers.
pub const LOG_PREFIX: &str = "ab:";

/// A test's variant as the prediction log names it.
pub fn log_variant(name: &str) -> String {
    format!("{LOG_PREFIX}{name}")
}

/// Below this many observations per variant a plug-in variance says little about the noise, so the
/// sequential test does not look yet (a 0/3 against 3/3 split has zero estimated variance and would
/// otherwise read as certainty).
pub const MIN_SEQUENTIAL_N: u64 = 10;

/// What a test measures per unit: a 0/1 success or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    Proportion,
    Continuous,
}

/// Where the metric's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricSource {
    /// Delayed labels on the prediction log: correctness (proportion) or absolute error (continuous).
    Labels,
    /// Business outcomes posted to the test by request id or entity id.
    Outcomes,
}

/// A test's success metric, as stored with the test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Metric {
    #[serde(rename = "type")]
    pub kind: MetricType,
    pub source: MetricSource,
    /// A name for reports, e.g. `conversion`, `revenue`, `accuracy`, `absolute_error`.
    pub name: String,
    pub higher_is_better: bool,
    /// Proportions: the control's expected rate, to plan the sample size before data arrives.
    pub baseline_rate: Option<f64>,
    /// Continuous metrics: the per-unit standard deviation, for the same purpose.
    pub sd: Option<f64>,
}

/// The metric as a create request gives it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricRequest {
    /// `proportion` or `continuous`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `labels` or `outcomes` (default `outcomes`).
    pub source: Option<String>,
    pub name: Option<String>,
    /// Default true, except for the absolute error of labels (lower is better).
    pub higher_is_better: Option<bool>,
    pub baseline_rate: Option<f64>,
    pub sd: Option<f64>,
}

impl MetricRequest {
    /// Checks the metric against the deployment's task, naming the field at fault.
    pub fn parse(self, task: Task) -> ApiResult<Metric> {
        let kind = match self.kind.as_str() {
            "proportion" => MetricType::Proportion,
            "continuous" => MetricType::Continuous,
            other => {
                return Err(ApiError::invalid(
                    "metric.type",
                    format!("unknown metric type `{other}`; use proportion or continuous"),
                ))
            }
        };
        let source = match self.source.as_deref().unwrap_or("outcomes") {
            "labels" => MetricSource::Labels,
            "outcomes" => MetricSource::Outcomes,
            other => {
                return Err(ApiError::invalid(
                    "metric.source",
                    format!("unknown source `{other}`; use labels or outcomes"),
                ))
            }
        };
        if source == MetricSource::Labels {
            match (kind, task.is_classification()) {
                (MetricType::Proportion, false) => {
                    return Err(ApiError::invalid(
                        "metric.type",
                        "labels of a regression deployment give a continuous metric (absolute error); use continuous",
                    ))
                }
                (MetricType::Continuous, true) => {
                    return Err(ApiError::invalid(
                        "metric.type",
                        "labels of a classification deployment give a proportion (correctness); use proportion",
                    ))
                }
                _ => {}
            }
        }
        if let Some(b) = self.baseline_rate {
            if kind != MetricType::Proportion {
                return Err(ApiError::invalid(
                    "metric.baseline_rate",
                    "only proportions have a baseline rate; give `sd` for a continuous metric",
                ));
            }
            if !(b > 0.0 && b < 1.0) {
                return Err(ApiError::invalid(
                    "metric.baseline_rate",
                    format!("a rate strictly between 0 and 1, got {b}"),
                ));
            }
        }
        if let Some(sd) = self.sd {
            if kind != MetricType::Continuous {
                return Err(ApiError::invalid(
                    "metric.sd",
                    "only continuous metrics have a standard deviation; give `baseline_rate` for a proportion",
                ));
            }
            if !(sd.is_finite() && sd > 0.0) {
                return Err(ApiError::invalid(
                    "metric.sd",
                    format!("a positive number, got {sd}"),
                ));
            }
        }
        let default_name = match (source, kind) {
            (MetricSource::Labels, MetricType::Proportion) => "accuracy",
            (MetricSource::Labels, MetricType::Continuous) => "absolute_error",
            (MetricSource::Outcomes, MetricType::Proportion) => "conversion",
            (MetricSource::Outcomes, MetricType::Continuous) => "value",
        };
        let name = self
            .name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| default_name.into());
        Ok(Metric {
            kind,
            source,
            name,
            higher_is_better: self
                .higher_is_better
                .unwrap_or(!(source == MetricSource::Labels && kind == MetricType::Continuous)),
            baseline_rate: self.baseline_rate,
            sd: self.sd,
        })
    }
}

/// What a test was planned for.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub metric: Metric,
    pub alpha: f64,
    pub power: f64,
    /// Absolute, in the metric's units (a rate difference for proportions).
    pub mde: f64,
    pub sequential: bool,
}

impl Plan {
    pub fn of(t: &AbTest) -> ApiResult<Plan> {
        Ok(Plan {
            metric: serde_json::from_value(t.metric.clone()).map_err(ApiError::internal)?,
            alpha: t.alpha,
            power: t.power,
            mde: t.minimum_detectable_effect,
            sequential: t.sequential,
        })
    }
}

/// Checks traffic weights and turns them into percentages adding up to 100.
pub fn normalise_weights(weights: &[f64]) -> ApiResult<Vec<f64>> {
    for (i, w) in weights.iter().enumerate() {
        if !(w.is_finite() && *w > 0.0) {
            return Err(ApiError::invalid(
                &format!("variants[{i}].traffic"),
                format!("a positive share of traffic, got {w}"),
            ));
        }
    }
    let total: f64 = weights.iter().sum();
    Ok(weights.iter().map(|w| w * 100.0 / total).collect())
}

/// A variant name usable in the prediction log and in metrics labels.
pub fn check_variant_name(field: &str, name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("`{name}` is not a variant name: 1 to 64 letters, digits, `_`, `-` or `.`"),
        ))
    }
}

/// Default names: `control`, then `treatment` (one) or `treatment_1`, `treatment_2`, ….
pub fn default_variant_name(index: usize, count: usize) -> String {
    match (index, count) {
        (0, _) => "control".into(),
        (_, 2) => "treatment".into(),
        (i, _) => format!("treatment_{i}"),
    }
}

/// One variant with what it was assigned, for [`analyze`].
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    pub name: String,
    pub model_id: String,
    /// Percent of traffic.
    pub traffic: f64,
    /// Randomisation units assigned: distinct entities plus requests without an entity.
    pub assigned: u64,
}

/// Results of one variant against the control.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct VariantResult {
    /// The variant's name; predictions it answered carry `variant = "ab:<name>"`.
    pub name: String,
    pub model_id: String,
    pub traffic: f64,
    pub is_control: bool,
    /// Randomisation units assigned (distinct entities plus requests without an entity).
    pub assigned: u64,
    /// Units with a value of the metric.
    pub n: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sd: Option<f64>,
    /// The rate (proportion) or mean (continuous).
    pub estimate: Option<f64>,
    /// Treatment minus control (absent for the control).
    pub difference: Option<f64>,
    pub relative_lift: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Fixed-horizon p-value, or the always-valid one in sequential mode.
    pub p_value: Option<f64>,
    pub significant: bool,
    /// z (proportions) or t (Welch).
    pub statistic: Option<f64>,
    /// Welch's degrees of freedom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub df: Option<f64>,
    /// In sequential mode, the fixed-horizon test at this moment, for reference only: deciding on it
    /// after repeated looks inflates false positives.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fixed_horizon: Option<serde_json::Value>,
    /// `n / required_sample_size_per_variant`, capped at 1.
    pub progress: Option<f64>,
    /// This variant against the control: keep_running, ship or stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
}

/// Sample-ratio-mismatch check of the assignment counts against the weights.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SrmView {
    pub chi2: f64,
    pub p_value: f64,
    /// p < 0.001: assignment does not follow the weights and the results cannot be trusted.
    pub mismatch: bool,
}

/// What [`analyze`] concludes.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Analysis {
    #[schema(value_type = Object)]
    pub metric: Metric,
    /// The control's model id (the first variant).
    pub control: String,
    pub control_variant: String,
    pub alpha: f64,
    /// `alpha` divided among the comparisons with the control (Bonferroni) when there are several.
    pub alpha_per_comparison: f64,
    pub power: f64,
    pub minimum_detectable_effect: f64,
    pub sequential: bool,
    /// The mixing standard deviation of the sequential test (the minimum detectable effect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequential_tau: Option<f64>,
    /// Every variant, the control first.
    pub variants: Vec<VariantResult>,
    pub srm_p_value: Option<f64>,
    pub srm: Option<SrmView>,
    /// From `alpha`, `power`, the minimum detectable effect and the baseline (configured, or the
    /// control's observed rate or standard deviation); absent until a baseline is known.
    pub required_sample_size_per_variant: Option<u64>,
    /// `configured` or `observed`.
    pub sample_size_basis: Option<String>,
    /// The smallest variant's `n` over the required sample size, capped at 1.
    pub progress: Option<f64>,
    pub sample_size_reached: bool,
    /// `keep_running`, `ship` (the recommended variant is better than the control), `no_difference`
    /// (none detected at the planned sample size: keep the control) or `stop` (sample ratio mismatch,
    /// or the variants are worse than the control).
    pub recommendation: String,
    pub recommendation_reason: String,
    pub recommended_model_id: Option<String>,
    pub recommended_variant: Option<String>,
}

/// The pooled two-proportion z-test of `coreplex_stats`, answered directly when both rates are equal:
/// then z = 0 and p = 1 (as statsmodels says), and the statistics crate's normal tail is not asked
/// for its value at exactly 0, where its series does not terminate.
pub fn proportion_test(
    control: st::Proportion,
    treatment: st::Proportion,
    alpha: f64,
) -> coreplex_stats::Result<st::ProportionTest> {
    let equal = control.trials > 0
        && treatment.trials > 0
        && control.successes <= control.trials
        && treatment.successes <= treatment.trials
        && control.successes as u128 * treatment.trials as u128
            == treatment.successes as u128 * control.trials as u128;
    if !(equal && alpha > 0.0 && alpha < 1.0) {
        return st::two_proportion_ztest(control, treatment, alpha);
    }
    let p = control.rate();
    let var = p * (1.0 - p);
    let se = (var / treatment.trials as f64 + var / control.trials as f64).sqrt();
    let half = coreplex_stats::special::norm_isf(alpha / 2.0) * se;
    Ok(st::ProportionTest {
        control_rate: p,
        treatment_rate: p,
        z: 0.0,
        p_value: 1.0,
        difference: 0.0,
        relative_lift: (p > 0.0).then_some(0.0),
        ci_low: -half,
        ci_high: half,
        alpha,
        significant: false,
    })
}

/// Running mean and variance (Welford), for the sequential looks.
#[derive(Debug, Clone, Copy, Default)]
struct Running {
    n: u64,
    mean: f64,
    m2: f64,
    successes: u64,
}

impl Running {
    fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        if x == 1.0 {
            self.successes += 1;
        }
    }
    fn sd(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).sqrt()
        }
    }
}

/// The always-valid test of `treatment` against the control over every prefix of the observations:
/// the running minimum of the mSPRT p-value and the intersection of its intervals.
fn sequential_over_prefixes(
    plan: &Plan,
    alpha: f64,
    treatment: usize,
    observations: &[(usize, f64)],
) -> st::SequentialMonitor {
    let mut c = Running::default();
    let mut t = Running::default();
    let mut monitor = st::SequentialMonitor::default();
    for &(arm, x) in observations {
        match arm {
            0 => c.push(x),
            a if a == treatment => t.push(x),
            _ => continue,
        }
        if c.n < MIN_SEQUENTIAL_N || t.n < MIN_SEQUENTIAL_N {
            continue;
        }
        let look = match plan.metric.kind {
            MetricType::Proportion => {
                let (pc, pt) = (
                    c.successes as f64 / c.n as f64,
                    t.successes as f64 / t.n as f64,
                );
                // No spread yet in either group: nothing to say about the noise.
                if pc * (1.0 - pc) + pt * (1.0 - pt) <= 0.0 {
                    continue;
                }
                st::sequential_proportions(
                    st::Proportion {
                        successes: c.successes,
                        trials: c.n,
                    },
                    st::Proportion {
                        successes: t.successes,
                        trials: t.n,
                    },
                    alpha,
                    Some(plan.mde),
                )
            }
            MetricType::Continuous => {
                if c.sd() <= 0.0 && t.sd() <= 0.0 {
                    continue;
                }
                st::sequential_means(
                    &st::MeanSummary {
                        mean: c.mean,
                        sd: c.sd(),
                        n: c.n,
                    },
                    &st::MeanSummary {
                        mean: t.mean,
                        sd: t.sd(),
                        n: t.n,
                    },
                    alpha,
                    Some(plan.mde),
                )
            }
        };
        if let Ok(look) = look {
            monitor.update(&look);
        }
    }
    monitor
}

/// The required sample size per variant and whether it came from the plan or from the control's data.
fn required_sample_size(plan: &Plan, alpha: f64, control: &[f64]) -> Option<(u64, &'static str)> {
    match plan.metric.kind {
        MetricType::Proportion => {
            let (baseline, basis) = match plan.metric.baseline_rate {
                Some(b) => (b, "configured"),
                None => {
                    if control.is_empty() {
                        return None;
                    }
                    let rate = control.iter().sum::<f64>() / control.len() as f64;
                    (rate, "observed")
                }
            };
            if !(baseline > 0.0 && baseline < 1.0) {
                return None;
            }
            // Near a rate of 1 the planned change is a drop; Cohen's h is the same size either way.
            let n = if baseline + plan.mde <= 1.0 {
                st::sample_size_proportion(baseline, plan.mde, alpha, plan.power)
            } else {
                st::sample_size_proportion(baseline - plan.mde, plan.mde, alpha, plan.power)
            };
            n.ok().map(|n| (n, basis))
        }
        MetricType::Continuous => {
            let (sd, basis) = match plan.metric.sd {
                Some(sd) => (sd, "configured"),
                None => (st::MeanSummary::from_sample(control).ok()?.sd, "observed"),
            };
            st::sample_size_mean(sd, plan.mde, alpha, plan.power)
                .ok()
                .map(|n| (n, basis))
        }
    }
}

fn fmt_p(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// Results of a test: every variant against the control (the first arm), the sample size and the
/// progress towards it, the SRM check and a recommendation. `observations` are (arm, value) in the
/// order the values arrived; proportions' values are 0 or 1.
pub fn analyze(plan: &Plan, arms: &[Arm], observations: &[(usize, f64)]) -> Analysis {
    let k = arms.len();
    let treatments = k.saturating_sub(1).max(1);
    let alpha = if treatments > 1 {
        plan.alpha / treatments as f64
    } else {
        plan.alpha
    };
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); k];
    for &(arm, x) in observations {
        if let Some(v) = values.get_mut(arm) {
            v.push(x);
        }
    }
    let required = required_sample_size(plan, alpha, &values[0]);
    let reached = required
        .map(|(n, _)| values.iter().all(|v| v.len() as u64 >= n))
        .unwrap_or(false);
    let srm = {
        let counts: Vec<u64> = arms.iter().map(|a| a.assigned).collect();
        let weights: Vec<f64> = arms.iter().map(|a| a.traffic).collect();
        st::srm_check(&counts, &weights, st::DEFAULT_SRM_THRESHOLD)
            .ok()
            .map(|s| SrmView {
                chi2: s.chi2,
                p_value: s.p_value,
                mismatch: s.mismatch,
            })
    };
    let hib = plan.metric.higher_is_better;
    let mut variants = Vec::with_capacity(k);
    let mut per_arm: Vec<Option<st::Recommendation>> = vec![None; k];
    for (i, arm) in arms.iter().enumerate() {
        let v = &values[i];
        let n = v.len() as u64;
        let mut r = VariantResult {
            name: arm.name.clone(),
            model_id: arm.model_id.clone(),
            traffic: arm.traffic,
            is_control: i == 0,
            assigned: arm.assigned,
            n,
            progress: required.map(|(req, _)| (n as f64 / req as f64).min(1.0)),
            ..Default::default()
        };
        match plan.metric.kind {
            MetricType::Proportion => {
                let s = v.iter().filter(|x| **x == 1.0).count() as u64;
                r.successes = Some(s);
                r.estimate = (n > 0).then(|| s as f64 / n as f64);
            }
            MetricType::Continuous => {
                if let Ok(m) = st::MeanSummary::from_sample(v) {
                    r.mean = Some(m.mean);
                    r.sd = Some(m.sd);
                } else if n == 1 {
                    r.mean = Some(v[0]);
                }
                r.estimate = r.mean;
            }
        }
        if i > 0 {
            let c = &values[0];
            // (difference, relative lift, ci, p, statistic, df) of the fixed-horizon test.
            let fixed = match plan.metric.kind {
                MetricType::Proportion if !c.is_empty() && n > 0 => {
                    let cs = c.iter().filter(|x| **x == 1.0).count() as u64;
                    proportion_test(
                        st::Proportion {
                            successes: cs,
                            trials: c.len() as u64,
                        },
                        st::Proportion {
                            successes: r.successes.unwrap_or(0),
                            trials: n,
                        },
                        alpha,
                    )
                    .ok()
                    .map(|t| {
                        (
                            t.difference,
                            t.relative_lift,
                            t.ci_low,
                            t.ci_high,
                            t.p_value,
                            t.z,
                            None,
                        )
                    })
                }
                MetricType::Continuous => st::welch_ttest_samples(c, v, alpha).ok().map(|t| {
                    (
                        t.difference,
                        t.relative_lift,
                        t.ci_low,
                        t.ci_high,
                        t.p_value,
                        t.t,
                        Some(t.df),
                    )
                }),
                _ => None,
            };
            if let Some((diff, lift, lo, hi, p, stat, df)) = fixed {
                r.difference = Some(diff);
                r.relative_lift = lift;
                r.statistic = Some(stat);
                r.df = df;
                if plan.sequential {
                    r.fixed_horizon = Some(serde_json::json!({
                        "p_value": p, "ci_low": lo, "ci_high": hi, "significant": p < alpha,
                    }));
                    let m = sequential_over_prefixes(plan, alpha, i, observations);
                    if m.looks > 0 {
                        r.p_value = Some(m.p_value);
                        r.ci_low = Some(m.ci_low);
                        r.ci_high = Some(m.ci_high);
                        r.significant = m.p_value < alpha;
                    } else {
                        r.p_value = Some(1.0);
                    }
                } else {
                    r.p_value = Some(p);
                    r.ci_low = Some(lo);
                    r.ci_high = Some(hi);
                    r.significant = p < alpha;
                }
            }
            // A fixed-horizon test decides at its planned sample size, not before.
            let decisive = r.significant && (plan.sequential || reached);
            let rec = st::recommend(decisive, r.difference.unwrap_or(0.0), hib, reached, None);
            per_arm[i] = Some(rec);
            r.recommendation = Some(
                match rec {
                    st::Recommendation::KeepRunning => "keep_running",
                    st::Recommendation::Ship => "ship",
                    st::Recommendation::Stop => "stop",
                }
                .into(),
            );
        }
        variants.push(r);
    }
    let control = &arms[0];
    let needed = required
        .map(|(n, _)| format!("{n} per variant"))
        .unwrap_or_else(|| "a sample size that needs a baseline (give metric.baseline_rate or metric.sd, or wait for the control's data)".into());
    let smallest = values.iter().map(|v| v.len()).min().unwrap_or(0);
    let (recommendation, reason, winner): (&str, String, Option<usize>) = if let Some(s) =
        srm.as_ref().filter(|s| s.mismatch)
    {
        (
            "stop",
            format!(
                "sample ratio mismatch (p = {}): assignment does not follow the traffic weights, so the results cannot be trusted; find the cause before deciding",
                fmt_p(s.p_value)
            ),
            None,
        )
    } else {
        let ships: Vec<usize> = (1..k)
            .filter(|i| per_arm[*i] == Some(st::Recommendation::Ship))
            .collect();
        let best = ships.iter().copied().max_by(|a, b| {
            let (ea, eb) = (
                variants[*a].estimate.unwrap_or(0.0),
                variants[*b].estimate.unwrap_or(0.0),
            );
            if hib {
                ea.total_cmp(&eb)
            } else {
                eb.total_cmp(&ea)
            }
        });
        if let Some(b) = best {
            let v = &variants[b];
            (
                "ship",
                format!(
                    "{} is significantly {} than the control on {} (difference {:+.4}, p = {})",
                    v.name,
                    if hib { "higher" } else { "lower" },
                    plan.metric.name,
                    v.difference.unwrap_or(0.0),
                    fmt_p(v.p_value.unwrap_or(1.0))
                ),
                Some(b),
            )
        } else if (1..k).all(|i| per_arm[i] == Some(st::Recommendation::Stop)) {
            let worse: Vec<&str> = (1..k)
                .filter(|i| variants[*i].significant)
                .map(|i| variants[i].name.as_str())
                .collect();
            if worse.is_empty() {
                (
                    "no_difference",
                    format!(
                        "no difference detected at the planned sample size ({needed}); keep the control ({})",
                        control.name
                    ),
                    Some(0),
                )
            } else {
                (
                    "stop",
                    format!(
                        "{} significantly worse than the control on {}; keep the control ({})",
                        if worse.len() == 1 {
                            format!("{} is", worse[0])
                        } else {
                            format!("{} are", worse.join(", "))
                        },
                        plan.metric.name,
                        control.name
                    ),
                    Some(0),
                )
            }
        } else if !plan.sequential && (1..k).any(|i| variants[i].significant) && !reached {
            (
                "keep_running",
                format!(
                    "a difference shows, but this fixed-horizon test decides at {needed} ({smallest} so far); deciding earlier inflates false positives (use sequential=true to monitor continuously)"
                ),
                None,
            )
        } else {
            (
                "keep_running",
                format!("not enough evidence yet: {smallest} units with a value in the smallest variant, planned {needed}"),
                None,
            )
        }
    };
    Analysis {
        metric: plan.metric.clone(),
        control: control.model_id.clone(),
        control_variant: control.name.clone(),
        alpha: plan.alpha,
        alpha_per_comparison: alpha,
        power: plan.power,
        minimum_detectable_effect: plan.mde,
        sequential: plan.sequential,
        sequential_tau: plan.sequential.then_some(plan.mde),
        srm_p_value: srm.as_ref().map(|s| s.p_value),
        srm,
        required_sample_size_per_variant: required.map(|(n, _)| n),
        sample_size_basis: required.map(|(_, b)| b.to_string()),
        progress: required.map(|(n, _)| (smallest as f64 / n as f64).min(1.0)),
        sample_size_reached: reached,
        recommendation: recommendation.into(),
        recommendation_reason: reason,
        recommended_model_id: winner.map(|w| arms[w].model_id.clone()),
        recommended_variant: winner.map(|w| arms[w].name.clone()),
        variants,
    }
}

/// Assignment counts of a test per variant, in the test's variant order.
pub async fn assignment_counts(state: &AppState, t: &AbTest) -> ApiResult<Vec<AbAssignmentCount>> {
    let counts = state.store.ab_assignment_counts(&t.id).await?;
    Ok(t.variants
        .iter()
        .map(|v| {
            counts
                .iter()
                .find(|c| c.variant == v.name)
                .cloned()
                .unwrap_or_else(|| AbAssignmentCount {
                    variant: v.name.clone(),
                    ..Default::default()
                })
        })
        .collect())
}

/// Gathers a test's data and analyses it.
pub async fn results(state: &AppState, t: &AbTest) -> ApiResult<Analysis> {
    let plan = Plan::of(t)?;
    // Predictions (and their assignments) still in the log queue count too.
    state.log.flush().await;
    let counts = assignment_counts(state, t).await?;
    let arms: Vec<Arm> = t
        .variants
        .iter()
        .zip(&counts)
        .map(|(v, c)| Arm {
            name: v.name.clone(),
            model_id: v.model_id.clone(),
            traffic: v.traffic,
            assigned: (c.entities + c.anonymous_requests).max(0) as u64,
        })
        .collect();
    let index: HashMap<&str, usize> = t
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.as_str(), i))
        .collect();
    let mut observations = Vec::new();
    match plan.metric.source {
        MetricSource::Outcomes => {
            for (variant, value) in state.store.ab_outcomes(&t.id).await? {
                if let Some(&i) = index.get(variant.as_str()) {
                    observations.push((i, value));
                }
            }
        }
        MetricSource::Labels => {
            let until = t.stopped_at.unwrap_or(state.now() + 1);
            for r in state
                .store
                .ab_labelled_predictions(&t.deployment_id, t.started_at, until)
                .await?
            {
                let Some(&i) = r
                    .variant
                    .strip_prefix(LOG_PREFIX)
                    .and_then(|n| index.get(n))
                else {
                    continue;
                };
                let value = match plan.metric.kind {
                    MetricType::Proportion => match (&r.predicted, &r.label) {
                        (Some(p), Some(l)) => (norm_label(p) == norm_label(l)) as u8 as f64,
                        _ => continue,
                    },
                    MetricType::Continuous => {
                        let truth = r
                            .label_value
                            .or_else(|| r.label.as_deref().and_then(|l| l.parse().ok()));
                        let pred = r.predicted.as_deref().and_then(|p| p.parse::<f64>().ok());
                        match (truth, pred) {
                            (Some(y), Some(p)) => (p - y).abs(),
                            _ => continue,
                        }
                    }
                };
                observations.push((i, value));
            }
        }
    }
    Ok(analyze(&plan, &arms, &observations))
}

/// One posted outcome.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequest {
    pub request_id: Option<String>,
    pub entity_id: Option<String>,
    /// A number; for a proportion 0/1 or true/false.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

/// What happened to a batch of outcomes.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeReport {
    pub accepted: usize,
    /// Request ids that no variant of this test answered.
    pub unknown_request_ids: Vec<String>,
    /// Entity ids this test never routed.
    pub unknown_entity_ids: Vec<String>,
}

pub const MAX_OUTCOMES: usize = 10_000;

/// Records business outcomes for the units a test routed, by request id or entity id.
pub async fn record_outcomes(
    state: &AppState,
    t: &AbTest,
    items: Vec<OutcomeRequest>,
) -> ApiResult<OutcomeReport> {
    let plan = Plan::of(t)?;
    if plan.metric.source == MetricSource::Labels {
        return Err(ApiError::conflict(format!(
            "A/B test {} measures {} from labels; post labels to /api/v1/deployments/{}/feedback instead",
            t.id, plan.metric.name, t.deployment_id
        )));
    }
    if items.is_empty() {
        return Err(ApiError::invalid(
            "outcomes",
            "give at least one {request_id or entity_id, value}",
        ));
    }
    if items.len() > MAX_OUTCOMES {
        return Err(ApiError::invalid(
            "outcomes",
            format!("at most {MAX_OUTCOMES} per request"),
        ));
    }
    let mut parsed: Vec<(bool, String, f64)> = Vec::with_capacity(items.len());
    for (i, o) in items.into_iter().enumerate() {
        let field = |f: &str| format!("outcomes[{i}].{f}");
        let value = match &o.value {
            serde_json::Value::Bool(b) => *b as u8 as f64,
            serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            _ => f64::NAN,
        };
        if !value.is_finite() {
            return Err(ApiError::invalid(
                &field("value"),
                format!("a number, got {}", o.value),
            ));
        }
        if plan.metric.kind == MetricType::Proportion && value != 0.0 && value != 1.0 {
            return Err(ApiError::invalid(
                &field("value"),
                format!(
                    "{} is a proportion: give 0 or 1 (or false/true), got {}",
                    plan.metric.name, o.value
                ),
            ));
        }
        match (o.request_id, o.entity_id) {
            (Some(r), None) if !r.is_empty() => parsed.push((true, r, value)),
            (None, Some(e)) if !e.is_empty() => parsed.push((false, e, value)),
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    &format!("outcomes[{i}]"),
                    "give request_id or entity_id, not both",
                ))
            }
            _ => {
                return Err(ApiError::invalid(
                    &format!("outcomes[{i}]"),
                    "give request_id or entity_id",
                ))
            }
        }
    }
    // Predictions and assignments still in the log queue must be written before they are looked up.
    state.log.flush().await;
    let request_ids: Vec<String> = parsed.iter().filter(|p| p.0).map(|p| p.1.clone()).collect();
    let entity_ids: Vec<String> = parsed
        .iter()
        .filter(|p| !p.0)
        .map(|p| p.1.clone())
        .collect();
    let names: BTreeSet<&str> = t.variants.iter().map(|v| v.name.as_str()).collect();
    let until = t.stopped_at.unwrap_or(i64::MAX);
    let by_request: HashMap<String, (String, String)> = state
        .store
        .ab_request_exposures(&t.deployment_id, &request_ids, t.started_at, until)
        .await?
        .into_iter()
        .filter_map(|e| {
            let name = e.variant.strip_prefix(LOG_PREFIX)?.to_string();
            names
                .contains(name.as_str())
                .then_some((e.key, (name, e.model_id)))
        })
        .collect();
    let by_entity: HashMap<String, (String, String)> = state
        .store
        .ab_entity_exposures(&t.id, &entity_ids)
        .await?
        .into_iter()
        .map(|e| (e.key, (e.variant, e.model_id)))
        .collect();
    let mut outcomes = Vec::new();
    let (mut unknown_requests, mut unknown_entities) = (Vec::new(), Vec::new());
    for (is_request, key, value) in parsed {
        let found = if is_request {
            by_request.get(&key)
        } else {
            by_entity.get(&key)
        };
        match found {
            Some((variant, model_id)) => outcomes.push(AbOutcome {
                unit_kind: if is_request { "request" } else { "entity" },
                unit_key: key,
                variant: variant.clone(),
                model_id: model_id.clone(),
                value,
            }),
            None if is_request => unknown_requests.push(key),
            None => unknown_entities.push(key),
        }
    }
    state
        .store
        .put_ab_outcomes(&t.id, &outcomes, state.now())
        .await?;
    Ok(OutcomeReport {
        accepted: outcomes.len(),
        unknown_request_ids: unknown_requests,
        unknown_entity_ids: unknown_entities,
    })
}

/// Moves a model through the registry on behalf of a test, by the lifecycle's allowed steps
/// (candidate → staging → production). Failures are logged: serving comes first.
async fn registry_move(state: &AppState, ctx: &Ctx, model_id: &str, to: ModelStatus, reason: &str) {
    let ctx = Ctx {
        actor: "system:ab_test".into(),
        ..ctx.clone()
    };
    let Ok(Some(m)) = state.store.get_model_any(model_id).await else {
        return;
    };
    let Ok(from) = ModelStatus::parse("status", &m.status) else {
        return;
    };
    if from == to {
        return;
    }
    let steps: Vec<ModelStatus> = if from.can_transition_to(to) {
        vec![to]
    } else if from.can_transition_to(ModelStatus::Staging)
        && ModelStatus::Staging.can_transition_to(to)
    {
        vec![ModelStatus::Staging, to]
    } else {
        return;
    };
    for step in steps {
        if let Err(e) = state
            .store
            .transition_model(&ctx, model_id, step, reason)
            .await
        {
            tracing::warn!(model = model_id, error = %e, "registry transition for an A/B test failed");
            return;
        }
    }
}

/// Starts a checked test on its deployment: every server's serving entry is rebuilt from the new
/// deployment revision, and models that were not serving enter the promotion history (and staging).
pub async fn start(state: &AppState, ctx: &Ctx, t: &AbTest, d: &Deployment) -> ApiResult<()> {
    let mut models: Vec<&str> = t.variants.iter().map(|v| v.model_id.as_str()).collect();
    models.sort();
    models.dedup();
    // Load and check every model before any traffic moves to it.
    for m in &models {
        let loaded = serving::load_model(state, m).await?;
        let smoke = loaded.example_row();
        let checked = tokio::task::spawn_blocking(move || loaded.predict(&[smoke]))
            .await
            .map_err(ApiError::internal)?;
        if let Err(e) = checked {
            let i = t
                .variants
                .iter()
                .position(|v| v.model_id == *m)
                .unwrap_or(0);
            return Err(ApiError::invalid(
                &format!("variants[{i}].model_id"),
                format!("{m} failed its check prediction: {e}"),
            ));
        }
    }
    let newcomers: Vec<&str> = models
        .iter()
        .copied()
        .filter(|m| d.serving_model_id.as_deref() != Some(*m))
        .collect();
    let starts: Vec<PromotionChange> = newcomers
        .iter()
        .map(|m| PromotionChange::Start {
            model_id: m.to_string(),
            strategy: "ab_test".into(),
        })
        .collect();
    let updated = state.store.create_ab_test(ctx, t, d, &starts).await?;
    serving::refresh(state, &updated).await?;
    for m in newcomers {
        registry_move(
            state,
            ctx,
            m,
            ModelStatus::Staging,
            &format!("serving in A/B test {} on {}", t.name, d.name),
        )
        .await;
    }
    Ok(())
}

/// Stops a running test. With a winner, all traffic goes to it: it becomes the deployment's serving
/// model (a direct switch, in the timeline and the promotion history) and moves to `production`.
/// Without one, traffic returns to the model the deployment served.
pub async fn stop(
    state: &AppState,
    ctx: &Ctx,
    t: &AbTest,
    winner: Option<usize>,
    reason: &str,
) -> ApiResult<(AbTest, Deployment)> {
    let d = state
        .store
        .get_deployment_any(&t.deployment_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("deployment {}", t.deployment_id)))?;
    let winner = winner.map(|i| &t.variants[i]);
    let switch_to = winner
        .map(|w| w.model_id.clone())
        .filter(|m| d.serving_model_id.as_deref() != Some(m.as_str()));
    if let Some(m) = &switch_to {
        serving::load_model(state, m).await?;
    }
    let open = state.store.open_promotion_models(&d.id).await?;
    let mut models: Vec<&str> = t.variants.iter().map(|v| v.model_id.as_str()).collect();
    models.sort();
    models.dedup();
    let mut promotions = Vec::new();
    for m in models {
        let won = winner.map(|w| w.model_id == m).unwrap_or(false);
        let (outcome, detail) = match (won, winner) {
            (true, _) => ("promoted", format!("won A/B test {}: {reason}", t.name)),
            (false, Some(w)) => (
                "rolled_back",
                format!("lost A/B test {} to {}: {reason}", t.name, w.name),
            ),
            (false, None) => ("aborted", format!("A/B test {} stopped: {reason}", t.name)),
        };
        let is_open = open.iter().any(|o| o == m);
        if won && !is_open {
            // The serving model won: its decision still belongs in its history.
            promotions.push(PromotionChange::Start {
                model_id: m.to_string(),
                strategy: "ab_test".into(),
            });
        }
        if won || is_open {
            promotions.push(PromotionChange::Finish {
                model_id: m.to_string(),
                outcome: outcome.into(),
                detail,
            });
        }
    }
    let (stopped, updated) = state
        .store
        .stop_ab_test(
            ctx,
            t,
            &d,
            &AbStop {
                winner_model_id: winner.map(|w| w.model_id.clone()),
                winner_variant: winner.map(|w| w.name.clone()),
                reason: reason.to_string(),
                switch_to: switch_to.clone(),
                promotions,
            },
        )
        .await?;
    serving::refresh(state, &updated).await?;
    if let Some(w) = winner {
        registry_move(
            state,
            ctx,
            &w.model_id,
            ModelStatus::Production,
            &format!("won A/B test {} on {}: {reason}", t.name, d.name),
        )
        .await;
    }
    Ok((stopped, updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(kind: MetricType, sequential: bool) -> Plan {
        Plan {
            metric: Metric {
                kind,
                source: MetricSource::Outcomes,
                name: "m".into(),
                higher_is_better: true,
                baseline_rate: None,
                sd: None,
            },
            alpha: 0.05,
            power: 0.8,
            mde: 0.05,
            sequential,
        }
    }

    fn arms(assigned: [u64; 2]) -> Vec<Arm> {
        vec![
            Arm {
                name: "control".into(),
                model_id: "model_a".into(),
                traffic: 50.0,
                assigned: assigned[0],
            },
            Arm {
                name: "treatment".into(),
                model_id: "model_b".into(),
                traffic: 50.0,
                assigned: assigned[1],
            },
        ]
    }

    fn obs(c: (u64, u64), t: (u64, u64)) -> Vec<(usize, f64)> {
        let mut o = Vec::new();
        for (arm, (s, n)) in [(0usize, c), (1, t)] {
            for i in 0..n {
                o.push((arm, if i < s { 1.0 } else { 0.0 }));
            }
        }
        o
    }

    #[test]
    fn proportions_match_the_z_test_and_the_sample_size() {
        let a = analyze(
            &plan(MetricType::Proportion, false),
            &arms([1000, 1000]),
            &obs((100, 1000), (140, 1000)),
        );
        let z = st::two_proportion_ztest(
            st::Proportion {
                successes: 100,
                trials: 1000,
            },
            st::Proportion {
                successes: 140,
                trials: 1000,
            },
            0.05,
        )
        .unwrap();
        let t = &a.variants[1];
        assert_eq!(t.p_value, Some(z.p_value));
        assert_eq!((t.ci_low, t.ci_high), (Some(z.ci_low), Some(z.ci_high)));
        assert_eq!(t.difference, Some(z.difference));
        assert_eq!(t.successes, Some(140));
        assert!(a.variants[0].is_control && a.variants[0].p_value.is_none());
        let n = st::sample_size_proportion(0.1, 0.05, 0.05, 0.8).unwrap();
        assert_eq!(a.required_sample_size_per_variant, Some(n));
        assert_eq!(a.sample_size_basis.as_deref(), Some("observed"));
        assert_eq!(a.srm_p_value, Some(1.0));
        // 1000 per variant is past the plan (~683) and the treatment is better.
        assert!(a.sample_size_reached);
        assert_eq!(a.recommendation, "ship");
        assert_eq!(a.recommended_model_id.as_deref(), Some("model_b"));
    }

    #[test]
    fn a_fixed_horizon_test_does_not_decide_before_its_sample_size() {
        let a = analyze(
            &plan(MetricType::Proportion, false),
            &arms([200, 200]),
            &obs((20, 200), (50, 200)),
        );
        assert!(a.variants[1].significant);
        assert!(!a.sample_size_reached);
        assert_eq!(a.recommendation, "keep_running");
        assert!(a.recommendation_reason.contains("fixed-horizon"));
    }

    #[test]
    fn a_broken_split_is_flagged_and_stops_the_test() {
        let a = analyze(
            &plan(MetricType::Proportion, false),
            &arms([1000, 800]),
            &obs((100, 1000), (80, 800)),
        );
        assert!(a.srm.as_ref().unwrap().mismatch);
        assert_eq!(a.recommendation, "stop");
        assert!(a.recommended_model_id.is_none());
    }

    #[test]
    fn continuous_metrics_use_welch() {
        let mut o = Vec::new();
        for i in 0..50 {
            o.push((0, (i % 7) as f64));
            o.push((1, (i % 5) as f64 + 0.5));
        }
        let mut p = plan(MetricType::Continuous, false);
        p.metric.sd = Some(2.0);
        p.mde = 1.0;
        let a = analyze(&p, &arms([50, 50]), &o);
        let c: Vec<f64> = o.iter().filter(|x| x.0 == 0).map(|x| x.1).collect();
        let t: Vec<f64> = o.iter().filter(|x| x.0 == 1).map(|x| x.1).collect();
        let w = st::welch_ttest_samples(&c, &t, 0.05).unwrap();
        assert_eq!(a.variants[1].p_value, Some(w.p_value));
        assert_eq!(a.variants[1].df, Some(w.df));
        assert_eq!(a.required_sample_size_per_variant, Some(63));
        assert_eq!(a.sample_size_basis.as_deref(), Some("configured"));
    }

    #[test]
    fn the_sequential_p_value_is_the_minimum_over_prefixes() {
        let p = plan(MetricType::Proportion, true);
        // A strong early effect that fades: the always-valid p-value remembers it.
        let mut o = obs((30, 60), (55, 60));
        o.extend(obs((60, 400), (20, 400)));
        let a = analyze(&p, &arms([460, 460]), &o);
        let m = sequential_over_prefixes(&p, 0.05, 1, &o);
        assert_eq!(a.variants[1].p_value, Some(m.p_value));
        assert!(m.looks > 0);
        let last = st::sequential_proportions(
            st::Proportion {
                successes: 90,
                trials: 460,
            },
            st::Proportion {
                successes: 75,
                trials: 460,
            },
            0.05,
            Some(0.05),
        )
        .unwrap();
        assert!(m.p_value <= last.p_value);
        assert!(a.variants[1].fixed_horizon.is_some());
    }

    #[test]
    fn weights_are_normalised_and_names_checked() {
        assert_eq!(normalise_weights(&[1.0, 3.0]).unwrap(), vec![25.0, 75.0]);
        assert!(normalise_weights(&[50.0, 0.0]).is_err());
        assert!(check_variant_name("n", "control").is_ok());
        assert!(check_variant_name("n", "a b").is_err());
        assert_eq!(default_variant_name(1, 2), "treatment");
        assert_eq!(default_variant_name(2, 3), "treatment_2");
    }
}
