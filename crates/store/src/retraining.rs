//! Retraining policies and their runs.

use crate::audit::{record, Change};
use crate::{json_col, Ctx, Result, Store};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Policy {
    pub id: String,
    pub project_id: String,
    pub deployment_id: String,
    pub trigger: String,
    pub config: serde_json::Value,
    pub training_config: serde_json::Value,
    pub auto_promote: bool,
    pub enabled: bool,
    pub next_run_at: Option<i64>,
    pub last_triggered_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RetrainingRun {
    pub id: String,
    pub policy_id: String,
    pub project_id: String,
    pub deployment_id: String,
    pub trigger: String,
    pub reason: String,
    pub measured: Option<f64>,
    pub status: String,
    pub experiment_id: Option<String>,
    pub job_id: Option<String>,
    pub parent_model_id: Option<String>,
    pub candidate_model_id: Option<String>,
    pub dataset_version_id: Option<String>,
    pub comparison: serde_json::Value,
    pub detail: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

fn policy(r: &AnyRow) -> Result<Policy> {
    Ok(Policy {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        deployment_id: r.try_get("deployment_id")?,
        trigger: r.try_get("trigger")?,
        config: json_col(r, "config_json")?,
        training_config: json_col(r, "training_config_json")?,
        auto_promote: r.try_get::<i64, _>("auto_promote")? != 0,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        next_run_at: r.try_get("next_run_at")?,
        last_triggered_at: r.try_get("last_triggered_at")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn run(r: &AnyRow) -> Result<RetrainingRun> {
    Ok(RetrainingRun {
        id: r.try_get("id")?,
        policy_id: r.try_get("policy_id")?,
        project_id: r.try_get("project_id")?,
        deployment_id: r.try_get("deployment_id")?,
        trigger: r.try_get("trigger")?,
        reason: r.try_get("reason")?,
        measured: r.try_get("measured")?,
        status: r.try_get("status")?,
        experiment_id: r.try_get("experiment_id")?,
        job_id: r.try_get("job_id")?,
        parent_model_id: r.try_get("parent_model_id")?,
        candidate_model_id: r.try_get("candidate_model_id")?,
        dataset_version_id: r.try_get("dataset_version_id")?,
        comparison: json_col(r, "comparison_json")?,
        detail: r.try_get("detail")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn policy_doc(p: &Policy) -> serde_json::Value {
    serde_json::json!({"id": p.id, "deployment_id": p.deployment_id, "trigger": p.trigger, "config": p.config,
        "training_config": p.training_config, "auto_promote": p.auto_promote, "enabled": p.enabled})
}

fn run_doc(r: &RetrainingRun) -> serde_json::Value {
    serde_json::json!({"id": r.id, "policy_id": r.policy_id, "status": r.status, "reason": r.reason,
        "experiment_id": r.experiment_id, "candidate_model_id": r.candidate_model_id, "parent_model_id": r.parent_model_id,
        "comparison": r.comparison, "detail": r.detail})
}

/// Statuses of a run that is still going.
pub const ACTIVE_RUN_STATUSES: [&str; 3] = ["training", "comparing", "rolling_out"];

impl Store {
    pub async fn create_policy(&self, ctx: &Ctx, p: &Policy) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO retraining_policies (id, project_id, deployment_id, trigger, config_json, training_config_json, \
             auto_promote, enabled, next_run_at, created_at, created_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10)",
        )
        .bind(&p.id)
        .bind(&p.project_id)
        .bind(&p.deployment_id)
        .bind(&p.trigger)
        .bind(p.config.to_string())
        .bind(p.training_config.to_string())
        .bind(p.auto_promote as i64)
        .bind(p.enabled as i64)
        .bind(p.next_run_at)
        .bind(p.created_at)
        .bind(&p.created_by)
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&p.project_id),
                action: "retraining_policy.create",
                resource_type: "retraining_policy",
                resource_id: &p.id,
                before: None,
                after: Some(policy_doc(p)),
            },
        )
        .await?;
        tx.commit().await
    }

    /// Saves a policy's settings; `action` names the change in the audit log.
    pub async fn update_policy(
        &self,
        ctx: &Ctx,
        before: &Policy,
        after: &Policy,
        action: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE retraining_policies SET config_json = $1, training_config_json = $2, auto_promote = $3, enabled = $4, \
             next_run_at = $5, last_triggered_at = $6, updated_at = $7 WHERE id = $8",
        )
        .bind(after.config.to_string())
        .bind(after.training_config.to_string())
        .bind(after.auto_promote as i64)
        .bind(after.enabled as i64)
        .bind(after.next_run_at)
        .bind(after.last_triggered_at)
        .bind(ctx.at)
        .bind(&before.id)
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&before.project_id),
                action,
                resource_type: "retraining_policy",
                resource_id: &before.id,
                before: Some(policy_doc(before)),
                after: Some(policy_doc(after)),
            },
        )
        .await?;
        tx.commit().await
    }

    /// Hides a deleted policy (its runs stay for the record).
    pub async fn retire_policy(&self, id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE retraining_policies SET enabled = -1 WHERE id = $1")
            .bind(id)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await
    }

    /// Moves a schedule forward without an audit entry (bookkeeping of the scheduler).
    pub async fn set_policy_next_run(&self, id: &str, next_run_at: Option<i64>) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE retraining_policies SET next_run_at = $1 WHERE id = $2")
            .bind(next_run_at)
            .bind(id)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await
    }

    pub async fn get_policy(&self, org_id: &str, id: &str) -> Result<Option<Policy>> {
        let row = sqlx::query("SELECT r.* FROM retraining_policies r JOIN projects p ON p.id = r.project_id WHERE r.id = $1 AND p.org_id = $2 AND r.enabled >= 0")
            .bind(id)
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(policy).transpose()
    }

    pub async fn list_policies(
        &self,
        project_id: &str,
        deployment_id: Option<&str>,
    ) -> Result<Vec<Policy>> {
        let rows = match deployment_id {
            Some(d) => sqlx::query("SELECT * FROM retraining_policies WHERE project_id = $1 AND deployment_id = $2 AND enabled >= 0 ORDER BY created_at, id").bind(project_id).bind(d).fetch_all(&self.pool).await?,
            None => sqlx::query("SELECT * FROM retraining_policies WHERE project_id = $1 AND enabled >= 0 ORDER BY created_at, id").bind(project_id).fetch_all(&self.pool).await?,
        };
        rows.iter().map(policy).collect()
    }

    /// Enabled policies across organizations (for the scheduler).
    pub async fn enabled_policies(&self) -> Result<Vec<Policy>> {
        let rows = sqlx::query("SELECT * FROM retraining_policies WHERE enabled = 1 ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(policy).collect()
    }

    pub async fn create_run(
        &self,
        ctx: &Ctx,
        r: &RetrainingRun,
        policy_after: Option<&Policy>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO retraining_runs (id, policy_id, project_id, deployment_id, trigger, reason, measured, status, \
             parent_model_id, dataset_version_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(&r.id)
        .bind(&r.policy_id)
        .bind(&r.project_id)
        .bind(&r.deployment_id)
        .bind(&r.trigger)
        .bind(&r.reason)
        .bind(r.measured)
        .bind(&r.status)
        .bind(&r.parent_model_id)
        .bind(&r.dataset_version_id)
        .bind(r.created_at)
        .execute(&mut *tx.tx)
        .await?;
        if let Some(p) = policy_after {
            sqlx::query("UPDATE retraining_policies SET last_triggered_at = $1, next_run_at = $2 WHERE id = $3")
                .bind(p.last_triggered_at)
                .bind(p.next_run_at)
                .bind(&p.id)
                .execute(&mut *tx.tx)
                .await?;
        }
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&r.project_id),
                action: "retraining_run.triggered",
                resource_type: "retraining_run",
                resource_id: &r.id,
                before: None,
                after: Some(run_doc(r)),
            },
        )
        .await?;
        tx.commit().await
    }

    /// Saves a run's new state with an audit entry `retraining_run.<action>`.
    pub async fn update_run(
        &self,
        ctx: &Ctx,
        before: &RetrainingRun,
        after: &RetrainingRun,
        action: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE retraining_runs SET status = $1, experiment_id = $2, job_id = $3, candidate_model_id = $4, \
             dataset_version_id = $5, comparison_json = $6, detail = $7, updated_at = $8, finished_at = $9 WHERE id = $10",
        )
        .bind(&after.status)
        .bind(&after.experiment_id)
        .bind(&after.job_id)
        .bind(&after.candidate_model_id)
        .bind(&after.dataset_version_id)
        .bind((!after.comparison.is_null()).then(|| after.comparison.to_string()))
        .bind(&after.detail)
        .bind(ctx.at)
        .bind(after.finished_at)
        .bind(&before.id)
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&before.project_id),
                action: &format!("retraining_run.{action}"),
                resource_type: "retraining_run",
                resource_id: &before.id,
                before: Some(run_doc(before)),
                after: Some(run_doc(after)),
            },
        )
        .await?;
        tx.commit().await
    }

    pub async fn list_runs(&self, policy_id: &str) -> Result<Vec<RetrainingRun>> {
        let rows = sqlx::query(
            "SELECT * FROM retraining_runs WHERE policy_id = $1 ORDER BY created_at, id",
        )
        .bind(policy_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run).collect()
    }

    /// Runs still going, across organizations (for the scheduler).
    pub async fn active_runs(&self) -> Result<Vec<RetrainingRun>> {
        let rows = sqlx::query("SELECT * FROM retraining_runs WHERE status IN ('training', 'comparing', 'rolling_out') ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run).collect()
    }

    /// The most recent version of a dataset that profiled successfully.
    pub async fn latest_ready_version(
        &self,
        dataset_id: &str,
    ) -> Result<Option<crate::DatasetVersion>> {
        Ok(self
            .list_dataset_versions(dataset_id)
            .await?
            .into_iter()
            .rfind(|v| v.status == "ready"))
    }
}
