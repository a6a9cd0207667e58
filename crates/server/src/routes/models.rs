//! The model registry: register an ONNX file as a new version, read its schema and lineage, move it
//! through the lifecycle, download it back, and see its transitions and promotion history.

use super::{opt_time, time, ListResponse};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::datasets::hide;
use crate::state::AppState;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use coreplex_domain::ids;
use coreplex_domain::registry::{validate_tags, ModelStatus, Task};
use coreplex_domain::tenancy::{validate_name, Action};
use coreplex_runtime::{LoadOptions, LoadedModel, OutputKind};
use coreplex_store::{Model, ModelFilter, ModelTransition, NewModel, Promotion};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register, list_models))
        .routes(routes!(get_model, update_model))
        .routes(routes!(transition, list_transitions))
        .routes(routes!(list_promotions))
        .routes(routes!(download))
}

#[derive(Serialize, ToSchema)]
pub struct ModelView {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub version: i64,
    pub task: String,
    pub status: String,
    pub sha256: String,
    pub size_bytes: i64,
    /// Graph inputs and the named features they take.
    #[schema(value_type = Object)]
    pub input_schema: serde_json::Value,
    #[schema(value_type = Object)]
    pub output_schema: serde_json::Value,
    pub model_card: String,
    #[schema(value_type = Object)]
    pub tags: serde_json::Value,
    /// Dataset version, experiment configuration, hyperparameters, validation metrics, training
    /// duration and parent model.
    #[schema(value_type = Object)]
    pub lineage: serde_json::Value,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
}

impl From<Model> for ModelView {
    fn from(m: Model) -> Self {
        ModelView {
            id: m.id,
            project_id: m.project_id,
            name: m.name,
            version: m.version,
            task: m.task,
            status: m.status,
            sha256: m.sha256,
            size_bytes: m.size_bytes,
            input_schema: m.input_schema,
            output_schema: m.output_schema,
            model_card: m.model_card,
            tags: m.tags,
            lineage: m.lineage,
            created_at: time(m.created_at),
            created_by: m.created_by,
            updated_at: time(m.updated_at),
        }
    }
}

/// Lineage of a model, all optional for uploaded models.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    pub dataset_version_id: Option<String>,
    #[schema(value_type = Object)]
    pub experiment: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub hyperparameters: Option<serde_json::Value>,
    pub validation_metrics: Option<BTreeMap<String, f64>>,
    pub training_duration_secs: Option<f64>,
    pub parent_model_id: Option<String>,
    /// How the model came to be, e.g. `upload`, `experiment:exp_…`, `retraining:pol_…`.
    pub source: Option<String>,
}

/// The `metadata` part of a registration.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterModel {
    pub name: String,
    /// `binary_classification`, `multiclass_classification` or `regression`.
    pub task: String,
    #[serde(default)]
    pub model_card: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub lineage: Lineage,
    /// Names for the columns of a single `[batch, n]` input, in order.
    pub feature_names: Option<Vec<String>>,
    /// Class labels in the order of the probability columns.
    pub class_labels: Option<Vec<String>>,
    /// A row to make the registration's test prediction with (default: zeros and empty text).
    #[schema(value_type = Object)]
    pub input_example: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Registers a model: multipart with a `metadata` JSON part and a `file` part holding the ONNX graph.
