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
    let payload = json!({
        "event": format!("deployment.{kind}"), "deployment_id": d.id, "deployment": d.name, "model_id": model_id,
        "reason": reason, "at": crate::routes::time(ctx.at),
        "message": format!("{}: {kind} of {model_id} — {reason}", d.name),
    });
    if let Err(e) = crate::alerts::notify_deployment(state, d, payload).await {
        tracing::warn!(error = %e, "could not queue rollout notifications");
    }
}
