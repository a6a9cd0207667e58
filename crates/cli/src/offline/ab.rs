//! `coreplex ab analyze | sample-size | srm`: A/B test statistics from counts or summary
//! statistics given on the command line (SPEC §7, §10).

use super::{check_unit, finish, input_error, json_text, num, Format, InputError};
use clap::{Args, Subcommand, ValueEnum};
use coreplex_stats::ab::{self, MeanSummary, Proportion, SequentialTest};
use serde::Serialize;
use std::process::ExitCode;

/// `coreplex ab …`
#[derive(Debug, Args)]
pub struct AbArgs {
    #[command(subcommand)]
    pub command: AbCommand,
}

#[derive(Debug, Subcommand)]
pub enum AbCommand {
    /// Analyze an A/B test from counts (proportions) or summary statistics (means).
    Analyze(AnalyzeArgs),
    /// Required sample size per variant.
    SampleSize(SampleSizeArgs),
    /// Sample-ratio-mismatch check of assignment counts against traffic weights.
    Srm(SrmArgs),
}

/// Kind of success metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Metric {
    /// A rate: successes out of trials (conversion, correctness).
    Proportion,
    /// A continuous metric summarised by mean, standard deviation and count.
    Mean,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[arg(long, value_enum)]
    pub metric: Metric,
    /// Control successes/trials, e.g. 120/1000 (proportion metric).
    #[arg(long, value_name = "S/N")]
    pub control: Option<String>,
    /// Treatment successes/trials (proportion metric).
    #[arg(long, value_name = "S/N")]
    pub treatment: Option<String>,
    /// Control mean, standard deviation and count, e.g. 10.2,3.1,500 (mean metric).
    #[arg(long, value_name = "MEAN,SD,N", allow_hyphen_values = true)]
    pub control_stats: Option<String>,
    /// Treatment mean, standard deviation and count (mean metric).
    #[arg(long, value_name = "MEAN,SD,N", allow_hyphen_values = true)]
    pub treatment_stats: Option<String>,
    /// Significance level.
    #[arg(long, default_value_t = ab::DEFAULT_ALPHA, allow_hyphen_values = true)]
    pub alpha: f64,
    /// Also report the always-valid (mSPRT) p-value and interval, valid under continuous
    /// monitoring.
    #[arg(long)]
    pub sequential: bool,
    /// Mixing standard deviation of the sequential test, in units of the difference
    /// (default: 0.1 × the per-observation standard deviation).
    #[arg(long, requires = "sequential", allow_hyphen_values = true)]
    pub tau: Option<f64>,
    /// Output format (default: table on a terminal, JSON otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Debug, Args)]
pub struct SampleSizeArgs {
    #[arg(long, value_enum)]
    pub metric: Metric,
    /// Baseline rate of the control (proportion metric).
    #[arg(long, allow_hyphen_values = true)]
    pub baseline: Option<f64>,
    /// Standard deviation per observation (mean metric).
    #[arg(long, allow_hyphen_values = true)]
    pub sd: Option<f64>,
    /// Minimum detectable effect: absolute change of the rate or mean.
    #[arg(long, allow_hyphen_values = true)]
    pub mde: f64,
    /// Significance level (two-sided).
    #[arg(long, default_value_t = ab::DEFAULT_ALPHA, allow_hyphen_values = true)]
    pub alpha: f64,
    /// Power: probability of detecting an effect of size mde.
    #[arg(long, default_value_t = ab::DEFAULT_POWER, allow_hyphen_values = true)]
    pub power: f64,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Debug, Args)]
