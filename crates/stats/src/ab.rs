//! A/B test statistics (SPEC §7): the pooled two-proportion z-test, Welch's t-test, sample size
//! from power, the sample-ratio-mismatch check, sequential (always-valid) p-values and the
//! keep-running / ship / stop recommendation.
//!
//! Conventions: the difference is always **treatment − control**; confidence intervals are
//! two-sided at level `1 − alpha`; `relative_lift` is the difference divided by the control's
//! rate or mean (absent when that is zero).

use crate::drift::{chi2_goodness_of_fit, Chi2Test};
use crate::special::{norm_cdf, norm_isf, norm_sf, t_ppf, t_sf};
use crate::{check_open_unit, invalid, Result};
use serde::{Deserialize, Serialize};

/// Default significance level.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Default power for sample sizes.
pub const DEFAULT_POWER: f64 = 0.8;
/// p-value below which assignment counts are declared a sample ratio mismatch. Strict on
/// purpose: an SRM check runs on every look, and a real mismatch gives tiny p-values.
pub const DEFAULT_SRM_THRESHOLD: f64 = 0.001;
/// Default mixing standard deviation of the sequential test, in units of the per-observation
/// standard deviation (see [`sequential_test`]).
pub const DEFAULT_TAU_STD: f64 = 0.1;

/// Successes out of trials for one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proportion {
    pub successes: u64,
    pub trials: u64,
}

impl Proportion {
    /// Checked constructor: at least one trial and no more successes than trials.
    pub fn new(successes: u64, trials: u64) -> Result<Self> {
        if trials == 0 {
            return Err(invalid("trials", "must be at least 1"));
        }
        if successes > trials {
            return Err(invalid(
                "successes",
                format!("{successes} successes exceed {trials} trials"),
            ));
        }
        Ok(Proportion { successes, trials })
    }

    pub fn rate(&self) -> f64 {
        self.successes as f64 / self.trials as f64
    }
}

/// Result of a two-proportion test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProportionTest {
    pub control_rate: f64,
    pub treatment_rate: f64,
    pub z: f64,
    pub p_value: f64,
    pub difference: f64,
    pub relative_lift: Option<f64>,
    pub ci_low: f64,
    pub ci_high: f64,
    pub alpha: f64,
    pub significant: bool,
}

/// Two-sided two-proportion z-test with pooled variance, as
/// `statsmodels.stats.proportion.proportions_ztest([s_t, s_c], [n_t, n_c])`; the interval is
/// the unpooled Wald interval of the difference (`confint_proportions_2indep(…, method="wald")`).
///
/// When both variants have a rate of 0 (or both 1) the pooled variance is 0 and there is no
/// evidence of a difference: z = 0 and p = 1 (statsmodels returns NaN there).
pub fn two_proportion_ztest(
    control: Proportion,
    treatment: Proportion,
    alpha: f64,
) -> Result<ProportionTest> {
    check_open_unit("alpha", alpha)?;
    let control = Proportion::new(control.successes, control.trials)?;
    let treatment = Proportion::new(treatment.successes, treatment.trials)?;
    let (pc, pt) = (control.rate(), treatment.rate());
    let (nc, nt) = (control.trials as f64, treatment.trials as f64);
    let pooled = (control.successes + treatment.successes) as f64 / (nc + nt);
    let difference = pt - pc;
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / nt + 1.0 / nc)).sqrt();
    let (z, p_value) = if se_pooled > 0.0 {
        let z = difference / se_pooled;
        (z, 2.0 * norm_sf(z.abs()))
    } else {
        (0.0, 1.0)
    };
    let se = (pt * (1.0 - pt) / nt + pc * (1.0 - pc) / nc).sqrt();
    let half = norm_isf(alpha / 2.0) * se;
    Ok(ProportionTest {
        control_rate: pc,
        treatment_rate: pt,
        z,
        p_value: p_value.min(1.0),
        difference,
        relative_lift: (pc > 0.0).then(|| difference / pc),
        ci_low: difference - half,
        ci_high: difference + half,
        alpha,
        significant: p_value < alpha,
    })
}

