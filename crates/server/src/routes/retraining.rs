//! Retraining policies on deployments and their runs.

use super::{opt_time, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::retraining;
use crate::routes::datasets::hide;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use coreplex_domain::ids;
use coreplex_domain::registry::Task;
use coreplex_domain::retraining::{weekday_name, Schedule, Trigger};
use coreplex_domain::rollout::QualityMetric;
use coreplex_domain::tenancy::Action;
use coreplex_store::{Policy, RetrainingRun};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_policy, list_policies))
        .routes(routes!(get_policy, update_policy, delete_policy))
        .routes(routes!(list_runs))
        .routes(routes!(trigger_now))
}

#[derive(Serialize, ToSchema)]
pub struct PolicyView {
    pub id: String,
    pub project_id: String,
    pub deployment_id: String,
    /// drift, schedule or performance.
    pub trigger: String,
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    #[schema(value_type = Object)]
    pub training_config: serde_json::Value,
    pub auto_promote: bool,
    pub enabled: bool,
    /// Schedules: when the policy fires next (UTC).
    pub next_run_at: Option<String>,
    pub last_triggered_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Policy> for PolicyView {
    fn from(p: Policy) -> Self {
        let mut config = p.config;
        if let Some(o) = config.as_object_mut() {
            o.remove("schedule_spec");
        }
        PolicyView {
            id: p.id,
            project_id: p.project_id,
            deployment_id: p.deployment_id,
            trigger: p.trigger,
            config,
            training_config: p.training_config,
            auto_promote: p.auto_promote,
            enabled: p.enabled,
            next_run_at: opt_time(p.next_run_at),
            last_triggered_at: opt_time(p.last_triggered_at),
            created_at: time(p.created_at),
            updated_at: time(p.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicy {
    pub deployment_id: String,
    /// drift, schedule or performance.
    pub trigger: String,
    /// data_drift_score, max_psi, or psi:<feature>.
    pub drift_metric: Option<String>,
    pub drift_threshold: Option<f64>,
    /// Window the drift is measured over (default 60 minutes).
    pub drift_window_minutes: Option<i64>,
    /// daily, weekly or monthly.
    pub schedule: Option<String>,
    /// monday … sunday (weekly).
    pub day_of_week: Option<String>,
    /// 1 … 31 (monthly; 31 = the last day).
    pub day_of_month: Option<u32>,
    pub hour_utc: Option<i64>,
    pub performance_metric: Option<String>,
    pub performance_threshold: Option<f64>,
    pub evaluation_window_days: Option<f64>,
    /// `{max_runtime_secs, max_models, stopping_metric, seed}`.
    #[schema(value_type = Object)]
    pub training_config: Option<serde_json::Value>,
    #[serde(default)]
    pub auto_promote: bool,
    /// The target column (default: the one the serving model was trained on).
    pub target: Option<String>,
    /// Join labelled production traffic into the training data as a new dataset version.
    #[serde(default)]
    pub include_production_data: bool,
    pub production_window_days: Option<f64>,
    /// A trigger that fires again within this many minutes starts nothing (default 60).
    pub cooldown_minutes: Option<i64>,
    pub enabled: Option<bool>,
}

/// Checks a policy's `training_config` (the experiment settings each retraining run uses).
fn check_training_config(tc: &serde_json::Value, task: Task) -> ApiResult<()> {
    let obj = tc.as_object().ok_or_else(|| {
        ApiError::invalid(
            "training_config",
            "an object with max_runtime_secs, max_models, stopping_metric",
        )
    })?;
    for k in obj.keys() {
        if !["max_runtime_secs", "max_models", "stopping_metric", "seed"].contains(&k.as_str()) {
            return Err(ApiError::invalid(
                &format!("training_config.{k}"),
                "unknown setting; use max_runtime_secs, max_models, stopping_metric or seed",
            ));
        }
    }
    let secs = match tc.get("max_runtime_secs") {
        None => 600.0,
        Some(v) => v.as_f64().unwrap_or(f64::NAN),
    };
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(ApiError::invalid(
            "training_config.max_runtime_secs",
            "a positive number of seconds, at most 86400",
        ));
    }
    if tc
        .get("max_models")
        .map(|v| v.as_u64().map(|n| n > 500).unwrap_or(true))
        .unwrap_or(false)
    {
        return Err(ApiError::invalid(
            "training_config.max_models",
            "a whole number up to 500",
        ));
    }
    if tc.get("seed").map(|v| !v.is_u64()).unwrap_or(false) {
        return Err(ApiError::invalid(
            "training_config.seed",
            "a non-negative whole number",
        ));
    }
    let stopping = match tc.get("stopping_metric") {
        None => "AUTO",
        Some(v) => v.as_str().ok_or_else(|| {
            ApiError::invalid(
                "training_config.stopping_metric",
                "a metric name such as AUC",
            )
        })?,
    };
    coreplex_train::canonical_metric(stopping, task)
        .map_err(|e| ApiError::invalid("training_config.stopping_metric", e))?;
    Ok(())
}

/// Refuses settings that belong to another trigger type: they would be stored and never used.
fn check_trigger_fields(req: &CreatePolicy, trigger: Trigger) -> ApiResult<()> {
    let given: [(&str, bool, Trigger); 10] = [
        ("drift_metric", req.drift_metric.is_some(), Trigger::Drift),
        (
            "drift_threshold",
            req.drift_threshold.is_some(),
            Trigger::Drift,
        ),
        (
            "drift_window_minutes",
            req.drift_window_minutes.is_some(),
            Trigger::Drift,
        ),
        ("schedule", req.schedule.is_some(), Trigger::Schedule),
        ("day_of_week", req.day_of_week.is_some(), Trigger::Schedule),
        (
            "day_of_month",
            req.day_of_month.is_some(),
            Trigger::Schedule,
        ),
        ("hour_utc", req.hour_utc.is_some(), Trigger::Schedule),
        (
            "performance_metric",
            req.performance_metric.is_some(),
            Trigger::Performance,
        ),
        (
            "performance_threshold",
            req.performance_threshold.is_some(),
            Trigger::Performance,
        ),
        (
            "evaluation_window_days",
            req.evaluation_window_days.is_some(),
            Trigger::Performance,
        ),
    ];
    for (field, present, belongs) in given {
        if present && belongs != trigger {
            return Err(ApiError::invalid(
                field,
                format!(
                    "only for a {} trigger; this policy's trigger is {}",
                    belongs.as_str(),
                    trigger.as_str()
                ),
            ));
        }
    }
    Ok(())
}

/// Creates a retraining policy on a deployment.
#[utoipa::path(post, path = "/api/v1/retraining/policies", tag = "retraining", request_body = CreatePolicy,
    responses((status = 201, body = PolicyView), (status = 422, body = ErrorBody)))]
async fn create_policy(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<CreatePolicy>,
) -> ApiResult<(StatusCode, axum::Json<PolicyView>)> {
    let d = state
        .store
        .get_deployment(&p.org_id, &req.deployment_id)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "deployment_id",
                format!("no deployment {}", req.deployment_id),
            )
        })?;
    p.authorize(&state, &d.project_id, Action::Write)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::invalid(
                    "deployment_id",
                    format!("no deployment {}", req.deployment_id),
                )
            } else {
                e
            }
        })?;
    let task = Task::parse("task", &d.task)?;
    let trigger = Trigger::parse("trigger", &req.trigger)?;
    check_trigger_fields(&req, trigger)?;
    if let Some(days) = req.production_window_days {
        if !(days.is_finite() && days > 0.0 && days <= 365.0) {
            return Err(ApiError::invalid(
                "production_window_days",
                "between 0 and 365 days",
            ));
        }
    }
    let ctx = p.ctx(&state);
    let mut config = json!({
        "cooldown_minutes": req.cooldown_minutes.unwrap_or(60),
        "include_production_data": req.include_production_data,
        "production_window_days": req.production_window_days.unwrap_or(7.0),
    });
    if let Some(c) = req.cooldown_minutes {
        if !(0..=43_200).contains(&c) {
            return Err(ApiError::invalid("cooldown_minutes", "between 0 and 43200"));
        }
    }
    let mut next_run_at = None;
    match trigger {
        Trigger::Drift => {
            let m = req
                .drift_metric
                .clone()
                .unwrap_or_else(|| "data_drift_score".into());
            if !(m == "data_drift_score"
                || m == "max_psi"
                || m.strip_prefix("psi:")
                    .map(|f| !f.is_empty())
                    .unwrap_or(false))
            {
                return Err(ApiError::invalid("drift_metric", format!("unknown drift metric `{m}`; use data_drift_score, max_psi or psi:<feature>")));
            }
            if let (Some(feature), Some(model_id)) = (m.strip_prefix("psi:"), &d.serving_model_id) {
                if let Some(model) = state.store.get_model_any(model_id).await? {
                    let names: Vec<&str> = model.input_schema["features"]
                        .as_array()
                        .map(|f| f.iter().filter_map(|x| x["name"].as_str()).collect())
                        .unwrap_or_default();
                    if !names.is_empty() && !names.contains(&feature) {
                        return Err(ApiError::invalid(
                            "drift_metric",
                            format!(
                                "the serving model has no feature `{feature}`; its features are {}",
                                names.join(", ")
                            ),
                        ));
                    }
                }
            }
            let t = req.drift_threshold.ok_or_else(|| {
                ApiError::invalid(
                    "drift_threshold",
                    "a drift trigger needs a threshold, e.g. 0.2",
                )
            })?;
            if !(t.is_finite() && t >= 0.0) {
                return Err(ApiError::invalid(
                    "drift_threshold",
                    "a non-negative number",
                ));
            }
            config["drift_metric"] = json!(m);
            config["drift_threshold"] = json!(t);
            let window = req.drift_window_minutes.unwrap_or(60);
            if !(1..=525_600).contains(&window) {
                return Err(ApiError::invalid(
                    "drift_window_minutes",
                    "between 1 and 525600 (a year)",
                ));
            }
            config["drift_window_minutes"] = json!(window);
        }
        Trigger::Schedule => {
            let s = Schedule::from_fields(
                req.schedule.as_deref(),
                req.day_of_week.as_deref(),
                req.day_of_month,
                req.hour_utc,
            )?;
            config["schedule"] = json!(req.schedule);
            if let Schedule::Weekly { day_of_week, .. } = s {
                config["day_of_week"] = json!(weekday_name(day_of_week));
            }
            if let Schedule::Monthly { day_of_month, .. } = s {
                config["day_of_month"] = json!(day_of_month);
            }
            config["hour_utc"] = json!(req.hour_utc.unwrap_or(0));
            config["schedule_spec"] = serde_json::to_value(s).map_err(ApiError::internal)?;
            next_run_at = Some(s.next_after(ctx.at));
        }
        Trigger::Performance => {
            let m = req.performance_metric.clone().ok_or_else(|| {
                ApiError::invalid(
                    "performance_metric",
                    "a performance trigger needs a metric, e.g. accuracy",
                )
            })?;
            let metric = QualityMetric::parse("performance_metric", &m)?;
            metric.require_task("performance_metric", task)?;
            let t = req.performance_threshold.ok_or_else(|| {
                ApiError::invalid(
                    "performance_threshold",
                    "a performance trigger needs a threshold, e.g. 0.85",
                )
            })?;
            let days = req.evaluation_window_days.unwrap_or(7.0);
            if !(days.is_finite() && days > 0.0 && days <= 365.0) {
                return Err(ApiError::invalid(
                    "evaluation_window_days",
                    "between 0 and 365 days",
                ));
            }
            config["performance_metric"] = json!(metric.as_str());
            config["performance_threshold"] = json!(t);
            config["evaluation_window_days"] = json!(days);
        }
    }
    let tc = req.training_config.clone().unwrap_or_else(|| json!({}));
    check_training_config(&tc, task)?;
    if let Some(t) = &req.target {
        config["target"] = json!(t);
    }
    // The target must be known: the policy's, or the one the serving model was trained on.
    if let Some(m) = &d.serving_model_id {
        if let Some(model) = state.store.get_model_any(m).await? {
            if retraining::target_of(&config, &model).is_none() {
                return Err(ApiError::invalid(
                    "target",
                    format!(
                        "model {m} was not trained here; name the target column of its dataset"
                    ),
                ));
            }
            if model.lineage["dataset_version_id"].is_null() {
                return Err(ApiError::invalid("deployment_id", format!("model {m} has no training dataset in its lineage; register it with dataset_version_id")));
            }
        }
    }
    let policy = Policy {
        id: ids::new_id("pol"),
        project_id: d.project_id.clone(),
        deployment_id: d.id.clone(),
        trigger: trigger.as_str().into(),
        config,
        training_config: tc,
        auto_promote: req.auto_promote,
        enabled: req.enabled.unwrap_or(true),
        next_run_at,
        last_triggered_at: None,
        created_at: ctx.at,
        created_by: ctx.actor.clone(),
        updated_at: ctx.at,
    };
    state.store.create_policy(&ctx, &policy).await?;
    Ok((StatusCode::CREATED, axum::Json(policy.into())))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PolicyListParams {
    pub project_id: String,
    pub deployment_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/retraining/policies", tag = "retraining", params(PolicyListParams),
    responses((status = 200, body = Vec<PolicyView>)))]
