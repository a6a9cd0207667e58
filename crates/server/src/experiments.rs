//! AutoML experiments as durable background jobs: read the dataset version, run the trainer within
//! its budget (progress and cancellation through the job's heartbeat), and register every trained
//! model as a `candidate` with its full lineage. Retraining starts experiments through the same path.

use crate::error::{ApiError, ApiResult};
use crate::routes::models::{register_bytes, Lineage, RegisterModel};
use crate::state::AppState;
use crate::worker::{JobCtx, JobError};
use coreplex_domain::ids;
use coreplex_domain::registry::Task;
use coreplex_store::{Ctx, DatasetVersion, Experiment, NewJob};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

pub const JOB_KIND: &str = "experiment.train";

/// What to train.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentSpec {
    pub name: String,
    pub target: String,
    pub task: Option<Task>,
    pub max_models: usize,
    pub max_runtime_secs: f64,
    pub stopping_metric: String,
    pub seed: u64,
    /// Registry name for the trained models.
    pub model_name: String,
    /// The model this experiment retrains, if any (lineage).
    pub parent_model_id: Option<String>,
    /// How the models came to be (lineage `source`), e.g. `experiment:exp_…` or `retraining:pol_…`.
    pub source: Option<String>,
    /// Who registers the models in the audit log.
    pub actor: String,
}

/// Checks `spec` against the dataset version, stores the experiment and queues its job.
pub async fn start(
    state: &AppState,
    ctx: &Ctx,
    dv: &DatasetVersion,
    spec: ExperimentSpec,
) -> ApiResult<Experiment> {
    let columns: Vec<String> = dv
        .columns
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|x| x["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !columns.contains(&spec.target) {
        return Err(ApiError::invalid(
            "target",
            format!(
                "no column `{}` in the dataset; its columns are {}",
                spec.target,
                columns.join(", ")
            ),
        ));
    }
    if dv.status == "failed" {
        return Err(ApiError::invalid(
            "dataset_version_id",
            format!("dataset version {} failed to profile", dv.id),
        ));
    }
    if spec.max_models > 500 {
        return Err(ApiError::invalid("max_models", "at most 500"));
    }
    if !(spec.max_runtime_secs.is_finite()
        && spec.max_runtime_secs > 0.0
        && spec.max_runtime_secs <= 86_400.0)
    {
        return Err(ApiError::invalid(
            "max_runtime_secs",
            "a positive number of seconds, at most 86400",
        ));
    }
    if let Some(task) = spec.task {
        coreplex_train::canonical_metric(&spec.stopping_metric, task)
            .map_err(|e| ApiError::invalid("stopping_metric", e))?;
    } else {
        let ok = [
            Task::BinaryClassification,
            Task::Regression,
            Task::MulticlassClassification,
        ]
        .iter()
        .any(|t| coreplex_train::canonical_metric(&spec.stopping_metric, *t).is_ok());
        if !ok {
            return Err(ApiError::invalid(
                "stopping_metric",
                format!("unknown metric `{}`", spec.stopping_metric),
            ));
        }
    }
    let id = ids::new_id("exp");
    let job_id = ids::new_id(ids::JOB);
    let e = Experiment {
        id: id.clone(),
        project_id: dv.project_id.clone(),
        name: spec.name.clone(),
        dataset_version_id: dv.id.clone(),
        config: serde_json::to_value(&spec).map_err(ApiError::internal)?,
        status: "queued".into(),
        job_id: job_id.clone(),
        leaderboard: serde_json::Value::Null,
        best_model_id: None,
        error: None,
        created_at: ctx.at,
        created_by: ctx.actor.clone(),
        updated_at: ctx.at,
    };
    state.store.create_experiment(ctx, &e).await?;
    state
        .store
        .enqueue_job(
            ctx,
            &NewJob {
                id: job_id,
                project_id: dv.project_id.clone(),
                kind: JOB_KIND.into(),
                payload: json!({"experiment_id": id}),
                max_attempts: 2,
                run_after: ctx.at,
            },
        )
        .await?;
    Ok(e)
}

