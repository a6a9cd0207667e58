//! What every handler and background worker shares: the store, the artifact store, the clock and the
//! cache of loaded models.

use crate::auth::AuthCache;
use crate::config::Config;
use crate::serving::{PredictionLog, ServingMetrics, ServingTable, ShadowMirror};
use coreplex_domain::Clock;
use coreplex_runtime::LoadedModel;
use coreplex_store::{ArtifactStore, Ctx, Store};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub artifacts: ArtifactStore,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    /// This server's name in job leases and controller leases.
    pub worker_id: String,
    /// Models loaded into ONNX Runtime, by model id. Loaded once, shared by all requests.
    pub models: RwLock<HashMap<String, Arc<LoadedModel>>>,
    /// Deployments being served, with their traffic split.
    pub serving: ServingTable,
    pub log: PredictionLog,
    pub shadow: ShadowMirror,
    pub serving_metrics: ServingMetrics,
    pub auth: AuthCache,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Store,
        artifacts: ArtifactStore,
        clock: Arc<dyn Clock>,
        config: Config,
        worker_id: String,
    ) -> Self {
        // Builds the shared state and starts the prediction log writer and the shadow mirror
        // (inside a tokio runtime).
        let log = PredictionLog::start(store.clone(), worker_id.clone());
        let (shadow, _mirror) = ShadowMirror::start(log.clone());
        AppState(Arc::new(Inner {
            store,
            artifacts,
            clock,
            config,
            worker_id,
            models: RwLock::new(HashMap::new()),
            serving: ServingTable::default(),
            log,
            shadow,
            serving_metrics: ServingMetrics::default(),
            auth: AuthCache::default(),
        }))
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A context for work the platform does by itself, e.g. `system:profiler`.
    pub fn system_ctx(&self, org_id: &str, what: &str) -> Ctx {
        Ctx {
            org_id: org_id.to_string(),
            actor: format!("system:{what}"),
            at: self.now(),
        }
    }
}