async fn list_policies(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<PolicyListParams>,
) -> ApiResult<axum::Json<Vec<PolicyView>>> {
    p.authorize(&state, &q.project_id, Action::Read).await?;
    Ok(axum::Json(
        state
            .store
            .list_policies(&q.project_id, q.deployment_id.as_deref())
            .await?
            .into_iter()
            .map(PolicyView::from)
            .collect(),
    ))
}

async fn visible(state: &AppState, p: &Principal, id: &str, action: Action) -> ApiResult<Policy> {
    let pol = state
        .store
        .get_policy(&p.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("policy {id}")))?;
    p.authorize(state, &pol.project_id, action)
        .await
        .map_err(|e| hide(e, "policy", id))?;
    Ok(pol)
}

#[utoipa::path(get, path = "/api/v1/retraining/policies/{policy_id}", tag = "retraining", params(("policy_id" = String, Path)),
    responses((status = 200, body = PolicyView), (status = 404, body = ErrorBody)))]
async fn get_policy(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PolicyView>> {
    Ok(axum::Json(
        visible(&state, &p, &id, Action::Read).await?.into(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    pub enabled: Option<bool>,
    pub auto_promote: Option<bool>,
    #[schema(value_type = Object)]
    pub training_config: Option<serde_json::Value>,
}

/// Enables or disables a policy, or changes its training settings and auto-promotion.
#[utoipa::path(patch, path = "/api/v1/retraining/policies/{policy_id}", tag = "retraining", params(("policy_id" = String, Path)),
    request_body = UpdatePolicy, responses((status = 200, body = PolicyView)))]
async fn update_policy(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdatePolicy>,
) -> ApiResult<axum::Json<PolicyView>> {
    let before = visible(&state, &p, &id, Action::Write).await?;
    let mut after = before.clone();
    if let Some(e) = req.enabled {
        after.enabled = e;
    }
    if let Some(a) = req.auto_promote {
        after.auto_promote = a;
    }
    if let Some(tc) = req.training_config {
        let d = state
            .store
            .get_deployment_any(&before.deployment_id)
            .await?
            .ok_or_else(|| ApiError::not_found("deployment"))?;
        check_training_config(&tc, Task::parse("task", &d.task)?)?;
        after.training_config = tc;
    }
    state
        .store
        .update_policy(&p.ctx(&state), &before, &after, "retraining_policy.update")
        .await?;
    Ok(axum::Json(after.into()))
}

#[utoipa::path(delete, path = "/api/v1/retraining/policies/{policy_id}", tag = "retraining", params(("policy_id" = String, Path)),
    responses((status = 204)))]