/// The graph is loaded with ONNX Runtime, its input schema read, and a test prediction made before
/// anything is stored.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/models", tag = "models",
    params(("project_id" = String, Path)),
    request_body(content = RegisterModel, content_type = "multipart/form-data",
        description = "parts: `metadata` (JSON, RegisterModel) and `file` (the .onnx file)"),
    responses((status = 201, body = ModelView), (status = 422, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
    req: axum::extract::Request,
) -> ApiResult<(StatusCode, axum::Json<ModelView>)> {
    p.authorize(&state, &project_id, Action::Write).await?;
    // Read the body only once the caller is known to be allowed here.
    let mut multipart =
        <Multipart as axum::extract::FromRequest<AppState>>::from_request(req, &state)
            .await
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "send multipart/form-data with `metadata` and `file` parts: {e}"
                ))
            })?;
    let mut meta: Option<RegisterModel> = None;
    let mut upload = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?
    {
        match field.name() {
            Some("metadata") => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                meta = Some(
                    crate::extract::parse_json(text.as_bytes()).map_err(|mut e| {
                        e.message = format!("metadata: {}", e.message);
                        e
                    })?,
                );
            }
            Some("file") => {
                upload = Some(
                    crate::upload::to_temp_file(
                        state.artifacts.temp_path(),
                        field,
                        state.config.max_upload_bytes,
                    )
                    .await?,
                );
            }
            Some(other) => {
                return Err(ApiError::invalid(
                    other,
                    "unknown part; send `metadata` and `file`",
                ))
            }
            None => return Err(ApiError::bad_request("a multipart part has no name")),
        }
    }
    let meta = meta.ok_or_else(|| {
        ApiError::invalid(
            "metadata",
            "missing part: a JSON document with name and task",
        )
    })?;
    let upload = upload.ok_or_else(|| ApiError::invalid("file", "missing part: the .onnx file"))?;
    validate_name("name", &meta.name)?;
    Task::parse("task", &meta.task)?;
    validate_tags(&meta.tags)?;
    check_lineage(&state, &p, &project_id, &meta.lineage).await?;
    if upload.size == 0 {
        return Err(ApiError::invalid("file", "the file is empty"));
    }
    let bytes = tokio::fs::read(&upload.path)
        .await
        .map_err(ApiError::internal)?;
    let created = register_bytes(&state, &p.ctx(&state), &project_id, meta, bytes).await?;
    drop(upload);
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// Registers ONNX `bytes` as a new version of `meta.name` in `project_id`: loads it with ONNX
/// Runtime, reads its schema, makes a test prediction, checks the task, then stores the file and the
/// record (and nothing at all when any step fails). Used by uploads and by the trainer.
pub(crate) async fn register_bytes(
    state: &AppState,
    ctx: &coreplex_store::Ctx,
    project_id: &str,
    meta: RegisterModel,
    bytes: Vec<u8>,
) -> ApiResult<Model> {
    validate_name("name", &meta.name)?;
    let task = Task::parse("task", &meta.task)?;
    validate_tags(&meta.tags)?;
    if bytes.is_empty() {
        return Err(ApiError::invalid("file", "the file is empty"));
    }
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let size = bytes.len() as i64;
    let opts = LoadOptions {
        feature_names: meta.feature_names.clone(),
        class_labels: meta.class_labels.clone(),
        sessions: 2,
    };
    let example = meta.input_example.clone();
    let (model, test_prediction, bytes) = tokio::task::spawn_blocking(
        move || -> Result<(LoadedModel, serde_json::Value, Vec<u8>), ApiError> {
            let model = LoadedModel::load(&bytes, &opts)?;
            let row = example.unwrap_or_else(|| model.example_row());
            let pred = model.predict(&[row]).map_err(|e| match e {
                coreplex_runtime::Error::BadInput { field, message } => {
                    ApiError::invalid(&format!("input_example.{field}"), message)
                }
                other => ApiError::invalid("file", format!("the test prediction failed: {other}")),
            })?;
            let pred = serde_json::to_value(&pred[0]).map_err(ApiError::internal)?;
            Ok((model, pred, bytes))
        },
    )
    .await
    .map_err(ApiError::internal)??;
    check_task(task, &model.schema().output)?;
    let model_id = ids::new_id(ids::MODEL);
    let key = format!("models/{model_id}/model.onnx");
    let tmp = state.artifacts.temp_path();
    tokio::fs::write(&tmp, &bytes)
        .await
        .map_err(ApiError::internal)?;
    state.artifacts.commit(&tmp, &key)?;
    let schema = model.schema();
    let input_schema = serde_json::json!({"inputs": schema.inputs, "features": schema.features});
    let mut output_schema = serde_json::to_value(&schema.output).map_err(ApiError::internal)?;
    output_schema["test_prediction"] = test_prediction;
    let mut lineage = serde_json::to_value(&meta.lineage).map_err(ApiError::internal)?;
    if lineage.get("source").map(|s| s.is_null()).unwrap_or(true) {
        lineage["source"] = serde_json::json!("upload");
    }
    let new = NewModel {
        id: model_id.clone(),
        project_id: project_id.to_string(),
        name: meta.name.trim().to_string(),
        task: task.as_str().to_string(),
        artifact_key: key.clone(),
        sha256,
        size_bytes: size,
        input_schema,
        output_schema,
        model_card: meta.model_card,
        tags: serde_json::to_value(&meta.tags).map_err(ApiError::internal)?,
        lineage,
    };
    let created = match state.store.create_model(ctx, &new).await {
        Ok(m) => m,
        Err(e) => {
            state.artifacts.remove(&key);
            return Err(e.into());
        }
    };
    if let Ok(mut cache) = state.models.write() {
        cache.insert(model_id, Arc::new(model));
    }
    Ok(created)
}

