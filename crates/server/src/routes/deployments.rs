//! Deployments: named endpoints serving models under a strategy; predictions, delayed labels,
//! metrics, the rollout timeline, shadow comparisons and manual rollout control.

use super::time;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::monitoring::{self, VariantMetrics};
use crate::rollouts::{self, Ending};
use crate::routes::datasets::hide;
use crate::routes::models::visible_model;
use crate::serving::{self, log_columns, rollout_of, ShadowWork};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use coreplex_domain::ids;
use coreplex_domain::registry::Task;
use coreplex_domain::rollout::{routing, QualityMetric, Strategy, StrategyConfig};
use coreplex_domain::tenancy::{validate_name, Action, KeyScope};
use coreplex_store::features_codec;
use coreplex_store::{Deployment, LabelUpdate, PredictionRecord, PredictionRow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_deployment, list_deployments))
        .routes(routes!(get_deployment))
        .routes(routes!(start_rollout))
        .routes(routes!(predict))
        .routes(routes!(feedback))
        .routes(routes!(metrics))
        .routes(routes!(events))
        .routes(routes!(list_predictions))
        .routes(routes!(comparison))
        .routes(routes!(drift))
        .routes(routes!(concept_drift))
        .routes(routes!(promote))
        .routes(routes!(rollback))
        .routes(routes!(pause))
        .routes(routes!(resume))
}

#[derive(Serialize, ToSchema)]
pub struct TrafficShare {
    pub model_id: String,
    pub variant: String,
    pub percentage: f64,
}

#[derive(Serialize, ToSchema)]
pub struct DeploymentView {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub task: String,
    /// The strategy of the latest rollout, used again by rollouts that do not name one.
    pub strategy: String,
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// `active`, `rolling_out` or `paused`.
    pub status: String,
    pub serving_model_id: Option<String>,
    pub previous_model_id: Option<String>,
    /// The rollout in progress: strategy, candidate model and phase.
    #[schema(value_type = Object)]
    pub rollout: serde_json::Value,
    /// How requests are split now: the rollout's split, or the running A/B test's variants
    /// (`ab:<name>`), normalised to percentages.
    pub traffic: Vec<TrafficShare>,
    pub shadow_model_id: Option<String>,
    /// The A/B test routing this deployment's traffic, if one is running.
    pub ab_test_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Deployment> for DeploymentView {
    fn from(d: Deployment) -> Self {
        let r = rollout_of(&d);
        let rt = routing(d.serving_model_id.as_deref(), r.as_ref());
        DeploymentView {
            traffic: rt
                .variants
                .into_iter()
                .map(|(model_id, variant, percentage)| TrafficShare {
                    model_id,
                    variant: variant.into(),
                    percentage,
                })
                .collect(),
            shadow_model_id: rt.shadow,
            ab_test_id: None,
            id: d.id,
            project_id: d.project_id,
            name: d.name,
            task: d.task,
            strategy: d.strategy,
            config: d.config,
            status: d.status,
            serving_model_id: d.serving_model_id,
            previous_model_id: d.previous_model_id,
            rollout: rollout_times(d.rollout),
            created_at: time(d.created_at),
            updated_at: time(d.updated_at),
        }
    }
}

/// The view of `d` with the split of a running A/B test, when one routes its traffic.
async fn view_with_ab_test(state: &AppState, d: Deployment) -> ApiResult<DeploymentView> {
    let test = state.store.running_ab_test(&d.id).await?;
    let mut view = DeploymentView::from(d);
    if let Some(t) = test {
        let total: f64 = t.variants.iter().map(|v| v.traffic).sum();
        if total > 0.0 {
            view.traffic = t
                .variants
                .iter()
                .map(|v| TrafficShare {
                    model_id: v.model_id.clone(),
                    variant: crate::ab::log_variant(&v.name),
                    percentage: 100.0 * v.traffic / total,
                })
                .collect();
        }
        view.ab_test_id = Some(t.id);
    }
    Ok(view)
}

/// The rollout document with its times as RFC 3339, like every other time in the API.
fn rollout_times(mut r: serde_json::Value) -> serde_json::Value {
    if let Some(t) = r.get("started_at").and_then(|v| v.as_i64()) {
        r["started_at"] = json!(time(t));
    }
    if let Some(phase) = r.get_mut("phase") {
        for key in ["step_started_at", "switched_at", "started_at"] {
            if let Some(t) = phase.get(key).and_then(|v| v.as_i64()) {
                phase[key] = json!(time(t));
            }
        }
    }
    r
}

/// Strategy settings a request may give; missing ones keep the deployment's (or the defaults).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct StrategyFields {
    /// `direct`, `canary`, `blue-green` or `shadow`.
    pub strategy: Option<String>,
    pub traffic_percentage: Option<f64>,
    pub promotion_steps: Option<Vec<f64>>,
    pub auto_rollback: Option<bool>,
    pub rollback_threshold: Option<f64>,
    /// Gate metric: auc (default for classification), accuracy, f1, precision, recall, log_loss,
    /// rmse (default for regression), mae, r2.
    pub metric: Option<String>,
    pub min_samples_per_step: Option<u64>,
    pub step_duration_minutes: Option<u64>,
    pub rollback_window_minutes: Option<u64>,
    pub comparison_window_days: Option<f64>,
}

