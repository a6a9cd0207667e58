//! Organizations and API keys.

use super::{opt_time, time};
use crate::auth::{mint_key, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use coreplex_domain::ids;
use coreplex_domain::tenancy::{validate_name, KeyScope};
use coreplex_store::{ApiKey, NewApiKey, Org};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_org, list_orgs))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

#[derive(Serialize, ToSchema)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

impl From<Org> for OrgView {
    fn from(o: Org) -> Self {
        OrgView {
            id: o.id,
            name: o.name,
            created_at: time(o.created_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    pub name: String,
    /// Subject of the organization's first admin key (default `admin`).
    pub admin_subject: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedOrg {
    pub org: OrgView,
    pub admin_key: CreatedKey,
}

/// Creates an organization and its first admin key (instance admins only).
#[utoipa::path(post, path = "/api/v1/orgs", tag = "tenancy", request_body = CreateOrg,
    responses((status = 201, body = CreatedOrg), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_org(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<CreateOrg>,
) -> ApiResult<(StatusCode, axum::Json<CreatedOrg>)> {
    if !p.instance_admin {
        return Err(ApiError::forbidden(
            "only the instance admin key can create organizations",
        ));
    }
    validate_name("name", &req.name)?;
    let ctx = p.ctx(&state);
    let org = Org {
        id: ids::new_id(ids::ORG),
        name: req.name.trim().to_string(),
        created_at: ctx.at,
    };
    state.store.create_org(&ctx, &org).await?;
    let subject = req.admin_subject.unwrap_or_else(|| "admin".into());
    let ctx = coreplex_store::Ctx {
        org_id: org.id.clone(),
        ..ctx
    };
    let key = issue_key(
        &state,
        &ctx,
        &org.id,
        &subject,
        "admin",
        true,
        false,
        KeyScope::Full,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedOrg {
            org: org.into(),
            admin_key: key,
        }),
    ))
}

/// The caller's organization.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "tenancy", responses((status = 200, body = Vec<OrgView>)))]
async fn list_orgs(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<axum::Json<Vec<OrgView>>> {
    let org = state
        .store
        .get_org(&p.org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(axum::Json(vec![org.into()]))
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub subject: String,
    pub name: String,
    /// The first characters of the key, to recognise it; the key itself is never shown again.
    pub prefix: String,
    pub org_admin: bool,
    #[schema(value_type = Object)]
    pub scope: KeyScope,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> Self {
        KeyView {
            id: k.id,
            subject: k.subject,
            name: k.name,
            prefix: k.prefix,
            org_admin: k.org_admin,
            scope: k.scope,
            created_at: time(k.created_at),
            created_by: k.created_by,
            revoked_at: opt_time(k.revoked_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub view: KeyView,
    /// The secret: shown in this response only.
    pub key: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Who the key acts for; their project roles decide what it may do.
    pub subject: String,
    pub name: Option<String>,
    /// Make the key an organization admin.
    #[serde(default)]
    pub org_admin: bool,
    /// Restrict the key to predictions from one deployment.
    pub deployment_id: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn issue_key(
    state: &AppState,
    ctx: &coreplex_store::Ctx,
    org_id: &str,
    subject: &str,
    name: &str,
    org_admin: bool,
    instance_admin: bool,
    scope: KeyScope,
) -> ApiResult<CreatedKey> {
    let (secret, prefix, hash) = mint_key();
    let k = NewApiKey {
        id: ids::new_id(ids::KEY),
        org_id: org_id.to_string(),
        subject: subject.to_string(),
        name: name.to_string(),
        prefix,
        hash,
        org_admin,
        instance_admin,
        scope,
    };
    let key = state.store.create_api_key(ctx, &k).await?;
    Ok(CreatedKey {
        view: key.into(),
        key: secret,
    })
}

/// Issues an API key (organization admins). The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/keys", tag = "tenancy", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_key(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedKey>)> {
    p.require_org_admin()?;
    validate_name("subject", &req.subject)?;
    let scope = match req.deployment_id {
        Some(d) => {
            if req.org_admin {
                return Err(ApiError::invalid(
                    "org_admin",
                    "a key scoped to one deployment cannot be an admin key",
                ));
            }
            KeyScope::Predict { deployment_id: d }
        }
        None => KeyScope::Full,
    };
    let name = req.name.unwrap_or_else(|| "api key".into());
    let ctx = p.ctx(&state);
    let key = issue_key(
        &state,
        &ctx,
        &p.org_id,
        req.subject.trim(),
        &name,
        req.org_admin,
        false,
        scope,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(key)))
}

/// Lists keys by prefix: all of the organization's for admins, the caller's own otherwise.
#[utoipa::path(get, path = "/api/v1/keys", tag = "tenancy", responses((status = 200, body = Vec<KeyView>)))]
async fn list_keys(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<axum::Json<Vec<KeyView>>> {
    let subject = (!p.org_admin).then_some(p.subject.as_str());
    let keys = state.store.list_api_keys(&p.org_id, subject).await?;
    Ok(axum::Json(keys.into_iter().map(KeyView::from).collect()))
}

/// Revokes a key: it stops working at once. Admins revoke any key; others their own.
#[utoipa::path(delete, path = "/api/v1/keys/{key_id}", tag = "tenancy",
    params(("key_id" = String, Path)), responses((status = 200, body = KeyView), (status = 404, body = ErrorBody)))]
async fn revoke_key(
    State(state): State<AppState>,
    p: Principal,
    Path(key_id): Path<String>,
) -> ApiResult<axum::Json<KeyView>> {
    let key = state
        .store
        .get_api_key(&p.org_id, &key_id)
        .await?
        .filter(|k| p.org_admin || k.subject == p.subject)
        .ok_or_else(|| ApiError::not_found(format!("key {key_id}")))?;
    if key.revoked_at.is_some() {
        return Err(ApiError::conflict(format!(
            "key {key_id} is already revoked"
        )));
    }
    let after = state.store.revoke_api_key(&p.ctx(&state), &key).await?;
    state.auth.forget_key(&after.id);
    Ok(axum::Json(after.into()))
}
