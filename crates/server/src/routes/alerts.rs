//! Alert rules on deployments: create, read, change, delete; their firing history and the
//! deliveries of their notifications. Channel secrets (webhook URLs, signing secrets) are never
//! returned in clear — a generated webhook signing secret is shown once, when the alert is created.

use super::{opt_time, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::datasets::hide;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use coreplex_domain::alerting::{validate_metric, Condition};
use coreplex_domain::ids;
use coreplex_domain::tenancy::{validate_name, Action};
use coreplex_store::{Alert, Delivery};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_alert, list_alerts))
        .routes(routes!(get_alert, update_alert, delete_alert))
        .routes(routes!(history))
        .routes(routes!(deliveries))
        .routes(routes!(deployment_notifications))
}

/// Shows a URL as scheme and host only: paths and queries of webhook URLs are credentials.
fn redact_url(u: &str) -> String {
    match u.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or("");
            format!("{scheme}://{host}/…")
        }
        None => "…".into(),
    }
}

/// The channel fields holding credentials.
const SECRET_FIELDS: [&str; 3] = ["webhook_url", "url", "secret"];

/// How the API shows credential field `key` of a channel.
fn redacted(key: &str, value: &str) -> String {
    if key == "secret" {
        // A generated secret's `whsec_` prefix, or a user's first 4 characters: enough to tell
        // secrets apart, too little to help guess one.
        let shown: String = if value.starts_with("whsec_") {
            "whsec_".into()
        } else {
            value.chars().take(4).collect()
        };
        format!("{shown}…")
    } else {
        redact_url(value)
    }
}

fn redact_channel(ch: &serde_json::Value) -> serde_json::Value {
    let mut out = ch.clone();
    if let Some(o) = out.as_object_mut() {
        for k in SECRET_FIELDS {
            if let Some(shown) = o.get(k).and_then(|v| v.as_str()).map(|v| redacted(k, v)) {
                o.insert(k.into(), json!(shown));
            }
        }
    }
    out
}

