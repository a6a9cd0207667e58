//! Who is calling: the API key in `Authorization: Bearer …` becomes a [`Principal`], and the
//! principal's role in a project decides what it may do there. Resources of another organization, and
//! projects the caller is not a member of, are answered 404: they are invisible, not forbidden.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use coreplex_domain::tenancy::{Action, KeyScope, Role};
use coreplex_store::{Ctx, Project};
use sha2::{Digest, Sha256};

/// Keys look like `cpx_<40 random characters>`; the first 12 characters are shown as the prefix.
pub const KEY_PREFIX_LEN: usize = 12;

pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh key: (secret shown once, prefix, hash stored).
pub fn mint_key() -> (String, String, String) {
    let secret = format!("cpx_{}", coreplex_domain::ids::new_secret());
    let prefix = secret[..KEY_PREFIX_LEN].to_string();
    let hash = hash_key(&secret);
    (secret, prefix, hash)
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub org_id: String,
    pub subject: String,
    pub org_admin: bool,
    pub instance_admin: bool,
    pub scope: KeyScope,
}

pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let secret = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("missing API key: send `Authorization: Bearer <key>`")
        })?;
        let key = state
            .store
            .find_key_by_hash(&hash_key(secret))
            .await?
            .ok_or_else(|| ApiError::unauthorized("the API key is unknown or revoked"))?;
        let p = Principal {
            key_id: key.id,
            org_id: key.org_id,
            subject: key.subject,
            org_admin: key.org_admin,
            instance_admin: key.instance_admin,
            scope: key.scope,
        };
        parts.extensions.insert(p.clone());
        Ok(p)
    }
}

impl Principal {
    /// The actor recorded in the audit log.
    pub fn actor(&self) -> String {
        self.subject.clone()
    }

    pub fn ctx(&self, state: &AppState) -> Ctx {
        Ctx {
            org_id: self.org_id.clone(),
            actor: self.actor(),
            at: state.now(),
        }
    }

    fn full_scope(&self) -> ApiResult<()> {
        match &self.scope {
            KeyScope::Full => Ok(()),
            KeyScope::Predict { deployment_id } => Err(ApiError::forbidden(format!(
                "this key may only request predictions from deployment {deployment_id}"
            ))),
        }
    }

    pub fn require_org_admin(&self) -> ApiResult<()> {
        self.full_scope()?;
        if self.org_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("this needs an organization admin key"))
        }
    }

    /// The caller's role in `project_id`, with the project. Not a member (or another organization's
    /// project): 404.
    pub async fn role_in(&self, state: &AppState, project_id: &str) -> ApiResult<(Project, Role)> {
        let project = state
            .store
            .get_project(&self.org_id, project_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("project {project_id}")))?;
        if self.org_admin {
            return Ok((project, Role::Admin));
        }
        let role = state
            .store
            .member_role(project_id, &self.subject)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("project {project_id}")))?;
        let role = Role::parse("role", &role).map_err(ApiError::internal)?;
        Ok((project, role))
    }

    /// Checks that the caller may do `action` in `project_id` and returns the project.
    pub async fn authorize(
        &self,
        state: &AppState,
        project_id: &str,
        action: Action,
    ) -> ApiResult<Project> {
        if action != Action::Predict {
            self.full_scope()?;
        }
        let (project, role) = self.role_in(state, project_id).await?;
        if role.allows(action) {
            Ok(project)
        } else {
            Err(ApiError::forbidden(format!(
                "your role in this project is `{}`; this needs `{}`",
                role.as_str(),
                action.minimum_role().as_str()
            )))
        }
    }
}
