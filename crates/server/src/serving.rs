//! The prediction path: the serving table (which loaded model answers which share of a deployment's
//! traffic: a rollout's split, or a running A/B test's), variant choice, the prediction log writer
//! and the shadow mirror.
//!
//! Nothing on the response path writes to the database: predictions go to a bounded queue that a
//! writer task drains in batches; when the queue is full, requests wait (back-pressure) rather than
//! memory growing without bound. Shadow work goes to its own bounded queue and is dropped, and
//! counted, when that queue is full, so it never slows or fails a primary response.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use coreplex_domain::rollout::{bucket, pick, routing, Rollout};
use coreplex_runtime::{LoadOptions, LoadedModel, OutputKind, Prediction};
use coreplex_store::features_codec;
use coreplex_store::{AbAssignment, Deployment, PredictionRecord};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

/// One model answering a share of an endpoint's traffic.
pub struct Variant {
    pub model_id: String,
    /// `baseline`, `canary`, `green`, `shadow`, or `ab:<name>` for an A/B test's variant.
    pub name: String,
    pub weight: f64,
    pub model: Arc<LoadedModel>,
}

/// What the serving path needs to answer a deployment's requests.
pub struct Endpoint {
    pub deployment_id: String,
    pub project_id: String,
    pub revision: i64,
    pub variants: Vec<Variant>,
    pub shadow: Option<Variant>,
    /// The A/B test routing this endpoint's traffic, if one is running.
    pub ab_test_id: Option<String>,
}

impl Endpoint {
    /// Chooses the variant for a request: by the entity's stable bucket when given, else at random.
    /// An A/B test hashes with its own id, so its split is independent of any earlier rollout's.
    pub fn choose(&self, entity_id: Option<&str>) -> &Variant {
        let weights: Vec<f64> = self.variants.iter().map(|v| v.weight).collect();
        let salt = self.ab_test_id.as_deref().unwrap_or(&self.deployment_id);
        let point = match entity_id {
            Some(e) => bucket(&format!("{salt}:{e}")),
            None => rand::random::<f64>() * 100.0,
        };
        &self.variants[pick(point, &weights)]
    }
}

/// Loads (once) the model `model_id` into ONNX Runtime, with the feature names and class labels it
/// was registered with.
pub async fn load_model(state: &AppState, model_id: &str) -> ApiResult<Arc<LoadedModel>> {
    if let Some(m) = state
        .models
        .read()
        .ok()
        .and_then(|m| m.get(model_id).cloned())
    {
        return Ok(m);
    }
    let rec = state
        .store
        .get_model_any(model_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("model {model_id}")))?;
    let bytes = state.artifacts.read(&rec.artifact_key)?;
    let single_wide = rec.input_schema["inputs"]
        .as_array()
        .map(|i| i.len() == 1 && i[0]["width"].as_u64() > Some(1));
    let feature_names: Option<Vec<String>> = if single_wide == Some(true) {
        rec.input_schema["features"].as_array().map(|f| {
            f.iter()
                .filter_map(|x| x["name"].as_str().map(str::to_string))
                .collect()
        })
    } else {
        None
    };
    let class_labels: Option<Vec<String>> = rec.output_schema["classes"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .filter(|c: &Vec<String>| !c.is_empty());
    let opts = LoadOptions {
        feature_names,
        class_labels,
        sessions: 2,
    };
    let model = tokio::task::spawn_blocking(move || LoadedModel::load(&bytes, &opts))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let model = Arc::new(model);
    if let Ok(mut cache) = state.models.write() {
        cache
            .entry(model_id.to_string())
            .or_insert_with(|| model.clone());
    }
    Ok(model)
}

pub fn rollout_of(d: &Deployment) -> Option<Rollout> {
    serde_json::from_value(d.rollout.clone()).ok()
}