impl StrategyFields {
    fn apply(&self, base: StrategyConfig, task: Task) -> ApiResult<StrategyConfig> {
        let mut c = base;
        if let Some(v) = self.traffic_percentage {
            c.traffic_percentage = v;
            if self.promotion_steps.is_none()
                && !c.promotion_steps.contains(&v)
                && v > c.promotion_steps[0]
            {
                // A first share above the default first step: start the default ladder there.
                c.promotion_steps.retain(|s| *s > v);
                c.promotion_steps.insert(0, v);
            }
        }
        if let Some(v) = &self.promotion_steps {
            c.promotion_steps = v.clone();
        }
        if let Some(v) = self.auto_rollback {
            c.auto_rollback = v;
        }
        if let Some(v) = self.rollback_threshold {
            c.rollback_threshold = v;
        }
        if let Some(m) = &self.metric {
            c.metric = Some(QualityMetric::parse("metric", m)?);
        }
        if let Some(v) = self.min_samples_per_step {
            c.min_samples_per_step = v;
        }
        if let Some(v) = self.step_duration_minutes {
            c.step_duration_minutes = v;
        }
        if let Some(v) = self.rollback_window_minutes {
            c.rollback_window_minutes = v;
        }
        if let Some(v) = self.comparison_window_days {
            c.comparison_window_days = v;
        }
        Ok(c.normalise(task)?)
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// The endpoint's name. Deploying to an existing name rolls the model out there.
    pub name: String,
    pub model_id: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(flatten)]
    pub strategy: StrategyFields,
}

async fn visible_deployment(
    state: &AppState,
    p: &Principal,
    id: &str,
    action: Action,
) -> ApiResult<Deployment> {
    let d = state
        .store
        .get_deployment(&p.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("deployment {id}")))?;
    p.authorize(state, &d.project_id, action)
        .await
        .map_err(|e| hide(e, "deployment", id))?;
    Ok(d)
}

/// Deploys a model to an endpoint. A new name creates the endpoint, serving the model at once; an
/// existing name starts a rollout of the model there under the strategy given (or the endpoint's).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/deployments", tag = "deployments",
    params(("project_id" = String, Path)), request_body = CreateDeployment,
    responses((status = 201, body = DeploymentView), (status = 200, body = DeploymentView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_deployment(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
    ApiJson(req): ApiJson<CreateDeployment>,
) -> ApiResult<(StatusCode, axum::Json<DeploymentView>)> {
    p.authorize(&state, &project_id, Action::Write).await?;
    validate_name("name", &req.name)?;
    let model = visible_model(&state, &p, &req.model_id, Action::Read)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::invalid(
                    "model_id",
                    format!("no model {} in this project", req.model_id),
                )
            } else {
                e
            }
        })?;
    if model.project_id != project_id {
        return Err(ApiError::invalid(
            "model_id",
            format!("no model {} in this project", req.model_id),
        ));
    }
    let task = Task::parse("task", &model.task)?;
    let ctx = p.ctx(&state);
    let name = req.name.trim();
    if let Some(existing) = state
        .store
        .get_deployment_by_name(&project_id, name)
        .await?
    {
        let strategy = match &req.strategy.strategy {
            Some(s) => Strategy::parse("strategy", s)?,
            None => Strategy::parse("strategy", &existing.strategy)?,
        };
        let cfg = req.strategy.apply(rollouts::config_of(&existing), task)?;
        let d = rollouts::start(&state, &ctx, &existing, &model, strategy, cfg).await?;
        return Ok((StatusCode::OK, axum::Json(d.into())));
    }
    let strategy = Strategy::parse(
        "strategy",
        req.strategy.strategy.as_deref().unwrap_or("direct"),
    )?;
    let cfg = req.strategy.apply(StrategyConfig::default(), task)?;
    let d = Deployment {
        id: ids::new_id("dep"),
        project_id: project_id.clone(),
        name: name.to_string(),
        task: task.as_str().to_string(),
        strategy: strategy.as_str().to_string(),
        config: serde_json::to_value(&cfg).map_err(ApiError::internal)?,
        serving_model_id: None,
        previous_model_id: None,
        rollout: serde_json::Value::Null,
        status: "active".into(),
        revision: 1,
        created_at: ctx.at,
        created_by: ctx.actor.clone(),
        updated_at: ctx.at,
    };
    // Check the model loads before the endpoint exists.
    serving::load_model(&state, &model.id).await?;
    state.store.create_deployment(&ctx, &d, &[]).await?;
    let d = rollouts::start(&state, &ctx, &d, &model, strategy, cfg).await?;
    Ok((StatusCode::CREATED, axum::Json(d.into())))
}

