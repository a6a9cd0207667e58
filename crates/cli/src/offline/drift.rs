//! `coreplex drift`: drift report between two CSV files (SPEC §10), every column compared
//! with the tests of SPEC §6.
//!
//! Column types are inferred: a column is numeric when every non-missing value in both files
//! is a number, categorical otherwise; `--categorical` and `--numeric` force a type. Only
//! columns present in both files are compared, in the reference file's order.

use super::csv_columns::{ColumnData, Columns, Kind, Plan, Source};
use super::{check_unit, finish, input_error, json_text, num, Format, InputError};
use clap::Args;
use coreplex_stats::drift::{DriftOptions, DriftReport, FeatureInput, FeatureKind};
use coreplex_stats::sample::{SampleBuilder, SamplePart};
use coreplex_stats::sketch::CategoricalCounts;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// `coreplex drift`
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Reference CSV file (e.g. the training data).
    #[arg(long)]
    pub reference: PathBuf,
    /// Current CSV file (e.g. recent production inputs).
    #[arg(long)]
    pub current: PathBuf,
    /// Columns to treat as categorical, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub categorical: Vec<String>,
    /// Columns that must be numeric, comma-separated: a non-numeric value is an error.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub numeric: Vec<String>,
    /// Columns to leave out, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub exclude: Vec<String>,
    /// Significance level of the tests.
    #[arg(long, default_value_t = coreplex_stats::drift::DEFAULT_ALPHA)]
    pub alpha: f64,
    /// PSI from which a change counts as practically significant.
    #[arg(long, default_value_t = coreplex_stats::drift::DEFAULT_PSI_THRESHOLD)]
    pub psi_threshold: f64,
    /// Output format (default: table on a terminal, JSON otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Print the time spent reading and computing to stderr.
    #[arg(long)]
    pub timing: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run_drift(args: DriftArgs) -> ExitCode {
    finish(drift(args))
}

/// A compared column: its name and where it sits in each file.
struct Feature {
    name: String,
    reference_field: usize,
    current_field: usize,
    kind: Kind,
}

