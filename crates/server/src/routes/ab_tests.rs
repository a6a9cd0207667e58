//! A/B tests: create, list, read, results, record outcomes, stop (and so promote the winner).

use super::{opt_time, time, ListResponse};
use crate::ab::{self, Analysis, MetricRequest, MetricType, OutcomeReport, OutcomeRequest};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, PageParams};
use crate::routes::datasets::hide;
use crate::serving::rollout_of;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use coreplex_domain::ids;
use coreplex_domain::registry::Task;
use coreplex_domain::tenancy::{validate_name, Action, KeyScope};
use coreplex_stats::ab as st;
use coreplex_store::{AbAssignmentCount, AbTest, AbVariant, Deployment};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_ab_test, list_ab_tests))
        .routes(routes!(get_ab_test))
        .routes(routes!(results))
        .routes(routes!(record_outcomes))
        .routes(routes!(stop_ab_test))
}

#[derive(Serialize, ToSchema)]
pub struct VariantView {
    pub name: String,
    pub model_id: String,
    /// Percent of the deployment's traffic.
    pub traffic: f64,
    pub is_control: bool,
}

#[derive(Serialize, ToSchema)]
pub struct AssignmentView {
    pub variant: String,
    pub model_id: String,
    /// Randomisation units: distinct entities plus requests without an entity.
    pub units: i64,
    pub requests: i64,
    pub anonymous_requests: i64,
    pub rows: i64,
    pub entities: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AbTestView {
    pub id: String,
    pub project_id: String,
    pub deployment_id: String,
    pub name: String,
    pub description: String,
    /// `running` or `stopped`.
    pub status: String,
    /// The first variant is the control.
    pub variants: Vec<VariantView>,
    pub control_model_id: String,
    /// `{type, source, name, higher_is_better, baseline_rate, sd}`.
    #[schema(value_type = Object)]
    pub metric: serde_json::Value,
    pub alpha: f64,
    pub power: f64,
    pub minimum_detectable_effect: f64,
    pub sequential: bool,
    /// Requests and entities routed to each variant so far (not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignments: Option<Vec<AssignmentView>>,
    pub winner_model_id: Option<String>,
    pub winner_variant: Option<String>,
    pub stop_reason: Option<String>,
    pub started_at: String,
    pub stopped_at: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    /// In the answer to `stop`: the model the deployment serves from now on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving_model_id: Option<String>,
}

impl AbTestView {
    fn new(t: AbTest, counts: Option<Vec<AbAssignmentCount>>) -> Self {
        let assignments = counts.map(|c| {
            c.into_iter()
                .zip(&t.variants)
                .map(|(c, v)| AssignmentView {
                    model_id: v.model_id.clone(),
                    units: c.entities + c.anonymous_requests,
                    variant: c.variant,
                    requests: c.requests,
                    anonymous_requests: c.anonymous_requests,
                    rows: c.rows,
                    entities: c.entities,
                })
                .collect()
        });
        AbTestView {
            control_model_id: t
                .variants
                .first()
                .map(|v| v.model_id.clone())
                .unwrap_or_default(),
            variants: t
                .variants
                .iter()
                .enumerate()
                .map(|(i, v)| VariantView {
                    name: v.name.clone(),
                    model_id: v.model_id.clone(),
                    traffic: v.traffic,
                    is_control: i == 0,
                })
                .collect(),
            assignments,
            id: t.id,
            project_id: t.project_id,
            deployment_id: t.deployment_id,
            name: t.name,
            description: t.description,
            status: t.status,
            metric: t.metric,
            alpha: t.alpha,
            power: t.power,
            minimum_detectable_effect: t.minimum_detectable_effect,
            sequential: t.sequential,
            winner_model_id: t.winner_model_id,
            winner_variant: t.winner_variant,
            stop_reason: t.stop_reason,
            started_at: time(t.started_at),
            stopped_at: opt_time(t.stopped_at),
            created_at: time(t.created_at),
            created_by: t.created_by,
            updated_at: time(t.updated_at),
            serving_model_id: None,
        }
    }
}

async fn view(state: &AppState, t: AbTest) -> ApiResult<AbTestView> {
    let counts = ab::assignment_counts(state, &t).await?;
    Ok(AbTestView::new(t, Some(counts)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantRequest {
    pub model_id: String,
    /// Share of traffic; shares are scaled to add up to 100. Leave out on every variant for an even
    /// split.
    pub traffic: Option<f64>,
    /// Default `control` for the first variant, then `treatment` (or `treatment_1`, `treatment_2`, …).
    pub name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAbTest {
    /// Needed when the deployment is given by name.
    pub project_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The deployment (`dep_…`), or its name in `project_id`.
    pub deployment_id: Option<String>,
    /// The deployment's name in `project_id`, instead of `deployment_id`.
    pub endpoint: Option<String>,
    /// Two or more; the first is the control.
    pub variants: Vec<VariantRequest>,
    pub metric: MetricRequest,
    /// Significance level (default 0.05); with more than two variants it is divided among the
    /// comparisons with the control.
    pub alpha: Option<f64>,
    /// Power at the minimum detectable effect (default 0.8).
    pub power: Option<f64>,
    /// The smallest difference worth detecting, in the metric's units (an absolute rate difference for
    /// proportions, e.g. 0.02).
    pub minimum_detectable_effect: f64,
    /// Always-valid p-values and intervals, for looking at the results at any time (default false).
    pub sequential: Option<bool>,
}

/// Finds the deployment a create request names, checking the caller may change it.
async fn target_deployment(
    state: &AppState,
    p: &Principal,
    req: &CreateAbTest,
) -> ApiResult<Deployment> {
    let not_found = |field: &str, what: &str| {
        ApiError::invalid(field, format!("no deployment {what} in your projects"))
    };
    let by_name = |name: String, field: &'static str| async move {
        let project = req.project_id.as_deref().ok_or_else(|| {
            ApiError::invalid(
                "project_id",
                "needed to find a deployment by its name; or give deployment_id",
            )
        })?;
        p.authorize(state, project, Action::Write).await?;
        state
            .store
            .get_deployment_by_name(project, name.trim())
            .await?
            .ok_or_else(|| {
                ApiError::invalid(field, format!("no deployment named `{name}` in {project}"))
            })
    };
    let d = match (&req.deployment_id, &req.endpoint) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "endpoint",
                "give deployment_id or endpoint, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "deployment_id",
                "give deployment_id (or endpoint, the deployment's name)",
            ))
        }
        (None, Some(name)) => by_name(name.clone(), "endpoint").await?,
        (Some(id), None) => match state.store.get_deployment(&p.org_id, id).await? {
            Some(d) => d,
            // An endpoint name given where the id goes.
            None if !id.starts_with("dep_") && req.project_id.is_some() => {
                by_name(id.clone(), "deployment_id").await?
            }
            None => return Err(not_found("deployment_id", id)),
        },
    };
    p.authorize(state, &d.project_id, Action::Write)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                not_found("deployment_id", &d.id)
            } else {
                e
            }
        })?;
    if let Some(project) = &req.project_id {
        if project != &d.project_id {
            return Err(ApiError::invalid(
                "deployment_id",
                format!("deployment {} is not in project {project}", d.name),
            ));
        }
    }
    Ok(d)
}

