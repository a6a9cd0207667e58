//! HTTP routes, one module per area, each exporting `router()`. Every route carries its OpenAPI
//! description next to it; `/api/v1/openapi.json` is generated from them.

pub mod ab_tests;
pub mod alerts;
pub mod audit;
pub mod datasets;
pub mod deployments;
pub mod experiments;
pub mod health;
pub mod jobs;
pub mod models;
pub mod orgs;
pub mod projects;
pub mod retraining;

use crate::state::AppState;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

/// One page of a list.
#[derive(Serialize, ToSchema)]
pub struct ListResponse<T: ToSchema> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

impl<T: ToSchema> ListResponse<T> {
    pub fn from_page<R>(page: coreplex_store::Page<R>, f: impl FnMut(R) -> T) -> Self {
        ListResponse {
            items: page.items.into_iter().map(f).collect(),
            next_page_token: page.next_page_token,
        }
    }
}

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(orgs::router())
        .merge(projects::router())
        .merge(audit::router())
        .merge(datasets::router())
        .merge(models::router())
        .merge(deployments::router())
        .merge(alerts::router())
        .merge(experiments::router())
        .merge(ab_tests::router())
        .merge(retraining::router())
        .merge(jobs::router())
}

pub fn time(t: i64) -> String {
    coreplex_domain::clock::to_rfc3339(t)
}

pub fn opt_time(t: Option<i64>) -> Option<String> {
    t.map(time)
}

/// Parses an optional RFC 3339 query value, answering a 422 that names `field`.
pub fn parse_time(field: &str, v: &Option<String>) -> crate::error::ApiResult<Option<i64>> {
    v.as_deref()
        .map(|s| {
            coreplex_domain::clock::parse_rfc3339(s).ok_or_else(|| {
                crate::error::ApiError::invalid(
                    field,
                    format!("`{s}` is not an RFC 3339 time such as 2026-11-25T10:00:00Z"),
                )
            })
        })
        .transpose()
}