fn drift(args: DriftArgs) -> Result<String, InputError> {
    check_unit("--alpha", args.alpha)?;
    if !(args.psi_threshold.is_finite() && args.psi_threshold >= 0.0) {
        return Err(input_error(format!(
            "--psi-threshold must be a non-negative number, got {}",
            args.psi_threshold
        )));
    }
    if args.threads == Some(0) {
        return Err(input_error("--threads must be at least 1"));
    }
    let options = DriftOptions {
        alpha: args.alpha,
        psi_threshold: args.psi_threshold,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();

    let reference = Source::open(&args.reference)?;
    let current = Source::open(&args.current)?;
    let mut features = plan_features(&args, &reference, &current)?;

    let (ref_plans, cur_plans) = plans(&features);
    let mut ref_columns = reference.read(&ref_plans, threads)?;
    let mut cur_columns = current.read(&cur_plans, threads)?;
    for (source, columns) in [(&reference, &ref_columns), (&current, &cur_columns)] {
        if columns.rows == 0 {
            return Err(input_error(format!(
                "{} has a header but no data rows",
                source.path.display()
            )));
        }
    }

    // Columns guessed numeric from the first rows that hold text further down are re-read as
    // categorical (both files, only those columns).
    let demoted: Vec<usize> = (0..features.len())
        .filter(|&i| non_numeric(&ref_columns.columns[i]) || non_numeric(&cur_columns.columns[i]))
        .collect();
    if !demoted.is_empty() {
        for &i in &demoted {
            features[i].kind = Kind::Categorical;
        }
        let subset: Vec<&Feature> = demoted.iter().map(|&i| &features[i]).collect();
        let (rp, cp) = plans_of(&subset);
        let r = reference.read(&rp, threads)?;
        let c = current.read(&cp, threads)?;
        for ((&i, rc), cc) in demoted.iter().zip(r.columns).zip(c.columns) {
            ref_columns.columns[i] = rc;
            cur_columns.columns[i] = cc;
        }
    }
    let read_done = Instant::now();

    let inputs = features_input(&features, ref_columns, cur_columns);
    let report = DriftReport::compute_with_threads(inputs, &options, threads)?;
    let computed = Instant::now();
    if args.timing {
        eprintln!(
            "timing: read+parse {:.3}s, compute {:.3}s, total {:.3}s",
            (read_done - started).as_secs_f64(),
            (computed - read_done).as_secs_f64(),
            (computed - started).as_secs_f64()
        );
    }
    Ok(match Format::resolve(args.format) {
        Format::Json => json_text(&report),
        Format::Table => table(&report),
    })
}

fn non_numeric(column: &ColumnData) -> bool {
    matches!(
        column,
        ColumnData::Numeric {
            non_numeric: Some(_),
            ..
        }
    )
}

/// Decide which columns to compare and how to read each.
fn plan_features(
    args: &DriftArgs,
    reference: &Source,
    current: &Source,
) -> Result<Vec<Feature>, InputError> {
    let position = |source: &Source, name: &str| source.header.iter().position(|h| h == name);
    for (flag, names) in [
        ("--categorical", &args.categorical),
        ("--numeric", &args.numeric),
        ("--exclude", &args.exclude),
    ] {
        for name in names.iter().filter(|n| !n.is_empty()) {
            for source in [reference, current] {
                if position(source, name).is_none() {
                    return Err(input_error(format!(
                        "unknown column '{name}' in {flag}: {} has columns {}",
                        source.path.display(),
                        list(&source.header)
                    )));
                }
            }
        }
    }
    if let Some(both) = args.categorical.iter().find(|c| args.numeric.contains(c)) {
        return Err(input_error(format!(
            "column '{both}' is in both --categorical and --numeric"
        )));
    }
    let ref_text = reference.sample_non_numeric();
    let cur_text = current.sample_non_numeric();
    let mut features = Vec::new();
    for (reference_field, name) in reference.header.iter().enumerate() {
        if args.exclude.contains(name) {
            continue;
        }
        let Some(current_field) = position(current, name) else {
            continue;
        };
        let kind = if args.categorical.contains(name) {
            Kind::Categorical
        } else if args.numeric.contains(name) {
            Kind::Numeric { strict: true }
        } else if ref_text[reference_field] || cur_text[current_field] {
            Kind::Categorical
        } else {
            Kind::Numeric { strict: false }
        };
        features.push(Feature {
            name: name.clone(),
            reference_field,
            current_field,
            kind,
        });
    }
    if features.is_empty() {
        return Err(input_error(format!(
            "no column to compare: {} and {} share no column names",
            reference.path.display(),
            current.path.display()
        )));
    }
    Ok(features)
}

fn plans(features: &[Feature]) -> (Vec<Plan>, Vec<Plan>) {
    let refs: Vec<&Feature> = features.iter().collect();
    plans_of(&refs)
}

fn plans_of(features: &[&Feature]) -> (Vec<Plan>, Vec<Plan>) {
    let r = features
        .iter()
        .map(|f| Plan {
            field: f.reference_field,
            kind: f.kind,
            name_index: f.reference_field,
        })
        .collect();
    let c = features
        .iter()
        .map(|f| Plan {
            field: f.current_field,
            kind: f.kind,
            name_index: f.current_field,
        })
        .collect();
    (r, c)
}

fn features_input(features: &[Feature], reference: Columns, current: Columns) -> Vec<FeatureInput> {
    features
        .iter()
        .zip(reference.columns.into_iter().zip(current.columns))
        .map(|(f, (r, c))| match (r, c) {
            (
                ColumnData::Numeric {
                    piece: rv,
                    more: rmore,
                    missing: rm,
                    ..
                },
                ColumnData::Numeric {
                    piece: cv,
                    more: cmore,
                    missing: cm,
                    ..
                },
            ) => {
                // The pieces of every parsing thread, and the missing values.
                let pieces = |first: SampleBuilder, more: Vec<SamplePart>, missing: u64| {
                    let mut parts = vec![first.finish()];
                    parts.extend(more);
                    parts.push(SamplePart::Missing(missing as usize));
                    parts
                };
                FeatureInput::NumericParts {
                    name: f.name.clone(),
                    reference: pieces(rv, rmore, rm),
                    current: pieces(cv, cmore, cm),
                }
            }
            (
                ColumnData::Categorical {
                    counts: rc,
                    missing: rm,
                },
                ColumnData::Categorical {
                    counts: cc,
                    missing: cm,
                },
            ) => FeatureInput::Categorical {
                name: f.name.clone(),
                reference: to_counts(rc, rm),
                current: to_counts(cc, cm),
            },
            _ => unreachable!("both files are read with the same kinds"),
        })
        .collect()
}

/// Exact counts (no category cap: this is an offline report, not a stored profile).
fn to_counts(map: super::csv_columns::CategoryMap, missing: u64) -> CategoricalCounts {
    let counts: BTreeMap<String, u64> = map
        .into_iter()
        .map(|(k, n)| (String::from_utf8_lossy(&k).into_owned(), n))
        .fold(BTreeMap::new(), |mut acc, (k, n)| {
            *acc.entry(k).or_insert(0) += n;
            acc
        });
    CategoricalCounts { counts, missing }
}

fn list(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut s = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

/// Human-readable report.
fn table(report: &DriftReport) -> String {
    let header = [
        "feature",
        "kind",
        "test",
        "statistic",
        "p-value",
        "psi",
        "wass.norm",
        "js",
        "missing ref",
        "missing cur",
        "drifted",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for f in &report.features {
        let (test, stat, p) = match f.kind {
            FeatureKind::Numeric => ("KS", f.ks_statistic, f.ks_p_value),
            FeatureKind::Categorical => ("chi2", f.chi2_statistic, f.chi2_p_value),
        };
        rows.push(vec![
            f.name.clone(),
            match f.kind {
                FeatureKind::Numeric => "numeric".into(),
                FeatureKind::Categorical => "categorical".into(),
            },
            test.into(),
            num(stat),
            num(p),
            num(f.psi),
            num(f.wasserstein_normed),
            num(f.jensen_shannon_distance),
            format!("{:.1}%", 100.0 * f.missing_share_reference),
            format!("{:.1}%", 100.0 * f.missing_share_current),
            if f.drifted {
                "DRIFT".into()
            } else {
                "no".into()
            },
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < 3 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "\ndata_drift_score {:.4}: {} of {} features drifted (p < {} and psi >= {})\n",
        report.data_drift_score,
        report.drifted_features,
        report.features.len(),
        report.alpha,
        report.psi_threshold
    ));
    out
}