pub struct SrmArgs {
    /// Assignment counts per variant, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub counts: Vec<u64>,
    /// Traffic weights per variant, comma-separated (default: equal).
    #[arg(long, value_delimiter = ',')]
    pub weights: Vec<f64>,
    /// p-value below which the counts are a mismatch.
    #[arg(long, default_value_t = ab::DEFAULT_SRM_THRESHOLD)]
    pub threshold: f64,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run_ab(args: AbArgs) -> ExitCode {
    finish(match args.command {
        AbCommand::Analyze(a) => analyze(a),
        AbCommand::SampleSize(a) => sample_size(a),
        AbCommand::Srm(a) => srm(a),
    })
}

#[derive(Serialize)]
struct SequentialOut {
    p_value: f64,
    ci_low: f64,
    ci_high: f64,
    tau: f64,
    significant: bool,
}

impl From<SequentialTest> for SequentialOut {
    fn from(s: SequentialTest) -> Self {
        SequentialOut {
            p_value: s.p_value,
            ci_low: s.ci_low,
            ci_high: s.ci_high,
            tau: s.tau,
            significant: s.significant,
        }
    }
}

#[derive(Serialize)]
struct ProportionOut {
    metric: &'static str,
    z: f64,
    p_value: f64,
    difference: f64,
    relative_lift: Option<f64>,
    ci_low: f64,
    ci_high: f64,
    significant: bool,
    alpha: f64,
    control_rate: f64,
    treatment_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequential: Option<SequentialOut>,
}

#[derive(Serialize)]
struct MeanOut {
    metric: &'static str,
    t: f64,
    df: f64,
    p_value: f64,
    difference: f64,
    relative_lift: Option<f64>,
    ci_low: f64,
    ci_high: f64,
    significant: bool,
    alpha: f64,
    control_mean: f64,
    treatment_mean: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequential: Option<SequentialOut>,
}

fn analyze(args: AnalyzeArgs) -> Result<String, InputError> {
    check_unit("--alpha", args.alpha)?;
    if let Some(tau) = args.tau {
        if !(tau.is_finite() && tau > 0.0) {
            return Err(input_error(format!(
                "--tau must be greater than 0, got {tau}"
            )));
        }
    }
    let format = Format::resolve(args.format);
    match args.metric {
        Metric::Proportion => {
            let (Some(c), Some(t)) = (&args.control, &args.treatment) else {
                return Err(input_error(
                    "--metric proportion needs --control S/N and --treatment S/N",
                ));
            };
            let control = parse_proportion("--control", c)?;
            let treatment = parse_proportion("--treatment", t)?;
            let r = ab::two_proportion_ztest(control, treatment, args.alpha)?;
            let sequential = if args.sequential {
                Some(ab::sequential_proportions(control, treatment, args.alpha, args.tau)?.into())
            } else {
                None
            };
            let out = ProportionOut {
                metric: "proportion",
                z: r.z,
                p_value: r.p_value,
                difference: r.difference,
                relative_lift: r.relative_lift,
                ci_low: r.ci_low,
                ci_high: r.ci_high,
                significant: r.significant,
                alpha: r.alpha,
                control_rate: r.control_rate,
                treatment_rate: r.treatment_rate,
                sequential,
            };
            Ok(match format {
                Format::Json => json_text(&out),
                Format::Table => {
                    let mut rows = vec![
                        ("test", "two-proportion z-test (pooled)".to_owned()),
                        ("control rate", num(Some(out.control_rate))),
                        ("treatment rate", num(Some(out.treatment_rate))),
                        ("difference", num(Some(out.difference))),
                        ("relative lift", num(out.relative_lift)),
                        (
                            "confidence interval",
                            format!(
                                "[{}, {}] ({:.0}%)",
                                num(Some(out.ci_low)),
                                num(Some(out.ci_high)),
                                100.0 * (1.0 - out.alpha)
                            ),
                        ),
                        ("z", num(Some(out.z))),
                        ("p-value", num(Some(out.p_value))),
                        ("significant", yes_no(out.significant)),
                    ];
                    sequential_rows(&mut rows, &out.sequential);
                    key_values(&rows)
                }
            })
        }
        Metric::Mean => {
            let (Some(c), Some(t)) = (&args.control_stats, &args.treatment_stats) else {
                return Err(input_error(
                    "--metric mean needs --control-stats MEAN,SD,N and --treatment-stats MEAN,SD,N",
                ));
            };
            let control = parse_summary("--control-stats", c)?;
            let treatment = parse_summary("--treatment-stats", t)?;
            let r = ab::welch_ttest(&control, &treatment, args.alpha)?;
            let sequential = if args.sequential {
                Some(ab::sequential_means(&control, &treatment, args.alpha, args.tau)?.into())
            } else {
                None
            };
            let out = MeanOut {
                metric: "mean",
                t: r.t,
                df: r.df,
                p_value: r.p_value,
                difference: r.difference,
                relative_lift: r.relative_lift,
                ci_low: r.ci_low,
                ci_high: r.ci_high,
                significant: r.significant,
                alpha: r.alpha,
                control_mean: r.control_mean,
                treatment_mean: r.treatment_mean,
                sequential,
            };
            Ok(match format {
                Format::Json => json_text(&out),
                Format::Table => {
                    let mut rows = vec![
                        ("test", "Welch's t-test".to_owned()),
                        ("control mean", num(Some(out.control_mean))),
                        ("treatment mean", num(Some(out.treatment_mean))),
                        ("difference", num(Some(out.difference))),
                        ("relative lift", num(out.relative_lift)),
                        (
                            "confidence interval",
                            format!(
                                "[{}, {}] ({:.0}%)",
                                num(Some(out.ci_low)),
                                num(Some(out.ci_high)),
                                100.0 * (1.0 - out.alpha)
                            ),
                        ),
                        ("t", num(Some(out.t))),
                        ("df", num(Some(out.df))),
                        ("p-value", num(Some(out.p_value))),
                        ("significant", yes_no(out.significant)),
                    ];
                    sequential_rows(&mut rows, &out.sequential);
                    key_values(&rows)
                }
            })
        }
    }
}

#[derive(Serialize)]
struct SampleSizeOut {
    per_variant: u64,
    total: u64,
    metric: &'static str,
    effect_size: f64,
    alpha: f64,
    power: f64,
}

fn sample_size(args: SampleSizeArgs) -> Result<String, InputError> {
    check_unit("--alpha", args.alpha)?;
    check_unit("--power", args.power)?;
    if !(args.mde.is_finite() && args.mde > 0.0) {
        return Err(input_error(format!(
            "--mde must be greater than 0, got {}",
            args.mde
        )));
    }
    if args.power <= args.alpha {
        return Err(input_error(format!(
            "--power ({}) must be greater than --alpha ({})",
            args.power, args.alpha
        )));
    }
    let (metric, per_variant, effect_size) = match args.metric {
        Metric::Proportion => {
            let Some(baseline) = args.baseline else {
                return Err(input_error("--metric proportion needs --baseline P"));
            };
            check_unit("--baseline", baseline)?;
            if baseline + args.mde >= 1.0 {
                return Err(input_error(format!(
                    "--baseline + --mde must stay below 1, got {}",
                    baseline + args.mde
                )));
            }
            let n = ab::sample_size_proportion(baseline, args.mde, args.alpha, args.power)?;
            ("proportion", n, ab::cohens_h(baseline + args.mde, baseline))
        }
        Metric::Mean => {
            let Some(sd) = args.sd else {
                return Err(input_error("--metric mean needs --sd S"));
            };
            if !(sd.is_finite() && sd > 0.0) {
                return Err(input_error(format!(
                    "--sd must be greater than 0, got {sd}"
                )));
            }
            let n = ab::sample_size_mean(sd, args.mde, args.alpha, args.power)?;
            ("mean", n, args.mde / sd)
        }
    };
    let out = SampleSizeOut {
        per_variant,
        total: 2 * per_variant,
        metric,
        effect_size,
        alpha: args.alpha,
        power: args.power,
    };
    Ok(match Format::resolve(args.format) {
        Format::Json => json_text(&out),
        Format::Table => key_values(&[
            ("per variant", out.per_variant.to_string()),
            ("total", out.total.to_string()),
            (
                if metric == "proportion" {
                    "effect size (Cohen's h)"
                } else {
                    "effect size (Cohen's d)"
                },
                num(Some(out.effect_size)),
            ),
            ("alpha", out.alpha.to_string()),
            ("power", out.power.to_string()),
        ]),
    })
}

fn srm(args: SrmArgs) -> Result<String, InputError> {
    check_unit("--threshold", args.threshold)?;
    if args.counts.len() < 2 {
        return Err(input_error("--counts needs at least two variants"));
    }
    let weights = if args.weights.is_empty() {
        vec![1.0; args.counts.len()]
    } else {
        args.weights.clone()
    };
    if weights.len() != args.counts.len() {
        return Err(input_error(format!(
            "--weights has {} values but --counts has {}",
            weights.len(),
            args.counts.len()
        )));
    }
    if weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
        return Err(input_error("--weights must all be greater than 0"));
    }
    if args.counts.iter().all(|&c| c == 0) {
        return Err(input_error("--counts are all zero"));
    }
    let r = ab::srm_check(&args.counts, &weights, args.threshold)?;
    Ok(match Format::resolve(args.format) {
        Format::Json => json_text(&r),
        Format::Table => key_values(&[
            ("chi2", num(Some(r.chi2))),
            ("dof", r.dof.to_string()),
            ("p-value", num(Some(r.p_value))),
            ("sample ratio mismatch", yes_no(r.mismatch)),
        ]),
    })
}

