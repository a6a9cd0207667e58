//! A/B tests between model variants: configuration, assignment counts and business outcomes.
//!
//! Starting and stopping a test changes its deployment too (the serving entry must be rebuilt on every
//! server, and a winner may become the serving model), so both are one transaction holding the test,
//! the deployment's new revision, its timeline event, the promotion history and the audit entries.

use crate::audit::{record, Change};
use crate::tenancy::unique_to_conflict;
use crate::{json_col, Ctx, Deployment, Error, PromotionChange, Result, Store};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

/// One arm of a test: a model answering `traffic` percent of the deployment's requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbVariant {
    pub name: String,
    pub model_id: String,
    pub traffic: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbTest {
    pub id: String,
    pub project_id: String,
    pub deployment_id: String,
    pub name: String,
    pub description: String,
    /// `running` or `stopped`.
    pub status: String,
    /// The first variant is the control.
    pub variants: Vec<AbVariant>,
    pub metric: serde_json::Value,
    pub alpha: f64,
    pub power: f64,
    pub minimum_detectable_effect: f64,
    pub sequential: bool,
    pub winner_model_id: Option<String>,
    pub winner_variant: Option<String>,
    pub stop_reason: Option<String>,
    pub started_at: i64,
    pub stopped_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
}

/// One request routed by a test, as the prediction log writer hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct AbAssignment {
    pub test_id: String,
    pub variant: String,
    pub model_id: String,
    pub entity_id: Option<String>,
    pub rows: u64,
    pub at: i64,
}

/// What a variant was assigned so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AbAssignmentCount {
    pub variant: String,
    pub requests: i64,
    /// Requests without an `entity_id`: each one is its own randomisation unit.
    pub anonymous_requests: i64,
    pub rows: i64,
    /// Distinct entities: an entity is one randomisation unit however many requests it makes.
    pub entities: i64,
}

/// The prediction a request id got, when an A/B test routed it.
#[derive(Debug, Clone, PartialEq)]
pub struct AbExposure {
    pub key: String,
    pub variant: String,
    pub model_id: String,
    pub at: i64,
}

/// A business outcome of one unit (a request or an entity).
#[derive(Debug, Clone, PartialEq)]
pub struct AbOutcome {
    /// `request` or `entity`.
    pub unit_kind: &'static str,
    pub unit_key: String,
    pub variant: String,
    pub model_id: String,
    pub value: f64,
}

/// A labelled prediction of a test's variant, for label-based metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct AbLabelledPrediction {
    pub variant: String,
    pub model_id: String,
    pub predicted: Option<String>,
    pub label: Option<String>,
    pub label_value: Option<f64>,
}

/// How a test ends, carried out by [`Store::stop_ab_test`].
#[derive(Debug, Clone)]
pub struct AbStop {
    pub winner_model_id: Option<String>,
    pub winner_variant: Option<String>,
    pub reason: String,
    /// The model the deployment serves from now on, when the winner replaces it.
    pub switch_to: Option<String>,
    pub promotions: Vec<PromotionChange>,
}

