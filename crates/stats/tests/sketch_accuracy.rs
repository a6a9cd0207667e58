//! Error of drift computed from mergeable sketches against the exact tests, on a million
//! values per side: the documented bound is |D_sketch − D_exact| < 0.01 for the KS statistic.
//! Sketches are built the way the server builds them: per window, then merged.

use coreplex_stats::drift;
use coreplex_stats::sketch::NumericSketch;

fn normals(n: usize, seed: u64, loc: f64, scale: f64) -> Vec<f64> {
    let mut s = seed;
    let mut uniform = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            loc + scale * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect()
}

/// Build a sketch as ten windows merged together.
fn windowed_sketch(values: &[f64]) -> NumericSketch {
    let mut total = NumericSketch::new();
    for window in values.chunks(values.len() / 10) {
        let mut s = NumericSketch::new();
        window.iter().for_each(|&x| s.push(x));
        total.merge(&s);
    }
    total
}

#[test]
fn ks_and_psi_from_sketches_are_close_to_exact_on_a_million_values() {
    const N: usize = 1_000_000;
    let reference = normals(N, 1, 0.0, 1.0);
    let sref = windowed_sketch(&reference);
    assert_eq!(sref.count(), N as u64);
    // Small shift (the interesting regime for a drift alarm), no shift, and a scale change.
    for (seed, loc, scale) in [(2, 0.05, 1.0), (3, 0.0, 1.0), (4, 0.0, 1.3)] {
        let current = normals(N, seed, loc, scale);
        let scur = windowed_sketch(&current);
        let exact = drift::ks_2samp(&reference, &current).unwrap();
        let approx = drift::ks_from_sketches(&sref, &scur).unwrap();
        let error = (exact.statistic - approx.statistic).abs();
        eprintln!(
            "loc {loc} scale {scale}: D exact {:.5} sketch {:.5} |error| {error:.5}",
            exact.statistic, approx.statistic
        );
        assert!(error < 0.01, "KS statistic error {error}");
        let psi_exact = drift::psi_numeric(&reference, &current).unwrap();
        let psi_sketch = drift::psi_from_sketches(&sref, &scur).unwrap();
        eprintln!("  PSI exact {psi_exact:.5} sketch {psi_sketch:.5}");
        assert!((psi_exact - psi_sketch).abs() < 0.01 + 0.1 * psi_exact);
    }
    let json = serde_json::to_string(&sref).unwrap();
    eprintln!(
        "sketch of {N} values: {} retained, {} bytes of JSON",
        sref.retained(),
        json.len()
    );
    assert!(json.len() < 40_000);
}
