//! Monitoring state: feature sketches of live traffic by time bucket, alert rules with their firing
//! state and history, and the outbox of notification deliveries with their retries.

use crate::audit::{record, Change};
use crate::{json_col, Ctx, Error, Result, Store};
use coreplex_domain::ids;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    pub id: String,
    pub project_id: String,
    pub deployment_id: String,
    pub name: String,
    pub metric: String,
    pub condition: String,
    pub threshold: f64,
    /// Channel configurations as stored, secrets included: never send this to a client as is.
    pub channels: serde_json::Value,
    pub evaluation_window_minutes: i64,
    pub cooldown_minutes: i64,
    pub enabled: bool,
    pub state: String,
    pub last_value: Option<f64>,
    pub last_evaluated_at: Option<i64>,
    pub last_notified_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertEvent {
    pub id: String,
    pub alert_id: String,
    pub at: i64,
    pub kind: String,
    pub value: Option<f64>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub project_id: String,
    pub alert_id: Option<String>,
    pub deployment_id: Option<String>,
    pub event_kind: String,
    pub channel: serde_json::Value,
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// The outcome of one evaluation of an alert, as [`Store::record_alert_evaluation`] stores it.
#[derive(Debug, Clone)]
pub struct AlertEvaluation<'a> {
    /// `firing` or `ok`.
    pub state: &'a str,
    pub value: Option<f64>,
    /// Whether notifications go out now (the cooldown restarts).
    pub notified: bool,
    /// A history event: its kind and detail.
    pub event: Option<(&'a str, serde_json::Value)>,
    pub deliveries: &'a [NewDelivery],
}

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub project_id: String,
    pub alert_id: Option<String>,
    pub deployment_id: Option<String>,
    pub event_kind: String,
    pub channel: serde_json::Value,
    pub payload: serde_json::Value,
    pub max_attempts: i64,
}

