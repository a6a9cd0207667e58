//! The trainer end to end: every family and task exported to ONNX and run through ONNX Runtime
//! (the server's runtime crate) against the trainer's own predictions; the budget; determinism;
//! cancellation; and the errors users see.

use coreplex_runtime::{LoadOptions, LoadedModel};
use coreplex_train::synthetic::mixed_table;
use coreplex_train::{
    run_experiment, Column, ColumnValues, Error, ExperimentConfig, Leaderboard, Predictions, Table,
    Task, TrainedModel,
};
use std::collections::BTreeSet;
use std::time::Instant;

fn config(task: Option<Task>, max_models: usize, secs: f64) -> ExperimentConfig {
    ExperimentConfig {
        target: "target".into(),
        task,
        max_models,
        max_runtime_secs: secs,
        stopping_metric: "AUTO".into(),
        seed: 42,
    }
}

fn quiet(_: f64, _: &str) -> bool {
    true
}

/// JSON rows as a client would send them: numbers (null when missing) and text ("" when missing).
fn rows(table: &Table, features: &[String]) -> Vec<serde_json::Map<String, serde_json::Value>> {
    (0..table.n_rows())
        .map(|r| {
            features
                .iter()
                .map(|f| {
                    let v = match &table.column(f).unwrap().values {
                        ColumnValues::Numeric(v) if v[r].is_nan() => serde_json::Value::Null,
                        ColumnValues::Numeric(v) => serde_json::json!(v[r]),
                        ColumnValues::Categorical(v) => {
                            serde_json::Value::String(v[r].clone().unwrap_or_default())
                        }
                    };
                    (f.clone(), v)
                })
                .collect()
        })
        .collect()
}

/// Scoring rows with unseen categories and missing values added to the usual ones.
fn scoring_table(task: Task) -> Table {
    let mut t = mixed_table(task, 300, 99);
    for c in &mut t.columns {
        match (&c.name[..], &mut c.values) {
            ("colour", ColumnValues::Categorical(v)) => {
                v[0] = Some("purple".into());
                v[1] = None;
            }
            ("x1", ColumnValues::Numeric(v)) => v[2] = f64::NAN,
            ("x3", ColumnValues::Numeric(v)) => v[3] = f64::NAN,
            ("size", ColumnValues::Categorical(v)) => v[4] = None,
            _ => {}
        }
    }
    t
}