fn parse_proportion(flag: &str, text: &str) -> Result<Proportion, InputError> {
    let bad = || {
        input_error(format!(
            "{flag} must be SUCCESSES/TRIALS like 120/1000, got '{text}'"
        ))
    };
    let (s, n) = text.split_once('/').ok_or_else(bad)?;
    let s: u64 = s.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(input_error(format!(
            "{flag}: the number of trials must be at least 1, got 0"
        )));
    }
    if s > n {
        return Err(input_error(format!(
            "{flag}: {s} successes exceed {n} trials"
        )));
    }
    Ok(Proportion {
        successes: s,
        trials: n,
    })
}

fn parse_summary(flag: &str, text: &str) -> Result<MeanSummary, InputError> {
    let bad = || {
        input_error(format!(
            "{flag} must be MEAN,SD,N like 10.2,3.1,500, got '{text}'"
        ))
    };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [mean, sd, n] = parts[..] else {
        return Err(bad());
    };
    let mean: f64 = mean.parse().map_err(|_| bad())?;
    let sd: f64 = sd.parse().map_err(|_| bad())?;
    let n: u64 = n.parse().map_err(|_| bad())?;
    if !mean.is_finite() {
        return Err(bad());
    }
    if !(sd.is_finite() && sd >= 0.0) {
        return Err(input_error(format!(
            "{flag}: the standard deviation must be 0 or more, got {sd}"
        )));
    }
    if n < 2 {
        return Err(input_error(format!(
            "{flag}: the count must be at least 2, got {n}"
        )));
    }
    Ok(MeanSummary { mean, sd, n })
}

fn sequential_rows(rows: &mut Vec<(&'static str, String)>, s: &Option<SequentialOut>) {
    if let Some(s) = s {
        rows.push(("sequential p-value", num(Some(s.p_value))));
        rows.push((
            "sequential interval",
            format!(
                "[{}, {}] (tau {})",
                num(Some(s.ci_low)),
                num(Some(s.ci_high)),
                num(Some(s.tau))
            ),
        ));
        rows.push(("sequential significant", yes_no(s.significant)));
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn key_values(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}
