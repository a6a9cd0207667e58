//! The durable job queue. Workers claim a job with a lease, renew it with heartbeats that also carry
//! progress and pick up cancellation, and finish it; a job whose worker stopped renewing is put back in
//! the queue (or failed when its attempts are used up) by [`Store::recover_expired_jobs`]. Every claim
//! is recorded in `job_attempts`, so "ran exactly once" can be checked.

use crate::audit::{record, Change};
use crate::{json_col, Ctx, Error, Job, JobAttempt, NewJob, Page, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

fn job(row: &AnyRow) -> Result<Job> {
    Ok(Job {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        project_id: row.try_get("project_id")?,
        kind: row.try_get("kind")?,
        payload: json_col(row, "payload_json")?,
        status: row.try_get("status")?,
        progress: row.try_get("progress")?,
        message: row.try_get("message")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_after: row.try_get("run_after")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        result: json_col(row, "result_json")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn doc(j: &Job) -> serde_json::Value {
    serde_json::json!({"id": j.id, "kind": j.kind, "status": j.status, "payload": j.payload, "error": j.error})
}

/// What a heartbeat learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// Keep going.
    Continue,
    /// Someone asked to cancel: stop and call [`Store::finish_job_cancelled`].
    CancelRequested,
    /// The lease was lost (it expired and the job was handed on): stop without writing anything.
    LeaseLost,
}

impl Store {
    pub async fn enqueue_job(&self, ctx: &Ctx, j: &NewJob) -> Result<Job> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO jobs (id, org_id, project_id, kind, payload_json, status, max_attempts, run_after, \
             created_at, created_by, updated_at) VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $8)",
        )
        .bind(&j.id)
        .bind(&ctx.org_id)
        .bind(&j.project_id)
        .bind(&j.kind)
        .bind(j.payload.to_string())
        .bind(j.max_attempts)
        .bind(j.run_after)
        .bind(ctx.at)
        .bind(&ctx.actor)
        .execute(&mut *tx.tx)
        .await?;
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(&j.id)
            .fetch_one(&mut *tx.tx)
            .await?;
        let created = job(&row)?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&j.project_id),
                action: "job.create",
                resource_type: "job",
                resource_id: &j.id,
                before: None,
                after: Some(doc(&created)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn get_job(&self, org_id: &str, id: &str) -> Result<Option<Job>> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(job).transpose()
    }

    pub async fn get_job_any(&self, id: &str) -> Result<Option<Job>> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .next();
        row.as_ref().map(job).transpose()
    }

    pub async fn list_jobs(&self, project_id: &str, limit: i64, offset: i64) -> Result<Page<Job>> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM jobs WHERE project_id = $1 ORDER BY created_at DESC, id LIMIT {} OFFSET {offset}",
            limit + 1
        ))
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(job).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, offset, limit))
    }

    /// Claims the oldest due job for `worker` with a lease until `lease_until`. Two workers never get
    /// the same job: PostgreSQL claimers skip rows another claimer has locked; SQLite has one writer.
    pub async fn claim_job(&self, worker: &str, now: i64, lease_until: i64) -> Result<Option<Job>> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE jobs SET status = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, \
             started_at = COALESCE(started_at, $3), updated_at = $3 \
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_after <= $3 \
             ORDER BY run_after, created_at, id LIMIT 1 {}) AND status = 'queued' RETURNING *",
            self.dialect.skip_locked()
        );
        let row = sqlx::query(&sql)
            .bind(worker)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(&mut *tx.tx)
            .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let claimed = job(&row)?;
        sqlx::query("INSERT INTO job_attempts (job_id, attempt, worker, started_at) VALUES ($1, $2, $3, $4)")
            .bind(&claimed.id)
            .bind(claimed.attempts)
            .bind(worker)
            .bind(now)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(Some(claimed))
    }

    /// Renews the lease only (a keep-alive that knows nothing of the job's progress).
    pub async fn renew_job_lease(&self, id: &str, worker: &str, lease_until: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE jobs SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'running'")
            .bind(lease_until)
            .bind(id)
            .bind(worker)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Renews the lease and reports progress.
    pub async fn heartbeat_job(
        &self,
        id: &str,
        worker: &str,
        now: i64,
        lease_until: i64,
        progress: f64,
        message: &str,
    ) -> Result<Heartbeat> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE jobs SET lease_expires_at = $1, progress = $2, message = $3, updated_at = $4 \
             WHERE id = $5 AND lease_owner = $6 AND status = 'running'",
        )
        .bind(lease_until)
        .bind(progress.clamp(0.0, 1.0))
        .bind(message)
        .bind(now)
        .bind(id)
        .bind(worker)
        .execute(&mut *tx.tx)
        .await?;
        let cancel: i64 = sqlx::query("SELECT cancel_requested FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx.tx)
            .await?
            .try_get("cancel_requested")?;
        tx.commit().await?;
        Ok(if r.rows_affected() == 0 {
            Heartbeat::LeaseLost
        } else if cancel != 0 {
            Heartbeat::CancelRequested
        } else {
            Heartbeat::Continue
        })
    }

    async fn end_job(
        &self,
        id: &str,
        worker: &str,
        now: i64,
        set: &str,
        outcome: &str,
        binds: (Option<String>, Option<String>, Option<i64>),
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let attempt: Option<i64> = sqlx::query(
            "SELECT attempts FROM jobs WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(worker)
        .fetch_optional(&mut *tx.tx)
        .await?
        .map(|r| r.get("attempts"));
        let Some(attempt) = attempt else {
            tx.commit().await?;
            return Ok(false);
        };
        let sql = format!(
            "UPDATE jobs SET {set}, lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
             WHERE id = $2 AND lease_owner = $3 AND status = 'running'"
        );
        sqlx::query(&sql)
            .bind(now)
            .bind(id)
            .bind(worker)
            .bind(binds.0)
            .bind(binds.1)
            .bind(binds.2)
            .execute(&mut *tx.tx)
            .await?;
        sqlx::query("UPDATE job_attempts SET ended_at = $1, outcome = $2 WHERE job_id = $3 AND attempt = $4")
            .bind(now)
            .bind(outcome)
            .bind(id)
            .bind(attempt)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a job succeeded with its result. Returns false when the worker no longer held the lease.
    pub async fn finish_job_succeeded(
        &self,
        id: &str,
        worker: &str,
        now: i64,
        result: &serde_json::Value,
    ) -> Result<bool> {
        self.end_job(
            id,
            worker,
            now,
            "status = 'succeeded', progress = 1, finished_at = $1, result_json = $4, error = $5, run_after = COALESCE($6, run_after)",
            "succeeded",
            (Some(result.to_string()), None, None),
        )
        .await
    }

    /// Records a failed attempt: queued again at `retry_at`, or failed for good when `retry_at` is None.
    pub async fn finish_job_failed(
        &self,
        id: &str,
        worker: &str,
        now: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<bool> {
        match retry_at {
            Some(at) => {
                self.end_job(
                    id,
                    worker,
                    now,
                    "status = 'queued', result_json = $4, error = $5, run_after = $6",
                    "retry",
                    (None, Some(error.to_string()), Some(at)),
                )
                .await
            }
            None => {
                self.end_job(
                    id,
                    worker,
                    now,
                    "status = 'failed', finished_at = $1, result_json = $4, error = $5, run_after = COALESCE($6, run_after)",
                    "failed",
                    (None, Some(error.to_string()), None),
                )
                .await
            }
        }
    }

    pub async fn finish_job_cancelled(&self, id: &str, worker: &str, now: i64) -> Result<bool> {
        self.end_job(
            id,
            worker,
            now,
            "status = 'cancelled', finished_at = $1, result_json = $4, error = $5, run_after = COALESCE($6, run_after)",
            "cancelled",
            (None, Some("cancelled on request".to_string()), None),
        )
        .await
    }

    /// Asks a job to stop: a queued job is cancelled at once, a running one at its next heartbeat.
    pub async fn cancel_job(&self, ctx: &Ctx, id: &str) -> Result<Job> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(&ctx.org_id)
            .fetch_optional(&mut *tx.tx)
            .await?
            .ok_or_else(|| Error::NotFound(format!("job `{id}`")))?;
        let before = job(&row)?;
        match before.status.as_str() {
            "queued" => {
                sqlx::query(
                    "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_at = $1, updated_at = $1, \
                     error = 'cancelled on request' WHERE id = $2",
                )
                .bind(ctx.at)
                .bind(id)
                .execute(&mut *tx.tx)
                .await?;
            }
            "running" => {
                sqlx::query("UPDATE jobs SET cancel_requested = 1, updated_at = $1 WHERE id = $2")
                    .bind(ctx.at)
                    .bind(id)
                    .execute(&mut *tx.tx)
                    .await?;
            }
            s => {
                return Err(Error::Conflict(format!(
                    "job `{id}` is already {s}; only queued or running jobs can be cancelled"
                )))
            }
        }
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx.tx)
            .await?;
        let after = job(&row)?;
        record(
            &mut tx.tx,
            ctx,
            Change {
                project_id: Some(&after.project_id),
                action: "job.cancel",
                resource_type: "job",
                resource_id: id,
                before: Some(doc(&before)),
                after: Some(doc(&after)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Puts back jobs whose lease expired (their worker died): queued again while attempts remain,
    /// failed otherwise. Returns how many jobs were recovered.
    pub async fn recover_expired_jobs(&self, now: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE job_attempts SET ended_at = $1, outcome = 'lost' WHERE ended_at IS NULL AND job_id IN \
             (SELECT id FROM jobs WHERE status = 'running' AND lease_expires_at < $1)",
        )
        .bind(now)
        .execute(&mut *tx.tx)
        .await?;
        let r = sqlx::query(
            "UPDATE jobs SET \
               status = CASE WHEN attempts >= max_attempts OR cancel_requested = 1 THEN \
                 (CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'failed' END) ELSE 'queued' END, \
               error = CASE WHEN cancel_requested = 1 THEN 'cancelled on request' \
                 ELSE 'the worker running this job stopped responding' END, \
               finished_at = CASE WHEN attempts >= max_attempts OR cancel_requested = 1 THEN $1 ELSE NULL END, \
               lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
             WHERE status = 'running' AND lease_expires_at < $1",
        )
        .bind(now)
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    pub async fn list_job_attempts(&self, job_id: &str) -> Result<Vec<JobAttempt>> {
        let rows = sqlx::query("SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY attempt")
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(JobAttempt {
                    job_id: r.try_get("job_id")?,
                    attempt: r.try_get("attempt")?,
                    worker: r.try_get("worker")?,
                    started_at: r.try_get("started_at")?,
                    ended_at: r.try_get("ended_at")?,
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect()
    }
}
