//! Automatic retraining: policies on a deployment whose triggers (drift, a UTC schedule, or degraded
//! quality from delayed labels) start a training run, and the pipeline that takes the run's best
//! model from `candidate` to production.
//!
//! Pipeline, one scheduler tick at a time (every step an audit entry by `system:retraining:<policy>`):
//! trigger → training data (the model's dataset, latest version, optionally joined with labelled
//! production traffic as a new dataset version) → experiment job → compare the best candidate with the
//! production model on the same holdout rows and on recent labelled traffic → if at least as good and
//! `auto_promote`, roll it out through the deployment's own strategy (the rollout makes it production
//! and archives the parent); otherwise archive it (worse) or leave it for review (no auto-promote),
//! notifying the deployment's alert channels.

use crate::error::{ApiError, ApiResult};
use crate::experiments::{self, ExperimentSpec};
use crate::monitoring;
use crate::rollouts;
use crate::serving;
use crate::state::AppState;
use coreplex_domain::ids;
use coreplex_domain::registry::{ModelStatus, Task};
use coreplex_domain::retraining::{Schedule, Trigger};
use coreplex_domain::rollout::{QualityMetric, Strategy};
use coreplex_store::{
    Ctx, Deployment, Model, NewDatasetVersion, NewJob, Policy, PredictionRow, RetrainingRun,
};
use serde_json::json;

fn actor(p: &str) -> String {
    format!("system:retraining:{p}")
}

