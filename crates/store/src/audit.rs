//! The append-only audit log. Entries are only ever inserted, inside the transaction of the change
//! they describe; the database itself rejects updates and deletes (see the migrations' triggers).

use crate::{json_col, AuditEntry, AuditFilter, Ctx, Page, Result, Store};
use coreplex_domain::ids;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// What a change was, for its audit entry.
pub(crate) struct Change<'a> {
    pub project_id: Option<&'a str>,
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

pub(crate) async fn record(conn: &mut AnyConnection, ctx: &Ctx, change: Change<'_>) -> Result<()> {
    let before = change.before.map(|v| v.to_string());
    let after = change.after.map(|v| v.to_string());
    sqlx::query(
        "INSERT INTO audit_log (id, org_id, project_id, actor, at, action, resource_type, resource_id, \
         before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(ids::new_id(ids::EVENT))
    .bind(&ctx.org_id)
    .bind(change.project_id)
    .bind(&ctx.actor)
    .bind(ctx.at)
    .bind(change.action)
    .bind(change.resource_type)
    .bind(change.resource_id)
    .bind(before)
    .bind(after)
    .execute(conn)
    .await?;
    Ok(())
}

fn entry(row: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        project_id: row.try_get("project_id")?,
        actor: row.try_get("actor")?,
        at: row.try_get("at")?,
        action: row.try_get("action")?,
        resource_type: row.try_get("resource_type")?,
        resource_id: row.try_get("resource_id")?,
        before: json_col(row, "before_json")?,
        after: json_col(row, "after_json")?,
    })
}

impl Store {
    /// Audit entries of an organization, oldest first, filtered. The page token is the last `seq` seen.
    pub async fn list_audit(
        &self,
        org_id: &str,
        f: &AuditFilter,
        limit: i64,
        after_seq: i64,
    ) -> Result<Page<AuditEntry>> {
        let mut sql = String::from("SELECT * FROM audit_log WHERE org_id = $1 AND seq > $2");
        let mut binds: Vec<Bind> = vec![Bind::S(org_id.to_string()), Bind::I(after_seq)];
        let mut add = |col: &str, op: &str, v: Bind| {
            binds.push(v);
            sql.push_str(&format!(" AND {col} {op} ${}", binds.len()));
        };
        if let Some(v) = &f.project_id {
            add("project_id", "=", Bind::S(v.clone()));
        }
        if let Some(v) = &f.resource_id {
            add("resource_id", "=", Bind::S(v.clone()));
        }
        if let Some(v) = &f.resource_type {
            add("resource_type", "=", Bind::S(v.clone()));
        }
        if let Some(v) = &f.actor {
            add("actor", "=", Bind::S(v.clone()));
        }
        if let Some(v) = &f.action {
            add("action", "=", Bind::S(v.clone()));
        }
        if let Some(v) = f.since {
            add("at", ">=", Bind::I(v));
        }
        if let Some(v) = f.until {
            add("at", "<", Bind::I(v));
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT {}", limit + 1));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bind::S(s) => q.bind(s),
                Bind::I(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut items = rows.iter().map(entry).collect::<Result<Vec<_>>>()?;
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|e| format!("s{}", e.seq))
        } else {
            None
        };
        Ok(Page {
            items,
            next_page_token: next,
        })
    }
}

enum Bind {
    S(String),
    I(i64),
}
