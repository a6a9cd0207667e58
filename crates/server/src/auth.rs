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

/// The caller of a request. Cheap to clone: every request of a cached key shares one.
#[derive(Debug, Clone)]
pub struct Principal(std::sync::Arc<Identity>);

impl std::ops::Deref for Principal {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

/// Who a key belongs to and what it may do.
#[derive(Debug)]
pub struct Identity {
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
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        if let Some(p) = state.auth.principal(&digest) {
            return Ok(p);
        }
        let key = state
            .store
            .find_key_by_hash(&hex::encode(digest))
            .await?
            .ok_or_else(|| ApiError::unauthorized("the API key is unknown or revoked"))?;
        let p = Principal(std::sync::Arc::new(Identity {
            key_id: key.id,
            org_id: key.org_id,
            subject: key.subject,
            org_admin: key.org_admin,
            instance_admin: key.instance_admin,
            scope: key.scope,
        }));
        state.auth.put_principal(digest, p.clone());
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

/// How long a looked-up key or project role is reused without asking the database again. Revoking a
/// key or changing a member clears this server's entries at once; other servers sharing the database
/// see the change within this time.
const AUTH_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Keys and roles seen recently, so the prediction path does not query the database per request.
#[derive(Default)]
pub struct AuthCache {
    /// By the SHA-256 digest of the secret (the stored hash, before hex encoding).
    keys: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Principal, std::time::Instant)>>,
    /// Key id → project id → role: looked up by reference, without building a key per request.
    roles: std::sync::Mutex<std::collections::HashMap<String, ProjectRoles>>,
}

/// Project id → the key's role there and when it was looked up.
type ProjectRoles = std::collections::HashMap<String, (Role, std::time::Instant)>;

impl AuthCache {
    pub fn principal(&self, digest: &[u8; 32]) -> Option<Principal> {
        let m = self.keys.lock().ok()?;
        m.get(digest)
            .filter(|(_, t)| t.elapsed() < AUTH_TTL)
            .map(|(p, _)| p.clone())
    }

    pub fn put_principal(&self, digest: [u8; 32], p: Principal) {
        if let Ok(mut m) = self.keys.lock() {
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(digest, (p, std::time::Instant::now()));
        }
    }

    /// Forgets everything cached about a key (after it is revoked).
    pub fn forget_key(&self, key_id: &str) {
        if let Ok(mut m) = self.keys.lock() {
            m.retain(|_, (p, _)| p.key_id != key_id);
        }
        if let Ok(mut m) = self.roles.lock() {
            m.remove(key_id);
        }
    }

    /// Forgets all cached roles (after a membership change).
    pub fn forget_roles(&self) {
        if let Ok(mut m) = self.roles.lock() {
            m.clear();
        }
    }

    /// [`Principal::authorize`] with the role cached per key and project.
    pub async fn authorize_cached(
        &self,
        state: &AppState,
        p: &Principal,
        project_id: &str,
        action: Action,
    ) -> ApiResult<()> {
        let cached = self.roles.lock().ok().and_then(|m| {
            m.get(&p.key_id)
                .and_then(|projects| projects.get(project_id))
                .filter(|(_, t)| t.elapsed() < AUTH_TTL)
                .map(|(r, _)| *r)
        });
        let role = match cached {
            Some(r) => r,
            None => {
                let (_, r) = p.role_in(state, project_id).await?;
                if let Ok(mut m) = self.roles.lock() {
                    if m.len() > 100_000 {
                        m.clear();
                    }
                    m.entry(p.key_id.clone())
                        .or_default()
                        .insert(project_id.to_string(), (r, std::time::Instant::now()));
                }
                r
            }
        };
        if role.allows(action) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "your role in this project is `{}`; this needs `{}`",
                role.as_str(),
                action.minimum_role().as_str()
            )))
        }
    }
}
