//! Compute-only timing of a drift report on data generated in memory (no CSV):
//! `cargo run --release -p coreplex-stats --example drift_compute -- 1000000`
//! 20 numeric columns (half shifted) and 5 categorical columns, both samples of N rows.

use coreplex_stats::drift::{DriftOptions, DriftReport, FeatureInput};
use coreplex_stats::sketch::CategoricalCounts;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut state: u64 = 17;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut column = |shift: f64| -> Vec<f64> {
        (0..n)
            .map(|_| {
                let x = (uniform() + uniform() + uniform() + uniform() - 2.0) * 1.7 + shift;
                // Six significant digits, like exported data.
                (x * 1e5).round() / 1e5
            })
            .collect()
    };
    let mut features = Vec::new();
    for i in 0..20 {
        let shift = if i < 10 { 0.5 } else { 0.0 };
        features.push(FeatureInput::Numeric {
            name: format!("num_{i}"),
            reference: column(0.0),
            current: column(shift),
        });
    }
    for i in 0..5 {
        let mut r = CategoricalCounts::new();
        let mut c = CategoricalCounts::new();
        for k in 0..(4 + 4 * i) {
            r.add(&format!("level_{k}"), (n / (4 + 4 * i)) as u64);
            c.add(
                &format!("level_{k}"),
                (n / (4 + 4 * i)) as u64 + if i < 3 { k as u64 * 50 } else { 0 },
            );
        }
        features.push(FeatureInput::Categorical {
            name: format!("cat_{i}"),
            reference: r,
            current: c,
        });
    }
    let started = Instant::now();
    let report = DriftReport::compute(features, &DriftOptions::default()).expect("valid options");
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{n} rows: compute {elapsed:.4}s, data_drift_score {:.2}",
        report.data_drift_score
    );
}
