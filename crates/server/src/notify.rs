//! Notifications of rollout events (rollbacks, promotions, shadow comparisons). Every notification is
//! recorded on the deployment's timeline; alert channels (Slack, email, webhooks) subscribe here.

use crate::state::AppState;
use coreplex_store::{Ctx, Deployment};
use serde_json::json;

/// Tells the team about a rollout event on `d`.
pub async fn rollout_event(
    state: &AppState,
    d: &Deployment,
    kind: &str,
    model_id: &str,
    reason: &str,
) {
    let org = state
        .store
        .org_of_project(&d.project_id)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let ctx = Ctx {
        org_id: org,
        actor: "system:notifier".into(),
        at: state.now(),
    };
    let detail =
        json!({"event": kind, "model_id": model_id, "reason": reason, "deployment": d.name});
    tracing::info!(deployment = %d.id, event = kind, model = model_id, reason, "rollout notification");
    if let Err(e) = state
        .store
        .add_deployment_event(&ctx, &d.id, "notification", &detail)
        .await
    {
        tracing::warn!(error = %e, "could not record a notification");
    }
}
