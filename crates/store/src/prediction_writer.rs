//! The prediction log's writer: the one write path that runs at the rate of requests.
//!
//! On SQLite it goes around sqlx. sqlx's SQLite driver hands every statement to a worker thread
//! and, through the `Any` driver, copies each bound value twice; measured on a batch of
//! predictions that was about 2 µs of the 5.5 µs each logged row cost. Here a single-row INSERT,
//! prepared once, runs on the calling thread for every row of the batch inside one transaction,
//! on a connection of its own to the same database file, taking the same write turns as every
//! other writer of this store; the features are stored as the compact bytes the request path made
//! ([`features_codec`](crate::features_codec)), which saved another 0.9 µs a row against JSON text.
//! On PostgreSQL (and for an in-memory SQLite database, which a second connection cannot see) it is
//! the store's multi-row INSERT, with the features turned into JSON text.

use crate::deployments::PREDICTION_COLUMNS;
use crate::features_codec;
use crate::{Error, PredictionRecord, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::path::PathBuf;

/// Writes batches of logged predictions; see the module documentation.
pub struct PredictionWriter {
    store: Store,
    sqlite: Option<rusqlite::Connection>,
}

impl Store {
    /// The prediction log's writer for this database. On SQLite its statements run on the thread
    /// that calls [`PredictionWriter::insert`], so call it from a thread that may block (the log
    /// writer has one of its own). Should its connection fail to open, it writes through the
    /// store's pool instead.
    pub fn prediction_writer(&self) -> PredictionWriter {
        let sqlite = match sqlite_file(&self.url) {
            Some(path) if self.dialect == crate::Dialect::Sqlite => match open_writer(&path) {
                Ok(conn) => Some(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "the prediction log writes through the shared pool");
                    None
                }
            },
            _ => None,
        };
        PredictionWriter {
            store: self.clone(),
            sqlite,
        }
    }
}

impl PredictionWriter {
    /// Appends a batch of predictions in one transaction. A request id already logged for the same
    /// role is left as it was, so a batch can be retried after a failure.
    pub async fn insert(&mut self, batch: &[PredictionRecord]) -> Result<()> {
        let Some(conn) = self.sqlite.as_mut() else {
            return self.store.insert_predictions(batch).await;
        };
        if batch.is_empty() {
            return Ok(());
        }
        let _turn = self.store.write_lock.lock().await;
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO predictions ({PREDICTION_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                 ON CONFLICT (request_id, role) DO NOTHING"
            ))?;
            for p in batch {
                insert.execute(rusqlite::params![
                    p.request_id,
                    p.role,
                    p.deployment_id,
                    p.model_id,
                    p.variant,
                    p.at,
                    p.latency_us,
                    p.is_error as i64,
                    p.entity_id,
                    p.features,
                    p.output,
                    p.predicted,
                    p.score,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn open_writer(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // The same settings as the pool's connections (journal_mode=WAL belongs to the database file
    // and was set when the pool first opened it).
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456;",
    )?;
    Ok(conn)
}

/// The `features` of a logged prediction as JSON: written by this writer in the compact form
/// ([`features_codec`]), or as JSON text (PostgreSQL).
pub(crate) fn features_col(row: &AnyRow) -> Result<serde_json::Value> {
    const COL: &str = "features_json";
    let corrupt = || Error::Corrupt(format!("{COL}: not a row of features"));
    match row.try_get::<String, _>(COL) {
        Ok(text) => serde_json::from_str(&text).map_err(|_| corrupt()),
        Err(_) => features_codec::decode(&row.try_get::<Vec<u8>, _>(COL)?).ok_or_else(corrupt),
    }
}

/// The database file of a `sqlite:` URL, or `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|q| q == "mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_of_urls() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/coreplex/coreplex.db"),
            Some(PathBuf::from("/var/lib/coreplex/coreplex.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://data/c.db?mode=rwc"),
            Some(PathBuf::from("data/c.db"))
        );
        assert_eq!(sqlite_file("sqlite:c.db"), Some(PathBuf::from("c.db")));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
        assert_eq!(sqlite_file("postgres://localhost/c"), None);
    }
}
