//! Table-driven checks against SciPy / statsmodels / scikit-learn reference values stored in
//! `tests/fixtures/*.json` (written by `tests/fixtures/generate.py`).
//!
//! Tolerances (issue 3): statistics to 1e-9 relative, p-values to 1e-6 absolute, sample sizes
//! exactly. Every case is checked and all mismatches are reported together.

use coreplex_stats::ab::{self, MeanSummary, Proportion};
use coreplex_stats::drift::{self, FeatureDrift};
use coreplex_stats::quality;
use coreplex_stats::sketch::CategoricalCounts;
use coreplex_stats::special;
use serde_json::Value;

const STAT_REL: f64 = 1e-9;
const P_ABS: f64 = 1e-6;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture readable"))
        .expect("fixture is JSON")
}

/// Collects mismatches so one run shows all of them.
#[derive(Default)]
struct Check {
    failures: Vec<String>,
    checked: usize,
}

impl Check {
    fn stat(&mut self, what: String, got: f64, want: f64) {
        self.checked += 1;
        let ok = if want == 0.0 {
            got.abs() <= 1e-12
        } else {
            ((got - want) / want).abs() <= STAT_REL
        };
        if !ok {
            self.failures
                .push(format!("{what}: got {got:e}, want {want:e}"));
        }
    }

    fn p(&mut self, what: String, got: f64, want: f64) {
        self.checked += 1;
        if (got - want).abs() > P_ABS || got.is_nan() {
            self.failures
                .push(format!("{what}: p got {got:e}, want {want:e}"));
        }
    }

    fn exact<T: PartialEq + std::fmt::Debug>(&mut self, what: String, got: T, want: T) {
        self.checked += 1;
        if got != want {
            self.failures
                .push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    fn finish(self) {
        assert!(self.checked > 0);
        assert!(
            self.failures.is_empty(),
            "{} of {} checks failed:\n{}",
            self.failures.len(),
            self.checked,
            self.failures.join("\n")
        );
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}

/// Same generator as `gen` in generate.py: bit-identical values.
fn gen(seed: u64, n: usize, loc: f64, scale: f64, round: Option<f64>) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            let mut total = 0.0;
            for _ in 0..4 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                total += (state >> 11) as f64 / 9007199254740992.0;
            }
            let x = loc + scale * (total - 2.0);
            match round {
                Some(k) => (x * k).floor() / k,
                None => x,
            }
        })
        .collect()
}

fn sample(spec: &Value) -> Vec<f64> {
    if spec.is_array() {
        return floats(spec);
    }
    let g = &spec["gen"];
    gen(
        g["seed"].as_u64().unwrap(),
        g["n"].as_u64().unwrap() as usize,
        f(&g["loc"]),
        f(&g["scale"]),
        g["round"].as_f64(),
    )
}

fn counts(v: &Value) -> CategoricalCounts {
    let mut c = CategoricalCounts::new();
    for (k, n) in v.as_object().unwrap() {
        c.counts.insert(k.clone(), n.as_u64().unwrap());
    }
    c
}

#[test]
fn drift_numeric_matches_scipy() {
    let fixtures = load("drift.json");
    let mut check = Check::default();
    for case in fixtures["numeric"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (reference, current) = (sample(&case["reference"]), sample(&case["current"]));
        let ks = drift::ks_2samp(&reference, &current).unwrap();
        check.stat(
            format!("{name} ks statistic"),
            ks.statistic,
            f(&case["ks_statistic"]),
        );
        check.p(format!("{name} ks p"), ks.p_value, f(&case["ks_p_value"]));
        let psi = drift::psi_numeric(&reference, &current).unwrap();
        check.stat(format!("{name} psi"), psi, f(&case["psi"]));
        let w = drift::wasserstein_normed(&reference, &current).unwrap();
        check.stat(
            format!("{name} wasserstein"),
            w,
            f(&case["wasserstein_normed"]),
        );
        let js = drift::jensen_shannon_numeric(&reference, &current).unwrap();
        check.stat(
            format!("{name} jensen-shannon"),
            js,
            f(&case["jensen_shannon"]),
        );
        // The feature-level entry point reports the same numbers.
        let fd = FeatureDrift::numeric(name, reference, current, &Default::default());
        check.exact(
            format!("{name} feature ks"),
            fd.ks_statistic,
            Some(ks.statistic),
        );
        check.exact(format!("{name} feature psi"), fd.psi, Some(psi));
    }
    check.finish();
}

#[test]
fn drift_categorical_matches_scipy() {
    let fixtures = load("drift.json");
    let mut check = Check::default();
    for case in fixtures["categorical"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (r, c) = (counts(&case["reference"]), counts(&case["current"]));
        let chi2 = drift::chi2_from_counts(&r, &c).unwrap();
        check.stat(
            format!("{name} chi2"),
            chi2.statistic,
            f(&case["chi2_statistic"]),
        );
        check.p(
            format!("{name} chi2 p"),
            chi2.p_value,
            f(&case["chi2_p_value"]),
        );
        check.exact(
            format!("{name} dof"),
            chi2.dof,
            case["dof"].as_u64().unwrap(),
        );
        let psi = drift::psi_categorical(&r, &c).unwrap();
        check.stat(format!("{name} psi"), psi, f(&case["psi"]));
        let js = drift::jensen_shannon_categorical(&r, &c).unwrap();
        check.stat(
            format!("{name} jensen-shannon"),
            js,
            f(&case["jensen_shannon"]),
        );
    }
    check.finish();
}

