//! Benchmark: drift of a window of 1,000,000 logged predictions × 20 features against a training
//! profile, the way a running server computes it (merge the window's bucket sketches from the
//! database, compare with the reference profile), next to exact two-sample tests on the raw values
//! measured in the same run. See bench/monitoring/README.md.

use coreplex_domain::dataset::{ColumnKind, ColumnSchema};
use coreplex_server::drift::{compare, BucketSketch, LiveSketches, Rule, BUCKET_MS};
use std::io::Write;
use std::time::Instant;

fn normal(state: &mut u64) -> f64 {
    // xorshift64* uniforms, Box–Muller: deterministic data without another dependency.
    let mut u = || {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        ((state.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let (a, b) = (u(), u());
    (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let features: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 42u64;

    // Reference: 100,000 training rows profiled like an uploaded dataset version.
    let ref_path = dir.path().join("train.csv");
    let mut reference: Vec<Vec<f64>> = (0..20).map(|_| Vec::with_capacity(100_000)).collect();
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&ref_path).unwrap());
        writeln!(w, "{}", features.join(",")).unwrap();
        for _ in 0..100_000 {
            let vals: Vec<f64> = (0..20).map(|_| normal(&mut seed)).collect();
            for (c, v) in vals.iter().enumerate() {
                reference[c].push(*v);
            }
            writeln!(
                w,
                "{}",
                vals.iter()
                    .map(|v| format!("{v:.6}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
            .unwrap();
        }
    }
    let columns: Vec<ColumnSchema> = features
        .iter()
        .map(|n| ColumnSchema {
            name: n.clone(),
            kind: ColumnKind::Numeric,
        })
        .collect();
    let profile = coreplex_server::ingest::profile(&ref_path, &columns, 100_000, |_| true)
        .unwrap()
        .unwrap();

    // The window: `rows` predictions over one hour, half of the features shifted by half a standard
    // deviation (PSI ≈ 0.25: drifted), half not.
    let store = coreplex_store::Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("db.sqlite").display()
    ))
    .await
    .unwrap();
    let mut current: Vec<Vec<f64>> = (0..20).map(|_| Vec::with_capacity(rows)).collect();
    let mut live = LiveSketches::default();
    let t0 = 1_795_600_000_000i64;
    let ingest = Instant::now();
    let mut row = serde_json::Map::new();
    for i in 0..rows {
        for (c, name) in features.iter().enumerate() {
            let v = normal(&mut seed) + if c % 2 == 0 { 0.5 } else { 0.0 };
            current[c].push(v);
            row.insert(name.clone(), serde_json::json!(v));
        }
        let encoded = coreplex_store::features_codec::encode(&row);
        live.add(
            "dep_bench",
            t0 + (i as i64 * 3_600_000 / rows as i64),
            &encoded,
        );
    }
    let ingest_s = ingest.elapsed().as_secs_f64();
    live.save(&store, "bench", t0 + 3_600_000).await;

    // What GET /deployments/{id}/drift does for that hour.
    let query = Instant::now();
    let mut merged = BucketSketch::default();
    for (_, _, text) in store
        .feature_sketches("dep_bench", t0 - BUCKET_MS, t0 + 3_600_001)
        .await
        .unwrap()
    {
        merged.merge(&serde_json::from_str::<BucketSketch>(&text).unwrap());
    }
    let report = compare(&profile, &merged, &features, Rule::default());
    let query_s = query.elapsed().as_secs_f64();

    // Baseline measured in the same run: exact KS and PSI on the raw values.
    let exact = Instant::now();
    let mut exact_drifted = 0;
    for c in 0..20 {
        let ks = coreplex_stats::drift::ks_2samp(&reference[c], &current[c]).unwrap();
        let psi = coreplex_stats::drift::psi_numeric(&reference[c], &current[c]).unwrap();
        exact_drifted += (ks.p_value < 0.05 && psi >= 0.1) as usize;
    }
    let exact_s = exact.elapsed().as_secs_f64();
    let out = serde_json::json!({
        "rows": rows, "features": 20,
        "drift_query_s": query_s, "target_s": 2.0, "meets_target": query_s < 2.0,
        "exact_tests_s": exact_s, "speedup_vs_exact": exact_s / query_s,
        "ingest_s": ingest_s, "ingest_us_per_row": ingest_s * 1e6 / rows as f64,
        "features_drifted_sketch": report["features_drifted"], "features_drifted_exact": exact_drifted,
        "data_drift_score": report["data_drift_score"], "current_rows_seen": report["current_rows"],
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
