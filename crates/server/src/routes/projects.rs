//! Projects and their members.

use super::{time, ListResponse};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, PageParams};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use coreplex_domain::ids;
use coreplex_domain::tenancy::{validate_name, Action, Role};
use coreplex_store::{Member, Project};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project, update_project))
        .routes(routes!(list_members, add_member))
        .routes(routes!(remove_member))
}

#[derive(Serialize, ToSchema)]
pub struct ProjectView {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        ProjectView {
            id: p.id,
            org_id: p.org_id,
            name: p.name,
            description: p.description,
            created_at: time(p.created_at),
            updated_at: time(p.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// Creates a project (organization admins).
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = ProjectView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_project(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, axum::Json<ProjectView>)> {
    p.require_org_admin()?;
    validate_name("name", &req.name)?;
    let ctx = p.ctx(&state);
    let project = Project {
        id: ids::new_id(ids::PROJECT),
        org_id: p.org_id.clone(),
        name: req.name.trim().to_string(),
        description: req.description,
        created_at: ctx.at,
        updated_at: ctx.at,
    };
    state.store.create_project(&ctx, &project, None).await?;
    Ok((StatusCode::CREATED, axum::Json(project.into())))
}

/// Projects the caller can see.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", params(PageParams),
    responses((status = 200, body = ListResponse<ProjectView>)))]
async fn list_projects(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<axum::Json<ListResponse<ProjectView>>> {
    let member = (!p.org_admin).then_some(p.subject.as_str());
    let got = state
        .store
        .list_projects(&p.org_id, member, page.limit()?, page.offset()?)
        .await?;
    Ok(axum::Json(ListResponse::from_page(got, ProjectView::from)))
}

#[utoipa::path(get, path = "/api/v1/projects/{project_id}", tag = "projects", params(("project_id" = String, Path)),
    responses((status = 200, body = ProjectView), (status = 404, body = ErrorBody)))]
async fn get_project(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
) -> ApiResult<axum::Json<ProjectView>> {
    let project = p.authorize(&state, &project_id, Action::Read).await?;
    Ok(axum::Json(project.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// Renames a project or changes its description (project admins).
#[utoipa::path(patch, path = "/api/v1/projects/{project_id}", tag = "projects", params(("project_id" = String, Path)),
    request_body = UpdateProject, responses((status = 200, body = ProjectView), (status = 404, body = ErrorBody)))]
async fn update_project(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
    ApiJson(req): ApiJson<UpdateProject>,
) -> ApiResult<axum::Json<ProjectView>> {
    let project = p.authorize(&state, &project_id, Action::Manage).await?;
    if let Some(n) = &req.name {
        validate_name("name", n)?;
    }
    let after = state
        .store
        .update_project(
            &p.ctx(&state),
            &project,
            req.name.as_deref().map(str::trim),
            req.description.as_deref(),
        )
        .await?;
    Ok(axum::Json(after.into()))
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub subject: String,
    pub role: String,
    pub added_at: String,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        MemberView {
            subject: m.subject,
            role: m.role,
            added_at: time(m.created_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub subject: String,
    /// `viewer`, `editor` or `admin`.
    pub role: String,
}

#[utoipa::path(get, path = "/api/v1/projects/{project_id}/members", tag = "projects",
    params(("project_id" = String, Path)), responses((status = 200, body = Vec<MemberView>)))]
async fn list_members(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
) -> ApiResult<axum::Json<Vec<MemberView>>> {
    p.authorize(&state, &project_id, Action::Read).await?;
    let members = state.store.list_members(&project_id).await?;
    Ok(axum::Json(
        members.into_iter().map(MemberView::from).collect(),
    ))
}

/// Adds a member or changes their role (project admins).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/members", tag = "projects",
    params(("project_id" = String, Path)), request_body = AddMember,
    responses((status = 200, body = MemberView), (status = 422, body = ErrorBody)))]
async fn add_member(
    State(state): State<AppState>,
    p: Principal,
    Path(project_id): Path<String>,
    ApiJson(req): ApiJson<AddMember>,
) -> ApiResult<axum::Json<MemberView>> {
    p.authorize(&state, &project_id, Action::Manage).await?;
    validate_name("subject", &req.subject)?;
    let role = Role::parse("role", &req.role)?;
    let m = state
        .store
        .put_member(
            &p.ctx(&state),
            &project_id,
            req.subject.trim(),
            role.as_str(),
        )
        .await?;
    Ok(axum::Json(m.into()))
}

#[utoipa::path(delete, path = "/api/v1/projects/{project_id}/members/{subject}", tag = "projects",
    params(("project_id" = String, Path), ("subject" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_member(
    State(state): State<AppState>,
    p: Principal,
    Path((project_id, subject)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    p.authorize(&state, &project_id, Action::Manage).await?;
    state
        .store
        .remove_member(&p.ctx(&state), &project_id, &subject)
        .await
        .map_err(|e| match e {
            coreplex_store::Error::NotFound(_) => ApiError::not_found(format!("member {subject}")),
            other => other.into(),
        })?;
    state.auth.forget_roles();
    Ok(StatusCode::NO_CONTENT)
}