#[test]
fn kolmogorov_distribution_matches_scipy_kstwo() {
    let fixtures = load("drift.json");
    let mut check = Check::default();
    for case in fixtures["kolmogorov"].as_array().unwrap() {
        let (n, d) = (case["n"].as_u64().unwrap(), f(&case["d"]));
        let want = f(&case["sf"]);
        let got = special::kolmogorov_sf(n, d);
        check.p(format!("kstwo.sf({d}, {n})"), got, want);
        // Relative agreement too where the value is not tiny: the branches must be right.
        if want > 1e-3 {
            check.checked += 1;
            if ((got - want) / want).abs() > 1e-7 {
                check
                    .failures
                    .push(format!("kstwo.sf({d}, {n}) relative: {got:e} vs {want:e}"));
            }
        }
    }
    check.finish();
}

#[test]
fn ab_proportions_match_statsmodels() {
    let fixtures = load("ab.json");
    let mut check = Check::default();
    for case in fixtures["proportions"].as_array().unwrap() {
        let c = &case["control"];
        let t = &case["treatment"];
        let control = Proportion::new(c[0].as_u64().unwrap(), c[1].as_u64().unwrap()).unwrap();
        let treatment = Proportion::new(t[0].as_u64().unwrap(), t[1].as_u64().unwrap()).unwrap();
        let alpha = f(&case["alpha"]);
        let what = format!("{c} vs {t}");
        let r = ab::two_proportion_ztest(control, treatment, alpha).unwrap();
        check.stat(format!("{what} z"), r.z, f(&case["z"]));
        check.p(format!("{what} p"), r.p_value, f(&case["p_value"]));
        check.stat(
            format!("{what} difference"),
            r.difference,
            f(&case["difference"]),
        );
        check.stat(format!("{what} ci low"), r.ci_low, f(&case["ci_low"]));
        check.stat(format!("{what} ci high"), r.ci_high, f(&case["ci_high"]));
    }
    check.finish();
}

#[test]
fn ab_welch_matches_scipy() {
    let fixtures = load("ab.json");
    let mut check = Check::default();
    let summary = |v: &Value| MeanSummary {
        mean: f(&v[0]),
        sd: f(&v[1]),
        n: v[2].as_u64().unwrap(),
    };
    for case in fixtures["welch_stats"].as_array().unwrap() {
        let what = format!("{} vs {}", case["control"], case["treatment"]);
        let r = ab::welch_ttest(
            &summary(&case["control"]),
            &summary(&case["treatment"]),
            f(&case["alpha"]),
        )
        .unwrap();
        check.stat(format!("{what} t"), r.t, f(&case["t"]));
        check.stat(format!("{what} df"), r.df, f(&case["df"]));
        check.p(format!("{what} p"), r.p_value, f(&case["p_value"]));
        check.stat(format!("{what} ci low"), r.ci_low, f(&case["ci_low"]));
        check.stat(format!("{what} ci high"), r.ci_high, f(&case["ci_high"]));
    }
    for (i, case) in fixtures["welch_samples"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let r = ab::welch_ttest_samples(
            &floats(&case["control"]),
            &floats(&case["treatment"]),
            f(&case["alpha"]),
        )
        .unwrap();
        check.stat(format!("samples {i} t"), r.t, f(&case["t"]));
        check.stat(format!("samples {i} df"), r.df, f(&case["df"]));
        check.p(format!("samples {i} p"), r.p_value, f(&case["p_value"]));
        check.stat(format!("samples {i} ci low"), r.ci_low, f(&case["ci_low"]));
        check.stat(
            format!("samples {i} ci high"),
            r.ci_high,
            f(&case["ci_high"]),
        );
    }
    check.finish();
}

#[test]
fn ab_sample_sizes_match_statsmodels_exactly() {
    let fixtures = load("ab.json");
    let mut check = Check::default();
    for case in fixtures["sample_sizes"].as_array().unwrap() {
        let (alpha, power, mde) = (f(&case["alpha"]), f(&case["power"]), f(&case["mde"]));
        let want = case["per_variant"].as_u64().unwrap();
        let (what, got, effect) = if case["metric"] == "proportion" {
            let b = f(&case["baseline"]);
            (
                format!("proportion baseline {b} mde {mde} alpha {alpha} power {power}"),
                ab::sample_size_proportion(b, mde, alpha, power).unwrap(),
                ab::cohens_h(b + mde, b),
            )
        } else {
            let sd = f(&case["sd"]);
            (
                format!("mean sd {sd} mde {mde} alpha {alpha} power {power}"),
                ab::sample_size_mean(sd, mde, alpha, power).unwrap(),
                mde / sd,
            )
        };
        check.exact(what.clone(), got, want);
        // statsmodels' root finder stops at a tolerance; ours solves to machine precision.
        let raw = ab::solve_nobs1(effect, alpha, power).unwrap();
        let sm = f(&case["nobs1"]);
        check.checked += 1;
        if ((raw - sm) / sm).abs() > 1e-6 {
            check
                .failures
                .push(format!("{what} raw nobs1: {raw} vs {sm}"));
        }
    }
    check.finish();
}

