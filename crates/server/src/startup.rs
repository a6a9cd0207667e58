//! Building and running the server: connect the store, load ONNX Runtime, bootstrap the first admin
//! key, bind the listener (port 0 picks a free one), and start the background worker.

use crate::config::Config;
use crate::state::AppState;
use crate::{idempotency, routes, worker};
use axum::Router;
use coreplex_domain::tenancy::KeyScope;
use coreplex_domain::{ids, Clock};
use coreplex_store::{ArtifactStore, Ctx, Org, Store};
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Runtime(#[from] coreplex_runtime::Error),
    #[error("database: {0}")]
    Store(#[from] coreplex_store::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

#[derive(OpenApi)]
#[openapi(
    info(title = "CorePlexML API", version = "1", description = "Model registry, serving, monitoring and retraining."),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]);
    }
}

/// The whole HTTP application for `state`.
pub fn app(state: AppState) -> Router {
    let (api, mut doc) = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::api())
        .split_for_parts();
    doc.paths.paths.retain(|_, _| true);
    let doc = Arc::new(doc);
    let api = api
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ));
    Router::new()
        .merge(routes::health::router())
        .merge(api)
        .fallback(|| async { crate::error::ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { crate::error::ApiError::method_not_allowed() })
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// A running server.
pub struct Application {
    pub state: AppState,
    addr: SocketAddr,
    /// The admin key created on this start (first start of a fresh database), if any.
    pub admin_key: Option<String>,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Application, StartupError> {
        coreplex_runtime::init(config.onnxruntime_lib.as_deref())?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartupError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let store = Store::connect(&config.database_url()).await?;
        let artifacts = ArtifactStore::local(config.artifact_dir())?;
        let worker_id = config
            .worker_id
            .clone()
            .unwrap_or_else(|| ids::new_id("srv"));
        let state = AppState::new(store, artifacts, clock, config.clone(), worker_id);
        let admin_key = bootstrap(&state).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartupError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.listen,
            source,
        })?;
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let router = app(state.clone());
        let mut server_rx = rx.clone();
        let server = tokio::spawn(async move {
            let graceful = async move {
                let _ = server_rx.wait_for(|v| *v).await;
            };
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(graceful)
                .await
            {
                tracing::error!(error = %e, "server stopped");
            }
        });
        let background = if config.background {
            worker::spawn(state.clone(), rx)
        } else {
            Vec::new()
        };
        Ok(Application {
            state,
            addr,
            admin_key,
            shutdown,
            server,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, lets in-flight ones finish and stops the background tasks.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        // Background tasks stop at their next loop; a job still running (e.g. training) is not
        // waited for: its lease lapses and another server (or the next start) picks it up again.
        for mut t in self.background {
            if tokio::time::timeout(std::time::Duration::from_secs(2), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
        // Nothing logged is lost on shutdown.
        self.state.shadow.drain().await;
        self.state.log.flush().await;
    }

    /// Runs until Ctrl-C or SIGTERM, then stops gracefully.
    pub async fn run_until_stopped(self) {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutting down");
        self.stop().await;
    }
}

/// On the first start of a fresh database: the `default` organization and an admin key, printed once
/// and written to `<data-dir>/admin.key` (mode 0600).
async fn bootstrap(state: &AppState) -> Result<Option<String>, StartupError> {
    if !state
        .store
        .set_setting_once("bootstrap", &state.worker_id)
        .await?
    {
        return Ok(None);
    }
    let now = state.now();
    let org = Org {
        id: ids::new_id(ids::ORG),
        name: "default".into(),
        created_at: now,
    };
    let ctx = Ctx {
        org_id: org.id.clone(),
        actor: "system:bootstrap".into(),
        at: now,
    };
    state.store.create_org(&ctx, &org).await?;
    let key = routes::orgs::issue_key(
        state,
        &ctx,
        &org.id,
        "admin",
        "bootstrap admin",
        true,
        true,
        KeyScope::Full,
    )
    .await
    .map_err(|e| StartupError::Bootstrap(e.message))?;
    let path = state.config.data_dir.join("admin.key");
    write_secret(&path, &key.key).map_err(|source| StartupError::DataDir {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Some(key.key))
}

fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")
}