/// Mean, sample standard deviation (ddof = 1) and size of one variant's metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSummary {
    pub mean: f64,
    pub sd: f64,
    pub n: u64,
}

impl MeanSummary {
    /// Checked constructor: finite mean, non-negative finite sd, at least two observations.
    pub fn new(mean: f64, sd: f64, n: u64) -> Result<Self> {
        if !mean.is_finite() {
            return Err(invalid(
                "mean",
                format!("must be a finite number, got {mean}"),
            ));
        }
        if !(sd.is_finite() && sd >= 0.0) {
            return Err(invalid(
                "sd",
                format!("must be a non-negative number, got {sd}"),
            ));
        }
        if n < 2 {
            return Err(invalid("n", format!("must be at least 2, got {n}")));
        }
        Ok(MeanSummary { mean, sd, n })
    }

    /// Summary of a sample (non-finite values are rejected).
    pub fn from_sample(values: &[f64]) -> Result<Self> {
        if values.iter().any(|v| !v.is_finite()) {
            return Err(invalid("sample", "contains a non-finite value"));
        }
        if values.len() < 2 {
            return Err(invalid(
                "sample",
                format!("needs at least 2 values, got {}", values.len()),
            ));
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        Self::new(mean, (ss / (n - 1.0)).sqrt(), values.len() as u64)
    }
}

/// Result of Welch's t-test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanTest {
    pub control_mean: f64,
    pub treatment_mean: f64,
    pub t: f64,
    pub df: f64,
    pub p_value: f64,
    pub difference: f64,
    pub relative_lift: Option<f64>,
    pub ci_low: f64,
    pub ci_high: f64,
    pub alpha: f64,
    pub significant: bool,
}

/// Two-sided Welch t-test from summary statistics, as
/// `scipy.stats.ttest_ind_from_stats(treatment…, control…, equal_var=False)`, with the Welch
/// interval `difference ± t_{1−α/2, df} · se`.
pub fn welch_ttest(control: &MeanSummary, treatment: &MeanSummary, alpha: f64) -> Result<MeanTest> {
    check_open_unit("alpha", alpha)?;
    let control = MeanSummary::new(control.mean, control.sd, control.n)?;
    let treatment = MeanSummary::new(treatment.mean, treatment.sd, treatment.n)?;
    let (vc, vt) = (
        control.sd.powi(2) / control.n as f64,
        treatment.sd.powi(2) / treatment.n as f64,
    );
    let se2 = vc + vt;
    if se2 <= 0.0 {
        return Err(invalid(
            "sd",
            "both variants have zero standard deviation; a t-test needs some spread",
        ));
    }
    let se = se2.sqrt();
    let df = se2 * se2 / (vc * vc / (control.n - 1) as f64 + vt * vt / (treatment.n - 1) as f64);
    let difference = treatment.mean - control.mean;
    let t = difference / se;
    let p_value = (2.0 * t_sf(t.abs(), df)).min(1.0);
    let half = t_ppf(1.0 - alpha / 2.0, df) * se;
    Ok(MeanTest {
        control_mean: control.mean,
        treatment_mean: treatment.mean,
        t,
        df,
        p_value,
        difference,
        relative_lift: (control.mean != 0.0).then(|| difference / control.mean),
        ci_low: difference - half,
        ci_high: difference + half,
        alpha,
        significant: p_value < alpha,
    })
}

/// Welch's t-test from raw samples, as `scipy.stats.ttest_ind(treatment, control,
/// equal_var=False)`.
pub fn welch_ttest_samples(control: &[f64], treatment: &[f64], alpha: f64) -> Result<MeanTest> {
    welch_ttest(
        &MeanSummary::from_sample(control)?,
        &MeanSummary::from_sample(treatment)?,
        alpha,
    )
}