/// A PATCH may send back channels as a GET showed them. Each redacted value (URL or secret) is
/// replaced by the stored value it stands for — the same channel position, type and redacted form —
/// so that editing another field never overwrites a webhook URL with its redacted form. A redacted
/// value that matches nothing stored is refused.
fn restore_redacted(
    channels: &mut [serde_json::Value],
    stored: &serde_json::Value,
) -> ApiResult<()> {
    for (i, ch) in channels.iter_mut().enumerate() {
        let old = stored.get(i).filter(|o| o.get("type") == ch.get("type"));
        let Some(o) = ch.as_object_mut() else {
            continue;
        };
        for k in SECRET_FIELDS {
            let Some(given) = o.get(k).and_then(|v| v.as_str()) else {
                continue;
            };
            if !given.contains('…') {
                continue;
            }
            let original = old
                .and_then(|old| old.get(k))
                .filter(|v| v.as_str().map(|v| redacted(k, v)).as_deref() == Some(given))
                .cloned();
            match original {
                Some(v) => {
                    o.insert(k.into(), v);
                }
                None => {
                    return Err(ApiError::invalid(
                        &format!("channels[{i}].{k}"),
                        "this is the redacted form the API shows; give the full value, or send \
                         the channel back unchanged in its place",
                    ))
                }
            }
        }
    }
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct AlertView {
    pub id: String,
    pub project_id: String,
    pub deployment_id: String,
    pub name: String,
    pub metric: String,
    pub condition: String,
    pub threshold: f64,
    /// Channels with their secrets redacted.
    #[schema(value_type = Vec<Object>)]
    pub channels: Vec<serde_json::Value>,
    pub evaluation_window_minutes: i64,
    pub cooldown_minutes: i64,
    pub enabled: bool,
    /// `ok` or `firing`.
    pub state: String,
    pub last_value: Option<f64>,
    pub last_evaluated_at: Option<String>,
    pub last_notified_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Generated webhook signing secrets, in this response only (alert creation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub signing_secrets: Vec<serde_json::Value>,
}

impl From<Alert> for AlertView {
    fn from(a: Alert) -> Self {
        AlertView {
            channels: a
                .channels
                .as_array()
                .map(|c| c.iter().map(redact_channel).collect())
                .unwrap_or_default(),
            id: a.id,
            project_id: a.project_id,
            deployment_id: a.deployment_id,
            name: a.name,
            metric: a.metric,
            condition: a.condition,
            threshold: a.threshold,
            evaluation_window_minutes: a.evaluation_window_minutes,
            cooldown_minutes: a.cooldown_minutes,
            enabled: a.enabled,
            state: a.state,
            last_value: a.last_value,
            last_evaluated_at: opt_time(a.last_evaluated_at),
            last_notified_at: opt_time(a.last_notified_at),
            created_at: time(a.created_at),
            updated_at: time(a.updated_at),
            signing_secrets: Vec::new(),
        }
    }
}

/// Checks channels and fills in generated webhook secrets; returns the generated ones.
fn check_channels(channels: &mut [serde_json::Value]) -> ApiResult<Vec<serde_json::Value>> {
    if channels.is_empty() {
        return Err(ApiError::invalid(
            "channels",
            "give at least one channel: slack, email or webhook",
        ));
    }
    let mut generated = Vec::new();
    for (i, ch) in channels.iter_mut().enumerate() {
        let field = |k: &str| format!("channels[{i}].{k}");
        let url_ok = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|u| {
                    u.strip_prefix("https://")
                        .or_else(|| u.strip_prefix("http://"))
                })
                .map(|rest| {
                    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                    !host.is_empty() && !host.starts_with(':') && !rest.contains('…')
                })
                .unwrap_or(false)
        };
        match ch["type"].as_str() {
            Some("slack") => {
                if !url_ok(&ch["webhook_url"]) {
                    return Err(ApiError::invalid(
                        &field("webhook_url"),
                        "a Slack incoming-webhook URL (https://hooks.slack.com/…)",
                    ));
                }
            }
            Some("email") => {
                let ok = ch["address"]
                    .as_str()
                    .map(|a| a.contains('@'))
                    .unwrap_or(false)
                    || ch["addresses"]
                        .as_array()
                        .map(|l| {
                            !l.is_empty()
                                && l.iter()
                                    .all(|a| a.as_str().map(|a| a.contains('@')).unwrap_or(false))
                        })
                        .unwrap_or(false);
                if !ok {
                    return Err(ApiError::invalid(
                        &field("address"),
                        "an email address such as ml-team@company.com",
                    ));
                }
            }
            Some("webhook") => {
                if !url_ok(&ch["url"]) {
                    return Err(ApiError::invalid(
                        &field("url"),
                        "an http(s) URL that accepts JSON POSTs",
                    ));
                }
                if ch.get("secret").map(|s| s.is_null()).unwrap_or(true) {
                    let secret = format!("whsec_{}", ids::new_secret());
                    ch["secret"] = json!(secret);
                    generated.push(json!({"channel": i, "secret": secret}));
                } else if ch["secret"].as_str().map(|s| s.len() < 16).unwrap_or(true) {
                    return Err(ApiError::invalid(
                        &field("secret"),
                        "at least 16 characters (or leave it out to have one generated)",
                    ));
                }
            }
            other => {
                return Err(ApiError::invalid(
                    &field("type"),
                    format!("unknown channel type {other:?}; use slack, email or webhook"),
                ))
            }
        }
    }
    Ok(generated)
}

fn check_metric_for_task(metric: &str, task: &str) -> ApiResult<()> {
    validate_metric("metric", metric)?;
    let regression_only = ["rmse", "mae", "r2"].contains(&metric);
    let classification_only =
        ["accuracy", "precision", "recall", "f1", "auc", "log_loss"].contains(&metric);
    if (task == "regression" && classification_only) || (task != "regression" && regression_only) {
        return Err(ApiError::invalid(
            "metric",
            format!("`{metric}` does not apply to a {task} deployment"),
        ));
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlert {
    pub deployment_id: String,
    pub name: String,
    /// data_drift_score, max_psi, concept_drift, accuracy, precision, recall, f1, auc, log_loss, rmse,
    /// mae, r2, latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_avg_ms, error_rate,
    /// throughput_rps, requests, shadow_dropped.
    pub metric: String,
    /// greater_than, greater_than_or_equal, less_than, less_than_or_equal, equal, not_equal.
    pub condition: String,
    pub threshold: f64,
    /// `{"type": "slack", "webhook_url"}`, `{"type": "email", "address"}`, `{"type": "webhook", "url", "secret"?}`.
    #[schema(value_type = Vec<Object>)]
    pub channels: Vec<serde_json::Value>,
    /// How often the rule is checked, over a window of the same length (default 60).
    pub evaluation_window_minutes: Option<i64>,
    /// After a notification, repeats are held back this long (default 60).
    pub cooldown_minutes: Option<i64>,
    pub enabled: Option<bool>,
}

/// Creates an alert rule on a deployment.
#[utoipa::path(post, path = "/api/v1/alerts", tag = "alerts", request_body = CreateAlert,
    responses((status = 201, body = AlertView), (status = 422, body = ErrorBody)))]