#[utoipa::path(get, path = "/api/v1/projects/{project_id}/deployments", tag = "deployments",
    params(("project_id" = String, Path)), responses((status = 200, body = Vec<DeploymentView>)))]
async fn list_deployments(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
) -> ApiResult<axum::Json<Vec<DeploymentView>>> {
    p.authorize(&state, &project_id, Action::Read).await?;
    let mut views = Vec::new();
    for d in state.store.list_deployments(&project_id).await? {
        views.push(view_with_ab_test(&state, d).await?);
    }
    Ok(axum::Json(views))
}

#[utoipa::path(get, path = "/api/v1/deployments/{deployment_id}", tag = "deployments",
    params(("deployment_id" = String, Path)), responses((status = 200, body = DeploymentView), (status = 404, body = ErrorBody)))]
async fn get_deployment(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DeploymentView>> {
    let d = visible_deployment(&state, &p, &id, Action::Read).await?;
    Ok(axum::Json(view_with_ab_test(&state, d).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    pub model_id: String,
    #[serde(flatten)]
    pub strategy: StrategyFields,
}

/// Rolls a new model out on this deployment under its strategy (or the one given).
#[utoipa::path(post, path = "/api/v1/deployments/{deployment_id}/rollouts", tag = "deployments",
    params(("deployment_id" = String, Path)), request_body = RolloutRequest,
    responses((status = 200, body = DeploymentView), (status = 409, body = ErrorBody)))]
async fn start_rollout(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RolloutRequest>,
) -> ApiResult<axum::Json<DeploymentView>> {
    let d = visible_deployment(&state, &p, &id, Action::Write).await?;
    let model = visible_model(&state, &p, &req.model_id, Action::Read).await?;
    if model.project_id != d.project_id {
        return Err(ApiError::invalid(
            "model_id",
            format!("no model {} in this deployment's project", req.model_id),
        ));
    }
    let task = rollouts::task_of(&d);
    let strategy = Strategy::parse(
        "strategy",
        req.strategy.strategy.as_deref().unwrap_or(&d.strategy),
    )?;
    let cfg = req.strategy.apply(rollouts::config_of(&d), task)?;
    Ok(axum::Json(
        rollouts::start(&state, &p.ctx(&state), &d, &model, strategy, cfg)
            .await?
            .into(),
    ))
}

/// Rows by feature name, or the same as columns.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    #[schema(value_type = Vec<Object>)]
    pub rows: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    /// Columnar form: feature name → values, all of one length.
    #[schema(value_type = Object)]
    pub columns: Option<serde_json::Map<String, serde_json::Value>>,
    /// Sticky routing key: the same entity always reaches the same variant.
    pub entity_id: Option<String>,
    /// Your id for the request (suffixed `-0`, `-1`… per row when there are several rows).
    pub request_id: Option<String>,
    /// One id per row.
    pub request_ids: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct PredictResponse {
    /// One per row: `label` and `probabilities` (classification) or `value` (regression).
    #[schema(value_type = Vec<Object>)]
    pub predictions: Vec<coreplex_runtime::Prediction>,
    pub request_ids: Vec<String>,
    pub model_id: String,
    pub variant: String,
}

const MAX_ROWS: usize = 10_000;

fn rows_of(req: &mut PredictRequest) -> ApiResult<Vec<serde_json::Map<String, serde_json::Value>>> {
    match (req.rows.take(), req.columns.take()) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "columns",
            "send either rows or columns, not both",
        )),
        (Some(rows), None) => Ok(rows),
        (None, Some(cols)) => {
            let mut n = None;
            for (k, v) in &cols {
                let len = v.as_array().map(|a| a.len()).ok_or_else(|| {
                    ApiError::invalid(&format!("columns.{k}"), "must be an array")
                })?;
                if *n.get_or_insert(len) != len {
                    return Err(ApiError::invalid(
                        &format!("columns.{k}"),
                        "all columns must have the same length",
                    ));
                }
            }
            let n = n.unwrap_or(0);
            Ok((0..n)
                .map(|i| {
                    cols.iter()
                        .map(|(k, v)| (k.clone(), v[i].clone()))
                        .collect()
                })
                .collect())
        }
        (None, None) => Err(ApiError::invalid(
            "rows",
            "give `rows` (a list of {feature: value}) or `columns`",
        )),
    }
}