/// Cohen's h between two proportions: `2·asin(√p1) − 2·asin(√p2)`
/// (`statsmodels.stats.proportion.proportion_effectsize(p1, p2)`).
pub fn cohens_h(p1: f64, p2: f64) -> f64 {
    2.0 * p1.sqrt().asin() - 2.0 * p2.sqrt().asin()
}

/// Power of the two-sided z-test with two equal groups of `nobs1` each for standardized effect
/// `effect`, as `NormalIndPower().power(effect, nobs1, alpha, ratio=1)`: both rejection tails
/// count, `Φ̄(z_{α/2} − d·√(n/2)) + Φ(−z_{α/2} − d·√(n/2))`.
pub fn normal_ind_power(effect: f64, nobs1: f64, alpha: f64) -> f64 {
    let crit = norm_isf(alpha / 2.0);
    // nobs = 1 / (1/n1 + 1/n2) with n2 = n1.
    let shift = effect * (nobs1 / 2.0).sqrt();
    norm_sf(crit - shift) + norm_cdf(-crit - shift)
}

/// Per-group sample size (not rounded) at which [`normal_ind_power`] reaches `power`, solved to
/// machine precision by bisection on the monotone power curve.
pub fn solve_nobs1(effect: f64, alpha: f64, power: f64) -> Result<f64> {
    check_open_unit("alpha", alpha)?;
    check_open_unit("power", power)?;
    if !(effect.is_finite() && effect != 0.0) {
        return Err(invalid("effect size", "must be a non-zero finite number"));
    }
    if power <= alpha {
        return Err(invalid(
            "power",
            format!("must exceed alpha ({alpha}) for a sample size to exist, got {power}"),
        ));
    }
    let f = |n: f64| normal_ind_power(effect, n, alpha) - power;
    let mut lo = 0.0f64;
    let mut hi = 1.0f64;
    while f(hi) < 0.0 {
        lo = hi;
        hi *= 2.0;
        if hi > 1e18 {
            return Err(invalid(
                "effect size",
                "too small: the sample size is astronomically large",
            ));
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

/// Sample size per variant to detect an absolute change `mde` from `baseline` rate with a
/// two-sided test: `ceil(solve_power(h))` with Cohen's h between `baseline + mde` and
/// `baseline`.
pub fn sample_size_proportion(baseline: f64, mde: f64, alpha: f64, power: f64) -> Result<u64> {
    check_open_unit("baseline", baseline)?;
    if !(mde.is_finite() && mde > 0.0) {
        return Err(invalid("mde", format!("must be greater than 0, got {mde}")));
    }
    if baseline + mde > 1.0 {
        return Err(invalid(
            "mde",
            format!("baseline + mde = {} exceeds 1", baseline + mde),
        ));
    }
    let h = cohens_h(baseline + mde, baseline);
    Ok(solve_nobs1(h, alpha, power)?.ceil() as u64)
}

/// Sample size per variant to detect a change `mde` in a mean with per-observation standard
/// deviation `sd`: `ceil(solve_power(d = mde / sd))`.
pub fn sample_size_mean(sd: f64, mde: f64, alpha: f64, power: f64) -> Result<u64> {
    if !(sd.is_finite() && sd > 0.0) {
        return Err(invalid("sd", format!("must be greater than 0, got {sd}")));
    }
    if !(mde.is_finite() && mde > 0.0) {
        return Err(invalid("mde", format!("must be greater than 0, got {mde}")));
    }
    Ok(solve_nobs1(mde / sd, alpha, power)?.ceil() as u64)
}

/// Sample-ratio-mismatch check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SrmCheck {
    pub chi2: f64,
    pub p_value: f64,
    pub dof: u64,
    /// p-value below the threshold: assignment is broken and results cannot be trusted.
    pub mismatch: bool,
}

/// Chi-squared goodness-of-fit of assignment counts per variant to the configured traffic
/// weights (`scipy.stats.chisquare`); a mismatch when the p-value is below `threshold`.
pub fn srm_check(counts: &[u64], weights: &[f64], threshold: f64) -> Result<SrmCheck> {
    check_open_unit("threshold", threshold)?;
    let Chi2Test {
        statistic,
        p_value,
        dof,
    } = chi2_goodness_of_fit(counts, weights)?;
    Ok(SrmCheck {
        chi2: statistic,
        p_value,
        dof,
        mismatch: p_value < threshold,
    })
}

/// Always-valid inference for a difference of means or proportions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequentialTest {
    /// `min(1, 1/Λ)` at this look; keep the running minimum over looks (see
    /// [`SequentialMonitor`]) for the p-value that is valid under continuous monitoring.
    pub p_value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Mixing standard deviation used, in units of the difference.
    pub tau: f64,
    pub significant: bool,
}

/// Mixture sequential probability ratio test with a normal mixture (Johari, Koomen, Pekelis &
/// Walsh, "Always Valid Inference", Operations Research 70(3), 2022).
///
/// With an estimated difference `Δ` whose variance is `s²` (here `σ_t²/n_t + σ_c²/n_c`) and a
/// `N(0, τ²)` mixture over the true difference, the likelihood ratio against `Δ = 0` is
///
/// `Λ = √(s² / (s² + τ²)) · exp(τ²·Δ² / (2·s²·(s² + τ²)))`
///
/// and `p = min(1, 1/Λ)`. By Ville's inequality `P(sup_n Λ_n ≥ 1/α) ≤ α` under H0, so the
/// running minimum of `p` over any number of looks is a valid p-value. Inverting the test
/// for every `θ0` gives the always-valid interval
///
/// `Δ ± √( 2·s²·(s² + τ²)/τ² · ln( √((s² + τ²)/s²) / α ) )`.
pub fn sequential_test(
    difference: f64,
    variance: f64,
    tau: f64,
    alpha: f64,
) -> Result<SequentialTest> {
    check_open_unit("alpha", alpha)?;
    if !(tau.is_finite() && tau > 0.0) {
        return Err(invalid("tau", format!("must be greater than 0, got {tau}")));
    }
    if !(variance.is_finite() && variance >= 0.0 && difference.is_finite()) {
        return Err(invalid("variance", "must be a non-negative finite number"));
    }
    if variance == 0.0 {
        // No noise: the difference is known exactly.
        let p = if difference == 0.0 { 1.0 } else { 0.0 };
        return Ok(SequentialTest {
            p_value: p,
            ci_low: difference,
            ci_high: difference,
            tau,
            significant: p < alpha,
        });
    }
    let (s2, t2) = (variance, tau * tau);
    let ln_lambda =
        0.5 * (s2 / (s2 + t2)).ln() + t2 * difference * difference / (2.0 * s2 * (s2 + t2));
    let p_value = (-ln_lambda).exp().min(1.0);
    let half = (2.0 * s2 * (s2 + t2) / t2 * (0.5 * ((s2 + t2) / s2).ln() - alpha.ln())).sqrt();
    Ok(SequentialTest {
        p_value,
        ci_low: difference - half,
        ci_high: difference + half,
        tau,
        significant: p_value < alpha,
    })
}

/// [`sequential_test`] for two proportions; `tau` defaults to [`DEFAULT_TAU_STD`] times the
/// pooled per-observation standard deviation `√(p̄(1 − p̄))`.
pub fn sequential_proportions(
    control: Proportion,
    treatment: Proportion,
    alpha: f64,
    tau: Option<f64>,
) -> Result<SequentialTest> {
    let control = Proportion::new(control.successes, control.trials)?;
    let treatment = Proportion::new(treatment.successes, treatment.trials)?;
    let (pc, pt) = (control.rate(), treatment.rate());
    let variance =
        pt * (1.0 - pt) / treatment.trials as f64 + pc * (1.0 - pc) / control.trials as f64;
    let pooled = (control.successes + treatment.successes) as f64
        / (control.trials + treatment.trials) as f64;
    let default_tau = DEFAULT_TAU_STD * (pooled * (1.0 - pooled)).sqrt().max(1e-3);
    sequential_test(pt - pc, variance, tau.unwrap_or(default_tau), alpha)
}

/// [`sequential_test`] for two means; `tau` defaults to [`DEFAULT_TAU_STD`] times
/// `√((sd_c² + sd_t²)/2)`.
pub fn sequential_means(
    control: &MeanSummary,
    treatment: &MeanSummary,
    alpha: f64,
    tau: Option<f64>,
) -> Result<SequentialTest> {
    let control = MeanSummary::new(control.mean, control.sd, control.n)?;
    let treatment = MeanSummary::new(treatment.mean, treatment.sd, treatment.n)?;
    let variance =
        treatment.sd.powi(2) / treatment.n as f64 + control.sd.powi(2) / control.n as f64;
    let sigma = ((control.sd.powi(2) + treatment.sd.powi(2)) / 2.0).sqrt();
    let default_tau = DEFAULT_TAU_STD * if sigma > 0.0 { sigma } else { 1.0 };
    sequential_test(
        treatment.mean - control.mean,
        variance,
        tau.unwrap_or(default_tau),
        alpha,
    )
}

/// Running state of a continuously monitored test: the always-valid p-value is the minimum
/// over looks, and the always-valid interval is the intersection of the intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequentialMonitor {
    pub p_value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub looks: u64,
}