/// Starts an A/B test on a deployment: its traffic is split between the variants by weight (sticky
/// by `entity_id`), and results compare every variant with the control (the first).
#[utoipa::path(post, path = "/api/v1/ab-tests", tag = "ab-tests", request_body = CreateAbTest,
    responses((status = 201, body = AbTestView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_ab_test(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<CreateAbTest>,
) -> ApiResult<(StatusCode, axum::Json<AbTestView>)> {
    let d = target_deployment(&state, &p, &req).await?;
    validate_name("name", &req.name)?;
    let task = Task::parse("task", &d.task)?;
    if let Some(r) = rollout_of(&d) {
        return Err(ApiError::conflict(format!(
            "a {} rollout of {} is in progress on {}; promote or roll it back before starting an A/B test",
            r.strategy.as_str(),
            r.candidate_model_id,
            d.name
        )));
    }
    if let Some(t) = state.store.running_ab_test(&d.id).await? {
        return Err(ApiError::conflict(format!(
            "A/B test {} ({}) is already running on {}; stop it first",
            t.id, t.name, d.name
        )));
    }
    if req.variants.len() < 2 {
        return Err(ApiError::invalid(
            "variants",
            "give at least two variants ({model_id, traffic}); the first is the control",
        ));
    }
    if req.variants.len() > 20 {
        return Err(ApiError::invalid("variants", "at most 20 variants"));
    }
    let given = req.variants.iter().filter(|v| v.traffic.is_some()).count();
    let weights: Vec<f64> = match given {
        0 => vec![1.0; req.variants.len()],
        n if n == req.variants.len() => req.variants.iter().filter_map(|v| v.traffic).collect(),
        _ => {
            let i = req
                .variants
                .iter()
                .position(|v| v.traffic.is_none())
                .unwrap_or(0);
            return Err(ApiError::invalid(
                &format!("variants[{i}].traffic"),
                "give every variant a traffic share, or none for an even split",
            ));
        }
    };
    let weights = ab::normalise_weights(&weights)?;
    let mut variants = Vec::with_capacity(req.variants.len());
    for (i, v) in req.variants.iter().enumerate() {
        let name = match &v.name {
            Some(n) => n.trim().to_string(),
            None => ab::default_variant_name(i, req.variants.len()),
        };
        ab::check_variant_name(&format!("variants[{i}].name"), &name)?;
        if variants.iter().any(|x: &AbVariant| x.name == name) {
            return Err(ApiError::invalid(
                &format!("variants[{i}].name"),
                format!("`{name}` names two variants; names must differ"),
            ));
        }
        let model = state
            .store
            .get_model(&p.org_id, &v.model_id)
            .await?
            .filter(|m| m.project_id == d.project_id)
            .ok_or_else(|| {
                ApiError::invalid(
                    &format!("variants[{i}].model_id"),
                    format!("no model {} in this deployment's project", v.model_id),
                )
            })?;
        if model.task != d.task {
            return Err(ApiError::invalid(
                &format!("variants[{i}].model_id"),
                format!(
                    "{} is a {} model; {} serves {}",
                    model.id, model.task, d.name, d.task
                ),
            ));
        }
        variants.push(AbVariant {
            name,
            model_id: model.id,
            traffic: weights[i],
        });
    }
    let metric = req.metric.parse(task)?;
    let alpha = req.alpha.unwrap_or(st::DEFAULT_ALPHA);
    if !(alpha > 0.0 && alpha <= 0.5) {
        return Err(ApiError::invalid(
            "alpha",
            format!("in (0, 0.5], got {alpha}"),
        ));
    }
    let power = req.power.unwrap_or(st::DEFAULT_POWER);
    if !(power > alpha && power < 1.0) {
        return Err(ApiError::invalid(
            "power",
            format!("between alpha ({alpha}) and 1, got {power}"),
        ));
    }
    let mde = req.minimum_detectable_effect;
    if !(mde.is_finite() && mde > 0.0) {
        return Err(ApiError::invalid(
            "minimum_detectable_effect",
            format!("a positive difference in the metric's units, got {mde}"),
        ));
    }
    if metric.kind == MetricType::Proportion && mde >= 1.0 {
        return Err(ApiError::invalid(
            "minimum_detectable_effect",
            format!("a difference of rates, below 1 (e.g. 0.02 for two points), got {mde}"),
        ));
    }
    if let Some(b) = metric.baseline_rate {
        if b + mde > 1.0 && b - mde <= 0.0 {
            return Err(ApiError::invalid(
                "minimum_detectable_effect",
                format!("{mde} is too large a change from a baseline rate of {b}"),
            ));
        }
    }
    let ctx = p.ctx(&state);
    let t = AbTest {
        // Sortable, so that a project's tests list in creation order within one millisecond too.
        id: ids::new_sortable_id("abt", ctx.at),
        project_id: d.project_id.clone(),
        deployment_id: d.id.clone(),
        name: req.name.trim().to_string(),
        description: req.description.clone().unwrap_or_default(),
        status: "running".into(),
        variants,
        metric: serde_json::to_value(&metric).map_err(ApiError::internal)?,
        alpha,
        power,
        minimum_detectable_effect: mde,
        sequential: req.sequential.unwrap_or(false),
        winner_model_id: None,
        winner_variant: None,
        stop_reason: None,
        started_at: ctx.at,
        stopped_at: None,
        created_at: ctx.at,
        created_by: ctx.actor.clone(),
        updated_at: ctx.at,
    };
    ab::start(&state, &ctx, &t, &d).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&state, t).await?)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AbTestListParams {
    pub project_id: String,
    pub deployment_id: Option<String>,
    pub limit: Option<i64>,
    pub page_token: Option<String>,
}

/// A project's A/B tests, newest first.
#[utoipa::path(get, path = "/api/v1/ab-tests", tag = "ab-tests", params(AbTestListParams),
    responses((status = 200, body = ListResponse<AbTestView>)))]