/// Predicts one output per row with the model the deployment's traffic split picks for this
/// request. Every prediction is logged with its request id.
#[utoipa::path(post, path = "/api/v1/deployments/{deployment_id}/predict", tag = "deployments",
    params(("deployment_id" = String, Path)), request_body = PredictRequest,
    responses((status = 200, body = PredictResponse), (status = 422, body = ErrorBody)))]
async fn predict(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(mut req): ApiJson<PredictRequest>,
) -> ApiResult<axum::Json<PredictResponse>> {
    let started = std::time::Instant::now();
    let at = state.now();
    let ep = match state.serving.get(&id) {
        Some(e) => e,
        None => {
            let d = state
                .store
                .get_deployment(&p.org_id, &id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("deployment {id}")))?;
            serving::endpoint(&state, &d).await?
        }
    };
    match &p.scope {
        KeyScope::Predict { deployment_id } if deployment_id != &id => {
            return Err(ApiError::forbidden(format!(
                "this key may only request predictions from deployment {deployment_id}"
            )));
        }
        _ => {
            state
                .auth
                .authorize_cached(&state, &p, &ep.project_id, Action::Predict)
                .await
                .map_err(|e| hide(e, "deployment", &id))?;
        }
    }
    let rows = rows_of(&mut req)?;
    if rows.is_empty() {
        return Err(ApiError::invalid("rows", "give at least one row"));
    }
    if rows.len() > MAX_ROWS {
        return Err(ApiError::invalid(
            "rows",
            format!("at most {MAX_ROWS} rows per request"),
        ));
    }
    let request_ids: Vec<String> = match (req.request_ids.take(), req.request_id.take()) {
        (Some(ids), _) => {
            if ids.len() != rows.len() {
                return Err(ApiError::invalid(
                    "request_ids",
                    format!("{} ids for {} rows", ids.len(), rows.len()),
                ));
            }
            ids
        }
        (None, Some(rid)) if rows.len() == 1 => vec![rid],
        (None, Some(rid)) => (0..rows.len()).map(|i| format!("{rid}-{i}")).collect(),
        // Ids that sort by time keep the prediction log's primary-key index append-mostly.
        (None, None) => (0..rows.len())
            .map(|_| ids::new_sortable_id("req", at))
            .collect(),
    };
    if ep.variants.is_empty() {
        return Err(ApiError::conflict(format!(
            "deployment {id} serves no model yet"
        )));
    }
    let variant = ep.choose(req.entity_id.as_deref());
    let model = variant.model.clone();
    let result = if rows.len() <= 64 {
        let r = model.predict(&rows);
        (r, rows)
    } else {
        tokio::task::spawn_blocking(move || {
            let r = model.predict(&rows);
            (r, rows)
        })
        .await
        .map_err(ApiError::internal)?
    };
    let (result, rows) = result;
    let latency = started.elapsed();
    let per_row_us = (latency.as_micros() as i64 / rows.len() as i64).max(1);
    let preds = match result {
        Ok(p) => p,
        Err(coreplex_runtime::Error::BadInput { field, message }) => {
            return Err(ApiError::invalid(&field, message))
        }
        Err(e) => {
            state.serving_metrics.observe(
                &id,
                &variant.name,
                rows.len() as u64,
                latency.as_secs_f64(),
                true,
            );
            record_assignment(&state, &ep, variant, &req.entity_id, rows.len(), at).await;
            for (row, rid) in rows.iter().zip(&request_ids) {
                state
                    .log
                    .append(
                        PredictionRecord {
                            request_id: rid.clone(),
                            role: "primary",
                            deployment_id: id.clone(),
                            model_id: variant.model_id.clone(),
                            variant: variant.name.clone(),
                            at,
                            latency_us: per_row_us,
                            is_error: true,
                            entity_id: req.entity_id.clone(),
                            features: features_codec::encode(row),
                            output: json!({"error": e.to_string()}).to_string(),
                            predicted: None,
                            score: None,
                        },
                        false,
                    )
                    .await;
            }
            return Err(ApiError::internal(format!(
                "model {} failed: {e}",
                variant.model_id
            )));
        }
    };
    let output_kind = &variant.model.schema().output;
    let shadow_rows = ep.shadow.is_some().then(|| rows.clone());
    for ((pred, row), rid) in preds.iter().zip(rows).zip(&request_ids) {
        let (predicted, score) = log_columns(pred, output_kind);
        state
            .log
            .append(
                PredictionRecord {
                    request_id: rid.clone(),
                    role: "primary",
                    deployment_id: id.clone(),
                    model_id: variant.model_id.clone(),
                    variant: variant.name.clone(),
                    at,
                    latency_us: per_row_us,
                    is_error: false,
                    entity_id: req.entity_id.clone(),
                    features: features_codec::encode(&row),
                    output: serde_json::to_string(pred).unwrap_or_default(),
                    predicted,
                    score,
                },
                true,
            )
            .await;
    }
    state.serving_metrics.observe(
        &id,
        &variant.name,
        request_ids.len() as u64,
        latency.as_secs_f64(),
        false,
    );
    record_assignment(&state, &ep, variant, &req.entity_id, request_ids.len(), at).await;
    if let Some(rows) = shadow_rows {
        state.shadow.offer(ShadowWork {
            endpoint: Arc::clone(&ep),
            rows,
            request_ids: request_ids.clone(),
            at,
            entity_id: req.entity_id.clone(),
        });
    }
    Ok(axum::Json(PredictResponse {
        predictions: preds,
        request_ids,
        model_id: variant.model_id.clone(),
        variant: variant.name.clone(),
    }))
}