fn check_task(task: Task, output: &OutputKind) -> ApiResult<()> {
    match (task, output) {
        (Task::Regression, OutputKind::Regressor { .. }) => Ok(()),
        (Task::Regression, OutputKind::Classifier { .. }) => Err(ApiError::invalid(
            "task",
            "the graph is a classifier (it outputs labels and probabilities), not a regressor",
        )),
        (_, OutputKind::Regressor { .. }) => Err(ApiError::invalid(
            "task",
            "the graph is a regressor (it outputs one value), not a classifier",
        )),
        (Task::BinaryClassification, OutputKind::Classifier { classes, .. })
            if classes.len() > 2 =>
        {
            Err(ApiError::invalid(
                "task",
                format!(
                    "the graph has {} classes; use multiclass_classification",
                    classes.len()
                ),
            ))
        }
        (Task::MulticlassClassification, OutputKind::Classifier { classes, .. })
            if classes.len() == 2 =>
        {
            Err(ApiError::invalid(
                "task",
                "the graph has 2 classes; use binary_classification",
            ))
        }
        _ => Ok(()),
    }
}

async fn check_lineage(
    state: &AppState,
    p: &Principal,
    project_id: &str,
    l: &Lineage,
) -> ApiResult<()> {
    if let Some(dv) = &l.dataset_version_id {
        let v = state.store.get_dataset_version(&p.org_id, dv).await?;
        if v.map(|v| v.project_id != project_id).unwrap_or(true) {
            return Err(ApiError::invalid(
                "lineage.dataset_version_id",
                format!("no dataset version {dv} in this project"),
            ));
        }
    }
    if let Some(parent) = &l.parent_model_id {
        let m = state.store.get_model(&p.org_id, parent).await?;
        if m.map(|m| m.project_id != project_id).unwrap_or(true) {
            return Err(ApiError::invalid(
                "lineage.parent_model_id",
                format!("no model {parent} in this project"),
            ));
        }
    }
    if let Some(d) = l.training_duration_secs {
        if !(d.is_finite() && d >= 0.0) {
            return Err(ApiError::invalid(
                "lineage.training_duration_secs",
                "must be a non-negative number",
            ));
        }
    }
    Ok(())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelListParams {
    pub name: Option<String>,
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub page_token: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/projects/{project_id}/models", tag = "models",
    params(("project_id" = String, Path), ModelListParams), responses((status = 200, body = ListResponse<ModelView>)))]
async fn list_models(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
    ApiQuery(q): ApiQuery<ModelListParams>,
) -> ApiResult<axum::Json<ListResponse<ModelView>>> {
    p.authorize(&state, &project_id, Action::Read).await?;
    if let Some(s) = &q.status {
        ModelStatus::parse("status", s)?;
    }
    let page = crate::extract::PageParams {
        limit: q.limit,
        page_token: q.page_token.clone(),
    };
    let f = ModelFilter {
        name: q.name.clone(),
        status: q.status.clone(),
    };
    let got = state
        .store
        .list_models(&project_id, &f, page.limit()?, page.offset()?)
        .await?;
    Ok(axum::Json(ListResponse::from_page(got, ModelView::from)))
}

pub(crate) async fn visible_model(
    state: &AppState,
    p: &Principal,
    id: &str,
    action: Action,
) -> ApiResult<Model> {
    let m = state
        .store
        .get_model(&p.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("model {id}")))?;
    p.authorize(state, &m.project_id, action)
        .await
        .map_err(|e| hide(e, "model", id))?;
    Ok(m)
}

#[utoipa::path(get, path = "/api/v1/models/{model_id}", tag = "models", params(("model_id" = String, Path)),
    responses((status = 200, body = ModelView), (status = 404, body = ErrorBody)))]
