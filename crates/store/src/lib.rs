//! Persistence for CorePlexML: one [`Store`] whose methods are the only place that speaks SQL, over
//! SQLite (the embedded default) or PostgreSQL (for several servers on one database), plus the
//! artifact store for dataset and model files.
//!
//! Both databases run the same statements through sqlx's `Any` driver; what differs between them is
//! kept in [`Dialect`] and in each backend's own migrations folder. One conformance suite
//! (`tests/conformance.rs`) runs every case against both.
//!
//! Single-row reads use `fetch_all(..).into_iter().next()` rather than `fetch_optional`: a SQLite
//! statement that is not stepped to its end keeps its connection's read snapshot open, and in WAL mode
//! that pooled connection would later answer with stale rows.
//!
//! Architecture invariant: no business rules here. The lifecycle, roles and retry rules live in
//! `coreplex-domain`; the store carries out what the domain decided, and writes the audit entry for a
//! change in the same transaction as the change.

mod ab_tests;
pub mod artifacts;
mod audit;
mod datasets;
mod deployments;
mod experiments;
pub mod features_codec;
pub mod jobs;
mod models;
mod monitoring;
mod prediction_writer;
mod records;
mod retraining;
mod tenancy;

#[allow(unused_imports)]
pub use ab_tests::*;
pub use artifacts::ArtifactStore;
pub use deployments::*;
pub use experiments::*;
pub use monitoring::*;
pub use prediction_writer::PredictionWriter;
pub use records::*;
pub use retraining::*;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored document is malformed: {0}")]
    Corrupt(String),
    #[error("artifact store: {0}")]
    Artifact(String),
    #[error("unsupported database url `{0}`: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which database a [`Store`] talks to, and the few statements that differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Row-locking suffix for a claim subquery: PostgreSQL lets concurrent claimers skip each
    /// other's rows; SQLite has one writer at a time, so the single UPDATE statement is already atomic.
    /// The bind placeholder for parameter `n` (1-based). SQLite gets anonymous `?`: sqlx resolves a
    /// named `$n` by scanning every parameter name, which makes statements with thousands of
    /// parameters (the prediction log's batches) quadratically slow.
    pub(crate) fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database. Cheap to clone.
