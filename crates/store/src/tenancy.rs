//! Organizations, projects, members and API keys.

use crate::audit::{record, Change};
use crate::{ApiKey, Ctx, Error, Member, NewApiKey, Org, Page, Project, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Turns a unique-constraint violation into a [`Error::Conflict`] with `message`.
pub(crate) fn unique_to_conflict(e: sqlx::Error, message: impl FnOnce() -> String) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(message()),
        _ => Error::Database(e),
    }
}

fn project(row: &AnyRow) -> Result<Project> {
    Ok(Project {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn member(row: &AnyRow) -> Result<Member> {
    Ok(Member {
        project_id: row.try_get("project_id")?,
        subject: row.try_get("subject")?,
        role: row.try_get("role")?,
        created_at: row.try_get("created_at")?,
    })
}

fn api_key(row: &AnyRow) -> Result<ApiKey> {
    let scope: String = row.try_get("scope_json")?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        subject: row.try_get("subject")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        org_admin: row.try_get::<i64, _>("org_admin")? != 0,
        instance_admin: row.try_get::<i64, _>("instance_admin")? != 0,
        scope: serde_json::from_str(&scope)
            .map_err(|e| Error::Corrupt(format!("scope_json: {e}")))?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

/// What the audit log keeps of a key: never its hash.
fn key_doc(k: &ApiKey) -> serde_json::Value {
    serde_json::json!({
        "id": k.id, "subject": k.subject, "name": k.name, "prefix": k.prefix,
        "org_admin": k.org_admin, "scope": k.scope, "revoked_at": k.revoked_at,
    })
}

impl Store {
    pub async fn create_org(&self, ctx: &Ctx, org: &Org) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&org.id)
            .bind(&org.name)
            .bind(org.created_at)
            .execute(&mut *tx.tx)
            .await
            .map_err(|e| {
                unique_to_conflict(e, || format!("an organization named `{}` exists", org.name))
            })?;
        let ctx = Ctx {
            org_id: org.id.clone(),
            ..ctx.clone()
        };
        record(
            &mut tx.tx,
            &ctx,
            Change {
                project_id: None,
                action: "org.create",
                resource_type: "org",
                resource_id: &org.id,
                before: None,
                after: Some(serde_json::to_value(org).unwrap_or_default()),
            },
        )
        .await?;
        tx.commit().await
    }

    pub async fn get_org(&self, id: &str) -> Result<Option<Org>> {
        let row = sqlx::query("SELECT id, name, created_at FROM orgs WHERE id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.map(|r| {
            Ok(Org {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    pub async fn create_project(
        &self,
        ctx: &Ctx,
        p: &Project,
        creator_admin: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO projects (id, org_id, name, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.id)
        .bind(&p.org_id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(&mut *tx.tx)
        .await
        .map_err(|e| {
            unique_to_conflict(e, || {
                format!("a project named `{}` exists in this organization", p.name)
            })
        })?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&p.id),
                action: "project.create",
                resource_type: "project",
                resource_id: &p.id,
                before: None,
                after: Some(serde_json::to_value(p).unwrap_or_default()),
            },
        )
        .await?;
        if let Some(subject) = creator_admin {
            sqlx::query("INSERT INTO members (project_id, subject, role, created_at) VALUES ($1, $2, 'admin', $3)")
                .bind(&p.id)
                .bind(subject)
                .bind(ctx.at)
                .execute(&mut *tx.tx)
                .await?;
        }
        tx.commit().await
    }

    pub async fn get_project(&self, org_id: &str, id: &str) -> Result<Option<Project>> {
        let row = sqlx::query("SELECT * FROM projects WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(project).transpose()
    }

    /// Projects of an organization; with `member` set, only those the subject is a member of.
    pub async fn list_projects(
        &self,
        org_id: &str,
        member: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Page<Project>> {
        let rows = match member {
            None => {
                sqlx::query(&format!(
                    "SELECT * FROM projects WHERE org_id = $1 ORDER BY created_at, id LIMIT {} OFFSET {offset}",
                    limit + 1
                ))
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?
            }
            Some(subject) => {
                sqlx::query(&format!(
                    "SELECT p.* FROM projects p JOIN members m ON m.project_id = p.id \
                     WHERE p.org_id = $1 AND m.subject = $2 ORDER BY p.created_at, p.id LIMIT {} OFFSET {offset}",
                    limit + 1
                ))
                .bind(org_id)
                .bind(subject)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let items = rows.iter().map(project).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, offset, limit))
    }

    pub async fn update_project(
        &self,
        ctx: &Ctx,
        before: &Project,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Project> {
        let mut after = before.clone();
        if let Some(n) = name {
            after.name = n.to_string();
        }
        if let Some(d) = description {
            after.description = d.to_string();
        }
        after.updated_at = ctx.at;
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE projects SET name = $1, description = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&after.name)
        .bind(&after.description)
        .bind(after.updated_at)
        .bind(&after.id)
        .execute(&mut *tx.tx)
        .await
        .map_err(|e| {
            unique_to_conflict(e, || format!("a project named `{}` exists", after.name))
        })?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&after.id),
                action: "project.update",
                resource_type: "project",
                resource_id: &after.id,
                before: Some(serde_json::to_value(before).unwrap_or_default()),
                after: Some(serde_json::to_value(&after).unwrap_or_default()),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// The organization a project belongs to.
    pub async fn org_of_project(&self, project_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT org_id FROM projects WHERE id = $1")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        Ok(row.map(|r| r.get("org_id")))
    }

    pub async fn member_role(&self, project_id: &str, subject: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT role FROM members WHERE project_id = $1 AND subject = $2")
            .bind(project_id)
            .bind(subject)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        Ok(row.map(|r| r.get("role")))
    }

    pub async fn list_members(&self, project_id: &str) -> Result<Vec<Member>> {
        let rows = sqlx::query("SELECT * FROM members WHERE project_id = $1 ORDER BY subject")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(member).collect()
    }

    /// Adds a member or changes their role.
    pub async fn put_member(
        &self,
        ctx: &Ctx,
        project_id: &str,
        subject: &str,
        role: &str,
    ) -> Result<Member> {
        let before = self.member_role(project_id, subject).await?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO members (project_id, subject, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (project_id, subject) DO UPDATE SET role = excluded.role",
        )
        .bind(project_id)
        .bind(subject)
        .bind(role)
        .bind(ctx.at)
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(project_id),
                action: if before.is_some() {
                    "member.update"
                } else {
                    "member.add"
                },
                resource_type: "member",
                resource_id: subject,
                before: before.map(|r| serde_json::json!({"subject": subject, "role": r})),
                after: Some(serde_json::json!({"subject": subject, "role": role})),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Member {
            project_id: project_id.into(),
            subject: subject.into(),
            role: role.into(),
            created_at: ctx.at,
        })
    }

    pub async fn remove_member(&self, ctx: &Ctx, project_id: &str, subject: &str) -> Result<()> {
        let before = self
            .member_role(project_id, subject)
            .await?
            .ok_or_else(|| Error::NotFound(format!("member `{subject}`")))?;
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM members WHERE project_id = $1 AND subject = $2")
            .bind(project_id)
            .bind(subject)
            .execute(&mut *tx.tx)
            .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(project_id),
                action: "member.remove",
                resource_type: "member",
                resource_id: subject,
                before: Some(serde_json::json!({"subject": subject, "role": before})),
                after: None,
            },
        )
        .await?;
        tx.commit().await
    }

    pub async fn create_api_key(&self, ctx: &Ctx, k: &NewApiKey) -> Result<ApiKey> {
        let key = ApiKey {
            id: k.id.clone(),
            org_id: k.org_id.clone(),
            subject: k.subject.clone(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            org_admin: k.org_admin,
            instance_admin: k.instance_admin,
            scope: k.scope.clone(),
            created_at: ctx.at,
            created_by: ctx.actor.clone(),
            revoked_at: None,
            last_used_at: None,
        };
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, org_id, subject, name, prefix, hash, org_admin, instance_admin, \
             scope_json, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&k.id)
        .bind(&k.org_id)
        .bind(&k.subject)
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(&k.hash)
        .bind(k.org_admin as i64)
        .bind(k.instance_admin as i64)
        .bind(serde_json::to_string(&k.scope).unwrap_or_default())
        .bind(ctx.at)
        .bind(&ctx.actor)
        .execute(&mut *tx.tx)
        .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: None,
                action: "key.issue",
                resource_type: "api_key",
                resource_id: &k.id,
                before: None,
                after: Some(key_doc(&key)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// The live (not revoked) key whose secret hashes to `hash`.
    pub async fn find_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE hash = $1 AND revoked_at IS NULL")
            .bind(hash)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(api_key).transpose()
    }

    pub async fn get_api_key(&self, org_id: &str, id: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(api_key).transpose()
    }

    pub async fn list_api_keys(&self, org_id: &str, subject: Option<&str>) -> Result<Vec<ApiKey>> {
        let rows = match subject {
            None => {
                sqlx::query("SELECT * FROM api_keys WHERE org_id = $1 ORDER BY created_at, id")
                    .bind(org_id)
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(s) => sqlx::query(
                "SELECT * FROM api_keys WHERE org_id = $1 AND subject = $2 ORDER BY created_at, id",
            )
            .bind(org_id)
            .bind(s)
            .fetch_all(&self.pool)
            .await?,
        };
        rows.iter().map(api_key).collect()
    }

    pub async fn revoke_api_key(&self, ctx: &Ctx, key: &ApiKey) -> Result<ApiKey> {
        let mut after = key.clone();
        after.revoked_at = Some(ctx.at);
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(ctx.at)
            .bind(&key.id)
            .execute(&mut *tx.tx)
            .await?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: None,
                action: "key.revoke",
                resource_type: "api_key",
                resource_id: &key.id,
                before: Some(key_doc(key)),
                after: Some(key_doc(&after)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }
}
