//! The domain's error: a rule was broken. Each variant says which field or rule, so the server can
//! answer with a 4xx that tells the user what to fix.

/// A broken rule. `field` names the offending input where there is one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;