async fn delete_policy(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let before = visible(&state, &p, &id, Action::Write).await?;
    let mut after = before.clone();
    after.enabled = false;
    state
        .store
        .update_policy(&p.ctx(&state), &before, &after, "retraining_policy.delete")
        .await?;
    state.store.retire_policy(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct RunView {
    pub id: String,
    pub policy_id: String,
    pub deployment_id: String,
    pub trigger: String,
    /// What fired: the measured drift or metric, or the schedule.
    pub reason: String,
    pub measured: Option<f64>,
    /// training, comparing, rolling_out, promoted, rolled_back, awaiting_review, rejected or failed.
    pub status: String,
    pub experiment_id: Option<String>,
    pub job_id: Option<String>,
    pub parent_model_id: Option<String>,
    pub candidate_model_id: Option<String>,
    pub dataset_version_id: Option<String>,
    #[schema(value_type = Object)]
    pub comparison: serde_json::Value,
    pub detail: String,
    pub created_at: String,
    pub finished_at: Option<String>,
}

impl From<RetrainingRun> for RunView {
    fn from(r: RetrainingRun) -> Self {
        RunView {
            id: r.id,
            policy_id: r.policy_id,
            deployment_id: r.deployment_id,
            trigger: r.trigger,
            reason: r.reason,
            measured: r.measured,
            status: r.status,
            experiment_id: r.experiment_id,
            job_id: r.job_id,
            parent_model_id: r.parent_model_id,
            candidate_model_id: r.candidate_model_id,
            dataset_version_id: r.dataset_version_id,
            comparison: r.comparison,
            detail: r.detail,
            created_at: time(r.created_at),
            finished_at: opt_time(r.finished_at),
        }
    }
}

/// Every run of the policy: trigger, reason, job, candidate, comparison and outcome.
#[utoipa::path(get, path = "/api/v1/retraining/policies/{policy_id}/runs", tag = "retraining", params(("policy_id" = String, Path)),
    responses((status = 200, body = Vec<RunView>)))]
