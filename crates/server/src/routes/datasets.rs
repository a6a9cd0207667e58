//! Datasets: CSV upload as an immutable version, schema, row count, and a column profile computed by a
//! background job (the drift reference).

use super::{time, ListResponse};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, PageParams};
use crate::ingest;
use crate::state::AppState;
use crate::worker::{JobCtx, JobError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use coreplex_domain::dataset::ColumnSchema;
use coreplex_domain::ids;
use coreplex_domain::tenancy::{validate_name, Action};
use coreplex_store::{Dataset, DatasetVersion, NewDatasetVersion, NewJob};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub const PROFILE_JOB: &str = "dataset.profile";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload, list_datasets))
        .routes(routes!(get_dataset))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(download_version))
}

#[derive(Serialize, ToSchema)]
pub struct DatasetView {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub created_by: String,
}

impl From<Dataset> for DatasetView {
    fn from(d: Dataset) -> Self {
        DatasetView {
            id: d.id,
            project_id: d.project_id,
            name: d.name,
            description: d.description,
            created_at: time(d.created_at),
            created_by: d.created_by,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DatasetVersionView {
    pub id: String,
    pub dataset_id: String,
    pub project_id: String,
    pub name: String,
    pub version: i64,
    /// `profiling` until the profile job has run, then `ready` (or `failed`).
    pub status: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub row_count: i64,
    #[schema(value_type = Vec<Object>)]
    pub columns: serde_json::Value,
    /// Per column: count, missing share, quantiles, histogram, category frequencies.
    #[schema(value_type = Object)]
    pub profile: serde_json::Value,
    pub profile_job_id: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub created_by: String,
}

pub(crate) fn version_view(
    v: DatasetVersion,
    name: &str,
    with_sketches: bool,
) -> DatasetVersionView {
    let mut profile = v.profile;
    if !with_sketches {
        if let Some(cols) = profile.get_mut("columns").and_then(|c| c.as_array_mut()) {
            for c in cols {
                if let Some(o) = c.as_object_mut() {
                    o.remove("sketch");
                }
            }
        }
    }
    DatasetVersionView {
        id: v.id,
        dataset_id: v.dataset_id,
        project_id: v.project_id,
        name: name.to_string(),
        version: v.version,
        status: v.status,
        sha256: v.sha256,
        size_bytes: v.size_bytes,
        row_count: v.row_count,
        columns: v.columns,
        profile,
        profile_job_id: v
            .source
            .get("profile_job_id")
            .and_then(|j| j.as_str())
            .map(str::to_string),
        error: v.error,
        created_at: time(v.created_at),
        created_by: v.created_by,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// Dataset name; a new version is added when it exists.
    pub name: String,
    pub description: Option<String>,
}

/// Uploads a CSV file (the request body) as a new immutable version of dataset `name`. The file is
/// checked (shape, encoding) before anything is stored; a profile job then computes column statistics.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/datasets", tag = "datasets",
    params(("project_id" = String, Path), UploadParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = DatasetVersionView), (status = 422, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
    ApiQuery(q): ApiQuery<UploadParams>,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<DatasetVersionView>)> {
    p.authorize(&state, &project_id, Action::Write).await?;
    validate_name("name", &q.name)?;
    let upload = crate::upload::to_temp_file(
        state.artifacts.temp_path(),
        body.into_data_stream(),
        state.config.max_upload_bytes,
    )
    .await?;
    let path = upload.path.clone();
    let summary = tokio::task::spawn_blocking(move || ingest::validate(&path))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            ApiError::invalid("file", &e).with_details(
                serde_json::json!({"field": "file", "line": e.line, "problem": e.message}),
            )
        })?;
    let version_id = ids::new_id(ids::DATASET_VERSION);
    let key = format!("datasets/{version_id}/data.csv");
    let mut upload = upload;
    state.artifacts.commit(&upload.path, &key)?;
    upload.keep();
    let ctx = p.ctx(&state);
    let job_id = ids::new_id(ids::JOB);
    let new = NewDatasetVersion {
        id: version_id.clone(),
        status: "profiling".into(),
        artifact_key: key.clone(),
        sha256: upload.sha256.clone(),
        size_bytes: upload.size as i64,
        row_count: summary.row_count as i64,
        columns: serde_json::to_value(&summary.columns).map_err(ApiError::internal)?,
        source: serde_json::json!({"kind": "upload", "profile_job_id": job_id}),
    };
    let name = q.name.trim();
    let created = state
        .store
        .create_dataset_version(
            &ctx,
            &project_id,
            name,
            q.description.as_deref().unwrap_or(""),
            &new,
        )
        .await;
    let (ds, dv) = match created {
        Ok(v) => v,
        Err(e) => {
            state.artifacts.remove(&key);
            return Err(e.into());
        }
    };
    state
        .store
        .enqueue_job(
            &ctx,
            &NewJob {
                id: job_id,
                project_id: project_id.clone(),
                kind: PROFILE_JOB.into(),
                payload: serde_json::json!({"dataset_version_id": dv.id}),
                max_attempts: 3,
                run_after: ctx.at,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(version_view(dv, &ds.name, false)),
    ))
}

/// The profile job: reads the stored file once more and writes the column profile.
pub(crate) async fn run_profile_job(ctx: &JobCtx) -> Result<serde_json::Value, JobError> {
    let state = &ctx.state;
    let vid = ctx.job.payload["dataset_version_id"]
        .as_str()
        .ok_or_else(|| JobError::permanent("payload has no dataset_version_id"))?
        .to_string();
    let dv = state
        .store
        .get_dataset_version(&ctx.job.org_id, &vid)
        .await
        .map_err(JobError::transient)?
        .ok_or_else(|| JobError::permanent(format!("dataset version {vid} no longer exists")))?;
    let columns: Vec<ColumnSchema> = serde_json::from_value(dv.columns.clone())
        .map_err(|e| JobError::permanent(e.to_string()))?;
    let path = state.artifacts.path(&dv.artifact_key);
    let rows = dv.row_count as u64;
    let job_ctx = ctx.clone();
    let profiled = tokio::task::spawn_blocking(move || {
        ingest::profile(&path, &columns, rows, |share| {
            job_ctx
                .progress_blocking(share * 0.99, "profiling columns")
                .is_ok()
        })
    })
    .await
    .map_err(JobError::transient)?;
    let sys = state.system_ctx(&ctx.job.org_id, "profiler");
    match profiled {
        Ok(Some(profile)) => {
            state
                .store
                .finish_dataset_profile(&sys, &vid, "ready", Some(&profile), None)
                .await
                .map_err(JobError::transient)?;
            Ok(
                serde_json::json!({"dataset_version_id": vid, "columns": profile["columns"].as_array().map(|c| c.len())}),
            )
        }
        Ok(None) => Err(JobError::Cancelled),
        Err(problem) => {
            let msg = problem.to_string();
            state
                .store
                .finish_dataset_profile(&sys, &vid, "failed", None, Some(&msg))
                .await
                .map_err(JobError::transient)?;
            Err(JobError::permanent(msg))
        }
    }
}

#[utoipa::path(get, path = "/api/v1/projects/{project_id}/datasets", tag = "datasets",
    params(("project_id" = String, Path), PageParams), responses((status = 200, body = ListResponse<DatasetView>)))]