/// The database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// Where the database is, for [`Store::with_own_pool`]; may hold a password.
    url: Arc<str>,
    /// SQLite allows one writer: writes queue here instead of failing with "database is locked".
    write_lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect)
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`) and applies pending migrations.
    #[tracing::instrument(skip_all)]
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(Error::UnsupportedUrl(redact_url(url)));
        };
        let pool = open_pool(url, dialect, None).await?;
        match dialect {
            Dialect::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Dialect::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store {
            pool,
            dialect,
            url: url.into(),
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Another handle to the same database with a pool of its own of at most `max_connections`,
    /// sharing this one's write turns. A writer on a thread of its own uses it so that its
    /// connections (and, on SQLite, their worker threads) are created on that thread.
    pub async fn with_own_pool(&self, max_connections: u32) -> Result<Store> {
        Ok(Store {
            pool: open_pool(&self.url, self.dialect, Some(max_connections)).await?,
            dialect: self.dialect,
            url: self.url.clone(),
            write_lock: self.write_lock.clone(),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Starts a write transaction. On SQLite, writers take turns through `write_lock` first.
    async fn begin(&self) -> Result<WriteTx<'_>> {
        let guard = match self.dialect {
            Dialect::Sqlite => Some(self.write_lock.lock().await),
            Dialect::Postgres => None,
        };
        let tx = self.pool.begin().await?;
        Ok(WriteTx { tx, _guard: guard })
    }

    /// Runs one raw statement. For tests that check what the database itself refuses (e.g. edits of
    /// the audit log); the product never calls it.
    #[doc(hidden)]
    pub async fn debug_execute(&self, sql: &str) -> Result<u64> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(sql).execute(&mut *tx.tx).await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    pub async fn get_setting(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        Ok(row.map(|r| r.get::<String, _>("value")))
    }

    /// Sets `name` to `value` only if it has no value yet. Returns whether this call set it.
    pub async fn set_setting_once(&self, name: &str, value: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&mut *tx.tx)
        .await?;
        tx.tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Takes or renews the lease named `name` for `owner` until `until`; returns whether `owner` holds
    /// it. Periodic controllers use this so that one server runs each tick.
    pub async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO controller_leases (name, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE controller_leases.owner = excluded.owner OR controller_leases.expires_at < $4",
        )
        .bind(name)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&mut *tx.tx)
        .await?;
        let holder: String = sqlx::query("SELECT owner FROM controller_leases WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx.tx)
            .await?
            .get("owner");
        tx.tx.commit().await?;
        Ok(holder == owner)
    }

    /// Claims `Idempotency-Key` `idem_key` of API key `key_id` for a request with `fingerprint`:
    /// the first claim wins and later ones see the stored response, that the request is still being
    /// handled, or that the key was used for a different request. A claim older than `stale_before`
    /// that never finished (its server died) is taken over.
    pub async fn claim_idempotency_key(
        &self,
        key_id: &str,
        idem_key: &str,
        path: &str,
        fingerprint: &str,
        now: i64,
        stale_before: i64,
    ) -> Result<IdempotencyClaim> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT path, status, body, fingerprint, created_at FROM idempotency_keys WHERE key_id = $1 AND idem_key = $2",
        )
        .bind(key_id)
        .bind(idem_key)
        .fetch_all(&mut *tx.tx)
        .await?
        .into_iter()
        .next();
        let claim = match row {
            Some(r) => {
                let status: i64 = r.try_get("status")?;
                let created: i64 = r.try_get("created_at")?;
                let fp: String = r.try_get("fingerprint")?;
                let saved_path: String = r.try_get("path")?;
                if saved_path != path || fp != fingerprint {
                    IdempotencyClaim::Mismatch { path: saved_path }
                } else if status == 0 && created >= stale_before {
                    IdempotencyClaim::InProgress
                } else if status == 0 {
                    sqlx::query("UPDATE idempotency_keys SET created_at = $1 WHERE key_id = $2 AND idem_key = $3")
                        .bind(now)
                        .bind(key_id)
                        .bind(idem_key)
                        .execute(&mut *tx.tx)
                        .await?;
                    IdempotencyClaim::Claimed
                } else {
                    IdempotencyClaim::Replay(StoredResponse {
                        method: "POST".into(),
                        path: saved_path,
                        status: status as u16,
                        body: r.try_get("body")?,
                    })
                }
            }
            None => {
                sqlx::query(
                    "INSERT INTO idempotency_keys (key_id, idem_key, method, path, status, body, fingerprint, created_at) \
                     VALUES ($1, $2, 'POST', $3, 0, '', $4, $5)",
                )
                .bind(key_id)
                .bind(idem_key)
                .bind(path)
                .bind(fingerprint)
                .bind(now)
                .execute(&mut *tx.tx)
                .await?;
                IdempotencyClaim::Claimed
            }
        };
        tx.commit().await?;
        Ok(claim)
    }

    /// Forgets finished `Idempotency-Key` records made before `before`: their stored responses (which
    /// may hold a secret shown once, such as a new API key) are kept only as long as a client might
    /// retry. Returns how many were removed.
    pub async fn prune_idempotency_keys(&self, before: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("DELETE FROM idempotency_keys WHERE status <> 0 AND created_at < $1")
            .bind(before)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    /// Stores the response of a claimed key (`Some`), or releases the claim so a retry can run again
    /// (`None`, after a server error).
    pub async fn finish_idempotency_key(
        &self,
        key_id: &str,
        idem_key: &str,
        resp: Option<&StoredResponse>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        match resp {
            Some(r) => {
                sqlx::query("UPDATE idempotency_keys SET status = $1, body = $2 WHERE key_id = $3 AND idem_key = $4")
                    .bind(r.status as i64)
                    .bind(&r.body)
                    .bind(key_id)
                    .bind(idem_key)
                    .execute(&mut *tx.tx)
                    .await?;
            }
            None => {
                sqlx::query("DELETE FROM idempotency_keys WHERE key_id = $1 AND idem_key = $2 AND status = 0")
                    .bind(key_id)
                    .bind(idem_key)
                    .execute(&mut *tx.tx)
                    .await?;
            }
        }
        tx.commit().await
    }
}

struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _guard: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// What a claim of an `Idempotency-Key` found.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyClaim {
    /// First use: handle the request, then store its response.
    Claimed,
    /// Handled before: answer with this.
    Replay(StoredResponse),
    /// The first request with this key is still being handled.
    InProgress,
    /// The key was used for another request (path or body differ).
    Mismatch { path: String },
}

/// Opens a connection pool (`max_connections` defaults per dialect).
async fn open_pool(url: &str, dialect: Dialect, max_connections: Option<u32>) -> Result<AnyPool> {
    let pool = match dialect {
        Dialect::Sqlite => {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            AnyPoolOptions::new()
                .max_connections(max_connections.unwrap_or(8))
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        use sqlx::Executor;
                        for pragma in [
                            "PRAGMA journal_mode=WAL",
                            "PRAGMA busy_timeout=10000",
                            "PRAGMA foreign_keys=ON",
                            "PRAGMA synchronous=NORMAL",
                            // The prediction log's indexes outgrow SQLite's default 2 MiB page
                            // cache within minutes of traffic; re-reading evicted pages was a
                            // large share of the log writer's time. The cache is allocated as
                            // pages are used, so small databases do not pay for it.
                            "PRAGMA cache_size=-65536",
                            "PRAGMA mmap_size=268435456",
                        ] {
                            conn.execute(pragma).await?;
                        }
                        Ok(())
                    })
                })
                .connect(&url)
                .await?
        }
        Dialect::Postgres => {
            AnyPoolOptions::new()
                .max_connections(max_connections.unwrap_or(16))
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?
        }
    };
    Ok(pool)
}

/// Hides the password of a database URL for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}://{}:***{}", &url[..s], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn json_col(row: &AnyRow, col: &str) -> Result<serde_json::Value> {
    let s: Option<String> = row.try_get(col)?;
    match s {
        None => Ok(serde_json::Value::Null),
        Some(s) => serde_json::from_str(&s).map_err(|e| Error::Corrupt(format!("{col}: {e}"))),
    }
}

/// Offset-based page tokens: opaque to clients, a decimal offset inside.
pub fn decode_page_token(token: Option<&str>) -> Option<i64> {
    match token {
        None | Some("") => Some(0),
        Some(t) => t
            .strip_prefix("o")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0),
    }
}

fn next_token(offset: i64, limit: i64, got: usize) -> Option<String> {
    (got as i64 > limit).then(|| format!("o{}", offset + limit))
}

/// A page of results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

impl<T> Page<T> {
    fn from_overfetch(mut items: Vec<T>, offset: i64, limit: i64) -> Page<T> {
        let next_page_token = next_token(offset, limit, items.len());
        items.truncate(limit as usize);
        Page {
            items,
            next_page_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        assert_eq!(decode_page_token(None), Some(0));
        assert_eq!(decode_page_token(Some("o40")), Some(40));
        assert_eq!(decode_page_token(Some("zz")), None);
        assert_eq!(next_token(0, 10, 11), Some("o10".into()));
        assert_eq!(next_token(0, 10, 10), None);
    }
}