impl Default for SequentialMonitor {
    fn default() -> Self {
        SequentialMonitor {
            p_value: 1.0,
            ci_low: f64::NEG_INFINITY,
            ci_high: f64::INFINITY,
            looks: 0,
        }
    }
}

impl SequentialMonitor {
    /// Fold in the test at a new look.
    pub fn update(&mut self, look: &SequentialTest) {
        self.p_value = self.p_value.min(look.p_value);
        self.ci_low = self.ci_low.max(look.ci_low);
        self.ci_high = self.ci_high.min(look.ci_high);
        self.looks += 1;
    }
}

/// What to do with a running test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    /// Not enough evidence yet and the planned sample size is not reached.
    KeepRunning,
    /// Treatment is significantly better.
    Ship,
    /// Treatment is significantly worse, the planned sample showed no effect, or assignment is
    /// broken (sample ratio mismatch).
    Stop,
}

/// Recommendation from a test's outcome. `higher_is_better` says which direction of the
/// difference is an improvement; `sample_size_reached` whether each variant has the planned
/// sample; `srm` the latest sample-ratio check if any.
pub fn recommend(
    significant: bool,
    difference: f64,
    higher_is_better: bool,
    sample_size_reached: bool,
    srm: Option<&SrmCheck>,
) -> Recommendation {
    if srm.is_some_and(|s| s.mismatch) {
        return Recommendation::Stop;
    }
    if significant {
        let better = if higher_is_better {
            difference > 0.0
        } else {
            difference < 0.0
        };
        return if better {
            Recommendation::Ship
        } else {
            Recommendation::Stop
        };
    }
    if sample_size_reached {
        Recommendation::Stop
    } else {
        Recommendation::KeepRunning
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ztest_degenerate_rates() {
        let t = two_proportion_ztest(
            Proportion {
                successes: 0,
                trials: 100,
            },
            Proportion {
                successes: 0,
                trials: 50,
            },
            0.05,
        )
        .unwrap();
        assert_eq!((t.z, t.p_value, t.difference), (0.0, 1.0, 0.0));
        assert_eq!(t.relative_lift, None);
        assert!(Proportion::new(5, 3).is_err());
        assert!(Proportion::new(0, 0).is_err());
    }

    #[test]
    fn welch_rejects_no_spread_and_bad_alpha() {
        let a = MeanSummary {
            mean: 1.0,
            sd: 0.0,
            n: 10,
        };
        assert!(welch_ttest(&a, &a, 0.05).is_err());
        let b = MeanSummary {
            mean: 1.0,
            sd: 1.0,
            n: 10,
        };
        assert!(welch_ttest(&b, &b, 1.5).is_err());
        assert!(welch_ttest(
            &b,
            &MeanSummary {
                mean: 1.0,
                sd: 1.0,
                n: 1
            },
            0.05
        )
        .is_err());
    }

    #[test]
    fn sample_size_inputs_are_checked() {
        assert!(sample_size_proportion(0.1, 0.0, 0.05, 0.8).is_err());
        assert!(sample_size_proportion(0.95, 0.1, 0.05, 0.8).is_err());
        assert!(sample_size_proportion(0.1, 0.02, 0.05, 1.0).is_err());
        assert!(sample_size_mean(1.0, -1.0, 0.05, 0.8).is_err());
        // Textbook: d = 0.5, alpha 0.05, power 0.8 -> 62.79 -> 63 per group.
        assert_eq!(sample_size_mean(2.0, 1.0, 0.05, 0.8).unwrap(), 63);
    }

    #[test]
    fn sequential_interval_inverts_the_test() {
        let s = sequential_test(0.5, 0.01, 0.1, 0.05).unwrap();
        // At the interval's edge the test of θ0 = edge has p = alpha exactly.
        let edge = sequential_test(0.5 - s.ci_low, 0.01, 0.1, 0.05).unwrap();
        assert!((edge.p_value - 0.05).abs() < 1e-12, "{}", edge.p_value);
        assert!(s.p_value < 0.05 && s.significant);
        assert!(s.ci_low > 0.0);
    }

    /// Under H0 the running minimum p-value stays above alpha in at least ~1 − alpha of the
    /// experiments, however often we look.
    #[test]
    fn sequential_p_value_controls_type_one_error_under_peeking() {
        let mut state: u64 = 42;
        let mut normal = move || {
            let mut u = || {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            let (a, b) = (u(), u());
            (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
        };
        let (experiments, looks, per_look) = (400, 50, 20);
        let mut false_positives = 0;
        let mut naive_false_positives = 0;
        for _ in 0..experiments {
            let (mut sum_c, mut sum_t, mut n) = (0.0, 0.0, 0u64);
            let mut monitor = SequentialMonitor::default();
            let mut naive_rejected = false;
            for _ in 0..looks {
                for _ in 0..per_look {
                    sum_c += normal();
                    sum_t += normal();
                    n += 1;
                }
                let diff = sum_t / n as f64 - sum_c / n as f64;
                let var = 2.0 / n as f64;
                monitor.update(&sequential_test(diff, var, 0.5, 0.05).unwrap());
                naive_rejected |= 2.0 * norm_sf((diff / var.sqrt()).abs()) < 0.05;
            }
            false_positives += usize::from(monitor.p_value < 0.05);
            naive_false_positives += usize::from(naive_rejected);
        }
        let rate = false_positives as f64 / experiments as f64;
        assert!(rate <= 0.06, "sequential false positive rate {rate}");
        // Peeking at a fixed-horizon test is far worse, which is the point of the mSPRT.
        assert!(naive_false_positives > 2 * false_positives.max(10));
    }

    #[test]
    fn recommendations() {
        let srm = SrmCheck {
            chi2: 30.0,
            p_value: 1e-8,
            dof: 1,
            mismatch: true,
        };
        assert_eq!(
            recommend(true, 0.1, true, true, Some(&srm)),
            Recommendation::Stop
        );
        assert_eq!(
            recommend(true, 0.1, true, false, None),
            Recommendation::Ship
        );
        assert_eq!(
            recommend(true, 0.1, false, false, None),
            Recommendation::Stop
        );
        assert_eq!(
            recommend(false, 0.1, true, false, None),
            Recommendation::KeepRunning
        );
        assert_eq!(
            recommend(false, 0.1, true, true, None),
            Recommendation::Stop
        );
    }
}
