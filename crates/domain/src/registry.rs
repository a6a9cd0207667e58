//! The model registry's rules: tasks, lifecycle statuses and which transitions are allowed.
//!
//! The lifecycle is `candidate → staging → production → archived`, plus `candidate → archived`,
//! `staging → candidate`, `staging → archived` and `archived → staging`. Anything else is a conflict.
//! At most one version of a model name is in `production`: promoting one archives the previous one.
//! This rule lives here once; stores only carry out the plan it returns.

use crate::error::{DomainError, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    BinaryClassification,
    MulticlassClassification,
    Regression,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::BinaryClassification => "binary_classification",
            Task::MulticlassClassification => "multiclass_classification",
            Task::Regression => "regression",
        }
    }
    pub fn parse(field: &str, s: &str) -> Result<Task> {
        match s {
            "binary_classification" | "binary" => Ok(Task::BinaryClassification),
            "multiclass_classification" | "multiclass" => Ok(Task::MulticlassClassification),
            "regression" => Ok(Task::Regression),
            other => Err(DomainError::invalid(
                field,
                format!(
                    "unknown task `{other}`; use binary_classification, multiclass_classification or regression"
                ),
            )),
        }
    }
    pub fn is_classification(self) -> bool {
        !matches!(self, Task::Regression)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    Candidate,
    Staging,
    Production,
    Archived,
}

impl ModelStatus {
    pub const ALL: [ModelStatus; 4] = [
        ModelStatus::Candidate,
        ModelStatus::Staging,
        ModelStatus::Production,
        ModelStatus::Archived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::Candidate => "candidate",
            ModelStatus::Staging => "staging",
            ModelStatus::Production => "production",
            ModelStatus::Archived => "archived",
        }
    }
    pub fn parse(field: &str, s: &str) -> Result<ModelStatus> {
        match s {
            "candidate" => Ok(ModelStatus::Candidate),
            "staging" => Ok(ModelStatus::Staging),
            "production" => Ok(ModelStatus::Production),
            "archived" => Ok(ModelStatus::Archived),
            other => Err(DomainError::invalid(
                field,
                format!("unknown status `{other}`; use candidate, staging, production or archived"),
            )),
        }
    }

    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_transition_to(self, to: ModelStatus) -> bool {
        use ModelStatus::*;
        matches!(
            (self, to),
            (Candidate, Staging)
                | (Staging, Production)
                | (Production, Archived)
                | (Candidate, Archived)
                | (Staging, Candidate)
                | (Staging, Archived)
                | (Archived, Staging)
        )
    }
}

/// One status change to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub model_id: String,
    pub from: ModelStatus,
    pub to: ModelStatus,
    pub reason: String,
}

/// Plans a transition of `model_id` from `from` to `to`. `current_production` is the id of the version
/// of the same name now in production, if any. Returns the changes to apply in order: when promoting,
/// the previous production version is archived first.
pub fn plan_transition(
    model_id: &str,
    from: ModelStatus,
    to: ModelStatus,
    reason: &str,
    current_production: Option<&str>,
) -> Result<Vec<StatusChange>> {
    if !from.can_transition_to(to) {
        return Err(DomainError::Conflict(format!(
            "a model in `{}` cannot move to `{}`; allowed from `{}`: {}",
            from.as_str(),
            to.as_str(),
            from.as_str(),
            allowed_from(from)
        )));
    }
    let mut changes = Vec::new();
    if to == ModelStatus::Production {
        if let Some(prev) = current_production.filter(|p| *p != model_id) {
            changes.push(StatusChange {
                model_id: prev.to_string(),
                from: ModelStatus::Production,
                to: ModelStatus::Archived,
                reason: format!("replaced in production by {model_id}"),
            });
        }
    }
    changes.push(StatusChange {
        model_id: model_id.to_string(),
        from,
        to,
        reason: reason.to_string(),
    });
    Ok(changes)
}

fn allowed_from(from: ModelStatus) -> String {
    let v: Vec<&str> = ModelStatus::ALL
        .iter()
        .filter(|t| from.can_transition_to(**t))
        .map(|t| t.as_str())
        .collect();
    v.join(", ")
}

/// Outcome of one deployment of a model, for its promotion history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionOutcome {
    InProgress,
    Promoted,
    RolledBack,
    Aborted,
    ShadowCompared,
}

/// Validates user tags: at most 50, keys 1..=64 characters.
pub fn validate_tags(tags: &std::collections::BTreeMap<String, String>) -> Result<()> {
    if tags.len() > 50 {
        return Err(DomainError::invalid("tags", "at most 50 tags"));
    }
    for k in tags.keys() {
        if k.is_empty() || k.len() > 64 {
            return Err(DomainError::invalid(
                format!("tags.{k}"),
                "tag keys are 1 to 64 characters",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ModelStatus::*;

    #[test]
    fn exactly_the_documented_transitions_are_allowed() {
        let allowed = [
            (Candidate, Staging),
            (Staging, Production),
            (Production, Archived),
            (Candidate, Archived),
            (Staging, Candidate),
            (Staging, Archived),
            (Archived, Staging),
        ];
        for from in ModelStatus::ALL {
            for to in ModelStatus::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn promotion_archives_previous_production_first() {
        let plan = plan_transition(
            "model_b",
            Staging,
            Production,
            "better AUC",
            Some("model_a"),
        )
        .unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].model_id, "model_a");
        assert_eq!(plan[0].to, Archived);
        assert_eq!(plan[1].model_id, "model_b");
        assert_eq!(plan[1].to, Production);
    }

    #[test]
    fn invalid_transition_is_conflict_listing_allowed_targets() {
        let e = plan_transition("m", Candidate, Production, "", None).unwrap_err();
        assert!(
            matches!(e, DomainError::Conflict(ref m) if m.contains("staging, archived")),
            "{e}"
        );
    }
}