fn assert_onnx_matches(model: &TrainedModel, table: &Table) {
    coreplex_runtime::init(None).expect("ONNX Runtime (scripts/fetch-onnxruntime.sh)");
    let loaded = LoadedModel::load(
        &model.onnx,
        &LoadOptions {
            class_labels: model.class_labels.clone(),
            feature_names: None,
            sessions: 1,
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", model.name));
    let served = loaded.predict(&rows(table, &model.feature_names)).unwrap();
    let native = model.predict(table).unwrap();
    match native {
        Predictions::Values(v) => {
            for (i, (p, want)) in served.iter().zip(&v).enumerate() {
                let got = p.value.unwrap();
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "{} row {i}: onnx {got} trainer {want}",
                    model.name
                );
            }
        }
        Predictions::Classes {
            labels,
            probabilities,
        } => {
            let classes = model.class_labels.as_ref().unwrap();
            for (i, p) in served.iter().enumerate() {
                let probs = p.probabilities.as_ref().unwrap();
                assert_eq!(probs.len(), classes.len());
                for (k, (name, got)) in probs.iter().enumerate() {
                    assert_eq!(name, &classes[k]);
                    let want = probabilities[i][k];
                    assert!(
                        (got - want).abs() <= 1e-5,
                        "{} row {i} class {name}: onnx {got} trainer {want}",
                        model.name
                    );
                }
                // Labels agree unless the top two probabilities tie within float precision.
                let mut sorted = probabilities[i].clone();
                sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
                if sorted[0] - sorted[1] > 1e-6 {
                    assert_eq!(
                        p.label.as_deref(),
                        Some(labels[i].as_str()),
                        "{} row {i}",
                        model.name
                    );
                }
            }
        }
    }
}

fn families(lb: &Leaderboard) -> BTreeSet<String> {
    lb.models.iter().map(|m| m.family.clone()).collect()
}

fn check_every_model(task: Task, n: usize) -> Leaderboard {
    let table = mixed_table(task, n, 7);
    let lb = run_experiment(&table, &config(None, 6, 0.0), &mut quiet).unwrap();
    assert_eq!(lb.task, task);
    assert_eq!(
        families(&lb),
        ["gbm", "glm", "rf", "stacked"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let names: BTreeSet<&str> = lb.models.iter().map(|m| m.name.as_str()).collect();
    for want in [
        "gbm_1",
        "gbm_2",
        "gbm_3",
        "glm_1",
        "rf_1",
        "xrt_1",
        "stacked_all",
        "stacked_best_of_family",
        "stacked_selection",
    ] {
        assert!(names.contains(want), "{want} missing from {names:?}");
    }
    let scoring = scoring_table(task);
    for m in &lb.models {
        assert!(!m.onnx.is_empty());
        assert!(
            m.metrics.values().all(|v| v.is_finite()),
            "{}: {:?}",
            m.name,
            m.metrics
        );
        assert_onnx_matches(m, &scoring);
    }
    // Best first by the ranking metric, except that a simpler kind of model (linear, then single
    // trees, then ensembles) may lead in place of a best model that beats it only within fold noise.
    let vals: Vec<f64> = lb.models.iter().map(|m| lb.rank_value(m)).collect();
    let hib = coreplex_train::higher_is_better(&lb.stopping_metric);
    let sorted = |v: &[f64]| {
        v.windows(2)
            .all(|w| if hib { w[0] >= w[1] } else { w[0] <= w[1] })
    };
    assert!(sorted(&vals[1..]), "{vals:?}");
    if !sorted(&vals) {
        let kind = |f: &str| {
            ["glm", "gbm", "stacked"]
                .iter()
                .position(|k| *k == f)
                .unwrap_or(1)
        };
        assert!(
            kind(&lb.models[0].family) < kind(&lb.models[1].family),
            "{} leads {}",
            lb.models[0].name,
            lb.models[1].name
        );
    }
    lb
}

#[test]
fn binary_models_of_every_family_serve_the_trainers_predictions() {
    let lb = check_every_model(Task::BinaryClassification, 800);
    assert_eq!(lb.stopping_metric, "auc");
    assert_eq!(lb.ranked_by, "cross_validation");
    assert!(lb.models.iter().all(|m| m.cv_metrics.is_some()));
    assert_eq!(
        lb.best().unwrap().class_labels.as_deref(),
        Some(&["no".to_string(), "yes".to_string()][..])
    );
    assert!(
        lb.best().unwrap().metrics["auc"] > 0.85,
        "{:?}",
        lb.best().unwrap().metrics
    );
}

#[test]
fn multiclass_models_of_every_family_serve_the_trainers_predictions() {
    let lb = check_every_model(Task::MulticlassClassification, 900);
    assert_eq!(lb.stopping_metric, "logloss");
    assert!(lb.best().unwrap().metrics["accuracy"] > 0.6);
}

#[test]
fn regression_models_of_every_family_serve_the_trainers_predictions() {
    let lb = check_every_model(Task::Regression, 800);
    assert_eq!(lb.stopping_metric, "rmse");
    assert!(
        lb.best().unwrap().metrics["r2"] > 0.7,
        "{:?}",
        lb.best().unwrap().metrics
    );
}

#[test]
fn large_data_blends_on_a_validation_split_and_still_matches() {
    let table = mixed_table(Task::BinaryClassification, 8000, 3);
    let lb = run_experiment(&table, &config(None, 3, 0.0), &mut quiet).unwrap();
    assert_eq!(lb.ranked_by, "holdout");
    assert_eq!(lb.holdout_rows, 800);
    assert!(lb.models.iter().all(|m| m.cv_metrics.is_none()));
    assert_eq!(lb.models.len(), 6);
    let scoring = scoring_table(Task::BinaryClassification);
    for m in &lb.models {
        assert_onnx_matches(m, &scoring);
    }
}

#[test]
fn the_time_budget_is_honoured_and_keeps_what_was_trained() {
    let table = mixed_table(Task::BinaryClassification, 30_000, 5);
    let started = Instant::now();
    let budget = 2.0;
    let lb = run_experiment(&table, &config(None, 0, budget), &mut quiet).unwrap();
    let took = started.elapsed().as_secs_f64();
    assert!(
        took < budget + 0.75,
        "took {took:.2} s for a {budget} s budget"
    );
    assert!(!lb.models.is_empty());
    assert!(lb.elapsed_secs <= took);
}

#[test]
fn a_tiny_budget_still_returns_a_model() {
    let table = mixed_table(Task::Regression, 20_000, 6);
    let started = Instant::now();
    let lb = run_experiment(&table, &config(None, 20, 0.2), &mut quiet).unwrap();
    assert!(started.elapsed().as_secs_f64() < 0.2 + 0.75);
    assert!(!lb.models.is_empty());
    assert_onnx_matches(&lb.models[0], &scoring_table(Task::Regression));
}

#[test]
fn the_same_seed_gives_the_same_leaderboard() {
    let table = mixed_table(Task::MulticlassClassification, 600, 8);
    let cfg = config(None, 4, 0.0);
    let a = run_experiment(&table, &cfg, &mut quiet).unwrap();
    let b = run_experiment(&table, &cfg, &mut quiet).unwrap();
    let summary = |lb: &Leaderboard| -> Vec<(String, Vec<(String, f64)>)> {
        lb.models
            .iter()
            .map(|m| (m.name.clone(), m.metrics.clone().into_iter().collect()))
            .collect()
    };
    assert_eq!(summary(&a), summary(&b));
    assert_eq!(a.models[0].onnx, b.models[0].onnx);
    let c = run_experiment(&table, &ExperimentConfig { seed: 43, ..cfg }, &mut quiet).unwrap();
    assert_ne!(summary(&a), summary(&c));
}

#[test]
fn progress_is_reported_and_cancellation_stops_the_experiment() {
    let table = mixed_table(Task::BinaryClassification, 400, 9);
    let mut seen = Vec::new();
    run_experiment(&table, &config(None, 2, 0.0), &mut |f, msg| {
        seen.push((f, msg.to_string()));
        true
    })
    .unwrap();
    assert!(
        seen.iter().any(|(_, m)| m.starts_with("trained gbm_1")),
        "{seen:?}"
    );
    assert_eq!(seen.last().unwrap().0, 1.0);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    let mut calls = 0;
    let err = run_experiment(&table, &config(None, 5, 0.0), &mut |_, _| {
        calls += 1;
        calls < 3
    })
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
}

#[test]
fn users_get_clear_errors() {
    let table = mixed_table(Task::BinaryClassification, 100, 1);
    let err = run_experiment(
        &table,
        &ExperimentConfig {
            target: "churn".into(),
            ..config(None, 2, 0.0)
        },
        &mut quiet,
    )
    .unwrap_err();
    assert!(matches!(err, Error::TargetMissing { .. }));
    assert!(
        err.to_string().contains("`churn`") && err.to_string().contains("`x1`"),
        "{err}"
    );

    let mut single = table.clone();
    single.columns.retain(|c| c.name != "target");
    single
        .columns
        .push(Column::categorical("target", vec![Some("yes"); 100]));
    let err = run_experiment(&single, &config(None, 2, 0.0), &mut quiet).unwrap_err();
    assert!(matches!(err, Error::SingleClass { .. }), "{err}");
    assert!(err.to_string().contains("only one class"), "{err}");

    let err = run_experiment(
        &table,
        &ExperimentConfig {
            stopping_metric: "RMSE".into(),
            ..config(None, 2, 0.0)
        },
        &mut quiet,
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnknownMetric { .. }));
    assert!(err.to_string().contains("auc"), "{err}");

    let small = mixed_table(Task::BinaryClassification, 12, 1);
    assert!(matches!(
        run_experiment(&small, &config(None, 2, 0.0), &mut quiet),
        Err(Error::TooFewRows { rows: 12, .. })
    ));

    assert!(matches!(
        run_experiment(&table, &config(None, 0, 0.0), &mut quiet),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn a_csv_file_trains_without_preprocessing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.csv");
    let table = mixed_table(Task::BinaryClassification, 300, 11);
    table.to_csv(std::fs::File::create(&path).unwrap()).unwrap();
    let read = Table::from_csv(&path).unwrap();
    assert!(matches!(
        read.column("colour").unwrap().values,
        ColumnValues::Categorical(_)
    ));
    assert!(matches!(
        read.column("x2").unwrap().values,
        ColumnValues::Numeric(_)
    ));
    let lb = run_experiment(
        &read,
        &ExperimentConfig {
            stopping_metric: "logloss".into(),
            ..config(None, 2, 0.0)
        },
        &mut quiet,
    )
    .unwrap();
    assert_eq!(lb.stopping_metric, "logloss");
    assert_eq!(
        lb.models[0].feature_names,
        vec!["x1", "x2", "x3", "x4", "colour", "size"]
    );
}

#[test]
fn results_can_move_to_another_thread() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Leaderboard>();
    send_sync::<TrainedModel>();
    send_sync::<ExperimentConfig>();
}