async fn list_ab_tests(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AbTestListParams>,
) -> ApiResult<axum::Json<ListResponse<AbTestView>>> {
    p.authorize(&state, &q.project_id, Action::Read).await?;
    let page = PageParams {
        limit: q.limit,
        page_token: q.page_token.clone(),
    };
    let got = state
        .store
        .list_ab_tests(
            &q.project_id,
            q.deployment_id.as_deref(),
            page.limit()?,
            page.offset()?,
        )
        .await?;
    Ok(axum::Json(ListResponse::from_page(got, |t| {
        AbTestView::new(t, None)
    })))
}

async fn visible_test(
    state: &AppState,
    p: &Principal,
    id: &str,
    action: Action,
) -> ApiResult<AbTest> {
    let t = state
        .store
        .get_ab_test(&p.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("A/B test {id}")))?;
    p.authorize(state, &t.project_id, action)
        .await
        .map_err(|e| hide(e, "A/B test", id))?;
    Ok(t)
}

/// The test: variants, metric, plan, status, winner and the assignment counts so far.
#[utoipa::path(get, path = "/api/v1/ab-tests/{ab_test_id}", tag = "ab-tests",
    params(("ab_test_id" = String, Path)), responses((status = 200, body = AbTestView), (status = 404, body = ErrorBody)))]
