//! What every handler and background worker shares: the store, the artifact store, the clock and the
//! cache of loaded models.

use crate::config::Config;
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
        AppState(Arc::new(Inner {
            store,
            artifacts,
            clock,
            config,
            worker_id,
            models: RwLock::new(HashMap::new()),
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
