//! `coreplex serve`: resolves the configuration (flags > `COREPLEX_*` environment > TOML file >
//! defaults), sets up logging, and runs the server until Ctrl-C or SIGTERM.

use clap::Args;
use coreplex_server::{Application, Config};
use serde::Deserialize;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, env = "COREPLEX_LISTEN")]
    listen: Option<SocketAddr>,
    /// Folder for the embedded database, artifacts and the admin key.
    #[arg(long, env = "COREPLEX_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// `postgres://user:pass@host/db` to share one database between servers (default: SQLite in the data dir).
    #[arg(long, env = "COREPLEX_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Where model and dataset files live: a local folder (default `<data-dir>/artifacts`).
    #[arg(long, env = "COREPLEX_ARTIFACT_STORE")]
    artifact_store: Option<String>,
    /// Path of libonnxruntime.so (default: ORT_DYLIB_PATH, then .tools/onnxruntime/).
    #[arg(long, env = "COREPLEX_ONNXRUNTIME_LIB")]
    onnxruntime_lib: Option<PathBuf>,
    /// Optional TOML file with the same settings (snake_case keys).
    #[arg(long, env = "COREPLEX_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "COREPLEX_LOG_JSON")]
    log_json: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    artifact_store: Option<String>,
    onnxruntime_lib: Option<PathBuf>,
    max_upload_bytes: Option<u64>,
}

fn resolve(args: ServeArgs) -> Result<(Config, bool), String> {
    let file: FileConfig = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("config file {}: {e}", p.display()))?;
            toml::from_str(&text).map_err(|e| format!("config file {}: {e}", p.display()))?
        }
        None => FileConfig::default(),
    };
    let mut c = Config::default();
    if let Some(v) = args.listen.or(file.listen) {
        c.listen = v;
    }
    if let Some(v) = args.data_dir.or(file.data_dir) {
        c.data_dir = v;
    }
    c.database_url = args.database_url.or(file.database_url);
    if let Some(store) = args.artifact_store.or(file.artifact_store) {
        if store.contains("://") && !store.starts_with("file://") {
            return Err(format!(
                "--artifact-store {store}: only local folders are supported in this build; give a path"
            ));
        }
        c.artifact_dir = Some(PathBuf::from(store.trim_start_matches("file://")));
    }
    c.onnxruntime_lib = args.onnxruntime_lib.or(file.onnxruntime_lib);
    if let Some(v) = file.max_upload_bytes {
        c.max_upload_bytes = v;
    }
    Ok((c, args.log_json))
}

pub fn run(args: ServeArgs) -> ExitCode {
    let (config, log_json) = match resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("COREPLEX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        tracing::info!(?config, "starting");
        let data_dir = config.data_dir.clone();
        let app = match Application::build(config, Arc::new(coreplex_domain::SystemClock)).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut out = std::io::stdout().lock();
        if let Some(key) = &app.admin_key {
            let _ = writeln!(
                out,
                "admin API key (shown once, also saved to {}): {key}",
                data_dir.join("admin.key").display()
            );
        }
        // Last line of the start-up banner: scripts wait for it.
        let _ = writeln!(out, "CorePlexML listening on {}", app.url());
        let _ = out.flush();
        drop(out);
        app.run_until_stopped().await;
        ExitCode::SUCCESS
    })
}