async fn get_ab_test(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AbTestView>> {
    state.log.flush().await;
    let t = visible_test(&state, &p, &id, Action::Read).await?;
    Ok(axum::Json(view(&state, t).await?))
}

#[derive(Serialize, ToSchema)]
pub struct ResultsView {
    pub test_id: String,
    pub name: String,
    pub status: String,
    pub deployment_id: String,
    #[serde(flatten)]
    pub analysis: Analysis,
}

/// Results so far: every variant against the control with estimate, difference, relative lift,
/// interval and p-value (z-test or Welch; always-valid in sequential mode), the SRM check, the
/// required sample size and the progress towards it, and a recommendation.
#[utoipa::path(get, path = "/api/v1/ab-tests/{ab_test_id}/results", tag = "ab-tests",
    params(("ab_test_id" = String, Path)), responses((status = 200, body = ResultsView), (status = 404, body = ErrorBody)))]
async fn results(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ResultsView>> {
    let t = visible_test(&state, &p, &id, Action::Read).await?;
    let analysis = ab::results(&state, &t).await?;
    Ok(axum::Json(ResultsView {
        test_id: t.id,
        name: t.name,
        status: t.status,
        deployment_id: t.deployment_id,
        analysis,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OutcomesRequest {
    List(Vec<OutcomeRequest>),
    Wrapped { outcomes: Vec<OutcomeRequest> },
}

/// Records business outcomes (e.g. converted 0/1, revenue) of requests or entities the test routed.
/// A unit posted again keeps its latest value.
#[utoipa::path(post, path = "/api/v1/ab-tests/{ab_test_id}/outcomes", tag = "ab-tests",
    params(("ab_test_id" = String, Path)), request_body = OutcomesRequest,
    responses((status = 200, body = OutcomeReport), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn record_outcomes(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<OutcomesRequest>,
) -> ApiResult<axum::Json<OutcomeReport>> {
    let t = match &p.scope {
        // An inference key of the test's deployment may report what happened to its predictions.
        KeyScope::Predict { deployment_id } => state
            .store
            .get_ab_test(&p.org_id, &id)
            .await?
            .filter(|t| &t.deployment_id == deployment_id)
            .ok_or_else(|| {
                ApiError::forbidden(format!(
                    "this key may only report outcomes of tests on deployment {deployment_id}"
                ))
            })?,
        _ => visible_test(&state, &p, &id, Action::Write).await?,
    };
    let items = match req {
        OutcomesRequest::List(l) | OutcomesRequest::Wrapped { outcomes: l } => l,
    };
    Ok(axum::Json(ab::record_outcomes(&state, &t, items).await?))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StopRequest {
    /// The variant's model that takes all traffic (it becomes the deployment's serving model).
    pub winner_model_id: Option<String>,
    /// Or the winning variant's name.
    pub winner_variant: Option<String>,
    pub reason: Option<String>,
}

/// Stops the test. With a winner, all traffic goes to it: it becomes the deployment's serving model
/// (recorded in the timeline, the promotion history and the audit log) and moves to `production`.
/// Without one, traffic returns to the model the deployment served.
#[utoipa::path(post, path = "/api/v1/ab-tests/{ab_test_id}/stop", tag = "ab-tests",
    params(("ab_test_id" = String, Path)), request_body(content = StopRequest, description = "optional"),
    responses((status = 200, body = AbTestView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn stop_ab_test(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<AbTestView>> {
    let t = visible_test(&state, &p, &id, Action::Write).await?;
    let req: StopRequest = if body.iter().all(|b| b.is_ascii_whitespace()) {
        StopRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid(
                "winner_model_id",
                format!("the body must be {{\"winner_model_id\"?, \"winner_variant\"?, \"reason\"?}}: {e}"),
            )
        })?
    };
    if t.status != "running" {
        return Err(ApiError::conflict(format!(
            "A/B test {} is already {}",
            t.id, t.status
        )));
    }
    let by_model = match &req.winner_model_id {
        Some(m) => Some(
            t.variants
                .iter()
                .position(|v| &v.model_id == m)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "winner_model_id",
                        format!(
                            "{m} is not a variant of this test ({})",
                            t.variants
                                .iter()
                                .map(|v| v.model_id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?,
        ),
        None => None,
    };
    let by_name = match &req.winner_variant {
        Some(n) => Some(
            t.variants
                .iter()
                .position(|v| &v.name == n)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "winner_variant",
                        format!(
                            "`{n}` is not a variant of this test ({})",
                            t.variants
                                .iter()
                                .map(|v| v.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?,
        ),
        None => None,
    };
    let winner = match (by_model, by_name) {
        (Some(a), Some(b)) if t.variants[a].model_id != t.variants[b].model_id => {
            return Err(ApiError::invalid(
                "winner_variant",
                "names a different model than winner_model_id",
            ))
        }
        (_, Some(b)) => Some(b),
        (a, None) => a,
    };
    let reason = req
        .reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| match winner {
            Some(w) => format!("stopped by hand; {} takes all traffic", t.variants[w].name),
            None => "stopped by hand without a winner".into(),
        });
    let (stopped, d) = ab::stop(&state, &p.ctx(&state), &t, winner, &reason).await?;
    let mut v = view(&state, stopped).await?;
    v.serving_model_id = d.serving_model_id;
    Ok(axum::Json(v))
}