async fn org_of(state: &AppState, project_id: &str) -> String {
    state
        .store
        .org_of_project(project_id)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The quality metric named by a training config's stopping metric (AUC → auc, RMSE → rmse …).
pub fn gate_metric(stopping: &str, task: Task) -> QualityMetric {
    QualityMetric::parse(
        "metric",
        match stopping.to_ascii_lowercase().as_str() {
            "logloss" => "log_loss",
            "auto" | "" => {
                if task.is_classification() {
                    "auc"
                } else {
                    "rmse"
                }
            }
            "mean_per_class_error" | "aucpr" => "auc",
            "mse" => "rmse",
            other => {
                if other.is_empty() {
                    "auc"
                } else {
                    other
                }
            }
        },
    )
    .unwrap_or(QualityMetric::default_for(task))
}

/// The target column a retraining of `model` predicts: the policy's, or the one the model was trained on.
pub fn target_of(policy_config: &serde_json::Value, model: &Model) -> Option<String> {
    policy_config["target"]
        .as_str()
        .or_else(|| model.lineage["experiment"]["target"].as_str())
        .map(str::to_string)
}

/// Runs the retraining controllers once: moves active runs forward, then evaluates triggers.
pub async fn tick(state: &AppState) -> coreplex_store::Result<()> {
    for run in state.store.active_runs().await? {
        if let Err(e) = advance(state, &run).await {
            tracing::warn!(run = %run.id, error = %e.message, "retraining run");
        }
    }
    let now = state.now();
    for p in state.store.enabled_policies().await? {
        if let Err(e) = evaluate(state, &p, now).await {
            tracing::warn!(policy = %p.id, error = %e.message, "retraining trigger");
        }
    }
    Ok(())
}

/// Checks a policy's trigger; starts a run when it fires.
async fn evaluate(state: &AppState, p: &Policy, now: i64) -> ApiResult<()> {
    let runs = state.store.list_runs(&p.id).await?;
    if runs
        .iter()
        .any(|r| coreplex_store::ACTIVE_RUN_STATUSES.contains(&r.status.as_str()))
    {
        return Ok(()); // never two runs of one policy at once
    }
    let cooldown = p.config["cooldown_minutes"].as_i64().unwrap_or(60) * 60_000;
    let Some(d) = state.store.get_deployment_any(&p.deployment_id).await? else {
        return Ok(());
    };
    let trigger = Trigger::parse("trigger", &p.trigger)?;
    let fired: Option<(String, Option<f64>)> = match trigger {
        Trigger::Schedule => match p.next_run_at {
            Some(t) if t <= now => Some((
                format!("scheduled run due at {}", crate::routes::time(t)),
                None,
            )),
            _ => None,
        },
        _ if p
            .last_triggered_at
            .map(|t| now - t < cooldown)
            .unwrap_or(false) =>
        {
            None
        }
        Trigger::Drift => {
            let window = p.config["drift_window_minutes"].as_i64().unwrap_or(60) * 60_000;
            let report = crate::drift::live_drift(
                state,
                &d,
                now - window,
                now + 1,
                None,
                crate::drift::Rule::default(),
            )
            .await?;
            let metric = p.config["drift_metric"]
                .as_str()
                .unwrap_or("data_drift_score");
            let value = match metric.strip_prefix("psi:") {
                Some(feature) => report["features"]
                    .as_array()
                    .and_then(|f| f.iter().find(|x| x["name"] == feature))
                    .and_then(|x| x["psi"].as_f64()),
                None => report[metric].as_f64(),
            };
            let threshold = p.config["drift_threshold"].as_f64().unwrap_or(0.2);
            value
                .filter(|v| *v > threshold)
                .map(|v| (format!("{metric} {v:.4} exceeded {threshold}"), Some(v)))
        }
        Trigger::Performance => {
            let task = rollouts::task_of(&d);
            let metric = QualityMetric::parse(
                "performance_metric",
                p.config["performance_metric"]
                    .as_str()
                    .unwrap_or("accuracy"),
            )?;
            let days = p.config["evaluation_window_days"].as_f64().unwrap_or(7.0);
            let threshold = p.config["performance_threshold"].as_f64().unwrap_or(0.0);
            state.log.flush().await;
            let rows = state
                .store
                .predictions_between(
                    &d.id,
                    now - (days * 86_400_000.0) as i64,
                    now + 1,
                    task == Task::MulticlassClassification,
                )
                .await?;
            let labelled: Vec<&PredictionRow> = rows
                .iter()
                .filter(|r| r.role == "primary" && (r.label.is_some() || r.label_value.is_some()))
                .collect();
            let min = p.config["min_labelled"].as_u64().unwrap_or(30) as usize;
            if labelled.len() < min {
                None
            } else {
                let classes = crate::monitoring::serving_classes(state, &d).await;
                let q = monitoring::quality(&labelled, task, &classes);
                q.get(metric.as_str())
                    .copied()
                    .filter(|v| {
                        if metric.higher_is_better() {
                            *v < threshold
                        } else {
                            *v > threshold
                        }
                    })
                    .map(|v| {
                        (
                            format!(
                                "{} {v:.4} over {days} days is {} the threshold {threshold}",
                                metric.as_str(),
                                if metric.higher_is_better() {
                                    "below"
                                } else {
                                    "above"
                                }
                            ),
                            Some(v),
                        )
                    })
            }
        }
    };
    let Some((reason, measured)) = fired else {
        if trigger == Trigger::Schedule && p.next_run_at.is_none() {
            if let Ok(s) = serde_json::from_value::<Schedule>(p.config["schedule_spec"].clone()) {
                state
                    .store
                    .set_policy_next_run(&p.id, Some(s.next_after(now)))
                    .await?;
            }
        }
        return Ok(());
    };
    start_run(state, p, &d, trigger, reason, measured, now)
        .await
        .map(|_| ())
}

/// Starts a retraining run: resolves the training data and starts the experiment.
pub async fn start_run(
    state: &AppState,
    p: &Policy,
    d: &Deployment,
    trigger: Trigger,
    reason: String,
    measured: Option<f64>,
    now: i64,
) -> ApiResult<RetrainingRun> {
    let ctx = Ctx {
        org_id: org_of(state, &p.project_id).await,
        actor: actor(&p.id),
        at: now,
    };
    let parent_id = d
        .serving_model_id
        .clone()
        .ok_or_else(|| ApiError::conflict(format!("{} serves no model to retrain", d.name)))?;
    let parent = state
        .store
        .get_model_any(&parent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("serving model"))?;
    let base_id = parent.lineage["dataset_version_id"].as_str().map(str::to_string).ok_or_else(|| {
        ApiError::conflict(format!("model {parent_id} has no dataset version in its lineage; retraining needs its training data"))
    })?;
    let base = state
        .store
        .get_dataset_version_any(&base_id)
        .await?
        .ok_or_else(|| ApiError::not_found("training dataset version"))?;
    let latest = state
        .store
        .latest_ready_version(&base.dataset_id)
        .await?
        .unwrap_or(base);
    let target = target_of(&p.config, &parent)
        .ok_or_else(|| ApiError::invalid("target", "name the target column to retrain on"))?;
    let mut policy_after = p.clone();
    policy_after.last_triggered_at = Some(now);
    if trigger == Trigger::Schedule {
        if let Ok(s) = serde_json::from_value::<Schedule>(p.config["schedule_spec"].clone()) {
            policy_after.next_run_at = Some(s.next_after(now));
        }
    }
    let mut run = RetrainingRun {
        id: ids::new_id("run"),
        policy_id: p.id.clone(),
        project_id: p.project_id.clone(),
        deployment_id: d.id.clone(),
        trigger: trigger.as_str().into(),
        reason,
        measured,
        status: "training".into(),
        experiment_id: None,
        job_id: None,
        parent_model_id: Some(parent_id.clone()),
        candidate_model_id: None,
        dataset_version_id: Some(latest.id.clone()),
        comparison: serde_json::Value::Null,
        detail: String::new(),
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    state
        .store
        .create_run(&ctx, &run, Some(&policy_after))
        .await?;
    let before = run.clone();
    // Training data: the latest version, joined with labelled production traffic when asked.
    let dv = if p.config["include_production_data"]
        .as_bool()
        .unwrap_or(false)
    {
        let days = p.config["production_window_days"].as_f64().unwrap_or(7.0);
        join_production_data(state, &ctx, d, &latest, &target, days)
            .await?
            .unwrap_or(latest)
    } else {
        latest
    };
    let tc = &p.training_config;
    let spec = ExperimentSpec {
        name: format!("retraining of {} ({})", parent.name, run.id),
        target,
        task: Task::parse("task", &parent.task).ok(),
        max_models: tc["max_models"].as_u64().unwrap_or(20) as usize,
        max_runtime_secs: tc["max_runtime_secs"].as_f64().unwrap_or(600.0),
        stopping_metric: tc["stopping_metric"].as_str().unwrap_or("AUTO").to_string(),
        seed: tc["seed"].as_u64().unwrap_or(1),
        model_name: parent.name.clone(),
        parent_model_id: Some(parent_id),
        source: Some(format!("retraining:{}", p.id)),
        actor: actor(&p.id),
    };
    let exp = match experiments::start(state, &ctx, &dv, spec).await {
        Ok(e) => e,
        Err(e) => {
            run.status = "failed".into();
            run.detail = e.message.clone();
            run.finished_at = Some(now);
            state
                .store
                .update_run(&ctx, &before, &run, "failed")
                .await?;
            return Err(e);
        }
    };
    run.experiment_id = Some(exp.id);
    run.job_id = Some(exp.job_id);
    run.dataset_version_id = Some(dv.id);
    state
        .store
        .update_run(&ctx, &before, &run, "training_started")
        .await?;
    Ok(run)
}

/// Writes the base version plus labelled production rows as a new immutable dataset version.
async fn join_production_data(
    state: &AppState,
    ctx: &Ctx,
    d: &Deployment,
    base: &coreplex_store::DatasetVersion,
    target: &str,
    days: f64,
) -> ApiResult<Option<coreplex_store::DatasetVersion>> {
    let since = ctx.at - (days * 86_400_000.0) as i64;
    state.log.flush().await;
    let mut items = Vec::new();
    let mut offset = 0;
    loop {
        let page = state
            .store
            .list_predictions(&d.id, since, ctx.at + 1, 10_000, offset)
            .await?;
        let more = page.next_page_token.is_some();
        items.extend(page.items.into_iter().filter(|r| {
            r["role"] == "primary"
                && !r["error"].as_bool().unwrap_or(false)
                && (!r["label"].is_null() || !r["label_value"].is_null())
        }));
        offset += 10_000;
        if !more {
            break;
        }
    }
    if items.is_empty() {
        return Ok(None);
    }
    let src = state.artifacts.path(&base.artifact_key);
    let tmp = state.artifacts.temp_path();
    let target = target.to_string();
    let n = items.len();
    let tmp_w = tmp.clone();
    let written = tokio::task::spawn_blocking(move || -> Result<(String, u64, u64), String> {
        let tmp = tmp_w;
        use sha2::Digest;
        let mut rdr = csv::Reader::from_path(&src).map_err(|e| e.to_string())?;
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| e.to_string())?
            .iter()
            .map(str::to_string)
            .collect();
        let mut w = csv::Writer::from_path(&tmp).map_err(|e| e.to_string())?;
        w.write_record(&header).map_err(|e| e.to_string())?;
        let mut rows = 0u64;
        for rec in rdr.records() {
            w.write_record(&rec.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            rows += 1;
        }
        for it in &items {
            let rec: Vec<String> = header
                .iter()
                .map(|h| {
                    if *h == target {
                        it["label"]
                            .as_str()
                            .map(str::to_string)
                            .or_else(|| it["label_value"].as_f64().map(|v| v.to_string()))
                            .unwrap_or_default()
                    } else {
                        match &it["features"][h] {
                            serde_json::Value::Null => String::new(),
                            serde_json::Value::String(s) => s.clone(),
                            v => v.to_string(),
                        }
                    }
                })
                .collect();
            w.write_record(&rec).map_err(|e| e.to_string())?;
            rows += 1;
        }
        w.flush().map_err(|e| e.to_string())?;
        drop(w);
        let bytes = std::fs::read(&tmp).map_err(|e| e.to_string())?;
        Ok((
            hex::encode(sha2::Sha256::digest(&bytes)),
            bytes.len() as u64,
            rows,
        ))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let (sha, size, rows) = written;
    let summary = {
        let p = tmp.clone();
        tokio::task::spawn_blocking(move || crate::ingest::validate(&p))
            .await
            .map_err(ApiError::internal)?
    }
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let vid = ids::new_id(ids::DATASET_VERSION);
    let key = format!("datasets/{vid}/data.csv");
    state.artifacts.commit(&tmp, &key)?;
    let job_id = ids::new_id(ids::JOB);
    let name = state
        .store
        .get_dataset_any(&base.dataset_id)
        .await?
        .map(|x| x.name)
        .unwrap_or_default();
    let (_, dv) = state
        .store
        .create_dataset_version(
            ctx,
            &base.project_id,
            &name,
            "",
            &NewDatasetVersion {
                id: vid,
                status: "profiling".into(),
                artifact_key: key,
                sha256: sha,
                size_bytes: size as i64,
                row_count: rows as i64,
                columns: serde_json::to_value(&summary.columns).map_err(ApiError::internal)?,
                source: json!({"kind": "retraining", "base_version_id": base.id, "deployment_id": d.id,
                    "production_rows": n, "window_days": days, "profile_job_id": job_id}),
            },
        )
        .await?;
    state
        .store
        .enqueue_job(
            ctx,
            &NewJob {
                id: job_id,
                project_id: base.project_id.clone(),
                kind: crate::routes::datasets::PROFILE_JOB.into(),
                payload: json!({"dataset_version_id": dv.id}),
                max_attempts: 3,
                run_after: ctx.at,
            },
        )
        .await?;
    Ok(Some(dv))
}

/// Moves a run forward: training → comparing → rolling out / awaiting review / rejected → done.
async fn advance(state: &AppState, run: &RetrainingRun) -> ApiResult<()> {
    let now = state.now();
    let ctx = Ctx {
        org_id: org_of(state, &run.project_id).await,
        actor: actor(&run.policy_id),
        at: now,
    };
    let Some(d) = state.store.get_deployment_any(&run.deployment_id).await? else {
        return Ok(());
    };
    let mut after = run.clone();
    match run.status.as_str() {
        "training" => {
            let Some(exp_id) = &run.experiment_id else {
                return Ok(());
            };
            let Some(e) = state.store.get_experiment_any(exp_id).await? else {
                return Ok(());
            };
            let job = match &run.job_id {
                Some(j) => state.store.get_job_any(j).await?,
                None => None,
            };
            let job_ended_badly = job
                .as_ref()
                .map(|j| matches!(j.status.as_str(), "failed" | "cancelled"))
                .unwrap_or(false);
            if e.status == "succeeded" {
                after.status = "comparing".into();
                after.candidate_model_id = e.best_model_id.clone();
                state.store.update_run(&ctx, run, &after, "trained").await?;
                return compare_and_decide(state, &ctx, &after, &d).await;
            }
            if matches!(e.status.as_str(), "failed" | "cancelled") || job_ended_badly {
                after.status = "failed".into();
                after.detail = e
                    .error
                    .clone()
                    .or_else(|| job.and_then(|j| j.error))
                    .unwrap_or_else(|| "training did not finish".into());
                after.finished_at = Some(now);
                state.store.update_run(&ctx, run, &after, "failed").await?;
                notify(state, &d, "retraining.failed", &after).await;
            }
            Ok(())
        }
        "comparing" => compare_and_decide(state, &ctx, run, &d).await,
        "rolling_out" => {
            let candidate = run.candidate_model_id.clone().unwrap_or_default();
            if serving::rollout_of(&d)
                .map(|r| r.candidate_model_id == candidate)
                .unwrap_or(false)
            {
                return Ok(()); // still rolling out
            }
            let promoted = d.serving_model_id.as_deref() == Some(candidate.as_str());
            after.status = if promoted { "promoted" } else { "rolled_back" }.into();
            after.detail = if promoted {
                format!("{candidate} is now production on {}", d.name)
            } else {
                format!(
                    "the {} rollout of {candidate} was rolled back; {} keeps serving",
                    d.strategy,
                    d.serving_model_id.clone().unwrap_or_default()
                )
            };
            after.finished_at = Some(now);
            state
                .store
                .update_run(&ctx, run, &after, &after.status.clone())
                .await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Scores `model` on `rows` (features, label) and returns the metric, or `None` when it cannot.
async fn score(
    state: &AppState,
    model: &Model,
    rows: &[(serde_json::Map<String, serde_json::Value>, String)],
    metric: QualityMetric,
) -> Option<f64> {
    if rows.is_empty() {
        return None;
    }
    let loaded = serving::load_model(state, &model.id).await.ok()?;
    let feats: Vec<serde_json::Map<String, serde_json::Value>> =
        rows.iter().map(|r| r.0.clone()).collect();
    let preds = tokio::task::spawn_blocking(move || loaded.predict(&feats))
        .await
        .ok()?
        .ok()?;
    let task = Task::parse("task", &model.task).ok()?;
    let classes = crate::monitoring::model_classes(model);
    let kind =
        serde_json::from_value::<coreplex_runtime::OutputKind>(model.output_schema.clone()).ok()?;
    let logged: Vec<PredictionRow> = preds
        .iter()
        .zip(rows)
        .map(|(p, (_, label))| {
            let (predicted, s) = serving::log_columns(p, &kind);
            PredictionRow {
                request_id: String::new(),
                role: "primary".into(),
                model_id: model.id.clone(),
                variant: String::new(),
                at: 0,
                latency_us: 0,
                is_error: false,
                predicted,
                score: s,
                output: serde_json::to_string(p).ok(),
                label: Some(label.clone()),
                label_value: label.parse().ok(),
            }
        })
        .collect();
    let refs: Vec<&PredictionRow> = logged.iter().collect();
    monitoring::quality(&refs, task, &classes)
        .get(metric.as_str())
        .copied()
}

/// Holdout rows for the comparison: every fifth row of the training data (at most 5,000).
fn holdout_rows(
    path: &std::path::Path,
    target: &str,
) -> Vec<(serde_json::Map<String, serde_json::Value>, String)> {
    let Ok(mut rdr) = csv::Reader::from_path(path) else {
        return Vec::new();
    };
    let Ok(header) = rdr
        .headers()
        .map(|h| h.iter().map(str::to_string).collect::<Vec<_>>())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        if i % 5 != 4 {
            continue;
        }
        let Ok(rec) = rec else { continue };
        let mut row = serde_json::Map::new();
        let mut label = None;
        for (h, v) in header.iter().zip(rec.iter()) {
            if h == target {
                label = Some(monitoring::norm_label(v));
            } else if coreplex_domain::dataset::is_missing(v) {
                row.insert(h.clone(), serde_json::Value::Null);
            } else {
                row.insert(
                    h.clone(),
                    coreplex_domain::dataset::parse_number(v)
                        .map(|x| json!(x))
                        .unwrap_or_else(|| json!(v)),
                );
            }
        }
        if let Some(l) = label {
            out.push((row, l));
        }
        if out.len() >= 5_000 {
            break;
        }
    }
    out
}

async fn compare_and_decide(
    state: &AppState,
    ctx: &Ctx,
    run: &RetrainingRun,
    d: &Deployment,
) -> ApiResult<()> {
    let (Some(cand_id), Some(parent_id)) =
        (run.candidate_model_id.clone(), run.parent_model_id.clone())
    else {
        return Ok(());
    };
    let candidate = state
        .store
        .get_model_any(&cand_id)
        .await?
        .ok_or_else(|| ApiError::not_found("candidate"))?;
    let parent = state
        .store
        .get_model_any(&parent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("parent model"))?;
    let policy = state
        .store
        .get_policy(&ctx.org_id, &run.policy_id)
        .await?
        .ok_or_else(|| ApiError::not_found("policy"))?;
    let task = Task::parse("task", &candidate.task)?;
    let metric = gate_metric(
        policy.training_config["stopping_metric"]
            .as_str()
            .unwrap_or("AUTO"),
        task,
    );
    let target = candidate.lineage["experiment"]["target"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let dv = state
        .store
        .get_dataset_version_any(run.dataset_version_id.as_deref().unwrap_or(""))
        .await?;
    let holdout = match dv {
        Some(v) => {
            let p = state.artifacts.path(&v.artifact_key);
            let t = target.clone();
            tokio::task::spawn_blocking(move || holdout_rows(&p, &t))
                .await
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let (cand_h, parent_h) = (
        score(state, &candidate, &holdout, metric).await,
        score(state, &parent, &holdout, metric).await,
    );
    // Recent labelled production traffic, re-scored by both models.
    state.log.flush().await;
    let since = ctx.at - 7 * 86_400_000;
    let recent: Vec<(serde_json::Map<String, serde_json::Value>, String)> = state
        .store
        .list_predictions(&d.id, since, ctx.at + 1, 5_000, 0)
        .await?
        .items
        .into_iter()
        .filter(|r| r["role"] == "primary" && !r["label"].is_null())
        .filter_map(|r| {
            Some((
                r["features"].as_object()?.clone(),
                monitoring::norm_label(r["label"].as_str()?),
            ))
        })
        .collect();
    let (cand_t, parent_t) = if recent.len() >= 30 {
        (
            score(state, &candidate, &recent, metric).await,
            score(state, &parent, &recent, metric).await,
        )
    } else {
        (None, None)
    };
    let no_worse = |c: Option<f64>, p: Option<f64>| match (c, p) {
        (Some(c), Some(p)) => metric.relative_drop(p, c) <= 1e-9,
        (Some(_), None) => true,
        _ => false,
    };
    let holdout_ok = no_worse(cand_h, parent_h);
    let traffic_ok = cand_t.is_none() || no_worse(cand_t, parent_t);
    let comparison = json!({
        "metric": metric.as_str(),
        "holdout": {"rows": holdout.len(), "candidate": cand_h, "production": parent_h, "at_least_as_good": holdout_ok},
        "recent_traffic": {"rows": recent.len(), "candidate": cand_t, "production": parent_t, "at_least_as_good": traffic_ok},
    });
    let mut after = run.clone();
    after.comparison = comparison;
    if !(holdout_ok && traffic_ok) {
        let why = format!(
            "candidate {} {:?} is worse than production {} {:?} (holdout) / {:?} vs {:?} (recent traffic)",
            metric.as_str(), cand_h, metric.as_str(), parent_h, cand_t, parent_t
        );
        state
            .store
            .transition_model(
                ctx,
                &cand_id,
                ModelStatus::Archived,
                &format!("retraining rejected: {why}"),
            )
            .await?;
        after.status = "rejected".into();
        after.detail = why;
        after.finished_at = Some(ctx.at);
        state.store.update_run(ctx, run, &after, "rejected").await?;
        notify(state, d, "retraining.rejected", &after).await;
        return Ok(());
    }
    if !policy.auto_promote {
        after.status = "awaiting_review".into();
        after.detail = format!(
            "{cand_id} is at least as good as {parent_id}; promote it by hand to deploy it"
        );
        after.finished_at = Some(ctx.at);
        state
            .store
            .update_run(ctx, run, &after, "awaiting_review")
            .await?;
        notify(state, d, "retraining.candidate_ready", &after).await;
        return Ok(());
    }
    let strategy = Strategy::parse("strategy", &d.strategy).unwrap_or(Strategy::Canary);
    match rollouts::start(state, ctx, d, &candidate, strategy, rollouts::config_of(d)).await {
        Ok(updated) => {
            after.status = if serving::rollout_of(&updated).is_some() {
                "rolling_out"
            } else {
                "promoted"
            }
            .into();
            after.detail = format!(
                "{} rollout of {cand_id} started on {}",
                strategy.as_str(),
                d.name
            );
            if after.status == "promoted" {
                after.finished_at = Some(ctx.at);
            }
            state
                .store
                .update_run(ctx, run, &after, "rollout_started")
                .await?;
        }
        Err(e) => {
            // e.g. another rollout in progress: try again on a later tick.
            tracing::info!(run = %run.id, reason = %e.message, "retraining rollout deferred");
        }
    }
    Ok(())
}

async fn notify(state: &AppState, d: &Deployment, event: &str, run: &RetrainingRun) {
    let payload = json!({
        "event": event, "deployment_id": d.id, "deployment": d.name, "policy_id": run.policy_id, "run_id": run.id,
        "candidate_model_id": run.candidate_model_id, "parent_model_id": run.parent_model_id, "reason": run.reason,
        "detail": run.detail, "comparison": run.comparison,
        "message": format!("{}: {event} — {}", d.name, if run.detail.is_empty() { &run.reason } else { &run.detail }),
    });
    if let Err(e) = crate::alerts::notify_deployment(state, d, payload).await {
        tracing::warn!(error = %e, "could not queue a retraining notification");
    }
}