async fn list_runs(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<RunView>>> {
    visible(&state, &p, &id, Action::Read).await?;
    Ok(axum::Json(
        state
            .store
            .list_runs(&id)
            .await?
            .into_iter()
            .map(RunView::from)
            .collect(),
    ))
}

/// Starts a run now, whatever the trigger says (unless one is already running).
#[utoipa::path(post, path = "/api/v1/retraining/policies/{policy_id}/trigger", tag = "retraining", params(("policy_id" = String, Path)),
    responses((status = 201, body = RunView), (status = 409, body = ErrorBody)))]
async fn trigger_now(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<RunView>)> {
    let pol = visible(&state, &p, &id, Action::Write).await?;
    if state
        .store
        .list_runs(&id)
        .await?
        .iter()
        .any(|r| coreplex_store::ACTIVE_RUN_STATUSES.contains(&r.status.as_str()))
    {
        return Err(ApiError::conflict(format!(
            "policy {id} already has a run in progress"
        )));
    }
    let d = state
        .store
        .get_deployment_any(&pol.deployment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("deployment"))?;
    let trigger = Trigger::parse("trigger", &pol.trigger)?;
    let run = retraining::start_run(
        &state,
        &pol,
        &d,
        trigger,
        format!("started by hand by {}", p.actor()),
        None,
        state.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(run.into())))
}
