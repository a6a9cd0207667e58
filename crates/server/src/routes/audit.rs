//! The audit log, read-only: there is deliberately no route that edits or deletes entries.

use super::{parse_time, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::extract::State;
use coreplex_domain::tenancy::Action;
use coreplex_store::{AuditEntry, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub project_id: Option<String>,
    pub resource_type: String,
    pub resource_id: String,
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView {
            id: e.id,
            at: time(e.at),
            actor: e.actor,
            action: e.action,
            project_id: e.project_id,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            before: e.before,
            after: e.after,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditView>,
    pub next_page_token: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub project_id: Option<String>,
    pub resource_id: Option<String>,
    pub resource_type: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// RFC 3339 time; entries at or after it.
    pub since: Option<String>,
    /// RFC 3339 time; entries before it.
    pub until: Option<String>,
    pub limit: Option<i64>,
    pub page_token: Option<String>,
}

/// Audit entries, oldest first. Organization admins see the whole organization; others must name a
/// project they belong to.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 422, body = ErrorBody)))]
async fn list_audit(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<axum::Json<AuditPage>> {
    match &q.project_id {
        Some(pid) => {
            p.authorize(&state, pid, Action::Read).await?;
        }
        None if p.org_admin => {}
        None => {
            return Err(ApiError::invalid(
                "project_id",
                "name a project you are a member of",
            ))
        }
    }
    let limit = match q.limit {
        None => 100,
        Some(l) if (1..=1000).contains(&l) => l,
        Some(_) => return Err(ApiError::invalid("limit", "must be between 1 and 1000")),
    };
    let after_seq = match q.page_token.as_deref() {
        None | Some("") => 0,
        Some(t) => t
            .strip_prefix('s')
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(|| ApiError::invalid("page_token", "not a token this server issued"))?,
    };
    let f = AuditFilter {
        project_id: q.project_id.clone(),
        resource_id: q.resource_id.clone(),
        resource_type: q.resource_type.clone(),
        actor: q.actor.clone(),
        action: q.action.clone(),
        since: parse_time("since", &q.since)?,
        until: parse_time("until", &q.until)?,
    };
    let page = state
        .store
        .list_audit(&p.org_id, &f, limit, after_seq)
        .await?;
    Ok(axum::Json(AuditPage {
        items: page.items.into_iter().map(AuditView::from).collect(),
        next_page_token: page.next_page_token,
    }))
}
