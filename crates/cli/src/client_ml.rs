//! Client commands for the model lifecycle on a running server: AutoML experiments, deployments,
//! alert rules and retraining policies. Same conventions as the other client commands: the server is
//! `COREPLEX_URL` (default http://127.0.0.1:8080) with `COREPLEX_API_KEY`; each command prints the
//! server's JSON answer on stdout; an error prints `error: code (status): message` on stderr and exits
//! with 1.
//!
//! `experiments create … --wait` follows the experiment to its end, with a progress bar on stderr when
//! stderr is a terminal (plain progress lines otherwise), then prints the leaderboard: a table when
//! stdout is a terminal, JSON otherwise (`--format table|json` chooses).

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum MlCommand {
    /// AutoML experiments: train and rank models on a dataset version.
    Experiments {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: ExperimentCmd,
    },
    /// Deployments: serve models, roll them out, predict and monitor.
    Deployments {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: DeploymentCmd,
    },
    /// Alert rules on deployments.
    Alerts {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: AlertCmd,
    },
    /// Automatic retraining policies and their runs.
    Retraining {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: RetrainingCmd,
    },
}

/// How to print an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table when stdout is a terminal, JSON otherwise.
    Auto,
    Json,
    Table,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentCmd {
    /// Start an AutoML experiment on a dataset version of PROJECT_ID.
    Create {
        project_id: String,
        /// The training data (a dataset version id, dsv_…).
        #[arg(long = "dataset-version")]
        dataset_version: String,
        /// The column to predict.
        #[arg(long)]
        target: String,
        /// binary_classification, multiclass_classification or regression (inferred when left out).
        #[arg(long)]
        task: Option<String>,
        /// How many models to train at most (server default 20; stacked ensembles come on top).
        #[arg(long)]
        max_models: Option<u64>,
        /// The time budget in seconds (server default 600).
        #[arg(long)]
        max_runtime_secs: Option<f64>,
        /// AUTO (default), AUC, AUCPR, logloss, accuracy, mean_per_class_error, RMSE, MSE, MAE or R2.
        #[arg(long)]
        stopping_metric: Option<String>,
        #[arg(long)]
        seed: Option<u64>,
        /// A name for people.
        #[arg(long)]
        name: Option<String>,
        /// Registry name of the trained models.
        #[arg(long)]
        model_name: Option<String>,
        /// Wait until it ends, showing its progress on stderr, then print the leaderboard.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up waiting after this many seconds (the experiment keeps running).
        #[arg(long, requires = "wait")]
        timeout: Option<f64>,
        /// With --wait: how to print the result.
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        format: Format,
    },
    /// One experiment (`--format table`: its leaderboard).
    Get {
        experiment_id: String,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// The experiments of a project.
    List {
        project_id: String,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// Wait for an experiment to end, showing its progress, then print the leaderboard.
    Wait {
        experiment_id: String,
        #[arg(long)]
        timeout: Option<f64>,
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        format: Format,
    },
    /// Stop an experiment.
    Cancel { experiment_id: String },
}

/// Rollout strategy settings; the ones left out keep the endpoint's (or the server's defaults).
#[derive(Debug, Args)]
pub struct StrategyArgs {
    /// direct, canary, blue-green or shadow.
    #[arg(long)]
    strategy: Option<String>,
    /// Canary: the first share of traffic, in percent.
    #[arg(long)]
    traffic_percentage: Option<f64>,
    /// Canary: the traffic steps, e.g. 5,25,50,100.
    #[arg(long, value_delimiter = ',')]
    promotion_steps: Option<Vec<f64>>,
    /// Roll back automatically when the gate metric drops (`--auto-rollback false` turns it off).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    auto_rollback: Option<bool>,
    /// Relative drop of the gate metric that rolls back, e.g. 0.03.
    #[arg(long)]
    rollback_threshold: Option<f64>,
    /// Gate metric: auc, accuracy, f1, precision, recall, log_loss, rmse, mae, r2.
    #[arg(long)]
    metric: Option<String>,
    #[arg(long)]
    min_samples_per_step: Option<u64>,
    #[arg(long)]
    step_duration_minutes: Option<u64>,
    /// Blue-green: how long the switch is watched before it is confirmed.
    #[arg(long)]
    rollback_window_minutes: Option<u64>,
    /// Shadow: how long predictions are compared.
    #[arg(long)]
    comparison_window_days: Option<f64>,
}

impl StrategyArgs {
    fn into_body(self, body: &mut Map<String, Value>) {
        let StrategyArgs {
            strategy,
            traffic_percentage,
            promotion_steps,
            auto_rollback,
            rollback_threshold,
            metric,
            min_samples_per_step,
            step_duration_minutes,
            rollback_window_minutes,
            comparison_window_days,
        } = self;
        put(body, "strategy", strategy);
        put(body, "traffic_percentage", traffic_percentage);
        put(body, "promotion_steps", promotion_steps);
        put(body, "auto_rollback", auto_rollback);
        put(body, "rollback_threshold", rollback_threshold);
        put(body, "metric", metric);
        put(body, "min_samples_per_step", min_samples_per_step);
        put(body, "step_duration_minutes", step_duration_minutes);
        put(body, "rollback_window_minutes", rollback_window_minutes);
        put(body, "comparison_window_days", comparison_window_days);
    }
}

#[derive(Debug, Subcommand)]
pub enum DeploymentCmd {
    /// Deploy a model: a new NAME creates the endpoint serving it at once; an existing NAME starts a
    /// rollout there under the strategy given (or the endpoint's).
    Create {
        project_id: String,
        #[arg(long)]
        model: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        strategy: StrategyArgs,
    },
    /// Roll a model out on an existing deployment.
    Rollout {
        deployment_id: String,
        #[arg(long)]
        model: String,
        #[command(flatten)]
        strategy: StrategyArgs,
    },
    /// The deployments of a project.
    List { project_id: String },
    /// One deployment: what it serves, its traffic and the rollout in progress.
    Get { deployment_id: String },
    /// Predict: ROWS is a JSON object or array of objects, `@file.json`, or `-` for stdin.
    Predict {
        deployment_id: String,
        #[arg(long)]
        rows: String,
        /// Sticky routing key (A/B tests).
        #[arg(long)]
        entity_id: Option<String>,
    },
    /// Attach true labels to logged predictions: a JSON object {request_id: label} or a list of
    /// {request_id, label|value}; `@file.json` or `-` for stdin.
    Feedback {
        deployment_id: String,
        #[arg(long)]
        labels: String,
    },
    /// Operational and quality metrics per variant.
    Metrics {
        deployment_id: String,
        #[arg(long)]
        window_minutes: Option<i64>,
        #[arg(long)]
        windows: Option<i64>,
        /// RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
    },
    /// Data drift of live traffic against the training data.
    Drift {
        deployment_id: String,
        #[arg(long)]
        window_minutes: Option<i64>,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// Compare with this dataset version instead of the model's training data.
        #[arg(long)]
        reference: Option<String>,
        #[arg(long)]
        alpha: Option<f64>,
        #[arg(long)]
        psi_threshold: Option<f64>,
    },
    /// Sustained quality degradation over consecutive windows.
    ConceptDrift {
        deployment_id: String,
        #[arg(long)]
        metric: Option<String>,
        #[arg(long)]
        window_minutes: Option<i64>,
        #[arg(long)]
        windows: Option<i64>,
        #[arg(long)]
        tolerance: Option<f64>,
    },
    /// Promote the rollout's candidate now.
    Promote {
        deployment_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Roll back the rollout in progress (or to the previously served model).
    Rollback {
        deployment_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Pause the rollout in progress.
    Pause { deployment_id: String },
    /// Resume a paused rollout.
    Resume { deployment_id: String },
    /// The deployment's timeline.
    Events { deployment_id: String },
    /// Notifications about the deployment (alerts, rollouts, retraining) and their delivery.
    Notifications { deployment_id: String },
}

#[derive(Debug, Subcommand)]
pub enum AlertCmd {
    /// Create an alert rule on a deployment.
    Create {
        #[arg(long)]
        deployment: String,
        #[arg(long)]
        name: String,
        /// data_drift_score, max_psi, accuracy, auc, rmse, latency_p95_ms, error_rate, …
        #[arg(long)]
        metric: String,
        /// greater_than, greater_than_or_equal, less_than, less_than_or_equal, equal, not_equal.
        #[arg(long)]
        condition: String,
        #[arg(long, allow_negative_numbers = true)]
        threshold: f64,
        /// A channel as JSON, e.g. '{"type": "webhook", "url": "https://…"}'; repeat for several.
        #[arg(long = "channel")]
        channels: Vec<String>,
        #[arg(long)]
        evaluation_window_minutes: Option<i64>,
        #[arg(long)]
        cooldown_minutes: Option<i64>,
        /// Create it turned off.
        #[arg(long)]
        disabled: bool,
    },
    /// The alert rules of a project.
    List {
        project_id: String,
        #[arg(long)]
        deployment: Option<String>,
    },
    /// One alert rule.
    Get { alert_id: String },
    /// When the rule fired, repeated, was held back and resolved.
    History { alert_id: String },
    /// Every notification of the rule and how its delivery went.
    Deliveries { alert_id: String },
    /// Delete the alert rule.
    Delete { alert_id: String },
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum RetrainingCmd {
    /// Create a retraining policy on a deployment.
    CreatePolicy {
        #[arg(long)]
        deployment: String,
        /// drift, schedule or performance.
        #[arg(long)]
        trigger: String,
        /// data_drift_score (default), max_psi or psi:<feature>.
        #[arg(long)]
        drift_metric: Option<String>,
        #[arg(long)]
        drift_threshold: Option<f64>,
        #[arg(long)]
        drift_window_minutes: Option<i64>,
        /// daily, weekly or monthly.
        #[arg(long)]
        schedule: Option<String>,
        /// monday … sunday (weekly).
        #[arg(long)]
        day_of_week: Option<String>,
        /// 1 … 31 (monthly).
        #[arg(long)]
        day_of_month: Option<i64>,
        /// 0 … 23.
        #[arg(long, allow_negative_numbers = true)]
        hour_utc: Option<i64>,
        /// accuracy, precision, recall, f1, auc, log_loss, rmse, mae, r2.
        #[arg(long)]
        performance_metric: Option<String>,
        #[arg(long, allow_negative_numbers = true)]
        performance_threshold: Option<f64>,
        #[arg(long)]
        evaluation_window_days: Option<f64>,
        /// The whole training configuration as JSON, e.g. '{"max_models": 20}'.
        #[arg(long)]
        training_config: Option<String>,
        /// Training: how many models at most.
        #[arg(long)]
        max_models: Option<u64>,
        /// Training: the time budget in seconds.
        #[arg(long)]
        max_runtime_secs: Option<f64>,
        /// Training: what models are ranked by (AUTO, AUC, RMSE, …).
        #[arg(long)]
        stopping_metric: Option<String>,
        /// Training: the seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Roll a candidate that is at least as good out through the deployment's strategy.
        #[arg(long)]
        auto_promote: bool,
        /// The target column (default: the one the serving model was trained on).
        #[arg(long)]
        target: Option<String>,
        /// Join labelled production traffic into the training data.
        #[arg(long)]
        include_production_data: bool,
        #[arg(long)]
        production_window_days: Option<f64>,
        #[arg(long)]
        cooldown_minutes: Option<i64>,
        /// Create it turned off.
        #[arg(long)]
        disabled: bool,
    },
    /// The retraining policies of a project.
    List {
        project_id: String,
        #[arg(long)]
        deployment: Option<String>,
    },
    /// One policy.
    Get { policy_id: String },
    /// The policy's runs: trigger, reason, job, candidate, comparison and outcome.
    Runs { policy_id: String },
    /// Start a run now, whatever the trigger says.
    Trigger {
        policy_id: String,
        /// Wait until the run ends, showing its steps on stderr, then print it.
        #[arg(long)]
        wait: bool,
        #[arg(long, requires = "wait")]
        timeout: Option<f64>,
    },
    /// Turn the policy on.
    Enable { policy_id: String },
    /// Turn the policy off (a run in progress finishes).
    Disable { policy_id: String },
    /// Delete the policy.
    Delete { policy_id: String },
}

fn put<T: serde::Serialize>(body: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        body.insert(key.to_string(), json!(v));
    }
}

fn query(pairs: Vec<(&'static str, Option<String>)>) -> Vec<(&'static str, String)> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

/// A JSON argument: inline, `@path`, or `-` for stdin.
fn json_arg(flag: &str, text: &str) -> Result<Value, String> {
    let raw = if text == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("{flag}: cannot read stdin: {e}"))?;
        s
    } else if let Some(path) = text.strip_prefix('@') {
        std::fs::read_to_string(path).map_err(|e| format!("{flag}: {path}: {e}"))?
    } else {
        text.to_string()
    };
    serde_json::from_str(&raw).map_err(|e| format!("{flag} is not JSON: {e}"))
}

/// A failure: what to print after `error: ` and, for a failed experiment, the JSON to print first.
struct Failure {
    message: String,
    output: Option<Value>,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            message,
            output: None,
        }
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

/// What a command prints on success.
enum Output {
    Json(Value),
    Text(String),
}

/// The shared client and connection flags, plus the query helper these commands use.
use crate::client::{Api, Conn};

trait GetQuery {
    fn get_q(&self, path: &str, q: Vec<(&'static str, Option<String>)>) -> Result<Value, String>;
}

impl GetQuery for Api {
    fn get_q(&self, path: &str, q: Vec<(&'static str, Option<String>)>) -> Result<Value, String> {
        self.send(self.req(Method::GET, path).query(&query(q)))
    }
}

// --- experiments -------------------------------------------------------------------------------

const EXPERIMENT_DONE: [&str; 3] = ["succeeded", "failed", "cancelled"];

/// Progress of a waited-for experiment on stderr: a redrawn bar on a terminal, lines otherwise.
struct Progress {
    tty: bool,
    started: Instant,
    shown: f64,
    last: Option<(String, String)>,
    drawn: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            shown: 0.0,
            last: None,
            drawn: false,
        }
    }

    fn update(&mut self, e: &Value) {
        let id = e["id"].as_str().unwrap_or("experiment");
        let status = e["status"].as_str().unwrap_or("").to_string();
        // The server keeps the last step's message ("registering models") after success.
        let message = if status == "succeeded" {
            String::new()
        } else {
            e["message"].as_str().unwrap_or("").to_string()
        };
        let progress = e["progress"].as_f64().unwrap_or(0.0).clamp(0.0, 1.0);
        // Never move the bar backwards, and fill it on success.
        self.shown = if status == "succeeded" {
            1.0
        } else {
            self.shown.max(progress)
        };
        let pct = (self.shown * 100.0).floor() as u32;
        let secs = self.started.elapsed().as_secs();
        let mut err = std::io::stderr().lock();
        if self.tty {
            let width = 30usize;
            let filled = ((self.shown * width as f64).round() as usize).min(width);
            let mut line = format!(
                "{id} [{}{}] {pct:>3}% {:02}:{:02} {status}",
                "#".repeat(filled),
                "-".repeat(width - filled),
                secs / 60,
                secs % 60
            );
            if !message.is_empty() {
                line.push_str(": ");
                line.push_str(&message);
            }
            let cols = std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(80)
                .max(40);
            let line: String = line.chars().take(cols - 1).collect();
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
            self.drawn = true;
        } else {
            let key = (status.clone(), message.clone());
            if self.last.as_ref() != Some(&key) {
                let mut line = format!("{id}: {status} {pct}% after {secs}s");
                if !message.is_empty() {
                    line.push_str(" — ");
                    line.push_str(&message);
                }
                let _ = writeln!(err, "{line}");
                self.last = Some(key);
            }
        }
    }

    fn finish(&mut self) {
        if self.tty && self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}

/// Polls the experiment until it ends, drawing its progress.
fn wait_experiment(api: &Api, id: &str, timeout: Option<f64>) -> Result<Value, String> {
    let started = Instant::now();
    let mut progress = Progress::new();
    let mut pause = Duration::from_millis(100);
    loop {
        let e = match api.get(&format!("/experiments/{id}")) {
            Ok(e) => e,
            Err(err) => {
                progress.finish();
                return Err(err);
            }
        };
        progress.update(&e);
        let status = e["status"].as_str().unwrap_or("");
        if EXPERIMENT_DONE.contains(&status) {
            progress.finish();
            return Ok(e);
        }
        if let Some(t) = timeout {
            if started.elapsed().as_secs_f64() >= t {
                progress.finish();
                return Err(format!(
                    "timeout: experiment {id} is still {status} after {t}s; it keeps running on the \
                     server (`coreplex experiments wait {id}` to follow it again)"
                ));
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

fn table_wanted(format: Format) -> bool {
    match format {
        Format::Table => true,
        Format::Json => false,
        Format::Auto => std::io::stdout().is_terminal(),
    }
}

fn num(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => {
                if f != 0.0 && (f.abs() >= 1e6 || f.abs() < 1e-4) {
                    format!("{f:.4e}")
                } else {
                    format!("{f:.5}")
                }
            }
            _ => n.to_string(),
        },
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count())));
            }
        }
        s
    };
    let mut out = line(header);
    for r in rows {
        out.push('\n');
        out.push_str(&line(r));
    }
    out
}

/// An experiment for people: a summary and its leaderboard.
fn experiment_table(e: &Value) -> String {
    let id = e["id"].as_str().unwrap_or("");
    let status = e["status"].as_str().unwrap_or("");
    let board = &e["leaderboard"];
    let mut out = format!(
        "experiment {id} \"{}\": {status}",
        e["name"].as_str().unwrap_or("")
    );
    if !EXPERIMENT_DONE.contains(&status) {
        out.push_str(&format!(
            " ({:.0}%, {})",
            e["progress"].as_f64().unwrap_or(0.0) * 100.0,
            e["message"].as_str().unwrap_or("")
        ));
    }
    out.push('\n');
    if let Some(err) = e["error"].as_str() {
        out.push_str(&format!("error: {err}\n"));
    }
    let models = board["models"].as_array().cloned().unwrap_or_default();
    if models.is_empty() {
        return out.trim_end().to_string();
    }
    out.push_str(&format!(
        "{} ranked by {} ({}); {} training rows, {} held out; {:.1}s\n",
        board["task"].as_str().unwrap_or("?"),
        board["stopping_metric"].as_str().unwrap_or("?"),
        board["ranked_by"].as_str().unwrap_or("?"),
        num(&board["train_rows"]),
        num(&board["holdout_rows"]),
        board["elapsed_secs"].as_f64().unwrap_or(0.0),
    ));
    if let Some(ignored) = board["ignored_columns"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        let names: Vec<String> = ignored
            .iter()
            .map(|c| {
                format!(
                    "{} ({})",
                    c["name"].as_str().unwrap_or("?"),
                    c["reason"].as_str().unwrap_or("")
                )
            })
            .collect();
        out.push_str(&format!("ignored columns: {}\n", names.join(", ")));
    }
    if let Some(best) = e["best_model_id"].as_str() {
        out.push_str(&format!("best model: {best}\n"));
    }
    // The ranking metric first, then the others of the best model, alphabetically.
    let ranked = board["stopping_metric"].as_str().unwrap_or("");
    let mut metrics: Vec<String> = models[0]["metrics"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    metrics.sort_by_key(|m| (m != ranked, m.clone()));
    let mut header: Vec<String> = ["rank", "model_id", "name", "family"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(metrics.iter().cloned());
    header.push("train_secs".into());
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            let mut r = vec![
                num(&m["rank"]),
                m["model_id"].as_str().unwrap_or("").to_string(),
                m["name"].as_str().unwrap_or("").to_string(),
                m["family"].as_str().unwrap_or("").to_string(),
            ];
            r.extend(metrics.iter().map(|k| num(&m["metrics"][k])));
            r.push(format!("{:.2}", m["training_secs"].as_f64().unwrap_or(0.0)));
            r
        })
        .collect();
    out.push_str(&render_table(&header, &rows));
    out
}

fn experiments_table(list: &Value) -> String {
    let header: Vec<String> = [
        "id",
        "name",
        "status",
        "progress",
        "best_model_id",
        "created_at",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|e| {
            vec![
                e["id"].as_str().unwrap_or("").into(),
                e["name"].as_str().unwrap_or("").into(),
                e["status"].as_str().unwrap_or("").into(),
                format!("{:.0}%", e["progress"].as_f64().unwrap_or(0.0) * 100.0),
                e["best_model_id"].as_str().unwrap_or("-").into(),
                e["created_at"].as_str().unwrap_or("").into(),
            ]
        })
        .collect();
    render_table(&header, &rows)
}

/// The end of a waited-for experiment: the leaderboard, or the failure with the server's reason.
fn experiment_result(e: Value, format: Format) -> Result<Output, Failure> {
    let table = table_wanted(format);
    let status = e["status"].as_str().unwrap_or("").to_string();
    if status == "succeeded" {
        return Ok(if table {
            Output::Text(experiment_table(&e))
        } else {
            Output::Json(e)
        });
    }
    let id = e["id"].as_str().unwrap_or("");
    let reason = e["error"]
        .as_str()
        .or(e["message"].as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("no reason given");
    let verb = if status == "cancelled" {
        "was cancelled"
    } else {
        "failed"
    };
    Err(Failure {
        message: format!("experiment_{status}: experiment {id} {verb}: {reason}"),
        output: Some(e),
    })
}

fn experiments(api: &Api, cmd: ExperimentCmd) -> Result<Output, Failure> {
    match cmd {
        ExperimentCmd::Create {
            project_id,
            dataset_version,
            target,
            task,
            max_models,
            max_runtime_secs,
            stopping_metric,
            seed,
            name,
            model_name,
            wait,
            timeout,
            format,
        } => {
            let mut body = Map::new();
            body.insert("dataset_version_id".into(), json!(dataset_version));
            body.insert("target".into(), json!(target));
            put(&mut body, "task", task);
            put(&mut body, "max_models", max_models);
            put(&mut body, "max_runtime_secs", max_runtime_secs);
            put(&mut body, "stopping_metric", stopping_metric);
            put(&mut body, "seed", seed);
            put(&mut body, "name", name);
            put(&mut body, "model_name", model_name);
            let e = api.post(
                &format!("/projects/{project_id}/experiments"),
                Value::Object(body),
            )?;
            if !wait {
                return Ok(Output::Json(e));
            }
            let id = e["id"].as_str().unwrap_or_default().to_string();
            let done = wait_experiment(api, &id, timeout)?;
            experiment_result(done, format)
        }
        ExperimentCmd::Wait {
            experiment_id,
            timeout,
            format,
        } => {
            let done = wait_experiment(api, &experiment_id, timeout)?;
            experiment_result(done, format)
        }
        ExperimentCmd::Get {
            experiment_id,
            format,
        } => {
            let e = api.get(&format!("/experiments/{experiment_id}"))?;
            Ok(if table_wanted(format) {
                Output::Text(experiment_table(&e))
            } else {
                Output::Json(e)
            })
        }
        ExperimentCmd::List { project_id, format } => {
            let list = api.get(&format!("/projects/{project_id}/experiments"))?;
            Ok(if table_wanted(format) {
                Output::Text(experiments_table(&list))
            } else {
                Output::Json(list)
            })
        }
        ExperimentCmd::Cancel { experiment_id } => Ok(Output::Json(
            api.post(&format!("/experiments/{experiment_id}/cancel"), json!({}))?,
        )),
    }
}

// --- deployments -------------------------------------------------------------------------------

fn deployments(api: &Api, cmd: DeploymentCmd) -> Result<Value, String> {
    match cmd {
        DeploymentCmd::Create {
            project_id,
            model,
            name,
            description,
            strategy,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("model_id".into(), json!(model));
            put(&mut body, "description", description);
            strategy.into_body(&mut body);
            api.post(
                &format!("/projects/{project_id}/deployments"),
                Value::Object(body),
            )
        }
        DeploymentCmd::Rollout {
            deployment_id,
            model,
            strategy,
        } => {
            let mut body = Map::new();
            body.insert("model_id".into(), json!(model));
            strategy.into_body(&mut body);
            api.post(
                &format!("/deployments/{deployment_id}/rollouts"),
                Value::Object(body),
            )
        }
        DeploymentCmd::List { project_id } => {
            api.get(&format!("/projects/{project_id}/deployments"))
        }
        DeploymentCmd::Get { deployment_id } => api.get(&format!("/deployments/{deployment_id}")),
        DeploymentCmd::Predict {
            deployment_id,
            rows,
            entity_id,
        } => {
            let rows = match json_arg("--rows", &rows)? {
                Value::Object(o) if !o.contains_key("rows") && !o.contains_key("columns") => {
                    json!({"rows": [o]})
                }
                Value::Object(o) => Value::Object(o),
                Value::Array(a) => json!({"rows": a}),
                _ => return Err("--rows must be a JSON object or an array of objects".into()),
            };
            let mut body = rows;
            if let Some(e) = entity_id {
                body["entity_id"] = json!(e);
            }
            api.post(&format!("/deployments/{deployment_id}/predict"), body)
        }
        DeploymentCmd::Feedback {
            deployment_id,
            labels,
        } => {
            let labels = match json_arg("--labels", &labels)? {
                Value::Object(o) if o.contains_key("labels") => Value::Object(o),
                Value::Object(o) => {
                    let list: Vec<Value> = o
                        .into_iter()
                        .map(
                            |(request_id, label)| json!({"request_id": request_id, "label": label}),
                        )
                        .collect();
                    json!({"labels": list})
                }
                Value::Array(a) => json!({"labels": a}),
                _ => {
                    return Err(
                        "--labels must be a JSON object {request_id: label} or a list".into(),
                    )
                }
            };
            api.post(&format!("/deployments/{deployment_id}/feedback"), labels)
        }
        DeploymentCmd::Metrics {
            deployment_id,
            window_minutes,
            windows,
            since,
            until,
        } => api.get_q(
            &format!("/deployments/{deployment_id}/metrics"),
            vec![
                ("window_minutes", window_minutes.map(|v| v.to_string())),
                ("windows", windows.map(|v| v.to_string())),
                ("since", since),
                ("until", until),
            ],
        ),
        DeploymentCmd::Drift {
            deployment_id,
            window_minutes,
            since,
            until,
            reference,
            alpha,
            psi_threshold,
        } => api.get_q(
            &format!("/deployments/{deployment_id}/drift"),
            vec![
                ("window_minutes", window_minutes.map(|v| v.to_string())),
                ("since", since),
                ("until", until),
                ("reference_dataset_version_id", reference),
                ("alpha", alpha.map(|v| v.to_string())),
                ("psi_threshold", psi_threshold.map(|v| v.to_string())),
            ],
        ),
        DeploymentCmd::ConceptDrift {
            deployment_id,
            metric,
            window_minutes,
            windows,
            tolerance,
        } => api.get_q(
            &format!("/deployments/{deployment_id}/concept-drift"),
            vec![
                ("metric", metric),
                ("window_minutes", window_minutes.map(|v| v.to_string())),
                ("windows", windows.map(|v| v.to_string())),
                ("tolerance", tolerance.map(|v| v.to_string())),
            ],
        ),
        DeploymentCmd::Promote {
            deployment_id,
            reason,
        } => api.post(
            &format!("/deployments/{deployment_id}/promote"),
            json!({ "reason": reason }),
        ),
        DeploymentCmd::Rollback {
            deployment_id,
            reason,
        } => api.post(
            &format!("/deployments/{deployment_id}/rollback"),
            json!({ "reason": reason }),
        ),
        DeploymentCmd::Pause { deployment_id } => {
            api.post(&format!("/deployments/{deployment_id}/pause"), json!({}))
        }
        DeploymentCmd::Resume { deployment_id } => {
            api.post(&format!("/deployments/{deployment_id}/resume"), json!({}))
        }
        DeploymentCmd::Events { deployment_id } => {
            api.get(&format!("/deployments/{deployment_id}/events"))
        }
        DeploymentCmd::Notifications { deployment_id } => {
            api.get(&format!("/deployments/{deployment_id}/notifications"))
        }
    }
}

// --- alerts ------------------------------------------------------------------------------------

fn alerts(api: &Api, cmd: AlertCmd) -> Result<Value, String> {
    match cmd {
        AlertCmd::Create {
            deployment,
            name,
            metric,
            condition,
            threshold,
            channels,
            evaluation_window_minutes,
            cooldown_minutes,
            disabled,
        } => {
            let channels = channels
                .iter()
                .map(|c| match json_arg("--channel", c)? {
                    v @ Value::Object(_) => Ok(v),
                    _ => Err(format!(
                        "--channel must be a JSON object such as {{\"type\": \"webhook\", \"url\": \"https://…\"}}, got {c}"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut body = Map::new();
            body.insert("deployment_id".into(), json!(deployment));
            body.insert("name".into(), json!(name));
            body.insert("metric".into(), json!(metric));
            body.insert("condition".into(), json!(condition));
            body.insert("threshold".into(), json!(threshold));
            body.insert("channels".into(), json!(channels));
            put(
                &mut body,
                "evaluation_window_minutes",
                evaluation_window_minutes,
            );
            put(&mut body, "cooldown_minutes", cooldown_minutes);
            if disabled {
                body.insert("enabled".into(), json!(false));
            }
            api.post("/alerts", Value::Object(body))
        }
        AlertCmd::List {
            project_id,
            deployment,
        } => api.get_q(
            "/alerts",
            vec![
                ("project_id", Some(project_id)),
                ("deployment_id", deployment),
            ],
        ),
        AlertCmd::Get { alert_id } => api.get(&format!("/alerts/{alert_id}")),
        AlertCmd::History { alert_id } => api.get(&format!("/alerts/{alert_id}/history")),
        AlertCmd::Deliveries { alert_id } => api.get(&format!("/alerts/{alert_id}/deliveries")),
        AlertCmd::Delete { alert_id } => api
            .delete(&format!("/alerts/{alert_id}"))
            .map(|_| json!({"deleted": alert_id})),
    }
}

// --- retraining --------------------------------------------------------------------------------

const RUN_DONE: [&str; 5] = [
    "promoted",
    "rolled_back",
    "awaiting_review",
    "rejected",
    "failed",
];

/// Polls a run (through its policy's runs) until it ends, printing each step on stderr.
fn wait_run(
    api: &Api,
    policy_id: &str,
    run_id: &str,
    timeout: Option<f64>,
) -> Result<Value, String> {
    let started = Instant::now();
    let mut last = String::new();
    let mut pause = Duration::from_millis(200);
    loop {
        let runs = api.get(&format!("/retraining/policies/{policy_id}/runs"))?;
        let run = runs
            .as_array()
            .and_then(|a| a.iter().find(|r| r["id"] == run_id))
            .cloned()
            .ok_or_else(|| format!("not_found: policy {policy_id} has no run {run_id}"))?;
        let status = run["status"].as_str().unwrap_or("").to_string();
        if status != last {
            eprintln!(
                "{run_id}: {status} after {}s{}",
                started.elapsed().as_secs(),
                run["detail"]
                    .as_str()
                    .filter(|d| !d.is_empty())
                    .map(|d| format!(" — {d}"))
                    .unwrap_or_default()
            );
            last = status.clone();
        }
        if RUN_DONE.contains(&status.as_str()) {
            return Ok(run);
        }
        if let Some(t) = timeout {
            if started.elapsed().as_secs_f64() >= t {
                return Err(format!(
                    "timeout: run {run_id} is still {status} after {t}s; it keeps going on the server \
                     (`coreplex retraining runs {policy_id}` shows it)"
                ));
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

fn retraining(api: &Api, cmd: RetrainingCmd) -> Result<Value, String> {
    match cmd {
        RetrainingCmd::CreatePolicy {
            deployment,
            trigger,
            drift_metric,
            drift_threshold,
            drift_window_minutes,
            schedule,
            day_of_week,
            day_of_month,
            hour_utc,
            performance_metric,
            performance_threshold,
            evaluation_window_days,
            training_config,
            max_models,
            max_runtime_secs,
            stopping_metric,
            seed,
            auto_promote,
            target,
            include_production_data,
            production_window_days,
            cooldown_minutes,
            disabled,
        } => {
            let mut tc = match training_config {
                Some(t) => match json_arg("--training-config", &t)? {
                    Value::Object(o) => o,
                    _ => return Err("--training-config must be a JSON object".into()),
                },
                None => Map::new(),
            };
            put(&mut tc, "max_models", max_models);
            put(&mut tc, "max_runtime_secs", max_runtime_secs);
            put(&mut tc, "stopping_metric", stopping_metric);
            put(&mut tc, "seed", seed);
            let mut body = Map::new();
            body.insert("deployment_id".into(), json!(deployment));
            body.insert("trigger".into(), json!(trigger));
            put(&mut body, "drift_metric", drift_metric);
            put(&mut body, "drift_threshold", drift_threshold);
            put(&mut body, "drift_window_minutes", drift_window_minutes);
            put(&mut body, "schedule", schedule);
            put(&mut body, "day_of_week", day_of_week);
            put(&mut body, "day_of_month", day_of_month);
            put(&mut body, "hour_utc", hour_utc);
            put(&mut body, "performance_metric", performance_metric);
            put(&mut body, "performance_threshold", performance_threshold);
            put(&mut body, "evaluation_window_days", evaluation_window_days);
            if !tc.is_empty() {
                body.insert("training_config".into(), Value::Object(tc));
            }
            body.insert("auto_promote".into(), json!(auto_promote));
            put(&mut body, "target", target);
            body.insert(
                "include_production_data".into(),
                json!(include_production_data),
            );
            put(&mut body, "production_window_days", production_window_days);
            put(&mut body, "cooldown_minutes", cooldown_minutes);
            if disabled {
                body.insert("enabled".into(), json!(false));
            }
            api.post("/retraining/policies", Value::Object(body))
        }
        RetrainingCmd::List {
            project_id,
            deployment,
        } => api.get_q(
            "/retraining/policies",
            vec![
                ("project_id", Some(project_id)),
                ("deployment_id", deployment),
            ],
        ),
        RetrainingCmd::Get { policy_id } => api.get(&format!("/retraining/policies/{policy_id}")),
        RetrainingCmd::Runs { policy_id } => {
            api.get(&format!("/retraining/policies/{policy_id}/runs"))
        }
        RetrainingCmd::Trigger {
            policy_id,
            wait,
            timeout,
        } => {
            let run = api.post(
                &format!("/retraining/policies/{policy_id}/trigger"),
                json!({}),
            )?;
            if !wait {
                return Ok(run);
            }
            let run_id = run["id"].as_str().unwrap_or_default().to_string();
            wait_run(api, &policy_id, &run_id, timeout)
        }
        RetrainingCmd::Enable { policy_id } => api.patch(
            &format!("/retraining/policies/{policy_id}"),
            json!({"enabled": true}),
        ),
        RetrainingCmd::Disable { policy_id } => api.patch(
            &format!("/retraining/policies/{policy_id}"),
            json!({"enabled": false}),
        ),
        RetrainingCmd::Delete { policy_id } => api
            .delete(&format!("/retraining/policies/{policy_id}"))
            .map(|_| json!({"deleted": policy_id})),
    }
}

fn exec(cmd: MlCommand) -> Result<Output, Failure> {
    match cmd {
        MlCommand::Experiments { conn, cmd } => experiments(&conn.api()?, cmd),
        MlCommand::Deployments { conn, cmd } => Ok(Output::Json(deployments(&conn.api()?, cmd)?)),
        MlCommand::Alerts { conn, cmd } => Ok(Output::Json(alerts(&conn.api()?, cmd)?)),
        MlCommand::Retraining { conn, cmd } => Ok(Output::Json(retraining(&conn.api()?, cmd)?)),
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn run(cmd: MlCommand) -> ExitCode {
    match exec(cmd) {
        Ok(Output::Json(v)) => {
            print_json(&v);
            ExitCode::SUCCESS
        }
        Ok(Output::Text(t)) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            if let Some(v) = &f.output {
                print_json(v);
            }
            eprintln!("error: {}", f.message);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaderboard_table_puts_the_ranking_metric_first() {
        let e = json!({
            "id": "exp_1", "name": "churn → churned", "status": "succeeded", "progress": 1.0,
            "best_model_id": "model_a",
            "leaderboard": {"task": "binary_classification", "stopping_metric": "auc",
                "ranked_by": "holdout", "train_rows": 480, "holdout_rows": 120, "elapsed_secs": 1.25,
                "ignored_columns": [{"name": "id", "reason": "unique per row"}],
                "models": [
                    {"rank": 1, "model_id": "model_a", "name": "gbm_1", "family": "gbm",
                     "metrics": {"logloss": 0.3, "auc": 0.95}, "training_secs": 0.5},
                    {"rank": 2, "model_id": "model_b", "name": "glm_1", "family": "glm",
                     "metrics": {"logloss": 0.6, "auc": 0.7}, "training_secs": 0.08}]}
        });
        let t = experiment_table(&e);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("experiment exp_1 \"churn → churned\": succeeded"));
        assert!(lines[1].contains("ranked by auc (holdout)"), "{t}");
        assert!(lines[2].contains("id (unique per row)"), "{t}");
        assert_eq!(lines[3], "best model: model_a");
        let header: Vec<&str> = lines[4].split_whitespace().collect();
        assert_eq!(
            header,
            [
                "rank",
                "model_id",
                "name",
                "family",
                "auc",
                "logloss",
                "train_secs"
            ]
        );
        let first: Vec<&str> = lines[5].split_whitespace().collect();
        assert_eq!(
            first,
            ["1", "model_a", "gbm_1", "gbm", "0.95000", "0.30000", "0.50"]
        );
        // Columns line up.
        assert_eq!(lines[4].find("auc"), lines[5].find("0.95000"));
    }

    #[test]
    fn a_failed_experiment_is_an_error_with_the_servers_reason() {
        let e = json!({"id": "exp_2", "status": "failed", "message": "", "error": "the target column `y` has only one class"});
        let Err(f) = experiment_result(e, Format::Json) else {
            panic!("a failed experiment is an error")
        };
        assert_eq!(
            f.message,
            "experiment_failed: experiment exp_2 failed: the target column `y` has only one class"
        );
        assert!(f.output.is_some());
    }
}