/// Builds the serving entry of a deployment, loading its models. A rollout in progress decides the
/// split; otherwise a running A/B test does.
pub async fn build_endpoint(state: &AppState, d: &Deployment) -> ApiResult<Arc<Endpoint>> {
    let rollout = rollout_of(d);
    let r = routing(d.serving_model_id.as_deref(), rollout.as_ref());
    let test = match rollout {
        Some(_) => None,
        None => state.store.running_ab_test(&d.id).await?,
    };
    let split: Vec<(String, String, f64)> = match &test {
        Some(t) => t
            .variants
            .iter()
            .map(|v| {
                (
                    v.model_id.clone(),
                    crate::ab::log_variant(&v.name),
                    v.traffic,
                )
            })
            .collect(),
        None => r
            .variants
            .into_iter()
            .map(|(m, name, w)| (m, name.to_string(), w))
            .collect(),
    };
    let mut variants = Vec::new();
    for (model_id, name, weight) in split {
        let model = load_model(state, &model_id).await?;
        variants.push(Variant {
            model_id,
            name,
            weight,
            model,
        });
    }
    let shadow = match r.shadow {
        Some(model_id) => Some(Variant {
            model: load_model(state, &model_id).await?,
            model_id,
            name: "shadow".into(),
            weight: 0.0,
        }),
        None => None,
    };
    Ok(Arc::new(Endpoint {
        deployment_id: d.id.clone(),
        project_id: d.project_id.clone(),
        revision: d.revision,
        variants,
        shadow,
        ab_test_id: test.map(|t| t.id),
    }))
}

/// Deployments being served by this process, by id. Requests hold an `Arc` to the entry they started
/// with, so replacing an entry never disturbs requests in flight.
#[derive(Default)]
pub struct ServingTable {
    endpoints: RwLock<HashMap<String, Arc<Endpoint>>>,
}

