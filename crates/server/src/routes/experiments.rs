//! AutoML experiments: start one on a dataset version, follow its progress, read its leaderboard.

use super::time;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::experiments::{self, ExperimentSpec};
use crate::extract::ApiJson;
use crate::routes::datasets::{hide, visible_version};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use coreplex_domain::registry::Task;
use coreplex_domain::tenancy::Action;
use coreplex_store::Experiment;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_experiment, list_experiments))
        .routes(routes!(get_experiment))
        .routes(routes!(cancel_experiment))
}

#[derive(Serialize, ToSchema)]
pub struct ExperimentView {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub dataset_version_id: String,
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// queued, running, succeeded, failed or cancelled.
    pub status: String,
    pub progress: f64,
    pub message: String,
    pub job_id: String,
    /// Task, ranking metric, and the models best first with their metrics and hyperparameters.
    #[schema(value_type = Object)]
    pub leaderboard: serde_json::Value,
    pub best_model_id: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

async fn view(state: &AppState, e: Experiment) -> ExperimentView {
    let job = state.store.get_job_any(&e.job_id).await.ok().flatten();
    let (progress, message, status, error) = match &job {
        // A job that ended before it could update the experiment (e.g. its worker died for good).
        Some(j)
            if matches!(j.status.as_str(), "failed" | "cancelled")
                && !matches!(e.status.as_str(), "failed" | "cancelled" | "succeeded") =>
        {
            (
                j.progress,
                j.message.clone(),
                j.status.clone(),
                j.error.clone(),
            )
        }
        Some(j) => (
            j.progress,
            j.message.clone(),
            e.status.clone(),
            e.error.clone(),
        ),
        None => (0.0, String::new(), e.status.clone(), e.error.clone()),
    };
    ExperimentView {
        id: e.id,
        project_id: e.project_id,
        name: e.name,
        dataset_version_id: e.dataset_version_id,
        config: e.config,
        status,
        progress,
        message,
        job_id: e.job_id,
        leaderboard: e.leaderboard,
        best_model_id: e.best_model_id,
        error,
        created_at: time(e.created_at),
        updated_at: time(e.updated_at),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExperiment {
    pub dataset_version_id: String,
    /// The column to predict.
    pub target: String,
    /// binary_classification, multiclass_classification or regression; inferred when left out.
    pub task: Option<String>,
    /// Default 20.
    pub max_models: Option<usize>,
    /// Default 600.
    pub max_runtime_secs: Option<f64>,
    /// AUC, AUCPR, logloss, accuracy, mean_per_class_error, RMSE, MSE, MAE, R2 or AUTO (default).
    pub stopping_metric: Option<String>,
    pub seed: Option<u64>,
    pub name: Option<String>,
    /// Registry name of the trained models (default: the dataset's name and the target).
    pub model_name: Option<String>,
}

/// Starts an AutoML experiment as a background job.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/experiments", tag = "experiments",
    params(("project_id" = String, Path)), request_body = CreateExperiment,
    responses((status = 201, body = ExperimentView), (status = 422, body = ErrorBody)))]
async fn create_experiment(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
    ApiJson(req): ApiJson<CreateExperiment>,
) -> ApiResult<(StatusCode, axum::Json<ExperimentView>)> {
    p.authorize(&state, &project_id, Action::Write).await?;
    let (dv, ds_name) = visible_version(&state, &p, &req.dataset_version_id)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::invalid(
                    "dataset_version_id",
                    format!("no dataset version {}", req.dataset_version_id),
                )
            } else {
                e
            }
        })?;
    if dv.project_id != project_id {
        return Err(ApiError::invalid(
            "dataset_version_id",
            format!("no dataset version {} in this project", dv.id),
        ));
    }
    let task = req
        .task
        .as_deref()
        .map(|t| Task::parse("task", t))
        .transpose()?;
    let spec = ExperimentSpec {
        name: req
            .name
            .clone()
            .unwrap_or_else(|| format!("{ds_name} → {}", req.target)),
        target: req.target.clone(),
        task,
        max_models: req.max_models.unwrap_or(20),
        max_runtime_secs: req.max_runtime_secs.unwrap_or(600.0),
        stopping_metric: req.stopping_metric.clone().unwrap_or_else(|| "AUTO".into()),
        seed: req.seed.unwrap_or(1),
        model_name: req
            .model_name
            .clone()
            .unwrap_or_else(|| format!("{ds_name}-{}", req.target)),
        parent_model_id: None,
        source: None,
        actor: p.actor(),
    };
    let e = experiments::start(&state, &p.ctx(&state), &dv, spec).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&state, e).await)))
}

#[utoipa::path(get, path = "/api/v1/projects/{project_id}/experiments", tag = "experiments",
    params(("project_id" = String, Path)), responses((status = 200, body = Vec<ExperimentView>)))]
async fn list_experiments(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
) -> ApiResult<axum::Json<Vec<ExperimentView>>> {
    p.authorize(&state, &project_id, Action::Read).await?;
    let mut out = Vec::new();
    for e in state.store.list_experiments(&project_id).await? {
        out.push(view(&state, e).await);
    }
    Ok(axum::Json(out))
}

async fn visible(
    state: &AppState,
    p: &Principal,
    id: &str,
    action: Action,
) -> ApiResult<Experiment> {
    let e = state
        .store
        .get_experiment(&p.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("experiment {id}")))?;
    p.authorize(state, &e.project_id, action)
        .await
        .map_err(|x| hide(x, "experiment", id))?;
    Ok(e)
}

#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}", tag = "experiments",
    params(("experiment_id" = String, Path)), responses((status = 200, body = ExperimentView), (status = 404, body = ErrorBody)))]
async fn get_experiment(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ExperimentView>> {
    let e = visible(&state, &p, &id, Action::Read).await?;
    Ok(axum::Json(view(&state, e).await))
}

/// Cancels the experiment's job; models already trained are kept only if registration had begun.
#[utoipa::path(post, path = "/api/v1/experiments/{experiment_id}/cancel", tag = "experiments",
    params(("experiment_id" = String, Path)), responses((status = 200, body = ExperimentView), (status = 409, body = ErrorBody)))]
async fn cancel_experiment(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ExperimentView>> {
    let e = visible(&state, &p, &id, Action::Write).await?;
    state.store.cancel_job(&p.ctx(&state), &e.job_id).await?;
    let e = visible(&state, &p, &id, Action::Read).await?;
    Ok(axum::Json(view(&state, e).await))
}