async fn create_alert(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(mut req): ApiJson<CreateAlert>,
) -> ApiResult<(StatusCode, axum::Json<AlertView>)> {
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
    validate_name("name", &req.name)?;
    check_metric_for_task(&req.metric, &d.task)?;
    let cond = Condition::parse("condition", &req.condition)?;
    if !req.threshold.is_finite() {
        return Err(ApiError::invalid("threshold", "must be a number"));
    }
    let window = req.evaluation_window_minutes.unwrap_or(60);
    if !(1..=10_080).contains(&window) {
        return Err(ApiError::invalid(
            "evaluation_window_minutes",
            "between 1 and 10080",
        ));
    }
    let cooldown = req.cooldown_minutes.unwrap_or(60);
    if !(0..=43_200).contains(&cooldown) {
        return Err(ApiError::invalid("cooldown_minutes", "between 0 and 43200"));
    }
    let generated = check_channels(&mut req.channels)?;
    let ctx = p.ctx(&state);
    let a = Alert {
        id: ids::new_id("alert"),
        project_id: d.project_id.clone(),
        deployment_id: d.id.clone(),
        name: req.name.trim().to_string(),
        metric: req.metric.clone(),
        condition: cond.as_str().to_string(),
        threshold: req.threshold,
        channels: json!(req.channels),
        evaluation_window_minutes: window,
        cooldown_minutes: cooldown,
        enabled: req.enabled.unwrap_or(true),
        state: "ok".into(),
        last_value: None,
        last_evaluated_at: None,
        last_notified_at: None,
        created_at: ctx.at,
        created_by: ctx.actor.clone(),
        updated_at: ctx.at,
    };
    state.store.create_alert(&ctx, &a).await?;
    let mut view = AlertView::from(a);
    view.signing_secrets = generated;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertListParams {
    pub project_id: String,
    pub deployment_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertListParams), responses((status = 200, body = Vec<AlertView>)))]
async fn list_alerts(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AlertListParams>,
) -> ApiResult<axum::Json<Vec<AlertView>>> {
    p.authorize(&state, &q.project_id, Action::Read).await?;
    let a = state
        .store
        .list_alerts(&q.project_id, q.deployment_id.as_deref())
        .await?;
    Ok(axum::Json(a.into_iter().map(AlertView::from).collect()))
}

async fn visible_alert(
    state: &AppState,
    p: &Principal,
    id: &str,
    action: Action,
) -> ApiResult<Alert> {
    let a = state
        .store
        .get_alert(&p.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert {id}")))?;
    p.authorize(state, &a.project_id, action)
        .await
        .map_err(|e| hide(e, "alert", id))?;
    Ok(a)
}

#[utoipa::path(get, path = "/api/v1/alerts/{alert_id}", tag = "alerts", params(("alert_id" = String, Path)),
    responses((status = 200, body = AlertView), (status = 404, body = ErrorBody)))]