/// Counts a request towards the assignments of the A/B test that routed it, if one did.
async fn record_assignment(
    state: &AppState,
    ep: &serving::Endpoint,
    variant: &serving::Variant,
    entity_id: &Option<String>,
    rows: usize,
    at: i64,
) {
    let Some(test_id) = &ep.ab_test_id else {
        return;
    };
    let Some(name) = variant.name.strip_prefix(crate::ab::LOG_PREFIX) else {
        return;
    };
    state
        .log
        .assign(coreplex_store::AbAssignment {
            test_id: test_id.clone(),
            variant: name.to_string(),
            model_id: variant.model_id.clone(),
            entity_id: entity_id.clone(),
            rows: rows as u64,
            at,
        })
        .await;
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub request_id: String,
    /// The true class (classification).
    #[schema(value_type = Object)]
    pub label: Option<serde_json::Value>,
    /// The true value (regression).
    pub value: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FeedbackRequest {
    List(Vec<Label>),
    Wrapped { labels: Vec<Label> },
}

#[derive(Serialize, ToSchema)]
pub struct FeedbackResponse {
    pub accepted: usize,
    /// Request ids that match no logged prediction of this deployment.
    pub unknown_request_ids: Vec<String>,
}

/// Attaches delayed labels to logged predictions by request id. Metrics of the windows they fall in
/// reflect them from now on.
#[utoipa::path(post, path = "/api/v1/deployments/{deployment_id}/feedback", tag = "deployments",
    params(("deployment_id" = String, Path)), request_body = FeedbackRequest,
    responses((status = 200, body = FeedbackResponse), (status = 422, body = ErrorBody)))]
async fn feedback(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<FeedbackRequest>,
) -> ApiResult<axum::Json<FeedbackResponse>> {
    let d = match &p.scope {
        KeyScope::Predict { deployment_id } if deployment_id == &id => state
            .store
            .get_deployment(&p.org_id, &id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("deployment {id}")))?,
        _ => visible_deployment(&state, &p, &id, Action::Write).await?,
    };
    let labels = match req {
        FeedbackRequest::List(l) | FeedbackRequest::Wrapped { labels: l } => l,
    };
    if labels.is_empty() {
        return Err(ApiError::invalid(
            "labels",
            "give at least one {request_id, label} pair",
        ));
    }
    let regression = rollouts::task_of(&d) == Task::Regression;
    // Class labels the deployment's models know, to refuse labels that are not classes.
    let mut classes: Vec<String> = Vec::new();
    let candidate = rollout_of(&d).map(|r| r.candidate_model_id);
    let ab_models: Vec<String> = state
        .store
        .running_ab_test(&id)
        .await?
        .map(|t| t.variants.into_iter().map(|v| v.model_id).collect())
        .unwrap_or_default();
    for m in d
        .serving_model_id
        .iter()
        .chain(candidate.iter())
        .chain(ab_models.iter())
    {
        if let Some(model) = state.store.get_model_any(m).await? {
            if let Some(c) = model.output_schema["classes"].as_array() {
                classes.extend(c.iter().filter_map(|x| x.as_str().map(str::to_string)));
            }
        }
    }
    let mut updates = Vec::with_capacity(labels.len());
    for (i, l) in labels.into_iter().enumerate() {
        let (label, value) = match (&l.label, l.value) {
            (None, None) => {
                return Err(ApiError::invalid(
                    &format!("labels[{i}]"),
                    "give `label` or `value`",
                ))
            }
            (_, Some(v)) => (l.label.as_ref().map(label_text), Some(v)),
            (Some(v), None) => {
                let text = label_text(v);
                let num = v.as_f64().or_else(|| text.parse::<f64>().ok());
                if regression && num.is_none() {
                    return Err(ApiError::invalid(
                        &format!("labels[{i}].label"),
                        "a regression label must be a number",
                    ));
                }
                if !regression
                    && !classes.is_empty()
                    && !classes
                        .iter()
                        .any(|c| monitoring::norm_label(c) == monitoring::norm_label(&text))
                {
                    return Err(ApiError::invalid(
                        &format!("labels[{i}].label"),
                        format!(
                            "`{text}` is not a class of this deployment's model ({})",
                            classes.join(", ")
                        ),
                    ));
                }
                (Some(text), num)
            }
        };
        updates.push(LabelUpdate {
            request_id: l.request_id,
            label,
            value,
        });
    }
    // Predictions still in the log queue must be written before they can be labelled.
    state.log.flush().await;
    let unknown = state
        .store
        .label_predictions(&id, &updates, state.now())
        .await?;
    Ok(axum::Json(FeedbackResponse {
        accepted: updates.len() - unknown.len(),
        unknown_request_ids: unknown,
    }))
}