impl ServingTable {
    pub fn get(&self, id: &str) -> Option<Arc<Endpoint>> {
        self.endpoints.read().ok().and_then(|m| m.get(id).cloned())
    }
    pub fn put(&self, e: Arc<Endpoint>) {
        if let Ok(mut m) = self.endpoints.write() {
            let stale = m
                .get(&e.deployment_id)
                .map(|old| old.revision <= e.revision)
                .unwrap_or(true);
            if stale {
                m.insert(e.deployment_id.clone(), e);
            }
        }
    }
    pub fn ids(&self) -> Vec<(String, i64)> {
        self.endpoints
            .read()
            .map(|m| {
                m.values()
                    .map(|e| (e.deployment_id.clone(), e.revision))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The serving entry for `deployment`, built on first use.
pub async fn endpoint(state: &AppState, d: &Deployment) -> ApiResult<Arc<Endpoint>> {
    if let Some(e) = state.serving.get(&d.id) {
        if e.revision >= d.revision {
            return Ok(e);
        }
    }
    let e = build_endpoint(state, d).await?;
    state.serving.put(e.clone());
    Ok(e)
}

/// Rebuilds the serving entry after this server changed a deployment.
pub async fn refresh(state: &AppState, d: &Deployment) -> ApiResult<()> {
    let e = build_endpoint(state, d).await?;
    state.serving.put(e);
    Ok(())
}

/// Picks up deployment changes made by other servers sharing the database.
pub async fn refresh_all(state: &AppState) {
    for (id, revision) in state.serving.ids() {
        if let Ok(Some(d)) = state.store.get_deployment_any(&id).await {
            if d.revision > revision {
                if let Err(e) = refresh(state, &d).await {
                    tracing::warn!(deployment = %id, error = %e.message, "could not refresh a deployment");
                }
            }
        }
    }
}

/// The label, positive-class score and value columns of the log for one prediction.
pub fn log_columns(p: &Prediction, output: &OutputKind) -> (Option<String>, Option<f64>) {
    match (p, output) {
        (Prediction { value: Some(v), .. }, _) => (Some(v.to_string()), None),
        (
            Prediction {
                label,
                probabilities: Some(probs),
                ..
            },
            OutputKind::Classifier { .. },
        ) if probs.len() == 2 => (label.clone(), Some(probs[1].1)),
        (Prediction { label, .. }, _) => (label.clone(), None),
    }
}

enum LogMsg {
    /// A record, and whether its features are folded into the live drift sketches (primary
    /// predictions).
    Record(PredictionRecord, bool),
    /// A request an A/B test routed, for the test's assignment counts.
    Assignment(AbAssignment),
    Flush(oneshot::Sender<()>),
}

/// The prediction log: a bounded queue in front of a batching writer task.
#[derive(Clone)]
pub struct PredictionLog {
    tx: mpsc::Sender<LogMsg>,
    /// Wakes the writer from its linger when somebody waits for a flush.
    urgent: Arc<tokio::sync::Notify>,
    pub written: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
}

const LOG_QUEUE: usize = 100_000;
const LOG_BATCH: usize = 5_000;
/// How long the writer lets a batch gather once a record arrives.
const LOG_LINGER: std::time::Duration = std::time::Duration::from_millis(5);

impl PredictionLog {
    /// Starts the writer; `writer` names this server in the saved drift sketches. It stops once
    /// every handle is dropped and what was queued is written; [`PredictionLog::flush`] waits for
    /// the queue.
    ///
    /// On SQLite the writer runs on a thread of its own at the lowest priority, with its
    /// own database connection (whose SQLite worker thread it creates, and which so inherits that
    /// priority): when the cores are all busy, answering predictions comes first and the log catches
    /// up in the gaps, its bounded queue pushing back on requests only if it falls far behind.
    pub fn start(store: coreplex_store::Store, writer: String) -> PredictionLog {
        let (tx, mut rx) = mpsc::channel::<LogMsg>(LOG_QUEUE);
        let written = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (w, f) = (written.clone(), failed.clone());
        let urgent = Arc::new(tokio::sync::Notify::new());
        let urgent_rx = urgent.clone();
        let sqlite = store.dialect() == coreplex_store::Dialect::Sqlite;
        let run = move || async move {
            let store = if sqlite {
                match store.with_own_pool(2).await {
                    Ok(own) => own,
                    Err(e) => {
                        tracing::warn!(error = %e, "the prediction log shares the server's database pool");
                        store
                    }
                }
            } else {
                store
            };
            let mut log_writer = store.prediction_writer();
            let mut batch = Vec::with_capacity(LOG_BATCH);
            let mut assignments = Vec::new();
            let mut waiting = Vec::new();
            let mut sketches = crate::drift::LiveSketches::default();
            let mut last_save = std::time::Instant::now();
            let mut latest_at = 0i64;
            loop {
                // Linger after the first message so that a batch gathers without waking this task
                // (and starting a transaction) for every prediction; a flush cuts the wait short.
                let Some(first) = rx.recv().await else { break };
                let mut next = Some(first);
                let mut lingered = false;
                loop {
                    while let Some(msg) = next.take() {
                        match msg {
                            LogMsg::Record(r, sketch) => {
                                if sketch {
                                    sketches.add(&r.deployment_id, r.at, &r.features);
                                }
                                latest_at = latest_at.max(r.at);
                                batch.push(r)
                            }
                            LogMsg::Assignment(a) => assignments.push(a),
                            LogMsg::Flush(done) => waiting.push(done),
                        }
                        if batch.len() < LOG_BATCH && assignments.len() < LOG_BATCH {
                            next = rx.try_recv().ok();
                        }
                    }
                    let full = batch.len() >= LOG_BATCH || assignments.len() >= LOG_BATCH;
                    if lingered || full || !waiting.is_empty() {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(LOG_LINGER) => {}
                        _ = urgent_rx.notified() => {}
                    }
                    lingered = true;
                    next = rx.try_recv().ok();
                }
                if !batch.is_empty() {
                    let n = batch.len() as u64;
                    // A failed batch is retried a few times; the log must not lose rows to a blip.
                    let mut ok = false;
                    for attempt in 0..5u32 {
                        match log_writer.insert(&batch).await {
                            Ok(()) => {
                                ok = true;
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, attempt, "prediction log write failed");
                                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt))
                                    .await;
                            }
                        }
                    }
                    if ok {
                        w.fetch_add(n, Ordering::Relaxed);
                    } else {
                        f.fetch_add(n, Ordering::Relaxed);
                    }
                    batch.clear();
                }
                if !assignments.is_empty() {
                    for attempt in 0..5u32 {
                        match store.record_ab_assignments(&assignments).await {
                            Ok(()) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, attempt, "A/B assignment counts write failed");
                                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt))
                                    .await;
                            }
                        }
                    }
                    assignments.clear();
                }
                if !waiting.is_empty() || last_save.elapsed() > std::time::Duration::from_secs(2) {
                    sketches.save(&store, &writer, latest_at).await;
                    last_save = std::time::Instant::now();
                }
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
            }
        };
        if sqlite {
            // A runtime with timers only: the SQLite driver works on its own threads and needs no
            // sockets, so this runtime keeps no I/O or signal driver of its own.
            let spawned = std::thread::Builder::new()
                .name("prediction-log".into())
                .spawn(move || {
                    lower_thread_priority();
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build()
                    {
                        Ok(rt) => rt.block_on(run()),
                        Err(e) => {
                            tracing::error!(error = %e, "the prediction log writer could not start")
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "the prediction log writer thread could not start");
            }
        } else {
            // PostgreSQL does the work in its own processes: the writer is a task like any other.
            tokio::spawn(run());
        }
        PredictionLog {
            tx,
            urgent,
            written,
            failed,
        }
    }

    /// Queues a record, waiting for room when the queue is full. With `sketch` (primary
    /// predictions) its features also feed the live drift sketches.
    pub async fn append(&self, r: PredictionRecord, sketch: bool) {
        if self.tx.send(LogMsg::Record(r, sketch)).await.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues an A/B test's assignment of one request, written with the next batch.
    pub async fn assign(&self, a: AbAssignment) {
        if self.tx.send(LogMsg::Assignment(a)).await.is_err() {
            tracing::warn!("the prediction log writer is gone; an A/B assignment was not counted");
        }
    }

    /// Waits until everything queued before this call is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(LogMsg::Flush(done)).await.is_ok() {
            self.urgent.notify_one();
            let _ = wait.await;
        }
    }
}

