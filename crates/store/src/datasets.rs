//! Datasets and their immutable versions.

use crate::audit::{record, Change};
use crate::tenancy::unique_to_conflict;
use crate::{json_col, Ctx, Dataset, DatasetVersion, NewDatasetVersion, Page, Result, Store};
use coreplex_domain::ids;
use sqlx::any::AnyRow;
use sqlx::Row;

fn dataset(row: &AnyRow) -> Result<Dataset> {
    Ok(Dataset {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}

fn version(row: &AnyRow) -> Result<DatasetVersion> {
    Ok(DatasetVersion {
        id: row.try_get("id")?,
        dataset_id: row.try_get("dataset_id")?,
        project_id: row.try_get("project_id")?,
        version: row.try_get("version")?,
        status: row.try_get("status")?,
        artifact_key: row.try_get("artifact_key")?,
        sha256: row.try_get("sha256")?,
        size_bytes: row.try_get("size_bytes")?,
        row_count: row.try_get("row_count")?,
        columns: json_col(row, "columns_json")?,
        profile: json_col(row, "profile_json")?,
        error: row.try_get("error")?,
        source: json_col(row, "source_json")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}

/// What the audit log keeps of a version: not the (large) profile.
fn version_doc(v: &DatasetVersion) -> serde_json::Value {
    serde_json::json!({
        "id": v.id, "dataset_id": v.dataset_id, "version": v.version, "status": v.status,
        "sha256": v.sha256, "size_bytes": v.size_bytes, "row_count": v.row_count, "columns": v.columns,
        "error": v.error,
    })
}

impl Store {
    /// Stores a new version of the dataset `name` in `project_id`, creating the dataset on its first
    /// upload. Version numbers count up from 1 per dataset.
    pub async fn create_dataset_version(
        &self,
        ctx: &Ctx,
        project_id: &str,
        name: &str,
        description: &str,
        v: &NewDatasetVersion,
    ) -> Result<(Dataset, DatasetVersion)> {
        let mut tx = self.begin().await?;
        let existing = sqlx::query("SELECT * FROM datasets WHERE project_id = $1 AND name = $2")
            .bind(project_id)
            .bind(name)
            .fetch_optional(&mut *tx.tx)
            .await?;
        let ds = match existing {
            Some(row) => dataset(&row)?,
            None => {
                let ds = Dataset {
                    id: ids::new_id(ids::DATASET),
                    project_id: project_id.to_string(),
                    name: name.to_string(),
                    description: description.to_string(),
                    created_at: ctx.at,
                    created_by: ctx.actor.clone(),
                };
                sqlx::query(
                    "INSERT INTO datasets (id, project_id, name, description, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&ds.id)
                .bind(&ds.project_id)
                .bind(&ds.name)
                .bind(&ds.description)
                .bind(ds.created_at)
                .bind(&ds.created_by)
                .execute(&mut *tx.tx)
                .await
                .map_err(|e| unique_to_conflict(e, || format!("dataset `{name}` was created concurrently; retry")))?;
                record(
                    &mut tx.tx,
                    ctx,
                    Change {
                        project_id: Some(project_id),
                        action: "dataset.create",
                        resource_type: "dataset",
                        resource_id: &ds.id,
                        before: None,
                        after: Some(serde_json::to_value(&ds).unwrap_or_default()),
                    },
                )
                .await?;
                ds
            }
        };
        let next: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 AS next FROM dataset_versions WHERE dataset_id = $1")
            .bind(&ds.id)
            .fetch_one(&mut *tx.tx)
            .await?
            .try_get("next")?;
        let dv = DatasetVersion {
            id: v.id.clone(),
            dataset_id: ds.id.clone(),
            project_id: project_id.to_string(),
            version: next,
            status: v.status.clone(),
            artifact_key: v.artifact_key.clone(),
            sha256: v.sha256.clone(),
            size_bytes: v.size_bytes,
            row_count: v.row_count,
            columns: v.columns.clone(),
            profile: serde_json::Value::Null,
            error: None,
            source: v.source.clone(),
            created_at: ctx.at,
            created_by: ctx.actor.clone(),
        };
        sqlx::query(
            "INSERT INTO dataset_versions (id, dataset_id, project_id, version, status, artifact_key, sha256, \
             size_bytes, row_count, columns_json, source_json, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&dv.id)
        .bind(&dv.dataset_id)
        .bind(&dv.project_id)
        .bind(dv.version)
        .bind(&dv.status)
        .bind(&dv.artifact_key)
        .bind(&dv.sha256)
        .bind(dv.size_bytes)
        .bind(dv.row_count)
        .bind(dv.columns.to_string())
        .bind(dv.source.to_string())
        .bind(dv.created_at)
        .bind(&dv.created_by)
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(project_id),
                action: "dataset_version.create",
                resource_type: "dataset_version",
                resource_id: &dv.id,
                before: None,
                after: Some(version_doc(&dv)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok((ds, dv))
    }

    pub async fn get_dataset_any(&self, id: &str) -> Result<Option<Dataset>> {
        let row = sqlx::query("SELECT * FROM datasets WHERE id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(dataset).transpose()
    }

    pub async fn get_dataset(&self, org_id: &str, id: &str) -> Result<Option<Dataset>> {
        let row = sqlx::query(
            "SELECT d.* FROM datasets d JOIN projects p ON p.id = d.project_id WHERE d.id = $1 AND p.org_id = $2",
        )
        .bind(id)
        .bind(org_id)
        .fetch_all(&self.pool).await?.into_iter().next();
        row.as_ref().map(dataset).transpose()
    }

    pub async fn list_datasets(
        &self,
        project_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Page<Dataset>> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM datasets WHERE project_id = $1 ORDER BY created_at, id LIMIT {} OFFSET {offset}",
            limit + 1
        ))
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(dataset).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, offset, limit))
    }

    pub async fn list_dataset_versions(&self, dataset_id: &str) -> Result<Vec<DatasetVersion>> {
        let rows =
            sqlx::query("SELECT * FROM dataset_versions WHERE dataset_id = $1 ORDER BY version")
                .bind(dataset_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(version).collect()
    }

    /// A dataset version by id in any organization (for controllers that already know the project).
    pub async fn get_dataset_version_any(&self, id: &str) -> Result<Option<DatasetVersion>> {
        let row = sqlx::query("SELECT * FROM dataset_versions WHERE id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(version).transpose()
    }

    pub async fn get_dataset_version(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<DatasetVersion>> {
        let row = sqlx::query(
            "SELECT v.* FROM dataset_versions v JOIN projects p ON p.id = v.project_id \
             WHERE v.id = $1 AND p.org_id = $2",
        )
        .bind(id)
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .next();
        row.as_ref().map(version).transpose()
    }

    /// Records the outcome of profiling a version: `ready` with its profile, or `failed` with a reason.
    pub async fn finish_dataset_profile(
        &self,
        ctx: &Ctx,
        id: &str,
        status: &str,
        profile: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT * FROM dataset_versions WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx.tx)
            .await?;
        let before = version(&row)?;
        sqlx::query(
            "UPDATE dataset_versions SET status = $1, profile_json = $2, error = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(profile.map(|p| p.to_string()))
        .bind(error)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?;
        let mut after = before.clone();
        after.status = status.to_string();
        after.error = error.map(str::to_string);
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&before.project_id),
                action: "dataset_version.profile",
                resource_type: "dataset_version",
                resource_id: id,
                before: Some(version_doc(&before)),
                after: Some(version_doc(&after)),
            },
        )
        .await?;
        tx.commit().await
    }
}