fn label_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => monitoring::norm_label(&n.to_string()),
        other => other.to_string(),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsParams {
    /// Window length in minutes (default 60).
    pub window_minutes: Option<i64>,
    /// How many windows back from now (default 1).
    pub windows: Option<i64>,
    /// Alternatively an RFC 3339 start (end defaults to now): one window over the range.
    pub since: Option<String>,
    pub until: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MetricsWindow {
    pub start: String,
    pub end: String,
    pub variants: Vec<VariantMetrics>,
}

#[derive(Serialize, ToSchema)]
pub struct MetricsResponse {
    pub deployment_id: String,
    pub task: String,
    pub windows: Vec<MetricsWindow>,
    pub shadow_dropped: u64,
}

/// Operational and quality metrics per variant and window, from the prediction log.
#[utoipa::path(get, path = "/api/v1/deployments/{deployment_id}/metrics", tag = "deployments",
    params(("deployment_id" = String, Path), MetricsParams), responses((status = 200, body = MetricsResponse)))]
async fn metrics(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<MetricsParams>,
) -> ApiResult<axum::Json<MetricsResponse>> {
    let d = visible_deployment(&state, &p, &id, Action::Read).await?;
    state.log.flush().await;
    let now = state.now();
    let parse = super::parse_time;
    let ranges: Vec<(i64, i64)> = match parse("since", &q.since)? {
        Some(since) => {
            let until = parse("until", &q.until)?.unwrap_or(now + 1);
            if until <= since {
                return Err(ApiError::invalid("until", "must be after since"));
            }
            vec![(since, until)]
        }
        None => {
            let w = q.window_minutes.unwrap_or(60);
            let n = q.windows.unwrap_or(1);
            if !(1..=10_080).contains(&w) {
                return Err(ApiError::invalid("window_minutes", "between 1 and 10080"));
            }
            if !(1..=500).contains(&n) {
                return Err(ApiError::invalid("windows", "between 1 and 500"));
            }
            let end = now + 1;
            (0..n)
                .rev()
                .map(|i| (end - (i + 1) * w * 60_000, end - i * w * 60_000))
                .collect()
        }
    };
    let task = rollouts::task_of(&d);
    let (first, last) = (ranges[0].0, ranges[ranges.len() - 1].1);
    let rows = state
        .store
        .predictions_between(&id, first, last, task == Task::MulticlassClassification)
        .await?;
    let mut classes_by_model: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in &rows {
        if !classes_by_model.contains_key(&r.model_id) {
            let c = state
                .store
                .get_model_any(&r.model_id)
                .await?
                .map(|m| crate::monitoring::model_classes(&m))
                .unwrap_or_default();
            classes_by_model.insert(r.model_id.clone(), c);
        }
    }
    let mut windows = Vec::new();
    for (s, e) in ranges {
        let in_window: Vec<&PredictionRow> =
            rows.iter().filter(|r| r.at >= s && r.at < e).collect();
        let mut keys: Vec<(String, String)> = in_window
            .iter()
            .map(|r| (r.variant.clone(), r.model_id.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        let variants = keys
            .into_iter()
            .map(|(v, m)| {
                let sel: Vec<&PredictionRow> = in_window
                    .iter()
                    .copied()
                    .filter(|r| r.variant == v && r.model_id == m)
                    .collect();
                monitoring::variant_metrics(
                    &sel,
                    task,
                    classes_by_model
                        .get(&m)
                        .map(|c| c.as_slice())
                        .unwrap_or(&[]),
                    e - s,
                )
            })
            .collect();
        windows.push(MetricsWindow {
            start: time(s),
            end: time(e),
            variants,
        });
    }
    Ok(axum::Json(MetricsResponse {
        deployment_id: id.clone(),
        task: d.task,
        windows,
        shadow_dropped: state.shadow.dropped_for(&id),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PredictionListParams {
    /// RFC 3339 start (default: 24 hours ago).
    pub since: Option<String>,
    /// RFC 3339 end (default: now).
    pub until: Option<String>,
    /// 1..=10000, default 1000.
    pub limit: Option<i64>,
    pub page_token: Option<String>,
}

/// The prediction log of this deployment: request id, model, variant, features, output, latency and
/// label of every prediction (primary and shadow), oldest first.
#[utoipa::path(get, path = "/api/v1/deployments/{deployment_id}/predictions", tag = "deployments",
    params(("deployment_id" = String, Path), PredictionListParams), responses((status = 200, body = Object)))]
async fn list_predictions(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PredictionListParams>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    visible_deployment(&state, &p, &id, Action::Read).await?;
    state.shadow.drain().await;
    state.log.flush().await;
    let now = state.now();
    let since = super::parse_time("since", &q.since)?.unwrap_or(now - 86_400_000);
    let until = super::parse_time("until", &q.until)?.unwrap_or(now + 1);
    let limit = match q.limit {
        None => 1000,
        Some(l) if (1..=10_000).contains(&l) => l,
        Some(_) => return Err(ApiError::invalid("limit", "must be between 1 and 10000")),
    };
    let offset = coreplex_store::decode_page_token(q.page_token.as_deref())
        .ok_or_else(|| ApiError::invalid("page_token", "not a token this server issued"))?;
    let page = state
        .store
        .list_predictions(&id, since, until, limit, offset)
        .await?;
    let items: Vec<serde_json::Value> = page
        .items
        .into_iter()
        .map(|mut v| {
            if let Some(at) = v["at"].as_i64() {
                v["at"] = json!(time(at));
            }
            if let Some(at) = v["labelled_at"].as_i64() {
                v["labelled_at"] = json!(time(at));
            }
            v
        })
        .collect();
    Ok(axum::Json(
        json!({"items": items, "next_page_token": page.next_page_token}),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub at: String,
    pub kind: String,
    pub actor: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// The deployment's timeline: creation, rollouts, steps, promotions, rollbacks, notifications.
#[utoipa::path(get, path = "/api/v1/deployments/{deployment_id}/events", tag = "deployments",
    params(("deployment_id" = String, Path)), responses((status = 200, body = Vec<EventView>)))]
async fn events(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<EventView>>> {
    visible_deployment(&state, &p, &id, Action::Read).await?;
    let ev = state.store.list_deployment_events(&id).await?;
    Ok(axum::Json(
        ev.into_iter()
            .map(|e| EventView {
                id: e.id,
                at: time(e.at),
                kind: e.kind,
                actor: e.actor,
                detail: e.detail,
            })
            .collect(),
    ))
}

/// The shadow comparison so far: agreement or error distribution, latency and quality of each model,
/// and a paired significance test.
#[utoipa::path(get, path = "/api/v1/deployments/{deployment_id}/comparison", tag = "deployments",
    params(("deployment_id" = String, Path)), responses((status = 200, body = Object), (status = 409, body = ErrorBody)))]
async fn comparison(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let d = visible_deployment(&state, &p, &id, Action::Read).await?;
    Ok(axum::Json(rollouts::shadow_report(&state, &d).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DriftParams {
    /// Window ending now, in minutes (default 60).
    pub window_minutes: Option<i64>,
    /// Or an RFC 3339 range.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Compare with this dataset version instead of the serving model's training data.
    pub reference_dataset_version_id: Option<String>,
    /// Significance level of the tests (default 0.05).
    pub alpha: Option<f64>,
    /// PSI at or above which a shift is practically significant (default 0.1).
    pub psi_threshold: Option<f64>,
}

/// Data drift of live traffic against the training data's profile, per feature: test, statistic,
/// p-value, PSI, distances, missing shares and histograms; `data_drift_score` = share of features
/// drifted.
#[utoipa::path(get, path = "/api/v1/deployments/{deployment_id}/drift", tag = "monitoring",
    params(("deployment_id" = String, Path), DriftParams), responses((status = 200, body = Object), (status = 409, body = ErrorBody)))]
async fn drift(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DriftParams>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let d = visible_deployment(&state, &p, &id, Action::Read).await?;
    let now = state.now();
    let until = super::parse_time("until", &q.until)?.unwrap_or(now + 1);
    let since = match super::parse_time("since", &q.since)? {
        Some(s) => s,
        None => {
            let w = q.window_minutes.unwrap_or(60);
            if !(1..=525_600).contains(&w) {
                return Err(ApiError::invalid("window_minutes", "between 1 and 525600"));
            }
            until - w * 60_000
        }
    };
    if until <= since {
        return Err(ApiError::invalid("until", "must be after since"));
    }
    let mut rule = crate::drift::Rule::default();
    if let Some(a) = q.alpha {
        if !(a > 0.0 && a < 1.0) {
            return Err(ApiError::invalid("alpha", "must be in (0, 1)"));
        }
        rule.alpha = a;
    }
    if let Some(t) = q.psi_threshold {
        if !(t.is_finite() && t >= 0.0) {
            return Err(ApiError::invalid(
                "psi_threshold",
                "must be a non-negative number",
            ));
        }
        rule.psi_threshold = t;
    }
    Ok(axum::Json(
        crate::drift::live_drift(
            &state,
            &d,
            since,
            until,
            q.reference_dataset_version_id.as_deref(),
            rule,
        )
        .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConceptDriftParams {
    /// Quality metric (default AUC for classification, RMSE for regression).
    pub metric: Option<String>,
    pub window_minutes: Option<i64>,
    /// Consecutive windows that must all be degraded (default 3).
    pub windows: Option<i64>,
    /// Relative degradation against the validation value (default 0.05 = 5%).
    pub tolerance: Option<f64>,
}

/// Concept drift: sustained degradation of a quality metric over consecutive windows relative to the
/// model's validation metric.
#[utoipa::path(get, path = "/api/v1/deployments/{deployment_id}/concept-drift", tag = "monitoring",
    params(("deployment_id" = String, Path), ConceptDriftParams), responses((status = 200, body = Object)))]
async fn concept_drift(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ConceptDriftParams>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let d = visible_deployment(&state, &p, &id, Action::Read).await?;
    let w = q.window_minutes.unwrap_or(60);
    let n = q.windows.unwrap_or(3);
    let tol = q.tolerance.unwrap_or(0.05);
    if !(1..=10_080).contains(&w) {
        return Err(ApiError::invalid("window_minutes", "between 1 and 10080"));
    }
    if !(1..=100).contains(&n) {
        return Err(ApiError::invalid("windows", "between 1 and 100"));
    }
    if !(0.0..1.0).contains(&tol) {
        return Err(ApiError::invalid("tolerance", "in [0, 1)"));
    }
    Ok(axum::Json(
        crate::drift::concept_drift(&state, &d, q.metric.as_deref(), w, n, tol).await?,
    ))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

/// The optional `{"reason": …}` body of a manual rollout action.
fn reason_of(body: &[u8], default: &str) -> ApiResult<String> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(default.to_string());
    }
    let r: ReasonRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            "reason",
            format!("the body must be {{\"reason\": \"…\"}}: {e}"),
        )
    })?;
    Ok(r.reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| default.to_string()))
}

/// Promotes the rollout's candidate now: it takes all traffic and becomes `production`.
#[utoipa::path(post, path = "/api/v1/deployments/{deployment_id}/promote", tag = "deployments",
    params(("deployment_id" = String, Path)), request_body(content = ReasonRequest, description = "optional"),
    responses((status = 200, body = DeploymentView), (status = 409, body = ErrorBody)))]
