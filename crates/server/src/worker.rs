//! Background work, run once across all servers on a database.
//!
//! Threading model: the job worker is one tokio task per server that claims one job at a time from the
//! durable queue (leases in the database; `FOR UPDATE SKIP LOCKED` on PostgreSQL), runs it — CPU-heavy
//! parts on the blocking pool — and renews its lease while it runs. The scheduler is a second task that
//! calls [`tick`] every second: periodic controllers run there, and a database lease makes sure one
//! server runs each tick. Tests call [`run_next_job`], [`drain_jobs`] and [`tick`] directly, with a
//! manual clock, instead of waiting.

use crate::state::AppState;
use coreplex_domain::job::{next_attempt_at, LEASE_MS};
use coreplex_store::{jobs::Heartbeat, Job};
use std::time::Duration;

/// Why a job stopped early.
#[derive(Debug)]
pub enum JobError {
    /// Someone cancelled it.
    Cancelled,
    /// It failed; `retry` says whether another attempt may succeed.
    Failed { message: String, retry: bool },
}

impl JobError {
    pub fn permanent(message: impl Into<String>) -> Self {
        JobError::Failed {
            message: message.into(),
            retry: false,
        }
    }
    pub fn transient(message: impl std::fmt::Display) -> Self {
        JobError::Failed {
            message: message.to_string(),
            retry: true,
        }
    }
}

/// Handed to a running job: reports progress, renews the lease and tells it when to stop.
#[derive(Clone)]
pub struct JobCtx {
    pub state: AppState,
    pub job: Job,
}

impl JobCtx {
    /// Records progress (0..1) and renews the lease; `Err(Cancelled)` means stop now.
    pub async fn progress(&self, share: f64, message: &str) -> Result<(), JobError> {
        let now = self.state.now();
        match self
            .state
            .store
            .heartbeat_job(
                &self.job.id,
                &self.state.worker_id,
                now,
                now + LEASE_MS,
                share,
                message,
            )
            .await
        {
            Ok(Heartbeat::Continue) => Ok(()),
            Ok(Heartbeat::CancelRequested) | Ok(Heartbeat::LeaseLost) => Err(JobError::Cancelled),
            Err(e) => Err(JobError::transient(e)),
        }
    }

    /// The same from blocking code (run on the blocking pool).
    pub fn progress_blocking(&self, share: f64, message: &str) -> Result<(), JobError> {
        tokio::runtime::Handle::current().block_on(self.progress(share, message))
    }
}

async fn execute(ctx: &JobCtx) -> Result<serde_json::Value, JobError> {
    match ctx.job.kind.as_str() {
        crate::routes::datasets::PROFILE_JOB => crate::routes::datasets::run_profile_job(ctx).await,
        crate::experiments::JOB_KIND => crate::experiments::run_job(ctx).await,
        other => Err(JobError::permanent(format!("unknown job kind `{other}`"))),
    }
}

/// Claims and runs one due job. Returns whether a job was run.
pub async fn run_next_job(state: &AppState) -> coreplex_store::Result<bool> {
    let now = state.now();
    let Some(job) = state
        .store
        .claim_job(&state.worker_id, now, now + LEASE_MS)
        .await?
    else {
        return Ok(false);
    };
    tracing::info!(job = %job.id, kind = %job.kind, attempt = job.attempts, "job started");
    let ctx = JobCtx {
        state: state.clone(),
        job: job.clone(),
    };
    // Keep the lease alive while the job runs, even if it reports no progress for a while.
    let keepalive = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis((LEASE_MS / 3) as u64)).await;
                let now = ctx.state.now();
                let _ = ctx
                    .state
                    .store
                    .renew_job_lease(&ctx.job.id, &ctx.state.worker_id, now + LEASE_MS)
                    .await;
            }
        })
    };
    let outcome = execute(&ctx).await;
    keepalive.abort();
    let now = state.now();
    let w = &state.worker_id;
    match outcome {
        Ok(result) => {
            state
                .store
                .finish_job_succeeded(&job.id, w, now, &result)
                .await?;
            tracing::info!(job = %job.id, "job succeeded");
        }
        Err(JobError::Cancelled) => {
            state.store.finish_job_cancelled(&job.id, w, now).await?;
            tracing::info!(job = %job.id, "job cancelled");
        }
        Err(JobError::Failed { message, retry }) => {
            let retry_at = if retry {
                next_attempt_at(now, job.attempts as u32, job.max_attempts as u32)
            } else {
                None
            };
            state
                .store
                .finish_job_failed(&job.id, w, now, &message, retry_at)
                .await?;
            tracing::warn!(job = %job.id, error = %message, retry = retry_at.is_some(), "job failed");
        }
    }
    Ok(true)
}

/// Runs due jobs until none is left.
pub async fn drain_jobs(state: &AppState) -> coreplex_store::Result<usize> {
    let mut n = 0;
    while run_next_job(state).await? {
        n += 1;
    }
    Ok(n)
}

/// One scheduler tick: periodic controllers, run by one server at a time.
pub async fn tick(state: &AppState) -> coreplex_store::Result<()> {
    let now = state.now();
    if !state
        .store
        .acquire_lease("scheduler", &state.worker_id, now, now + 10_000)
        .await?
    {
        return Ok(());
    }
    let recovered = state.store.recover_expired_jobs(now).await?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "jobs whose worker stopped responding were put back in the queue"
        );
    }
    crate::rollouts::tick(state).await?;
    crate::alerts::evaluate_due(state).await?;
    crate::retraining::tick(state).await?;
    crate::alerts::deliver_due(state).await?;
    let pruned = state
        .store
        .prune_idempotency_keys(now - crate::idempotency::KEEP_MS)
        .await?;
    if pruned > 0 {
        tracing::debug!(pruned, "expired idempotency records removed");
    }
    Ok(())
}

/// Starts the job worker and the scheduler as background tasks; they stop when `shutdown` fires.
pub fn spawn(
    state: AppState,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let worker = {
        let state = state.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                if *shutdown.borrow() {
                    break;
                }
                match run_next_job(&state).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "job worker could not reach the database")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        })
    };
    let shutdown_refresh = shutdown.clone();
    let scheduler = {
        let state = state.clone();
        let mut shutdown = shutdown;
        tokio::spawn(async move {
            loop {
                if *shutdown.borrow() {
                    break;
                }
                if let Err(e) = tick(&state).await {
                    tracing::error!(error = %e, "scheduler tick failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        })
    };
    let refresher = {
        let state = state.clone();
        let mut shutdown = shutdown_refresh;
        tokio::spawn(async move {
            loop {
                if *shutdown.borrow() {
                    break;
                }
                crate::serving::refresh_all(&state).await;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        })
    };
    vec![worker, scheduler, refresher]
}