/// Gives the calling thread the lowest priority of its class (a nice value of 19; on Linux the nice
/// value belongs to the thread). Threads it creates inherit it. (The idle class, `SCHED_IDLE`,
/// starved the writer on a saturated machine until its queue pushed back on requests.)
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread; no memory is shared with them.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 19) != 0 {
            tracing::debug!("could not lower the prediction log writer's priority");
        }
    }
}

/// A request copied to a shadow model.
pub struct ShadowWork {
    pub endpoint: Arc<Endpoint>,
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    pub request_ids: Vec<String>,
    pub at: i64,
    pub entity_id: Option<String>,
}

/// The shadow mirror: a bounded queue and a worker that runs shadow models off the response path.
#[derive(Clone)]
pub struct ShadowMirror {
    tx: mpsc::Sender<ShadowWork>,
    /// Requests dropped because the shadow fell behind, per deployment.
    pub dropped: Arc<Mutex<HashMap<String, u64>>>,
    pub pending: Arc<AtomicU64>,
}

const SHADOW_QUEUE: usize = 10_000;

impl ShadowMirror {
    pub fn start(log: PredictionLog) -> (ShadowMirror, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<ShadowWork>(SHADOW_QUEUE);
        let pending = Arc::new(AtomicU64::new(0));
        let p = pending.clone();
        let task = tokio::spawn(async move {
            while let Some(work) = rx.recv().await {
                run_shadow(&log, work).await;
                p.fetch_sub(1, Ordering::Relaxed);
            }
        });
        (
            ShadowMirror {
                tx,
                dropped: Arc::new(Mutex::new(HashMap::new())),
                pending,
            },
            task,
        )
    }

