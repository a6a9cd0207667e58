//! AutoML experiments.

use crate::audit::{record, Change};
use crate::{json_col, Ctx, Result, Store};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Experiment {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub dataset_version_id: String,
    pub config: serde_json::Value,
    pub status: String,
    pub job_id: String,
    pub leaderboard: serde_json::Value,
    pub best_model_id: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
}

fn experiment(r: &AnyRow) -> Result<Experiment> {
    Ok(Experiment {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        name: r.try_get("name")?,
        dataset_version_id: r.try_get("dataset_version_id")?,
        config: json_col(r, "config_json")?,
        status: r.try_get("status")?,
        job_id: r.try_get("job_id")?,
        leaderboard: json_col(r, "leaderboard_json")?,
        best_model_id: r.try_get("best_model_id")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn create_experiment(&self, ctx: &Ctx, e: &Experiment) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO experiments (id, project_id, name, dataset_version_id, config_json, status, job_id, created_at, \
             created_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)",
        )
        .bind(&e.id)
        .bind(&e.project_id)
        .bind(&e.name)
        .bind(&e.dataset_version_id)
        .bind(e.config.to_string())
        .bind(&e.status)
        .bind(&e.job_id)
        .bind(e.created_at)
        .bind(&e.created_by)
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&e.project_id),
                action: "experiment.create",
                resource_type: "experiment",
                resource_id: &e.id,
                before: None,
                after: Some(serde_json::json!({"id": e.id, "name": e.name, "dataset_version_id": e.dataset_version_id, "config": e.config})),
            },
        )
        .await?;
        tx.commit().await
    }

    /// Records an experiment's progress or outcome.
    pub async fn update_experiment(
        &self,
        ctx: &Ctx,
        id: &str,
        status: &str,
        leaderboard: Option<&serde_json::Value>,
        best_model_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE experiments SET status = $1, leaderboard_json = COALESCE($2, leaderboard_json), \
             best_model_id = COALESCE($3, best_model_id), error = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(status)
        .bind(leaderboard.map(|l| l.to_string()))
        .bind(best_model_id)
        .bind(error)
        .bind(ctx.at)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?;
        if matches!(status, "succeeded" | "failed" | "cancelled") {
            let project: Option<String> =
                sqlx::query("SELECT project_id FROM experiments WHERE id = $1")
                    .bind(id)
                    .fetch_all(&mut *tx.tx)
                    .await?
                    .first()
                    .map(|r| r.get("project_id"));
            record(
                &mut tx.tx,
                ctx,
                Change {
                    project_id: project.as_deref(),
                    action: &format!("experiment.{status}"),
                    resource_type: "experiment",
                    resource_id: id,
                    before: None,
                    after: Some(serde_json::json!({"status": status, "best_model_id": best_model_id, "error": error})),
                },
            )
            .await?;
        }
        tx.commit().await
    }

    pub async fn get_experiment(&self, org_id: &str, id: &str) -> Result<Option<Experiment>> {
        let row = sqlx::query(
            "SELECT e.* FROM experiments e JOIN projects p ON p.id = e.project_id WHERE e.id = $1 AND p.org_id = $2",
        )
        .bind(id)
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .next();
        row.as_ref().map(experiment).transpose()
    }

    pub async fn get_experiment_any(&self, id: &str) -> Result<Option<Experiment>> {
        let row = sqlx::query("SELECT * FROM experiments WHERE id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(experiment).transpose()
    }

    pub async fn list_experiments(&self, project_id: &str) -> Result<Vec<Experiment>> {
        let rows = sqlx::query(
            "SELECT * FROM experiments WHERE project_id = $1 ORDER BY created_at DESC, id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(experiment).collect()
    }
}
