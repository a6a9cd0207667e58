//! Background jobs: status, progress, attempts and cancellation.

use super::{opt_time, time, ListResponse};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, PageParams};
use crate::routes::datasets::hide;
use crate::state::AppState;
use axum::extract::{Path, State};
use coreplex_domain::tenancy::Action;
use coreplex_store::{Job, JobAttempt};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_job))
        .routes(routes!(list_jobs))
        .routes(routes!(cancel_job))
        .routes(routes!(list_attempts))
}

#[derive(Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub project_id: String,
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    pub progress: f64,
    pub message: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub cancel_requested: bool,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
    pub error: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

impl From<Job> for JobView {
    fn from(j: Job) -> Self {
        JobView {
            id: j.id,
            project_id: j.project_id,
            kind: j.kind,
            status: j.status,
            progress: j.progress,
            message: j.message,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            cancel_requested: j.cancel_requested,
            payload: j.payload,
            result: j.result,
            error: j.error,
            created_at: time(j.created_at),
            created_by: j.created_by,
            started_at: opt_time(j.started_at),
            finished_at: opt_time(j.finished_at),
        }
    }
}

async fn visible_job(state: &AppState, p: &Principal, id: &str, action: Action) -> ApiResult<Job> {
    let job = state
        .store
        .get_job(&p.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    p.authorize(state, &job.project_id, action)
        .await
        .map_err(|e| hide(e, "job", id))?;
    Ok(job)
}

#[utoipa::path(get, path = "/api/v1/jobs/{job_id}", tag = "jobs", params(("job_id" = String, Path)),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
async fn get_job(
    State(state): State<AppState>,
    p: Principal,
    Path(job_id): Path<String>,
) -> ApiResult<axum::Json<JobView>> {
    Ok(axum::Json(
        visible_job(&state, &p, &job_id, Action::Read).await?.into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/projects/{project_id}/jobs", tag = "jobs", params(("project_id" = String, Path), PageParams),
    responses((status = 200, body = ListResponse<JobView>)))]
async fn list_jobs(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<axum::Json<ListResponse<JobView>>> {
    p.authorize(&state, &project_id, Action::Read).await?;
    let got = state
        .store
        .list_jobs(&project_id, page.limit()?, page.offset()?)
        .await?;
    Ok(axum::Json(ListResponse::from_page(got, JobView::from)))
}

/// Cancels a job: a queued job at once, a running one at its next progress report.
#[utoipa::path(post, path = "/api/v1/jobs/{job_id}/cancel", tag = "jobs", params(("job_id" = String, Path)),
    responses((status = 200, body = JobView), (status = 409, body = ErrorBody)))]
async fn cancel_job(
    State(state): State<AppState>,
    p: Principal,
    Path(job_id): Path<String>,
) -> ApiResult<axum::Json<JobView>> {
    visible_job(&state, &p, &job_id, Action::Write).await?;
    Ok(axum::Json(
        state
            .store
            .cancel_job(&p.ctx(&state), &job_id)
            .await?
            .into(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    pub attempt: i64,
    pub worker: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: Option<String>,
}

impl From<JobAttempt> for AttemptView {
    fn from(a: JobAttempt) -> Self {
        AttemptView {
            attempt: a.attempt,
            worker: a.worker,
            started_at: time(a.started_at),
            ended_at: opt_time(a.ended_at),
            outcome: a.outcome,
        }
    }
}

/// Every time the job was claimed by a server, and how that attempt ended.
#[utoipa::path(get, path = "/api/v1/jobs/{job_id}/attempts", tag = "jobs", params(("job_id" = String, Path)),
    responses((status = 200, body = Vec<AttemptView>)))]
async fn list_attempts(
    State(state): State<AppState>,
    p: Principal,
    Path(job_id): Path<String>,
) -> ApiResult<axum::Json<Vec<AttemptView>>> {
    visible_job(&state, &p, &job_id, Action::Read).await?;
    Ok(axum::Json(
        state
            .store
            .list_job_attempts(&job_id)
            .await?
            .into_iter()
            .map(AttemptView::from)
            .collect(),
    ))
}
