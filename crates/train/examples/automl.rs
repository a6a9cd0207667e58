//! Runs an experiment on a CSV file and prints the leaderboard as JSON; with `--test FILE` it also
//! scores the best model on a second CSV. Used by `bench/train`.
//!
//! cargo run --release -p coreplex-train --example automl -- train.csv --target y \
//!     [--test test.csv] [--max-models 20] [--max-runtime-secs 60] [--metric AUC] [--seed 1] [--task …]

use coreplex_train::{run_experiment, ColumnValues, ExperimentConfig, Predictions, Table, Task};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    // `RUST_LOG=coreplex_train=debug` shows per-model timings.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut train = None;
    let mut cfg = ExperimentConfig::new("");
    let mut test: Option<PathBuf> = None;
    let mut i = 0;
    while i < args.len() {
        let v = || args.get(i + 1).cloned().expect("a value after the flag");
        match args[i].as_str() {
            "--target" => cfg.target = v(),
            "--test" => test = Some(v().into()),
            "--max-models" => cfg.max_models = v().parse().expect("a count"),
            "--max-runtime-secs" => cfg.max_runtime_secs = v().parse().expect("seconds"),
            "--metric" => cfg.stopping_metric = v(),
            "--seed" => cfg.seed = v().parse().expect("a seed"),
            "--task" => cfg.task = Some(Task::parse("task", &v()).expect("a task")),
            other if train.is_none() => {
                train = Some(PathBuf::from(other));
                i += 1;
                continue;
            }
            other => panic!("unexpected argument {other}"),
        }
        i += 2;
    }
    let t0 = Instant::now();
    let train = train.expect("a training CSV");
    // `synthetic:<task>:<rows>:<seed>` trains on the crate's seeded synthetic table instead of a file.
    let table = match train.to_str().and_then(|s| s.strip_prefix("synthetic:")) {
        Some(spec) => {
            let p: Vec<&str> = spec.split(':').collect();
            let task = Task::parse("task", p[0]).expect("a task");
            coreplex_train::synthetic::mixed_table(
                task,
                p[1].parse().unwrap(),
                p[2].parse().unwrap(),
            )
        }
        None => Table::from_csv(&train).unwrap_or_else(|e| panic!("{e}")),
    };
    let read_secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let lb = run_experiment(&table, &cfg, &mut |f, msg| {
        eprintln!(
            "[{:5.1}s {:3.0}%] {msg}",
            t1.elapsed().as_secs_f64(),
            f * 100.0
        );
        true
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let train_secs = t1.elapsed().as_secs_f64();
    let mut out = serde_json::json!({
        "read_secs": read_secs,
        "train_secs": train_secs,
        "task": lb.task.as_str(),
        "stopping_metric": lb.stopping_metric,
        "ranked_by": lb.ranked_by,
        "leaderboard": lb.models.iter().map(|m| serde_json::json!({
            "name": m.name, "metrics": m.metrics, "cv_metrics": m.cv_metrics,
            "training_secs": m.training_secs, "onnx_bytes": m.onnx.len(),
            "hyperparameters": m.hyperparameters,
        })).collect::<Vec<_>>(),
    });
    if let Some(test) = test {
        let t = Table::from_csv(&test).unwrap_or_else(|e| panic!("{e}"));
        let best = lb.best().expect("a model");
        let target = t
            .column(&cfg.target)
            .expect("the target in the test file")
            .values
            .clone();
        let pred = best.predict(&t).unwrap_or_else(|e| panic!("{e}"));
        // Write the best model's test predictions for the benchmark to score with scikit-learn.
        let values: Vec<f64> = match &pred {
            Predictions::Values(v) => v.clone(),
            Predictions::Classes { probabilities, .. } if probabilities[0].len() == 2 => {
                probabilities.iter().map(|p| p[1]).collect()
            }
            Predictions::Classes { labels, .. } => labels
                .iter()
                .map(|l| l.parse().unwrap_or(f64::NAN))
                .collect(),
        };
        let _ = target;
        out["best"] = serde_json::json!(best.name);
        if std::env::var("AUTOML_ALL_TEST").is_ok() {
            let all: serde_json::Map<String, serde_json::Value> = lb
                .models
                .iter()
                .map(|m| {
                    let v: Vec<f64> = match m.predict(&t).unwrap() {
                        Predictions::Values(v) => v,
                        Predictions::Classes { probabilities, .. } => {
                            probabilities.iter().map(|p| p[p.len() - 1]).collect()
                        }
                    };
                    (m.name.clone(), serde_json::json!(v))
                })
                .collect();
            out["all_test_predictions"] = serde_json::Value::Object(all);
        }
        out["test_predictions"] = serde_json::json!(values);
        if let ColumnValues::Numeric(_) = table.column(&cfg.target).unwrap().values {}
        std::fs::write(
            std::env::var("AUTOML_ONNX_OUT").unwrap_or_else(|_| "/dev/null".into()),
            &best.onnx,
        )
        .ok();
    }
    println!("{}", serde_json::to_string(&out).unwrap());
}
