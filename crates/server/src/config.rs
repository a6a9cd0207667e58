//! Server configuration: flags > `COREPLEX_*` environment variables > an optional TOML file > defaults.
//! The command line (in the `cli` crate) resolves the layers and hands over a finished [`Config`].

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to SQLite inside `data_dir`.
    pub database_url: Option<String>,
    /// Local folder for artifacts; defaults to `<data_dir>/artifacts`.
    pub artifact_dir: Option<PathBuf>,
    pub onnxruntime_lib: Option<PathBuf>,
    /// Run the job worker and the controllers' scheduler in the background (tests drive them by hand).
    pub background: bool,
    /// Largest accepted upload in bytes.
    pub max_upload_bytes: u64,
    /// Name of this server among several on one database (defaults to a random one).
    pub worker_id: Option<String>,
    /// Outgoing mail for email alert channels.
    pub smtp: Option<SmtpConfig>,
}

/// SMTP settings for email notifications. `tls` is `starttls` (default), `tls` or `none`.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub tls: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            data_dir: PathBuf::from("./coreplex-data"),
            database_url: None,
            artifact_dir: None,
            onnxruntime_lib: None,
            background: true,
            max_upload_bytes: 20 * 1024 * 1024 * 1024,
            worker_id: None,
            smtp: None,
        }
    }
}

impl Config {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("coreplex.db").display()))
    }
    pub fn artifact_dir(&self) -> PathBuf {
        self.artifact_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("artifacts"))
    }
}

/// Secrets stay out of logs: the database URL's password is masked.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(coreplex_store::redact_url),
            )
            .field("artifact_dir", &self.artifact_dir)
            .field("onnxruntime_lib", &self.onnxruntime_lib)
            .field("background", &self.background)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("smtp", &self.smtp)
            .finish()
    }
}