async fn list_datasets(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<axum::Json<ListResponse<DatasetView>>> {
    p.authorize(&state, &project_id, Action::Read).await?;
    let got = state
        .store
        .list_datasets(&project_id, page.limit()?, page.offset()?)
        .await?;
    Ok(axum::Json(ListResponse::from_page(got, DatasetView::from)))
}

async fn visible_dataset(state: &AppState, p: &Principal, id: &str) -> ApiResult<Dataset> {
    let ds = state
        .store
        .get_dataset(&p.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dataset {id}")))?;
    p.authorize(state, &ds.project_id, Action::Read)
        .await
        .map_err(|e| hide(e, "dataset", id))?;
    Ok(ds)
}

/// Not being a member of the project makes its resources invisible.
pub(crate) fn hide(e: ApiError, what: &str, id: &str) -> ApiError {
    if e.status == StatusCode::NOT_FOUND {
        ApiError::not_found(format!("{what} {id}"))
    } else {
        e
    }
}

pub(crate) async fn visible_version(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> ApiResult<(DatasetVersion, String)> {
    let v = state
        .store
        .get_dataset_version(&p.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dataset version {id}")))?;
    p.authorize(state, &v.project_id, Action::Read)
        .await
        .map_err(|e| hide(e, "dataset version", id))?;
    let name = state
        .store
        .get_dataset(&p.org_id, &v.dataset_id)
        .await?
        .map(|d| d.name)
        .unwrap_or_default();
    Ok((v, name))
}

#[utoipa::path(get, path = "/api/v1/datasets/{dataset_id}", tag = "datasets", params(("dataset_id" = String, Path)),
    responses((status = 200, body = DatasetView), (status = 404, body = ErrorBody)))]
async fn get_dataset(
    State(state): State<AppState>,
    p: Principal,
    Path(dataset_id): Path<String>,
) -> ApiResult<axum::Json<DatasetView>> {
    Ok(axum::Json(
        visible_dataset(&state, &p, &dataset_id).await?.into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/datasets/{dataset_id}/versions", tag = "datasets",
    params(("dataset_id" = String, Path)), responses((status = 200, body = Vec<DatasetVersionView>)))]
async fn list_versions(
    State(state): State<AppState>,
    p: Principal,
    Path(dataset_id): Path<String>,
) -> ApiResult<axum::Json<Vec<DatasetVersionView>>> {
    let ds = visible_dataset(&state, &p, &dataset_id).await?;
    let versions = state.store.list_dataset_versions(&ds.id).await?;
    Ok(axum::Json(
        versions
            .into_iter()
            .map(|v| version_view(v, &ds.name, false))
            .collect(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionParams {
    /// Include the mergeable sketches behind the profile (large).
    #[serde(default)]
    pub sketches: bool,
}

#[utoipa::path(get, path = "/api/v1/dataset-versions/{version_id}", tag = "datasets",
    params(("version_id" = String, Path), VersionParams),
    responses((status = 200, body = DatasetVersionView), (status = 404, body = ErrorBody)))]
async fn get_version(
    State(state): State<AppState>,
    p: Principal,
    Path(version_id): Path<String>,
    ApiQuery(q): ApiQuery<VersionParams>,
) -> ApiResult<axum::Json<DatasetVersionView>> {
    let (v, name) = visible_version(&state, &p, &version_id).await?;
    Ok(axum::Json(version_view(v, &name, q.sketches)))
}

/// The version's file, byte for byte as uploaded.
#[utoipa::path(get, path = "/api/v1/dataset-versions/{version_id}/download", tag = "datasets",
    params(("version_id" = String, Path)), responses((status = 200, content_type = "text/csv", body = String)))]
async fn download_version(
    State(state): State<AppState>,
    p: Principal,
    Path(version_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let (v, _) = visible_version(&state, &p, &version_id).await?;
    let file = tokio::fs::File::open(state.artifacts.path(&v.artifact_key))
        .await
        .map_err(ApiError::internal)?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv".to_string()),
            (header::CONTENT_LENGTH, v.size_bytes.to_string()),
        ],
        body,
    ))
}