/// Marks the experiment failed with `msg` and returns the job error.
async fn fail(state: &AppState, sys: &Ctx, id: &str, msg: String) -> JobError {
    let c = Ctx {
        at: state.now(),
        ..sys.clone()
    };
    let _ = state
        .store
        .update_experiment(&c, id, "failed", None, None, Some(&msg))
        .await;
    JobError::permanent(msg)
}

/// Seconds of an experiment's budget kept for registering its models after training.
fn registration_reserve(budget: f64) -> f64 {
    (budget * 0.15).clamp(1.0, 120.0)
}

/// How far past its budget an experiment may end (the "small margin").
fn budget_margin(budget: f64) -> f64 {
    (budget * 0.05).clamp(2.0, 60.0)
}

/// The job: train, register, record the leaderboard.
pub(crate) async fn run_job(ctx: &JobCtx) -> Result<serde_json::Value, JobError> {
    let state = &ctx.state;
    // The budget covers the whole experiment: reading the data, training and registering.
    let started = std::time::Instant::now();
    let id = ctx.job.payload["experiment_id"]
        .as_str()
        .ok_or_else(|| JobError::permanent("payload has no experiment_id"))?
        .to_string();
    let e = state
        .store
        .get_experiment_any(&id)
        .await
        .map_err(JobError::transient)?
        .ok_or_else(|| JobError::permanent(format!("experiment {id} no longer exists")))?;
    let spec: ExperimentSpec =
        serde_json::from_value(e.config.clone()).map_err(|x| JobError::permanent(x.to_string()))?;
    let sys = Ctx {
        org_id: ctx.job.org_id.clone(),
        actor: spec.actor.clone(),
        at: state.now(),
    };
    let dv = match state
        .store
        .get_dataset_version_any(&e.dataset_version_id)
        .await
        .map_err(JobError::transient)?
    {
        Some(v) => v,
        None => {
            return Err(fail(
                state,
                &sys,
                &id,
                format!("dataset version {} no longer exists", e.dataset_version_id),
            )
            .await)
        }
    };
    state
        .store
        .update_experiment(&sys, &id, "running", None, None, None)
        .await
        .map_err(JobError::transient)?;
    let path = state.artifacts.path(&dv.artifact_key);
    let cfg = coreplex_train::ExperimentConfig {
        target: spec.target.clone(),
        task: spec.task,
        max_models: spec.max_models,
        max_runtime_secs: spec.max_runtime_secs,
        stopping_metric: spec.stopping_metric.clone(),
        seed: spec.seed,
    };
    let job = ctx.clone();
    let budget = spec.max_runtime_secs;
    let trained = tokio::task::spawn_blocking(move || {
        let table = coreplex_train::Table::from_csv(&path)?;
        // Training gets what is left after reading, less a reserve for registering the models
        // (each is written, loaded by ONNX Runtime and checked).
        let mut cfg = cfg;
        cfg.max_runtime_secs =
            (budget - started.elapsed().as_secs_f64() - registration_reserve(budget))
                .max(budget * 0.5);
        coreplex_train::run_experiment(&table, &cfg, &mut |share, msg| {
            job.progress_blocking(share * 0.9, msg).is_ok()
        })
    })
    .await
    .map_err(JobError::transient)?;
    let board = match trained {
        Ok(b) => b,
        Err(coreplex_train::Error::Cancelled) => {
            let _ = state
                .store
                .update_experiment(
                    &Ctx {
                        at: state.now(),
                        ..sys.clone()
                    },
                    &id,
                    "cancelled",
                    None,
                    None,
                    Some("cancelled on request"),
                )
                .await;
            return Err(JobError::Cancelled);
        }
        Err(err) => return Err(fail(state, &sys, &id, err.to_string()).await),
    };
    ctx.progress(0.92, "registering models").await?;
    let task = board.task;
    let mut rows = Vec::new();
    let mut best = None;
    let deadline = budget + budget_margin(budget);
    let mut unregistered = Vec::new();
    for (rank, m) in board.models.iter().enumerate() {
        // The best model is always registered; past the budget the rest are left out (and listed),
        // so that the experiment ends within its budget keeping the best found.
        if rank > 0 && started.elapsed().as_secs_f64() > deadline {
            unregistered.push(
                json!({"name": m.name, "family": m.family, "metrics": m.metrics,
                "reason": "the time budget ran out before it was registered"}),
            );
            continue;
        }
        let mut tags = BTreeMap::new();
        tags.insert("experiment".to_string(), id.clone());
        tags.insert("family".to_string(), m.family.clone());
        tags.insert("leaderboard_rank".to_string(), (rank + 1).to_string());
        let meta = RegisterModel {
            name: spec.model_name.clone(),
            task: task.as_str().to_string(),
            model_card: format!(
                "{} ({}) trained by experiment {id} on dataset version {}",
                m.name, m.family, dv.id
            ),
            tags,
            lineage: Lineage {
                dataset_version_id: Some(dv.id.clone()),
                experiment: Some(
                    json!({"experiment_id": id, "target": spec.target, "max_models": spec.max_models,
                    "max_runtime_secs": spec.max_runtime_secs, "stopping_metric": spec.stopping_metric, "seed": spec.seed,
                    "ranked_by": board.ranked_by, "model": m.name}),
                ),
                hyperparameters: Some(m.hyperparameters.clone()),
                validation_metrics: Some(m.metrics.clone()),
                training_duration_secs: Some(m.training_secs),
                parent_model_id: spec.parent_model_id.clone(),
                source: Some(
                    spec.source
                        .clone()
                        .unwrap_or_else(|| format!("experiment:{id}")),
                ),
            },
            feature_names: None,
            class_labels: m.class_labels.clone(),
            input_example: None,
        };
        let c = Ctx {
            at: state.now(),
            ..sys.clone()
        };
        let model = match register_bytes(state, &c, &e.project_id, meta, m.onnx.clone()).await {
            Ok(model) => model,
            Err(err) => {
                return Err(fail(
                    state,
                    &sys,
                    &id,
                    format!("registering {} failed: {}", m.name, err.message),
                )
                .await)
            }
        };
        if rank == 0 {
            best = Some(model.id.clone());
        }
        rows.push(json!({"rank": rank + 1, "model_id": model.id, "name": m.name, "family": m.family,
            "metrics": m.metrics, "cv_metrics": m.cv_metrics, "hyperparameters": m.hyperparameters, "training_secs": m.training_secs}));
    }
    let leaderboard = json!({
        "task": task.as_str(), "stopping_metric": board.stopping_metric, "ranked_by": board.ranked_by,
        "train_rows": board.train_rows, "holdout_rows": board.holdout_rows, "elapsed_secs": board.elapsed_secs,
        "ignored_columns": board.ignored_columns.iter().map(|c| json!({"name": c.name, "reason": c.reason})).collect::<Vec<_>>(),
        "models": rows,
        "unregistered": unregistered,
        "experiment_secs": started.elapsed().as_secs_f64(),
    });
    if !unregistered.is_empty() {
        tracing::info!(experiment = %id, left_out = unregistered.len(), "the budget ran out during registration");
    }
    state
        .store
        .update_experiment(
            &Ctx {
                at: state.now(),
                ..sys.clone()
            },
            &id,
            "succeeded",
            Some(&leaderboard),
            best.as_deref(),
            None,
        )
        .await
        .map_err(JobError::transient)?;
    Ok(json!({"experiment_id": id, "best_model_id": best, "models": board.models.len()}))
}