#[test]
fn ab_srm_matches_scipy_chisquare() {
    let fixtures = load("ab.json");
    let mut check = Check::default();
    for case in fixtures["srm"].as_array().unwrap() {
        let counts: Vec<u64> = case["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let weights = floats(&case["weights"]);
        let r = ab::srm_check(&counts, &weights, ab::DEFAULT_SRM_THRESHOLD).unwrap();
        check.stat(format!("srm {counts:?} chi2"), r.chi2, f(&case["chi2"]));
        check.p(format!("srm {counts:?} p"), r.p_value, f(&case["p_value"]));
    }
    check.finish();
}

#[test]
fn special_functions_match_scipy() {
    let fixtures = load("ab.json");
    let s = &fixtures["special"];
    let mut check = Check::default();
    for c in s["t_ppf"].as_array().unwrap() {
        let (p, df) = (f(&c["p"]), f(&c["df"]));
        check.stat(
            format!("t.ppf({p}, {df})"),
            special::t_ppf(p, df),
            f(&c["x"]),
        );
    }
    for c in s["t_sf"].as_array().unwrap() {
        let (t, df) = (f(&c["t"]), f(&c["df"]));
        check.p(
            format!("t.sf({t}, {df})"),
            special::t_sf(t, df),
            f(&c["sf"]),
        );
    }
    for c in s["chi2_sf"].as_array().unwrap() {
        let (x, df) = (f(&c["x"]), f(&c["df"]));
        check.p(
            format!("chi2.sf({x}, {df})"),
            special::chi2_sf(x, df),
            f(&c["sf"]),
        );
    }
    for c in s["norm_ppf"].as_array().unwrap() {
        let p = f(&c["p"]);
        check.stat(format!("norm.ppf({p})"), special::norm_ppf(p), f(&c["x"]));
    }
    check.finish();
}

#[test]
fn quality_matches_sklearn() {
    let fixtures = load("quality.json");
    let mut check = Check::default();
    let bools = |v: &Value| -> Vec<bool> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64() == Some(1))
            .collect()
    };
    let idx = |v: &Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    };
    for case in fixtures["binary"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (y, pred, scores) = (
            bools(&case["y_true"]),
            bools(&case["y_pred"]),
            floats(&case["scores"]),
        );
        let m = quality::binary_metrics(&y, &pred, Some(&scores)).unwrap();
        check.stat(format!("{name} accuracy"), m.accuracy, f(&case["accuracy"]));
        check.stat(
            format!("{name} precision"),
            m.precision,
            f(&case["precision"]),
        );
        check.stat(format!("{name} recall"), m.recall, f(&case["recall"]));
        check.stat(format!("{name} f1"), m.f1, f(&case["f1"]));
        check.stat(format!("{name} auc"), m.auc.unwrap(), f(&case["auc"]));
        check.stat(
            format!("{name} log loss"),
            m.log_loss.unwrap(),
            f(&case["log_loss"]),
        );
        let cm = &case["confusion"];
        check.exact(
            format!("{name} confusion"),
            [
                m.true_negatives,
                m.false_positives,
                m.false_negatives,
                m.true_positives,
            ],
            [
                cm[0][0].as_u64().unwrap(),
                cm[0][1].as_u64().unwrap(),
                cm[1][0].as_u64().unwrap(),
                cm[1][1].as_u64().unwrap(),
            ],
        );
    }
    for case in fixtures["multiclass"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let probs: Vec<Vec<f64>> = case["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(floats)
            .collect();
        let m =
            quality::multiclass_metrics(&idx(&case["y_true"]), &idx(&case["y_pred"]), Some(&probs))
                .unwrap();
        for (field, got) in [
            ("accuracy", m.accuracy),
            ("macro_precision", m.macro_precision),
            ("macro_recall", m.macro_recall),
            ("macro_f1", m.macro_f1),
            ("weighted_precision", m.weighted_precision),
            ("weighted_recall", m.weighted_recall),
            ("weighted_f1", m.weighted_f1),
            ("auc_ovr_macro", m.auc_ovr_macro.unwrap()),
            ("log_loss", m.log_loss.unwrap()),
        ] {
            check.stat(format!("{name} {field}"), got, f(&case[field]));
        }
    }
    for case in fixtures["regression"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let m = quality::regression_metrics(&floats(&case["y_true"]), &floats(&case["y_pred"]))
            .unwrap();
        check.stat(format!("{name} rmse"), m.rmse, f(&case["rmse"]));
        check.stat(format!("{name} mae"), m.mae, f(&case["mae"]));
        check.stat(format!("{name} r2"), m.r2, f(&case["r2"]));
    }
    check.finish();
}
