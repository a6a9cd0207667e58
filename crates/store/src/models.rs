//! The model registry: versions, lifecycle transitions and promotion history.

use crate::audit::{record, Change};
use crate::tenancy::unique_to_conflict;
use crate::{
    json_col, Ctx, Error, Model, ModelFilter, ModelTransition, NewModel, Page, Promotion, Result,
    Store,
};
use coreplex_domain::registry::{plan_transition, ModelStatus};
use coreplex_domain::{ids, DomainError};
use sqlx::any::AnyRow;
use sqlx::Row;

fn model(row: &AnyRow) -> Result<Model> {
    Ok(Model {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        task: row.try_get("task")?,
        status: row.try_get("status")?,
        artifact_key: row.try_get("artifact_key")?,
        sha256: row.try_get("sha256")?,
        size_bytes: row.try_get("size_bytes")?,
        input_schema: json_col(row, "input_schema_json")?,
        output_schema: json_col(row, "output_schema_json")?,
        model_card: row.try_get("model_card")?,
        tags: json_col(row, "tags_json")?,
        lineage: json_col(row, "lineage_json")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn transition(row: &AnyRow) -> Result<ModelTransition> {
    Ok(ModelTransition {
        id: row.try_get("id")?,
        model_id: row.try_get("model_id")?,
        from_status: row.try_get("from_status")?,
        to_status: row.try_get("to_status")?,
        actor: row.try_get("actor")?,
        at: row.try_get("at")?,
        reason: row.try_get("reason")?,
    })
}

fn promotion(row: &AnyRow) -> Result<Promotion> {
    Ok(Promotion {
        id: row.try_get("id")?,
        model_id: row.try_get("model_id")?,
        project_id: row.try_get("project_id")?,
        deployment_id: row.try_get("deployment_id")?,
        endpoint: row.try_get("endpoint")?,
        strategy: row.try_get("strategy")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        outcome: row.try_get("outcome")?,
        detail: row.try_get("detail")?,
    })
}

fn doc(m: &Model) -> serde_json::Value {
    serde_json::json!({
        "id": m.id, "name": m.name, "version": m.version, "task": m.task, "status": m.status,
        "sha256": m.sha256, "model_card": m.model_card, "tags": m.tags, "lineage": m.lineage,
    })
}

fn status_of(s: &str) -> Result<ModelStatus> {
    ModelStatus::parse("status", s).map_err(|e| Error::Corrupt(e.to_string()))
}

impl Store {
    /// Registers a new version of `m.name`: the version number is one more than the highest so far.
    /// New versions start as `candidate`.
    pub async fn create_model(&self, ctx: &Ctx, m: &NewModel) -> Result<Model> {
        let mut tx = self.begin().await?;
        let next: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 AS next FROM models WHERE project_id = $1 AND name = $2")
                .bind(&m.project_id)
                .bind(&m.name)
                .fetch_one(&mut *tx.tx)
                .await?
                .try_get("next")?;
        let rec = Model {
            id: m.id.clone(),
            project_id: m.project_id.clone(),
            name: m.name.clone(),
            version: next,
            task: m.task.clone(),
            status: ModelStatus::Candidate.as_str().to_string(),
            artifact_key: m.artifact_key.clone(),
            sha256: m.sha256.clone(),
            size_bytes: m.size_bytes,
            input_schema: m.input_schema.clone(),
            output_schema: m.output_schema.clone(),
            model_card: m.model_card.clone(),
            tags: m.tags.clone(),
            lineage: m.lineage.clone(),
            created_at: ctx.at,
            created_by: ctx.actor.clone(),
            updated_at: ctx.at,
        };
        sqlx::query(
            "INSERT INTO models (id, project_id, name, version, task, status, artifact_key, sha256, size_bytes, \
             input_schema_json, output_schema_json, model_card, tags_json, lineage_json, created_at, created_by, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&rec.id)
        .bind(&rec.project_id)
        .bind(&rec.name)
        .bind(rec.version)
        .bind(&rec.task)
        .bind(&rec.status)
        .bind(&rec.artifact_key)
        .bind(&rec.sha256)
        .bind(rec.size_bytes)
        .bind(rec.input_schema.to_string())
        .bind(rec.output_schema.to_string())
        .bind(&rec.model_card)
        .bind(rec.tags.to_string())
        .bind(rec.lineage.to_string())
        .bind(rec.created_at)
        .bind(&rec.created_by)
        .bind(rec.updated_at)
        .execute(&mut *tx.tx)
        .await
        .map_err(|e| unique_to_conflict(e, || format!("model `{}` got a new version concurrently; retry", m.name)))?;
        sqlx::query(
            "INSERT INTO model_transitions (id, model_id, from_status, to_status, actor, at, reason) \
             VALUES ($1, $2, NULL, $3, $4, $5, $6)",
        )
        .bind(ids::new_sortable_id(ids::EVENT, ctx.at))
        .bind(&rec.id)
        .bind(&rec.status)
        .bind(&ctx.actor)
        .bind(ctx.at)
        .bind("registered")
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&rec.project_id),
                action: "model.register",
                resource_type: "model",
                resource_id: &rec.id,
                before: None,
                after: Some(doc(&rec)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// A model by id in any organization, for the serving path (the caller is already authorised).
    pub async fn get_model_any(&self, id: &str) -> Result<Option<Model>> {
        let row = sqlx::query("SELECT * FROM models WHERE id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(model).transpose()
    }

    pub async fn get_model(&self, org_id: &str, id: &str) -> Result<Option<Model>> {
        let row = sqlx::query(
            "SELECT m.* FROM models m JOIN projects p ON p.id = m.project_id WHERE m.id = $1 AND p.org_id = $2",
        )
        .bind(id)
        .bind(org_id)
        .fetch_all(&self.pool).await?.into_iter().next();
        row.as_ref().map(model).transpose()
    }

    pub async fn list_models(
        &self,
        project_id: &str,
        f: &ModelFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Page<Model>> {
        let mut sql = String::from("SELECT * FROM models WHERE project_id = $1");
        let mut binds = vec![project_id.to_string()];
        if let Some(n) = &f.name {
            binds.push(n.clone());
            sql.push_str(&format!(" AND name = ${}", binds.len()));
        }
        if let Some(s) = &f.status {
            binds.push(s.clone());
            sql.push_str(&format!(" AND status = ${}", binds.len()));
        }
        sql.push_str(&format!(
            " ORDER BY name, version LIMIT {} OFFSET {offset}",
            limit + 1
        ));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let items = rows.iter().map(model).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, offset, limit))
    }

    /// Changes the model card and tags; the artifact and lineage of a version never change.
    pub async fn update_model(
        &self,
        ctx: &Ctx,
        before: &Model,
        model_card: Option<&str>,
        tags: Option<&serde_json::Value>,
    ) -> Result<Model> {
        let mut after = before.clone();
        if let Some(c) = model_card {
            after.model_card = c.to_string();
        }
        if let Some(t) = tags {
            after.tags = t.clone();
        }
        after.updated_at = ctx.at;
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE models SET model_card = $1, tags_json = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&after.model_card)
        .bind(after.tags.to_string())
        .bind(after.updated_at)
        .bind(&after.id)
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&after.project_id),
                action: "model.update",
                resource_type: "model",
                resource_id: &after.id,
                before: Some(doc(before)),
                after: Some(doc(&after)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Moves a model to `to` as the domain's lifecycle allows, archiving the previous production version
    /// of the same name when promoting, all in one transaction. A disallowed move is
    /// [`Error::Conflict`]. Returns the changed model.
    pub async fn transition_model(
        &self,
        ctx: &Ctx,
        model_id: &str,
        to: ModelStatus,
        reason: &str,
    ) -> Result<Model> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT * FROM models WHERE id = $1")
            .bind(model_id)
            .fetch_optional(&mut *tx.tx)
            .await?
            .ok_or_else(|| Error::NotFound(format!("model `{model_id}`")))?;
        let current = model(&row)?;
        let prod: Option<String> = sqlx::query(
            "SELECT id FROM models WHERE project_id = $1 AND name = $2 AND status = 'production' AND id <> $3",
        )
        .bind(&current.project_id)
        .bind(&current.name)
        .bind(model_id)
        .fetch_optional(&mut *tx.tx)
        .await?
        .map(|r| r.get("id"));
        let plan = plan_transition(
            model_id,
            status_of(&current.status)?,
            to,
            reason,
            prod.as_deref(),
        )
        .map_err(|e| match e {
            DomainError::Conflict(m) => Error::Conflict(m),
            other => Error::Conflict(other.to_string()),
        })?;
        let mut result = current.clone();
        for change in plan {
            let row = sqlx::query("SELECT * FROM models WHERE id = $1")
                .bind(&change.model_id)
                .fetch_one(&mut *tx.tx)
                .await?;
            let before = model(&row)?;
            sqlx::query("UPDATE models SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(change.to.as_str())
                .bind(ctx.at)
                .bind(&change.model_id)
                .execute(&mut *tx.tx)
                .await?;
            sqlx::query(
                "INSERT INTO model_transitions (id, model_id, from_status, to_status, actor, at, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(ids::new_sortable_id(ids::EVENT, ctx.at))
            .bind(&change.model_id)
            .bind(change.from.as_str())
            .bind(change.to.as_str())
            .bind(&ctx.actor)
            .bind(ctx.at)
            .bind(&change.reason)
            .execute(&mut *tx.tx)
            .await?;
            let mut after = before.clone();
            after.status = change.to.as_str().to_string();
            after.updated_at = ctx.at;
            let mut after_doc = doc(&after);
            after_doc["reason"] = serde_json::Value::String(change.reason.clone());
            record(
                &mut tx.tx,
                ctx,
                Change {
                    project_id: Some(&after.project_id),
                    action: "model.transition",
                    resource_type: "model",
                    resource_id: &after.id,
                    before: Some(doc(&before)),
                    after: Some(after_doc),
                },
            )
            .await?;
            if after.id == model_id {
                result = after;
            }
        }
        tx.commit().await?;
        Ok(result)
    }

    pub async fn list_model_transitions(&self, model_id: &str) -> Result<Vec<ModelTransition>> {
        let rows =
            sqlx::query("SELECT * FROM model_transitions WHERE model_id = $1 ORDER BY at, id")
                .bind(model_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(transition).collect()
    }

    pub async fn list_promotions(&self, model_id: &str) -> Result<Vec<Promotion>> {
        let rows =
            sqlx::query("SELECT * FROM promotions WHERE model_id = $1 ORDER BY started_at, id")
                .bind(model_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(promotion).collect()
    }
}