async fn get_alert(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AlertView>> {
    Ok(axum::Json(
        visible_alert(&state, &p, &id, Action::Read).await?.into(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAlert {
    pub name: Option<String>,
    pub metric: Option<String>,
    pub condition: Option<String>,
    pub threshold: Option<f64>,
    #[schema(value_type = Vec<Object>)]
    pub channels: Option<Vec<serde_json::Value>>,
    pub evaluation_window_minutes: Option<i64>,
    pub cooldown_minutes: Option<i64>,
    pub enabled: Option<bool>,
}

#[utoipa::path(patch, path = "/api/v1/alerts/{alert_id}", tag = "alerts", params(("alert_id" = String, Path)),
    request_body = UpdateAlert, responses((status = 200, body = AlertView), (status = 422, body = ErrorBody)))]
async fn update_alert(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateAlert>,
) -> ApiResult<axum::Json<AlertView>> {
    let before = visible_alert(&state, &p, &id, Action::Write).await?;
    let d = state
        .store
        .get_deployment_any(&before.deployment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("deployment"))?;
    let mut after = before.clone();
    let mut generated = Vec::new();
    if let Some(n) = req.name {
        validate_name("name", &n)?;
        after.name = n.trim().into();
    }
    if let Some(m) = req.metric {
        check_metric_for_task(&m, &d.task)?;
        after.metric = m;
    }
    if let Some(c) = req.condition {
        after.condition = Condition::parse("condition", &c)?.as_str().into();
    }
    if let Some(t) = req.threshold {
        after.threshold = t;
    }
    if let Some(mut ch) = req.channels {
        restore_redacted(&mut ch, &before.channels)?;
        generated = check_channels(&mut ch)?;
        after.channels = json!(ch);
    }
    if let Some(w) = req.evaluation_window_minutes {
        if !(1..=10_080).contains(&w) {
            return Err(ApiError::invalid(
                "evaluation_window_minutes",
                "between 1 and 10080",
            ));
        }
        after.evaluation_window_minutes = w;
    }
    if let Some(c) = req.cooldown_minutes {
        if !(0..=43_200).contains(&c) {
            return Err(ApiError::invalid("cooldown_minutes", "between 0 and 43200"));
        }
        after.cooldown_minutes = c;
    }
    if let Some(e) = req.enabled {
        after.enabled = e;
    }
    state
        .store
        .update_alert(&p.ctx(&state), &before, &after)
        .await?;
    let mut view = AlertView::from(
        state
            .store
            .get_alert(&p.org_id, &id)
            .await?
            .unwrap_or(after),
    );
    view.signing_secrets = generated;
    Ok(axum::Json(view))
}

#[utoipa::path(delete, path = "/api/v1/alerts/{alert_id}", tag = "alerts", params(("alert_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_alert(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let a = visible_alert(&state, &p, &id, Action::Write).await?;
    state.store.delete_alert(&p.ctx(&state), &a).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct AlertEventView {
    pub at: String,
    /// fired, repeated, suppressed, resolved.
    pub kind: String,
    pub value: Option<f64>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct AlertHistory {
    pub alert_id: String,
    pub state: String,
    pub events: Vec<AlertEventView>,
}

/// The alert's history: when it fired, repeated, was suppressed by the cooldown, and resolved.
#[utoipa::path(get, path = "/api/v1/alerts/{alert_id}/history", tag = "alerts", params(("alert_id" = String, Path)),
    responses((status = 200, body = AlertHistory)))]
async fn history(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AlertHistory>> {
    let a = visible_alert(&state, &p, &id, Action::Read).await?;
    let ev = state.store.list_alert_events(&id).await?;
    Ok(axum::Json(AlertHistory {
        alert_id: id,
        state: a.state,
        events: ev
            .into_iter()
            .map(|e| AlertEventView {
                at: time(e.at),
                kind: e.kind,
                value: e.value,
                detail: e.detail,
            })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event: String,
    /// The channel, secrets redacted.
    #[schema(value_type = Object)]
    pub channel: serde_json::Value,
    /// pending, delivered or failed.
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id,
            event: d.event_kind,
            channel: redact_channel(&d.channel),
            next_attempt_at: (d.status == "pending").then(|| time(d.next_attempt_at)),
            status: d.status,
            attempts: d.attempts,
            max_attempts: d.max_attempts,
            last_error: d.last_error,
            created_at: time(d.created_at),
            delivered_at: opt_time(d.delivered_at),
            payload: d.payload,
        }
    }
}

/// Every notification of this alert and how its delivery went.
#[utoipa::path(get, path = "/api/v1/alerts/{alert_id}/deliveries", tag = "alerts", params(("alert_id" = String, Path)),
    responses((status = 200, body = Vec<DeliveryView>)))]
async fn deliveries(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<DeliveryView>>> {
    visible_alert(&state, &p, &id, Action::Read).await?;
    Ok(axum::Json(
        state
            .store
            .list_deliveries(Some(&id), None)
            .await?
            .into_iter()
            .map(DeliveryView::from)
            .collect(),
    ))
}

/// Every notification about this deployment (alerts and rollout events) and how its delivery went.
#[utoipa::path(get, path = "/api/v1/deployments/{deployment_id}/notifications", tag = "alerts",
    params(("deployment_id" = String, Path)), responses((status = 200, body = Vec<DeliveryView>)))]
async fn deployment_notifications(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<DeliveryView>>> {
    let d = state
        .store
        .get_deployment(&p.org_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("deployment {id}")))?;
    p.authorize(&state, &d.project_id, Action::Read)
        .await
        .map_err(|e| hide(e, "deployment", &id))?;
    Ok(axum::Json(
        state
            .store
            .list_deliveries(None, Some(&id))
            .await?
            .into_iter()
            .map(DeliveryView::from)
            .collect(),
    ))
}
