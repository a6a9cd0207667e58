//! Tenancy: organizations own projects; a key acts for a subject whose role in a project decides what
//! it may do. Roles are ordered: `viewer` < `editor` < `admin`.

use crate::error::{DomainError, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Role> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            other => Err(DomainError::invalid(
                field,
                format!("unknown role `{other}`; use viewer, editor or admin"),
            )),
        }
    }

    /// Whether this role may perform `action`.
    pub fn allows(self, action: Action) -> bool {
        self >= action.minimum_role()
    }
}

/// What a request wants to do inside a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read anything in the project.
    Read,
    /// Create and change models, datasets, deployments, alerts, policies, tests.
    Write,
    /// Manage members and keys.
    Manage,
    /// Ask a deployment for predictions.
    Predict,
}

impl Action {
    pub fn minimum_role(self) -> Role {
        match self {
            Action::Read => Role::Viewer,
            Action::Predict => Role::Viewer,
            Action::Write => Role::Editor,
            Action::Manage => Role::Admin,
        }
    }
}

/// The scope a key was issued with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyScope {
    /// Acts with its subject's roles.
    Full,
    /// May only ask one deployment for predictions.
    Predict { deployment_id: String },
}

/// Validates a display name (projects, datasets, models): 1..=200 characters, not blank.
pub fn validate_name(field: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > 200 {
        return Err(DomainError::invalid(
            field,
            "must be at most 200 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_gate_actions() {
        assert!(Role::Viewer.allows(Action::Read));
        assert!(!Role::Viewer.allows(Action::Write));
        assert!(Role::Editor.allows(Action::Write));
        assert!(!Role::Editor.allows(Action::Manage));
        assert!(Role::Admin.allows(Action::Manage));
        assert!(Role::Viewer.allows(Action::Predict));
    }

    #[test]
    fn unknown_role_names_the_field() {
        let e = Role::parse("role", "owner").unwrap_err();
        assert_eq!(
            e.to_string(),
            "role: unknown role `owner`; use viewer, editor or admin"
        );
    }
}