async fn promote(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<DeploymentView>> {
    let d = visible_deployment(&state, &p, &id, Action::Write).await?;
    let reason = reason_of(&body, "promoted by hand")?;
    Ok(axum::Json(
        rollouts::finish(&state, &p.ctx(&state), &d, Ending::Promote(reason))
            .await?
            .into(),
    ))
}

/// Rolls back: during a rollout all traffic returns to the baseline at once; otherwise the endpoint
/// returns to the model it served before.
#[utoipa::path(post, path = "/api/v1/deployments/{deployment_id}/rollback", tag = "deployments",
    params(("deployment_id" = String, Path)), request_body(content = ReasonRequest, description = "optional"),
    responses((status = 200, body = DeploymentView), (status = 409, body = ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<DeploymentView>> {
    let d = visible_deployment(&state, &p, &id, Action::Write).await?;
    let reason = reason_of(&body, "rolled back by hand")?;
    let ctx = p.ctx(&state);
    let d = if rollout_of(&d).is_some() {
        rollouts::finish(&state, &ctx, &d, Ending::Rollback(reason)).await?
    } else {
        rollouts::revert(&state, &ctx, &d, &reason).await?
    };
    Ok(axum::Json(d.into()))
}

/// Pauses the rollout: traffic stays split as it is and the controller stops advancing it.
#[utoipa::path(post, path = "/api/v1/deployments/{deployment_id}/pause", tag = "deployments",
    params(("deployment_id" = String, Path)), responses((status = 200, body = DeploymentView), (status = 409, body = ErrorBody)))]
async fn pause(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DeploymentView>> {
    let d = visible_deployment(&state, &p, &id, Action::Write).await?;
    Ok(axum::Json(
        rollouts::set_paused(&state, &p.ctx(&state), &d, true)
            .await?
            .into(),
    ))
}

/// Resumes a paused rollout; a canary step's clock starts again.
#[utoipa::path(post, path = "/api/v1/deployments/{deployment_id}/resume", tag = "deployments",
    params(("deployment_id" = String, Path)), responses((status = 200, body = DeploymentView), (status = 409, body = ErrorBody)))]
async fn resume(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DeploymentView>> {
    let d = visible_deployment(&state, &p, &id, Action::Write).await?;
    Ok(axum::Json(
        rollouts::set_paused(&state, &p.ctx(&state), &d, false)
            .await?
            .into(),
    ))
}