    /// Hands a copy of a request to the shadow, or drops (and counts) it when the shadow is behind.
    pub fn offer(&self, work: ShadowWork) {
        let dep = work.endpoint.deployment_id.clone();
        self.pending.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(work).is_err() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut d) = self.dropped.lock() {
                *d.entry(dep).or_default() += 1;
            }
        }
    }

    pub fn dropped_for(&self, deployment_id: &str) -> u64 {
        self.dropped
            .lock()
            .map(|d| d.get(deployment_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Waits until the shadow queue is empty (tests and shutdown).
    pub async fn drain(&self) {
        while self.pending.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
}

async fn run_shadow(log: &PredictionLog, work: ShadowWork) {
    let Some(shadow) = work.endpoint.shadow.as_ref() else {
        return;
    };
    let model = shadow.model.clone();
    let rows = work.rows;
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        let r = model.predict(&rows);
        (r, rows)
    })
    .await;
    let Ok((result, rows)) = result else { return };
    let per_row_us = (started.elapsed().as_micros() as i64 / rows.len().max(1) as i64).max(1);
    let output_kind = shadow.model.schema().output.clone();
    match result {
        Ok(preds) => {
            for ((p, row), rid) in preds.iter().zip(&rows).zip(&work.request_ids) {
                let (predicted, score) = log_columns(p, &output_kind);
                log.append(
                    PredictionRecord {
                        request_id: rid.clone(),
                        role: "shadow",
                        deployment_id: work.endpoint.deployment_id.clone(),
                        model_id: shadow.model_id.clone(),
                        variant: "shadow".into(),
                        at: work.at,
                        latency_us: per_row_us,
                        is_error: false,
                        entity_id: work.entity_id.clone(),
                        features: features_codec::encode(row),
                        output: serde_json::to_string(p).unwrap_or_default(),
                        predicted,
                        score,
                    },
                    false,
                )
                .await;
            }
        }
        Err(e) => {
            for (row, rid) in rows.iter().zip(&work.request_ids) {
                log.append(
                    PredictionRecord {
                        request_id: rid.clone(),
                        role: "shadow",
                        deployment_id: work.endpoint.deployment_id.clone(),
                        model_id: shadow.model_id.clone(),
                        variant: "shadow".into(),
                        at: work.at,
                        latency_us: per_row_us,
                        is_error: true,
                        entity_id: work.entity_id.clone(),
                        features: features_codec::encode(row),
                        output: serde_json::json!({"error": e.to_string()}).to_string(),
                        predicted: None,
                        score: None,
                    },
                    false,
                )
                .await;
            }
        }
    }
}

/// Prometheus counters and latency histograms per deployment and variant. The hot path takes a read
/// lock and bumps atomics; only the first request of a new series writes.
#[derive(Default)]
pub struct ServingMetrics {
    series: RwLock<HashMap<String, HashMap<String, Arc<Series>>>>,
}

#[derive(Default)]
struct Series {
    requests: AtomicU64,
    errors: AtomicU64,
    rows: AtomicU64,
    latency_sum_us: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
}

const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

impl ServingMetrics {
    fn series(&self, deployment: &str, variant: &str) -> Option<Arc<Series>> {
        if let Some(s) = self
            .series
            .read()
            .ok()?
            .get(deployment)
            .and_then(|m| m.get(variant))
        {
            return Some(s.clone());
        }
        let mut m = self.series.write().ok()?;
        Some(
            m.entry(deployment.to_string())
                .or_default()
                .entry(variant.to_string())
                .or_default()
                .clone(),
        )
    }

    pub fn observe(&self, deployment: &str, variant: &str, rows: u64, latency_s: f64, error: bool) {
        let Some(s) = self.series(deployment, variant) else {
            return;
        };
        s.requests.fetch_add(1, Ordering::Relaxed);
        s.rows.fetch_add(rows, Ordering::Relaxed);
        if error {
            s.errors.fetch_add(1, Ordering::Relaxed);
        }
        s.latency_sum_us
            .fetch_add((latency_s * 1e6) as u64, Ordering::Relaxed);
        // Cumulative buckets are summed when rendering; count each request in its own bucket only.
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| latency_s <= *b) {
            s.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition of every series. Written by hand: a handful of counters does
    /// not justify a metrics framework on the hot path.
    pub fn render(&self, out: &mut String, dropped: &HashMap<String, u64>) {
        use std::fmt::Write;
        let mut rows: Vec<(String, String, Arc<Series>)> = Vec::new();
        if let Ok(m) = self.series.read() {
            for (d, vs) in m.iter() {
                for (v, s) in vs {
                    rows.push((d.clone(), v.clone(), s.clone()));
                }
            }
        }
        rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, f: &dyn Fn(&Series) -> u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (d, v, s) in &rows {
                let _ = writeln!(out, "{name}{{deployment=\"{d}\",variant=\"{v}\"}} {}", f(s));
            }
        };
        counter(
            "coreplex_predict_requests_total",
            "Prediction requests served.",
            &|s| load(&s.requests),
        );
        counter("coreplex_predict_rows_total", "Rows predicted.", &|s| {
            load(&s.rows)
        });
        counter(
            "coreplex_predict_errors_total",
            "Prediction requests that failed in the model.",
            &|s| load(&s.errors),
        );
        let _ = writeln!(
            out,
            "# HELP coreplex_predict_latency_seconds Prediction request latency."
        );
        let _ = writeln!(out, "# TYPE coreplex_predict_latency_seconds histogram");
        for (d, v, s) in &rows {
            let mut cum = 0;
            for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
                cum += load(&s.buckets[i]);
                let _ = writeln!(out, "coreplex_predict_latency_seconds_bucket{{deployment=\"{d}\",variant=\"{v}\",le=\"{b}\"}} {cum}");
            }
            let n = load(&s.requests);
            let _ = writeln!(out, "coreplex_predict_latency_seconds_bucket{{deployment=\"{d}\",variant=\"{v}\",le=\"+Inf\"}} {n}");
            let _ = writeln!(
                out,
                "coreplex_predict_latency_seconds_sum{{deployment=\"{d}\",variant=\"{v}\"}} {}",
                load(&s.latency_sum_us) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "coreplex_predict_latency_seconds_count{{deployment=\"{d}\",variant=\"{v}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP coreplex_shadow_dropped_total Shadow requests dropped because the shadow fell behind.");
        let _ = writeln!(out, "# TYPE coreplex_shadow_dropped_total counter");
        let mut d: Vec<_> = dropped.iter().collect();
        d.sort();
        for (dep, n) in d {
            let _ = writeln!(
                out,
                "coreplex_shadow_dropped_total{{deployment=\"{dep}\"}} {n}"
            );
        }
    }
}
