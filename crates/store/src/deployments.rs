//! Deployments, their timeline and promotion history, and the prediction log.

use crate::audit::{record, Change};
use crate::tenancy::unique_to_conflict;
use crate::{json_col, Ctx, Error, Result, Store};
use coreplex_domain::ids;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Deployment {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub task: String,
    pub strategy: String,
    pub config: serde_json::Value,
    pub serving_model_id: Option<String>,
    pub previous_model_id: Option<String>,
    pub rollout: serde_json::Value,
    pub status: String,
    pub revision: i64,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeploymentEvent {
    pub id: String,
    pub deployment_id: String,
    pub at: i64,
    pub kind: String,
    pub actor: String,
    pub detail: serde_json::Value,
}

/// A change to the promotion history made together with a deployment change.
#[derive(Debug, Clone)]
pub enum PromotionChange {
    Start {
        model_id: String,
        strategy: String,
    },
    Finish {
        model_id: String,
        outcome: String,
        detail: String,
    },
}

/// The columns a logged prediction is inserted with, in the order of [`PredictionRecord`]'s fields.
pub(crate) const PREDICTION_COLUMNS: &str = "request_id, role, deployment_id, model_id, variant, \
     at, latency_us, is_error, entity_id, features_json, output_json, predicted, score";

/// One logged prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRecord {
    pub request_id: String,
    pub role: &'static str,
    pub deployment_id: String,
    pub model_id: String,
    pub variant: String,
    pub at: i64,
    pub latency_us: i64,
    pub is_error: bool,
    pub entity_id: Option<String>,
    /// The request's row, in the compact form of [`crate::features_codec::encode`].
    pub features: Vec<u8>,
    pub output: String,
    pub predicted: Option<String>,
    pub score: Option<f64>,
}

/// A logged prediction as read back for metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionRow {
    pub request_id: String,
    pub role: String,
    pub model_id: String,
    pub variant: String,
    pub at: i64,
    pub latency_us: i64,
    pub is_error: bool,
    pub predicted: Option<String>,
    pub score: Option<f64>,
    pub output: Option<String>,
    pub label: Option<String>,
    pub label_value: Option<f64>,
}

/// A delayed label for one request.
#[derive(Debug, Clone)]
pub struct LabelUpdate {
    pub request_id: String,
    pub label: Option<String>,
    pub value: Option<f64>,
}