async fn get_model(
    State(state): State<AppState>,
    p: Principal,
    Path(model_id): Path<String>,
) -> ApiResult<axum::Json<ModelView>> {
    Ok(axum::Json(
        visible_model(&state, &p, &model_id, Action::Read)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateModel {
    pub model_card: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

/// Changes a version's model card or tags. Its file, schema and lineage never change.
#[utoipa::path(patch, path = "/api/v1/models/{model_id}", tag = "models", params(("model_id" = String, Path)),
    request_body = UpdateModel, responses((status = 200, body = ModelView)))]
async fn update_model(
    State(state): State<AppState>,
    p: Principal,
    Path(model_id): Path<String>,
    ApiJson(req): ApiJson<UpdateModel>,
) -> ApiResult<axum::Json<ModelView>> {
    let m = visible_model(&state, &p, &model_id, Action::Write).await?;
    let tags = match &req.tags {
        Some(t) => {
            validate_tags(t)?;
            Some(serde_json::to_value(t).map_err(ApiError::internal)?)
        }
        None => None,
    };
    let after = state
        .store
        .update_model(&p.ctx(&state), &m, req.model_card.as_deref(), tags.as_ref())
        .await?;
    Ok(axum::Json(after.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// `candidate`, `staging`, `production` or `archived`.
    pub status: String,
    #[serde(default)]
    pub reason: String,
}

/// Moves a model through its lifecycle. Promoting to `production` archives the version that was
/// there. A move the lifecycle does not allow is a 409.
#[utoipa::path(post, path = "/api/v1/models/{model_id}/transitions", tag = "models", params(("model_id" = String, Path)),
    request_body = TransitionRequest, responses((status = 200, body = ModelView), (status = 409, body = ErrorBody)))]
async fn transition(
    State(state): State<AppState>,
    p: Principal,
    Path(model_id): Path<String>,
    ApiJson(req): ApiJson<TransitionRequest>,
) -> ApiResult<axum::Json<ModelView>> {
    visible_model(&state, &p, &model_id, Action::Write).await?;
    let to = ModelStatus::parse("status", &req.status)?;
    let m = state
        .store
        .transition_model(&p.ctx(&state), &model_id, to, req.reason.trim())
        .await?;
    Ok(axum::Json(m.into()))
}

#[derive(Serialize, ToSchema)]
pub struct TransitionView {
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub at: String,
    pub reason: String,
}

impl From<ModelTransition> for TransitionView {
    fn from(t: ModelTransition) -> Self {
        TransitionView {
            from_status: t.from_status,
            to_status: t.to_status,
            actor: t.actor,
            at: time(t.at),
            reason: t.reason,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/models/{model_id}/transitions", tag = "models", params(("model_id" = String, Path)),
    responses((status = 200, body = Vec<TransitionView>)))]
async fn list_transitions(
    State(state): State<AppState>,
    p: Principal,
    Path(model_id): Path<String>,
) -> ApiResult<axum::Json<Vec<TransitionView>>> {
    visible_model(&state, &p, &model_id, Action::Read).await?;
    let t = state.store.list_model_transitions(&model_id).await?;
    Ok(axum::Json(
        t.into_iter().map(TransitionView::from).collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct PromotionView {
    pub deployment_id: String,
    pub endpoint: String,
    pub strategy: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// `in_progress`, `promoted`, `rolled_back`, `aborted` or `shadow_compared`.
    pub outcome: String,
    pub detail: String,
}

impl From<Promotion> for PromotionView {
    fn from(p: Promotion) -> Self {
        PromotionView {
            deployment_id: p.deployment_id,
            endpoint: p.endpoint,
            strategy: p.strategy,
            started_at: time(p.started_at),
            ended_at: opt_time(p.ended_at),
            outcome: p.outcome,
            detail: p.detail,
        }
    }
}

/// Every deployment of this model: endpoint, strategy, start, end and outcome.
#[utoipa::path(get, path = "/api/v1/models/{model_id}/promotions", tag = "models", params(("model_id" = String, Path)),
    responses((status = 200, body = Vec<PromotionView>)))]
async fn list_promotions(
    State(state): State<AppState>,
    p: Principal,
    Path(model_id): Path<String>,
) -> ApiResult<axum::Json<Vec<PromotionView>>> {
    visible_model(&state, &p, &model_id, Action::Read).await?;
    let h = state.store.list_promotions(&model_id).await?;
    Ok(axum::Json(h.into_iter().map(PromotionView::from).collect()))
}

/// The registered ONNX file, byte for byte.
#[utoipa::path(get, path = "/api/v1/models/{model_id}/artifact", tag = "models", params(("model_id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>)))]
async fn download(
    State(state): State<AppState>,
    p: Principal,
    Path(model_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let m = visible_model(&state, &p, &model_id, Action::Read).await?;
    let bytes = tokio::fs::read(state.artifacts.path(&m.artifact_key))
        .await
        .map_err(ApiError::internal)?;
    let disposition = format!(
        "attachment; filename=\"{}-v{}.onnx\"",
        m.name.replace('"', ""),
        m.version
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    ))
}