fn alert(r: &AnyRow) -> Result<Alert> {
    Ok(Alert {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        deployment_id: r.try_get("deployment_id")?,
        name: r.try_get("name")?,
        metric: r.try_get("metric")?,
        condition: r.try_get("condition")?,
        threshold: r.try_get("threshold")?,
        channels: json_col(r, "channels_json")?,
        evaluation_window_minutes: r.try_get("evaluation_window_minutes")?,
        cooldown_minutes: r.try_get("cooldown_minutes")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        state: r.try_get("state")?,
        last_value: r.try_get("last_value")?,
        last_evaluated_at: r.try_get("last_evaluated_at")?,
        last_notified_at: r.try_get("last_notified_at")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn delivery(r: &AnyRow) -> Result<Delivery> {
    Ok(Delivery {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        alert_id: r.try_get("alert_id")?,
        deployment_id: r.try_get("deployment_id")?,
        event_kind: r.try_get("event_kind")?,
        channel: json_col(r, "channel_json")?,
        payload: json_col(r, "payload_json")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

/// What the audit log keeps of an alert: its channels by type only (they hold secrets).
fn alert_doc(a: &Alert) -> serde_json::Value {
    let channels: Vec<serde_json::Value> = a
        .channels
        .as_array()
        .map(|c| {
            c.iter()
                .map(|ch| serde_json::json!({"type": ch["type"]}))
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "id": a.id, "name": a.name, "deployment_id": a.deployment_id, "metric": a.metric,
        "condition": a.condition, "threshold": a.threshold, "channels": channels,
        "evaluation_window_minutes": a.evaluation_window_minutes, "cooldown_minutes": a.cooldown_minutes,
        "enabled": a.enabled,
    })
}

impl Store {
    /// Replaces this writer's sketch of a deployment's features for one time bucket.
    pub async fn put_feature_sketch(
        &self,
        deployment_id: &str,
        bucket_start: i64,
        writer: &str,
        rows_seen: i64,
        sketch: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO feature_sketches (deployment_id, bucket_start, writer, rows_seen, sketch_json, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (deployment_id, bucket_start, writer) \
             DO UPDATE SET rows_seen = excluded.rows_seen, sketch_json = excluded.sketch_json, updated_at = excluded.updated_at",
        )
        .bind(deployment_id)
        .bind(bucket_start)
        .bind(writer)
        .bind(rows_seen)
        .bind(sketch)
        .bind(now)
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await
    }

    /// Every writer's sketches of a deployment for buckets starting in `[since, until)`.
    pub async fn feature_sketches(
        &self,
        deployment_id: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<(i64, i64, String)>> {
        let rows = sqlx::query(
            "SELECT bucket_start, rows_seen, sketch_json FROM feature_sketches \
             WHERE deployment_id = $1 AND bucket_start >= $2 AND bucket_start < $3 ORDER BY bucket_start, writer",
        )
        .bind(deployment_id)
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("bucket_start")?,
                    r.try_get("rows_seen")?,
                    r.try_get("sketch_json")?,
                ))
            })
            .collect()
    }

    pub async fn create_alert(&self, ctx: &Ctx, a: &Alert) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO alerts (id, project_id, deployment_id, name, metric, condition, threshold, channels_json, \
             evaluation_window_minutes, cooldown_minutes, enabled, state, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&a.id)
        .bind(&a.project_id)
        .bind(&a.deployment_id)
        .bind(&a.name)
        .bind(&a.metric)
        .bind(&a.condition)
        .bind(a.threshold)
        .bind(a.channels.to_string())
        .bind(a.evaluation_window_minutes)
        .bind(a.cooldown_minutes)
        .bind(a.enabled as i64)
        .bind(&a.state)
        .bind(a.created_at)
        .bind(&a.created_by)
        .bind(a.updated_at)
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&a.project_id),
                action: "alert.create",
                resource_type: "alert",
                resource_id: &a.id,
                before: None,
                after: Some(alert_doc(a)),
            },
        )
        .await?;
        tx.commit().await
    }

    /// Changes an alert's settings (not its firing state).
    pub async fn update_alert(&self, ctx: &Ctx, before: &Alert, after: &Alert) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE alerts SET name = $1, metric = $2, condition = $3, threshold = $4, channels_json = $5, \
             evaluation_window_minutes = $6, cooldown_minutes = $7, enabled = $8, updated_at = $9 WHERE id = $10",
        )
        .bind(&after.name)
        .bind(&after.metric)
        .bind(&after.condition)
        .bind(after.threshold)
        .bind(after.channels.to_string())
        .bind(after.evaluation_window_minutes)
        .bind(after.cooldown_minutes)
        .bind(after.enabled as i64)
        .bind(ctx.at)
        .bind(&before.id)
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&before.project_id),
                action: "alert.update",
                resource_type: "alert",
                resource_id: &before.id,
                before: Some(alert_doc(before)),
                after: Some(alert_doc(after)),
            },
        )
        .await?;
        tx.commit().await
    }

    pub async fn delete_alert(&self, ctx: &Ctx, a: &Alert) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE alerts SET enabled = 0, state = 'deleted', updated_at = $1 WHERE id = $2",
        )
        .bind(ctx.at)
        .bind(&a.id)
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&a.project_id),
                action: "alert.delete",
                resource_type: "alert",
                resource_id: &a.id,
                before: Some(alert_doc(a)),
                after: None,
            },
        )
        .await?;
        tx.commit().await
    }

    pub async fn get_alert(&self, org_id: &str, id: &str) -> Result<Option<Alert>> {
        let row = sqlx::query(
            "SELECT a.* FROM alerts a JOIN projects p ON p.id = a.project_id WHERE a.id = $1 AND p.org_id = $2 AND a.state <> 'deleted'",
        )
        .bind(id)
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .next();
        row.as_ref().map(alert).transpose()
    }

    pub async fn list_alerts(
        &self,
        project_id: &str,
        deployment_id: Option<&str>,
    ) -> Result<Vec<Alert>> {
        let rows = match deployment_id {
            Some(d) => {
                sqlx::query("SELECT * FROM alerts WHERE project_id = $1 AND deployment_id = $2 AND state <> 'deleted' ORDER BY created_at, id")
                    .bind(project_id)
                    .bind(d)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM alerts WHERE project_id = $1 AND state <> 'deleted' ORDER BY created_at, id")
                    .bind(project_id)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(alert).collect()
    }

    /// Enabled alerts whose evaluation is due at `now`, across organizations.
    pub async fn due_alerts(&self, now: i64) -> Result<Vec<Alert>> {
        let rows = sqlx::query(
            "SELECT * FROM alerts WHERE enabled = 1 AND state <> 'deleted' AND \
             (last_evaluated_at IS NULL OR last_evaluated_at + evaluation_window_minutes * 60000 <= $1) ORDER BY id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert).collect()
    }

    /// Records an evaluation: the new state and value, an optional history event, and the deliveries
    /// to make, all at once.
    pub async fn record_alert_evaluation(
        &self,
        a: &Alert,
        now: i64,
        evaluation: AlertEvaluation<'_>,
    ) -> Result<()> {
        let AlertEvaluation {
            state,
            value,
            notified,
            event,
            deliveries,
        } = evaluation;
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE alerts SET state = $1, last_value = $2, last_evaluated_at = $3, \
             last_notified_at = CASE WHEN $4 = 1 THEN $3 ELSE last_notified_at END WHERE id = $5",
        )
        .bind(state)
        .bind(value)
        .bind(now)
        .bind(notified as i64)
        .bind(&a.id)
        .execute(&mut *tx.tx)
        .await?;
        if let Some((kind, detail)) = event {
            sqlx::query("INSERT INTO alert_events (id, alert_id, at, kind, value, detail_json) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(ids::new_sortable_id(ids::EVENT, now))
                .bind(&a.id)
                .bind(now)
                .bind(kind)
                .bind(value)
                .bind(detail.to_string())
                .execute(&mut *tx.tx)
                .await?;
        }
        for d in deliveries {
            insert_delivery(&mut tx.tx, d, now).await?;
        }
        tx.commit().await
    }

    pub async fn list_alert_events(&self, alert_id: &str) -> Result<Vec<AlertEvent>> {
        let rows = sqlx::query("SELECT * FROM alert_events WHERE alert_id = $1 ORDER BY at, id")
            .bind(alert_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AlertEvent {
                    id: r.try_get("id")?,
                    alert_id: r.try_get("alert_id")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    value: r.try_get("value")?,
                    detail: json_col(r, "detail_json")?,
                })
            })
            .collect()
    }

    /// Queues notifications (e.g. of a rollout event) for delivery.
    pub async fn enqueue_deliveries(&self, deliveries: &[NewDelivery], now: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        for d in deliveries {
            insert_delivery(&mut tx.tx, d, now).await?;
        }
        tx.commit().await
    }

    /// Claims deliveries due at `now` for `worker` until `lease_until`.
    pub async fn claim_deliveries(
        &self,
        worker: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (lease_expires_at IS NULL OR lease_expires_at < $1) ORDER BY next_attempt_at, id LIMIT {limit} {}",
            self.dialect.skip_locked()
        );
        let ids: Vec<String> = sqlx::query(&sql)
            .bind(now)
            .fetch_all(&mut *tx.tx)
            .await?
            .iter()
            .map(|r| r.get("id"))
            .collect();
        let mut out = Vec::new();
        for id in ids {
            sqlx::query(
                "UPDATE deliveries SET lease_owner = $1, lease_expires_at = $2 WHERE id = $3",
            )
            .bind(worker)
            .bind(lease_until)
            .bind(&id)
            .execute(&mut *tx.tx)
            .await?;
            let row = sqlx::query("SELECT * FROM deliveries WHERE id = $1")
                .bind(&id)
                .fetch_all(&mut *tx.tx)
                .await?;
            if let Some(r) = row.first() {
                out.push(delivery(r)?);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Records one delivery attempt: delivered, retried at `retry_at`, or failed for good.
    pub async fn finish_delivery_attempt(
        &self,
        id: &str,
        now: i64,
        error: Option<&str>,
        retry_at: Option<i64>,
    ) -> Result<()> {
        let status = match (error, retry_at) {
            (None, _) => "delivered",
            (Some(_), Some(_)) => "pending",
            (Some(_), None) => "failed",
        };
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE deliveries SET status = $1, attempts = attempts + 1, last_error = COALESCE($2, last_error), \
             next_attempt_at = COALESCE($3, next_attempt_at), delivered_at = CASE WHEN $1 = 'delivered' THEN $4 ELSE delivered_at END, \
             lease_owner = NULL, lease_expires_at = NULL WHERE id = $5",
        )
        .bind(status)
        .bind(error)
        .bind(retry_at)
        .bind(now)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await
    }

    pub async fn list_deliveries(
        &self,
        alert_id: Option<&str>,
        deployment_id: Option<&str>,
    ) -> Result<Vec<Delivery>> {
        let rows = match (alert_id, deployment_id) {
            (Some(a), _) => {
                sqlx::query("SELECT * FROM deliveries WHERE alert_id = $1 ORDER BY created_at, id")
                    .bind(a)
                    .fetch_all(&self.pool)
                    .await?
            }
            (None, Some(d)) => {
                sqlx::query(
                    "SELECT * FROM deliveries WHERE deployment_id = $1 ORDER BY created_at, id",
                )
                .bind(d)
                .fetch_all(&self.pool)
                .await?
            }
            (None, None) => return Err(Error::Conflict("name an alert or a deployment".into())),
        };
        rows.iter().map(delivery).collect()
    }
}

async fn insert_delivery(conn: &mut sqlx::AnyConnection, d: &NewDelivery, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO deliveries (id, project_id, alert_id, deployment_id, event_kind, channel_json, payload_json, status, \
         attempts, max_attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9, $9)",
    )
    .bind(ids::new_id("dlv"))
    .bind(&d.project_id)
    .bind(&d.alert_id)
    .bind(&d.deployment_id)
    .bind(&d.event_kind)
    .bind(d.channel.to_string())
    .bind(d.payload.to_string())
    .bind(d.max_attempts)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