fn ab_test(r: &AnyRow) -> Result<AbTest> {
    let variants: serde_json::Value = json_col(r, "variants_json")?;
    Ok(AbTest {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        deployment_id: r.try_get("deployment_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        status: r.try_get("status")?,
        variants: serde_json::from_value(variants)
            .map_err(|e| Error::Corrupt(format!("variants_json: {e}")))?,
        metric: json_col(r, "metric_json")?,
        alpha: r.try_get("alpha")?,
        power: r.try_get("power")?,
        minimum_detectable_effect: r.try_get("minimum_detectable_effect")?,
        sequential: r.try_get::<i64, _>("sequential")? != 0,
        winner_model_id: r.try_get("winner_model_id")?,
        winner_variant: r.try_get("winner_variant")?,
        stop_reason: r.try_get("stop_reason")?,
        started_at: r.try_get("started_at")?,
        stopped_at: r.try_get("stopped_at")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// What the audit log keeps of a test.
fn test_doc(t: &AbTest) -> serde_json::Value {
    serde_json::json!({
        "id": t.id, "name": t.name, "deployment_id": t.deployment_id, "status": t.status,
        "variants": t.variants, "metric": t.metric, "alpha": t.alpha, "power": t.power,
        "minimum_detectable_effect": t.minimum_detectable_effect, "sequential": t.sequential,
        "winner_model_id": t.winner_model_id, "winner_variant": t.winner_variant,
        "stop_reason": t.stop_reason,
    })
}

fn deployment_doc(d: &Deployment) -> serde_json::Value {
    serde_json::json!({
        "id": d.id, "name": d.name, "strategy": d.strategy, "status": d.status,
        "serving_model_id": d.serving_model_id, "previous_model_id": d.previous_model_id,
    })
}

/// Moves a deployment to its next revision (so every server rebuilds its serving entry), optionally
/// switching the serving model, if nobody changed it since `before` was read.
async fn bump_deployment(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    before: &Deployment,
    switch_to: Option<&str>,
) -> Result<Deployment> {
    let mut after = before.clone();
    if let Some(m) = switch_to {
        after.previous_model_id = before.serving_model_id.clone();
        after.serving_model_id = Some(m.to_string());
    }
    let r = sqlx::query(
        "UPDATE deployments SET serving_model_id = $1, previous_model_id = $2, revision = revision + 1, \
         updated_at = $3 WHERE id = $4 AND revision = $5",
    )
    .bind(&after.serving_model_id)
    .bind(&after.previous_model_id)
    .bind(ctx.at)
    .bind(&before.id)
    .bind(before.revision)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() != 1 {
        return Err(Error::Conflict(format!(
            "deployment {} changed while this change was being made; retry",
            before.id
        )));
    }
    after.revision = before.revision + 1;
    after.updated_at = ctx.at;
    Ok(after)
}

/// `$first, $first+1, …` for an `IN (…)` list of `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", first + i))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Starts test `t` on deployment `d`: the test row, the deployment's next revision, the timeline
    /// event and the promotion history of `starts` (models that were not serving), with the audit
    /// entry. A second running test on the same deployment is a conflict.
    #[tracing::instrument(skip_all)]
    pub async fn create_ab_test(
        &self,
        ctx: &Ctx,
        t: &AbTest,
        d: &Deployment,
        starts: &[PromotionChange],
    ) -> Result<Deployment> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO ab_tests (id, project_id, deployment_id, name, description, status, variants_json, metric_json, \
             alpha, power, minimum_detectable_effect, sequential, started_at, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&t.id)
        .bind(&t.project_id)
        .bind(&t.deployment_id)
        .bind(&t.name)
        .bind(&t.description)
        .bind(&t.status)
        .bind(serde_json::to_string(&t.variants).map_err(|e| Error::Corrupt(e.to_string()))?)
        .bind(t.metric.to_string())
        .bind(t.alpha)
        .bind(t.power)
        .bind(t.minimum_detectable_effect)
        .bind(t.sequential as i64)
        .bind(t.started_at)
        .bind(t.created_at)
        .bind(&t.created_by)
        .bind(t.updated_at)
        .execute(&mut *tx.tx)
        .await
        .map_err(|e| {
            unique_to_conflict(e, || {
                format!(
                    "an A/B test is already running on deployment {}; stop it first",
                    d.name
                )
            })
        })?;
        for v in &t.variants {
            sqlx::query(
                "INSERT INTO ab_assignments (test_id, variant, requests, anonymous_requests, rows_predicted, entities) \
                 VALUES ($1, $2, 0, 0, 0, 0)",
            )
            .bind(&t.id)
            .bind(&v.name)
            .execute(&mut *tx.tx)
            .await?;
        }
        let after = bump_deployment(&mut tx.tx, ctx, d, None).await?;
        let detail = serde_json::json!({
            "ab_test_id": t.id, "name": t.name, "variants": t.variants,
        });
        crate::deployments::insert_event(&mut tx.tx, ctx, &d.id, "ab_test_started", &detail)
            .await?;
        crate::deployments::apply_promotions(&mut tx.tx, ctx, d, starts).await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&t.project_id),
                action: "ab_test.create",
                resource_type: "ab_test",
                resource_id: &t.id,
                before: None,
                after: Some(test_doc(t)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Stops running test `t` on deployment `d` as `stop` says: the test row, the deployment's next
    /// revision (serving the winner when it switches), the timeline event, the promotion history and
    /// the audit entries, in one transaction. A test that is no longer running is a conflict.
    #[tracing::instrument(skip_all)]
    pub async fn stop_ab_test(
        &self,
        ctx: &Ctx,
        t: &AbTest,
        d: &Deployment,
        stop: &AbStop,
    ) -> Result<(AbTest, Deployment)> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE ab_tests SET status = 'stopped', winner_model_id = $1, winner_variant = $2, stop_reason = $3, \
             stopped_at = $4, updated_at = $4 WHERE id = $5 AND status = 'running'",
        )
        .bind(&stop.winner_model_id)
        .bind(&stop.winner_variant)
        .bind(&stop.reason)
        .bind(ctx.at)
        .bind(&t.id)
        .execute(&mut *tx.tx)
        .await?;
        if r.rows_affected() != 1 {
            return Err(Error::Conflict(format!("A/B test {} is not running", t.id)));
        }
        let after = bump_deployment(&mut tx.tx, ctx, d, stop.switch_to.as_deref()).await?;
        let detail = serde_json::json!({
            "ab_test_id": t.id, "name": t.name, "winner_model_id": stop.winner_model_id,
            "winner_variant": stop.winner_variant, "serving_model_id": after.serving_model_id,
            "switched": stop.switch_to.is_some(), "reason": stop.reason,
        });
        crate::deployments::insert_event(&mut tx.tx, ctx, &d.id, "ab_test_stopped", &detail)
            .await?;
        crate::deployments::apply_promotions(&mut tx.tx, ctx, d, &stop.promotions).await?;
        let mut stopped = t.clone();
        stopped.status = "stopped".into();
        stopped.winner_model_id = stop.winner_model_id.clone();
        stopped.winner_variant = stop.winner_variant.clone();
        stopped.stop_reason = Some(stop.reason.clone());
        stopped.stopped_at = Some(ctx.at);
        stopped.updated_at = ctx.at;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&t.project_id),
                action: "ab_test.stop",
                resource_type: "ab_test",
                resource_id: &t.id,
                before: Some(test_doc(t)),
                after: Some(test_doc(&stopped)),
            },
        )
        .await?;
        if stop.switch_to.is_some() {
            record(
                &mut tx.tx,
                ctx,
                Change {
                    project_id: Some(&d.project_id),
                    action: "deployment.ab_test_promoted",
                    resource_type: "deployment",
                    resource_id: &d.id,
                    before: Some(deployment_doc(d)),
                    after: Some(deployment_doc(&after)),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok((stopped, after))
    }

    /// Models with a promotion of this deployment still in progress.
    pub async fn open_promotion_models(&self, deployment_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT model_id FROM promotions WHERE deployment_id = $1 AND ended_at IS NULL",
        )
        .bind(deployment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("model_id")?)).collect()
    }

    /// A test of organization `org_id`.
    pub async fn get_ab_test(&self, org_id: &str, id: &str) -> Result<Option<AbTest>> {
        let row = sqlx::query(
            "SELECT t.* FROM ab_tests t JOIN projects p ON p.id = t.project_id WHERE t.id = $1 AND p.org_id = $2",
        )
        .bind(id)
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .next();
        row.as_ref().map(ab_test).transpose()
    }

    /// The test running on a deployment, if any (for the serving path, which has authorised already).
    pub async fn running_ab_test(&self, deployment_id: &str) -> Result<Option<AbTest>> {
        let row =
            sqlx::query("SELECT * FROM ab_tests WHERE deployment_id = $1 AND status = 'running'")
                .bind(deployment_id)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .next();
        row.as_ref().map(ab_test).transpose()
    }

    /// Tests of a project (optionally of one deployment), newest first, a page at a time.
    pub async fn list_ab_tests(
        &self,
        project_id: &str,
        deployment_id: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<crate::Page<AbTest>> {
        let filter = if deployment_id.is_some() {
            " AND deployment_id = $2"
        } else {
            ""
        };
        let sql = format!(
            "SELECT * FROM ab_tests WHERE project_id = $1{filter} ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {offset}",
            limit + 1
        );
        let mut q = sqlx::query(&sql).bind(project_id);
        if let Some(d) = deployment_id {
            q = q.bind(d);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let items = rows.iter().map(ab_test).collect::<Result<Vec<_>>>()?;
        Ok(crate::Page::from_overfetch(items, offset, limit))
    }

    /// Adds a batch of routed requests to the tests' assignment counts. An entity counts once per
    /// test, under the variant it was first assigned (hashing keeps it there).
    #[tracing::instrument(skip_all)]
    pub async fn record_ab_assignments(&self, batch: &[AbAssignment]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut totals: BTreeMap<(&str, &str), AbAssignmentCount> = BTreeMap::new();
        let mut tx = self.begin().await?;
        for a in batch {
            let t = totals
                .entry((a.test_id.as_str(), a.variant.as_str()))
                .or_default();
            t.requests += 1;
            t.rows += a.rows as i64;
            match &a.entity_id {
                None => t.anonymous_requests += 1,
                Some(e) => {
                    let r = sqlx::query(
                        "INSERT INTO ab_entities (test_id, entity_id, variant, model_id, first_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (test_id, entity_id) DO NOTHING",
                    )
                    .bind(&a.test_id)
                    .bind(e)
                    .bind(&a.variant)
                    .bind(&a.model_id)
                    .bind(a.at)
                    .execute(&mut *tx.tx)
                    .await?;
                    t.entities += r.rows_affected() as i64;
                }
            }
        }
        for ((test_id, variant), t) in &totals {
            sqlx::query(
                "INSERT INTO ab_assignments (test_id, variant, requests, anonymous_requests, rows_predicted, entities) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (test_id, variant) DO UPDATE SET \
                 requests = ab_assignments.requests + excluded.requests, \
                 anonymous_requests = ab_assignments.anonymous_requests + excluded.anonymous_requests, \
                 rows_predicted = ab_assignments.rows_predicted + excluded.rows_predicted, \
                 entities = ab_assignments.entities + excluded.entities",
            )
            .bind(*test_id)
            .bind(*variant)
            .bind(t.requests)
            .bind(t.anonymous_requests)
            .bind(t.rows)
            .bind(t.entities)
            .execute(&mut *tx.tx)
            .await?;
        }
        tx.commit().await
    }

    /// Assignment counts of a test, per variant.
    pub async fn ab_assignment_counts(&self, test_id: &str) -> Result<Vec<AbAssignmentCount>> {
        let rows = sqlx::query("SELECT * FROM ab_assignments WHERE test_id = $1 ORDER BY variant")
            .bind(test_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AbAssignmentCount {
                    variant: r.try_get("variant")?,
                    requests: r.try_get("requests")?,
                    anonymous_requests: r.try_get("anonymous_requests")?,
                    rows: r.try_get("rows_predicted")?,
                    entities: r.try_get("entities")?,
                })
            })
            .collect()
    }

    /// The A/B variants that answered these request ids of a deployment (primary predictions in
    /// `[since, until)` only; others are left out).
    pub async fn ab_request_exposures(
        &self,
        deployment_id: &str,
        request_ids: &[String],
        since: i64,
        until: i64,
    ) -> Result<Vec<AbExposure>> {
        let mut out = Vec::new();
        for chunk in request_ids.chunks(500) {
            let sql = format!(
                "SELECT request_id, variant, model_id, at FROM predictions WHERE role = 'primary' AND deployment_id = $1 \
                 AND at >= $2 AND at < $3 AND variant LIKE 'ab:%' AND request_id IN ({})",
                placeholders(4, chunk.len())
            );
            let mut q = sqlx::query(&sql)
                .bind(deployment_id)
                .bind(since)
                .bind(until);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push(AbExposure {
                    key: r.try_get("request_id")?,
                    variant: r.try_get("variant")?,
                    model_id: r.try_get("model_id")?,
                    at: r.try_get("at")?,
                });
            }
        }
        Ok(out)
    }

    /// The variants these entities were assigned in a test (entities never routed are left out).
    pub async fn ab_entity_exposures(
        &self,
        test_id: &str,
        entity_ids: &[String],
    ) -> Result<Vec<AbExposure>> {
        let mut out = Vec::new();
        for chunk in entity_ids.chunks(500) {
            let sql = format!(
                "SELECT entity_id, variant, model_id, first_at FROM ab_entities WHERE test_id = $1 AND entity_id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(test_id);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push(AbExposure {
                    key: r.try_get("entity_id")?,
                    variant: r.try_get("variant")?,
                    model_id: r.try_get("model_id")?,
                    at: r.try_get("first_at")?,
                });
            }
        }
        Ok(out)
    }

    /// Records outcomes of a test; a unit posted again keeps its latest value.
    #[tracing::instrument(skip_all)]
    pub async fn put_ab_outcomes(
        &self,
        test_id: &str,
        outcomes: &[AbOutcome],
        at: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        for o in outcomes {
            sqlx::query(
                "INSERT INTO ab_outcomes (test_id, unit_kind, unit_key, variant, model_id, value, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (test_id, unit_kind, unit_key) \
                 DO UPDATE SET value = excluded.value, at = excluded.at",
            )
            .bind(test_id)
            .bind(o.unit_kind)
            .bind(&o.unit_key)
            .bind(&o.variant)
            .bind(&o.model_id)
            .bind(o.value)
            .bind(at)
            .execute(&mut *tx.tx)
            .await?;
        }
        tx.commit().await
    }

    /// A test's outcomes as (variant, value), in the order they arrived.
    pub async fn ab_outcomes(&self, test_id: &str) -> Result<Vec<(String, f64)>> {
        let rows = sqlx::query(
            "SELECT variant, value FROM ab_outcomes WHERE test_id = $1 ORDER BY at, unit_kind, unit_key",
        )
        .bind(test_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("variant")?, r.try_get("value")?)))
            .collect()
    }

    /// Labelled primary predictions that A/B variants of a deployment answered in `[since, until)`,
    /// in the order their labels arrived.
    pub async fn ab_labelled_predictions(
        &self,
        deployment_id: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<AbLabelledPrediction>> {
        let rows = sqlx::query(
            "SELECT variant, model_id, predicted, label, label_value FROM predictions \
             WHERE deployment_id = $1 AND at >= $2 AND at < $3 AND role = 'primary' AND is_error = 0 \
             AND variant LIKE 'ab:%' AND labelled_at IS NOT NULL ORDER BY labelled_at, at, request_id",
        )
        .bind(deployment_id)
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AbLabelledPrediction {
                    variant: r.try_get("variant")?,
                    model_id: r.try_get("model_id")?,
                    predicted: r.try_get("predicted")?,
                    label: r.try_get("label")?,
                    label_value: r.try_get("label_value")?,
                })
            })
            .collect()
    }
}