fn deployment(row: &AnyRow) -> Result<Deployment> {
    Ok(Deployment {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        task: row.try_get("task")?,
        strategy: row.try_get("strategy")?,
        config: json_col(row, "config_json")?,
        serving_model_id: row.try_get("serving_model_id")?,
        previous_model_id: row.try_get("previous_model_id")?,
        rollout: json_col(row, "rollout_json")?,
        status: row.try_get("status")?,
        revision: row.try_get("revision")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn doc(d: &Deployment) -> serde_json::Value {
    serde_json::json!({
        "id": d.id, "name": d.name, "strategy": d.strategy, "config": d.config, "status": d.status,
        "serving_model_id": d.serving_model_id, "rollout": d.rollout,
    })
}

fn opt_json(v: &serde_json::Value) -> Option<String> {
    (!v.is_null()).then(|| v.to_string())
}

/// Appends an event to a deployment's timeline (shared by rollouts and A/B tests).
pub(crate) async fn insert_event(
    conn: &mut sqlx::AnyConnection,
    ctx: &Ctx,
    deployment_id: &str,
    kind: &str,
    detail: &serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO deployment_events (id, deployment_id, at, kind, actor, detail_json) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ids::new_sortable_id(ids::EVENT, ctx.at))
    .bind(deployment_id)
    .bind(ctx.at)
    .bind(kind)
    .bind(&ctx.actor)
    .bind(detail.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Records starts and ends in the promotion history (shared by rollouts and A/B tests).
pub(crate) async fn apply_promotions(
    conn: &mut sqlx::AnyConnection,
    ctx: &Ctx,
    d: &Deployment,
    changes: &[PromotionChange],
) -> Result<()> {
    for c in changes {
        match c {
            PromotionChange::Start { model_id, strategy } => {
                sqlx::query(
                    "INSERT INTO promotions (id, model_id, project_id, deployment_id, endpoint, strategy, started_at, outcome) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'in_progress')",
                )
                .bind(ids::new_id(ids::EVENT))
                .bind(model_id)
                .bind(&d.project_id)
                .bind(&d.id)
                .bind(&d.name)
                .bind(strategy)
                .bind(ctx.at)
                .execute(&mut *conn)
                .await?;
            }
            PromotionChange::Finish {
                model_id,
                outcome,
                detail,
            } => {
                sqlx::query(
                    "UPDATE promotions SET ended_at = $1, outcome = $2, detail = $3 \
                     WHERE deployment_id = $4 AND model_id = $5 AND ended_at IS NULL",
                )
                .bind(ctx.at)
                .bind(outcome)
                .bind(detail)
                .bind(&d.id)
                .bind(model_id)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

impl Store {
    pub async fn create_deployment(
        &self,
        ctx: &Ctx,
        d: &Deployment,
        promotions: &[PromotionChange],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO deployments (id, project_id, name, task, strategy, config_json, serving_model_id, \
             previous_model_id, rollout_json, status, revision, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&d.id)
        .bind(&d.project_id)
        .bind(&d.name)
        .bind(&d.task)
        .bind(&d.strategy)
        .bind(d.config.to_string())
        .bind(&d.serving_model_id)
        .bind(&d.previous_model_id)
        .bind(opt_json(&d.rollout))
        .bind(&d.status)
        .bind(d.revision)
        .bind(d.created_at)
        .bind(&d.created_by)
        .bind(d.updated_at)
        .execute(&mut *tx.tx)
        .await
        .map_err(|e| unique_to_conflict(e, || format!("a deployment named `{}` exists in this project", d.name)))?;
        insert_event(&mut tx.tx, ctx, &d.id, "created", &doc(d)).await?;
        apply_promotions(&mut tx.tx, ctx, d, promotions).await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&d.project_id),
                action: "deployment.create",
                resource_type: "deployment",
                resource_id: &d.id,
                before: None,
                after: Some(doc(d)),
            },
        )
        .await?;
        tx.commit().await
    }

    /// Replaces a deployment's state if nobody changed it since `before` was read (its revision), and
    /// records the timeline event, promotion history and audit entry in the same transaction.
    pub async fn update_deployment(
        &self,
        ctx: &Ctx,
        before: &Deployment,
        after: &Deployment,
        event: (&str, serde_json::Value),
        promotions: &[PromotionChange],
    ) -> Result<Deployment> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE deployments SET strategy = $1, config_json = $2, serving_model_id = $3, previous_model_id = $4, \
             rollout_json = $5, status = $6, revision = revision + 1, updated_at = $7 WHERE id = $8 AND revision = $9",
        )
        .bind(&after.strategy)
        .bind(after.config.to_string())
        .bind(&after.serving_model_id)
        .bind(&after.previous_model_id)
        .bind(opt_json(&after.rollout))
        .bind(&after.status)
        .bind(ctx.at)
        .bind(&before.id)
        .bind(before.revision)
        .execute(&mut *tx.tx)
        .await?;
        if r.rows_affected() != 1 {
            return Err(Error::Conflict(format!(
                "deployment {} changed while this change was being made; retry",
                before.id
            )));
        }
        insert_event(&mut tx.tx, ctx, &before.id, event.0, &event.1).await?;
        apply_promotions(&mut tx.tx, ctx, after, promotions).await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&before.project_id),
                action: &format!("deployment.{}", event.0),
                resource_type: "deployment",
                resource_id: &before.id,
                before: Some(doc(before)),
                after: Some(doc(after)),
            },
        )
        .await?;
        let row = sqlx::query("SELECT * FROM deployments WHERE id = $1")
            .bind(&before.id)
            .fetch_all(&mut *tx.tx)
            .await?;
        let updated = deployment(
            row.first()
                .ok_or_else(|| Error::NotFound(before.id.clone()))?,
        )?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Adds an event to a deployment's timeline without changing it.
    pub async fn add_deployment_event(
        &self,
        ctx: &Ctx,
        deployment_id: &str,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_event(&mut tx.tx, ctx, deployment_id, kind, detail).await?;
        tx.commit().await
    }

    pub async fn get_deployment(&self, org_id: &str, id: &str) -> Result<Option<Deployment>> {
        let row = sqlx::query(
            "SELECT d.* FROM deployments d JOIN projects p ON p.id = d.project_id WHERE d.id = $1 AND p.org_id = $2",
        )
        .bind(id)
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .next();
        row.as_ref().map(deployment).transpose()
    }

    /// A deployment by id in any organization (for the serving path and controllers, which have
    /// already authorised the caller).
    pub async fn get_deployment_any(&self, id: &str) -> Result<Option<Deployment>> {
        let row = sqlx::query("SELECT * FROM deployments WHERE id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(deployment).transpose()
    }

    pub async fn get_deployment_by_name(
        &self,
        project_id: &str,
        name: &str,
    ) -> Result<Option<Deployment>> {
        let row = sqlx::query("SELECT * FROM deployments WHERE project_id = $1 AND name = $2")
            .bind(project_id)
            .bind(name)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(deployment).transpose()
    }

    pub async fn list_deployments(&self, project_id: &str) -> Result<Vec<Deployment>> {
        let rows =
            sqlx::query("SELECT * FROM deployments WHERE project_id = $1 ORDER BY created_at, id")
                .bind(project_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(deployment).collect()
    }

    /// Every deployment with a rollout in progress, across organizations (for the controllers).
    pub async fn list_rollouts(&self) -> Result<Vec<Deployment>> {
        let rows =
            sqlx::query("SELECT * FROM deployments WHERE rollout_json IS NOT NULL ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(deployment).collect()
    }

    pub async fn list_deployment_events(
        &self,
        deployment_id: &str,
    ) -> Result<Vec<DeploymentEvent>> {
        let rows =
            sqlx::query("SELECT * FROM deployment_events WHERE deployment_id = $1 ORDER BY at, id")
                .bind(deployment_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(DeploymentEvent {
                    id: r.try_get("id")?,
                    deployment_id: r.try_get("deployment_id")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    actor: r.try_get("actor")?,
                    detail: json_col(r, "detail_json")?,
                })
            })
            .collect()
    }

    /// Appends a batch of predictions in one transaction. A request id already logged for the same
    /// role is left as it was.
    pub async fn insert_predictions(&self, batch: &[PredictionRecord]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        const COLS: usize = 13;
        // Stay well under SQLite's limit of bound parameters per statement.
        const ROWS_PER_STATEMENT: usize = 500;
        let mut tx = self.begin().await?;
        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
            let mut sql = format!("INSERT INTO predictions ({PREDICTION_COLUMNS}) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for c in 0..COLS {
                    if c > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&self.dialect.placeholder(i * COLS + c + 1));
                }
                sql.push(')');
            }
            sql.push_str(" ON CONFLICT (request_id, role) DO NOTHING");
            let features: Vec<String> = chunk
                .iter()
                .map(|p| {
                    crate::features_codec::decode(&p.features)
                        .unwrap_or_default()
                        .to_string()
                })
                .collect();
            let mut q = sqlx::query(&sql);
            for (p, features) in chunk.iter().zip(&features) {
                q = q
                    .bind(&p.request_id)
                    .bind(p.role)
                    .bind(&p.deployment_id)
                    .bind(&p.model_id)
                    .bind(&p.variant)
                    .bind(p.at)
                    .bind(p.latency_us)
                    .bind(p.is_error as i64)
                    .bind(&p.entity_id)
                    .bind(features)
                    .bind(&p.output)
                    .bind(&p.predicted)
                    .bind(p.score);
            }
            q.execute(&mut *tx.tx).await?;
        }
        tx.commit().await
    }

    /// Attaches delayed labels to logged predictions of `deployment_id`. Returns the request ids that
    /// matched no logged prediction.
    pub async fn label_predictions(
        &self,
        deployment_id: &str,
        labels: &[LabelUpdate],
        at: i64,
    ) -> Result<Vec<String>> {
        let mut unknown = Vec::new();
        let mut tx = self.begin().await?;
        for l in labels {
            let r = sqlx::query(
                "UPDATE predictions SET label = $1, label_value = $2, labelled_at = $3 WHERE deployment_id = $4 AND request_id = $5",
            )
            .bind(&l.label)
            .bind(l.value)
            .bind(at)
            .bind(deployment_id)
            .bind(&l.request_id)
            .execute(&mut *tx.tx)
            .await?;
            if r.rows_affected() == 0 {
                unknown.push(l.request_id.clone());
            }
        }
        tx.commit().await?;
        Ok(unknown)
    }

    /// Logged predictions of a deployment in `[since, until)`, oldest first; `with_output` also reads
    /// the full output documents (needed for multiclass probabilities and shadow comparisons).
    pub async fn predictions_between(
        &self,
        deployment_id: &str,
        since: i64,
        until: i64,
        with_output: bool,
    ) -> Result<Vec<PredictionRow>> {
        let cols = if with_output { ", output_json" } else { "" };
        let rows = sqlx::query(&format!(
            "SELECT request_id, role, model_id, variant, at, latency_us, is_error, predicted, score, label, label_value{cols} \
             FROM predictions WHERE deployment_id = $1 AND at >= $2 AND at < $3 ORDER BY at, request_id"
        ))
        .bind(deployment_id)
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PredictionRow {
                    request_id: r.try_get("request_id")?,
                    role: r.try_get("role")?,
                    model_id: r.try_get("model_id")?,
                    variant: r.try_get("variant")?,
                    at: r.try_get("at")?,
                    latency_us: r.try_get("latency_us")?,
                    is_error: r.try_get::<i64, _>("is_error")? != 0,
                    predicted: r.try_get("predicted")?,
                    score: r.try_get("score")?,
                    output: if with_output {
                        r.try_get("output_json")?
                    } else {
                        None
                    },
                    label: r.try_get("label")?,
                    label_value: r.try_get("label_value")?,
                })
            })
            .collect()
    }

    /// Logged predictions with their features, outputs and labels, oldest first, a page at a time.
    pub async fn list_predictions(
        &self,
        deployment_id: &str,
        since: i64,
        until: i64,
        limit: i64,
        offset: i64,
    ) -> Result<crate::Page<serde_json::Value>> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM predictions WHERE deployment_id = $1 AND at >= $2 AND at < $3 \
             ORDER BY at, request_id, role LIMIT {} OFFSET {offset}",
            limit + 1
        ))
        .bind(deployment_id)
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(serde_json::json!({
                    "request_id": r.try_get::<String, _>("request_id")?,
                    "role": r.try_get::<String, _>("role")?,
                    "model_id": r.try_get::<String, _>("model_id")?,
                    "variant": r.try_get::<String, _>("variant")?,
                    "at": r.try_get::<i64, _>("at")?,
                    "latency_us": r.try_get::<i64, _>("latency_us")?,
                    "error": r.try_get::<i64, _>("is_error")? != 0,
                    "entity_id": r.try_get::<Option<String>, _>("entity_id")?,
                    "features": crate::prediction_writer::features_col(r)?,
                    "output": json_col(r, "output_json")?,
                    "label": r.try_get::<Option<String>, _>("label")?,
                    "label_value": r.try_get::<Option<f64>, _>("label_value")?,
                    "labelled_at": r.try_get::<Option<i64>, _>("labelled_at")?,
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(crate::Page::from_overfetch(items, offset, limit))
    }

    pub async fn count_predictions(&self, deployment_id: &str) -> Result<i64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM predictions WHERE deployment_id = $1")
            .bind(deployment_id)
            .fetch_all(&self.pool)
            .await?
            .first()
            .map(|r| r.try_get("n"))
            .transpose()?
            .unwrap_or(0);
        Ok(n)
    }
}
