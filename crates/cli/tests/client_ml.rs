//! The real binary's model-lifecycle commands against `coreplex serve`: an AutoML experiment with
//! `--wait` (progress on stderr, the leaderboard on stdout), a failing experiment, a deployment and its
//! predictions, an alert rule, and a schedule retraining policy whose run is started by hand.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_coreplex");

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

/// A running server process, killed when dropped.
struct Server {
    child: Child,
    url: String,
    admin_key: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env("COREPLEX_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("coreplex runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin_key = None;
    let url = loop {
        let line = lines
            .next()
            .expect("server prints where it listens")
            .unwrap();
        if let Some(u) = line.strip_prefix("CorePlexML listening on ") {
            break u.to_string();
        }
        if line.starts_with("admin API key") {
            admin_key = line.rsplit(": ").next().map(str::to_string);
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        url,
        admin_key: admin_key.expect("first start prints the admin key"),
    }
}

/// Runs a client command: (success, stdout as JSON or Null, stdout, stderr).
fn cli(s: &Server, args: &[&str]) -> (bool, Value, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("COREPLEX_URL", &s.url)
        .env("COREPLEX_API_KEY", &s.admin_key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Runs a client command that must succeed and returns its JSON.
fn ok(s: &Server, args: &[&str]) -> Value {
    let (ok, v, stdout, stderr) = cli(s, args);
    assert!(ok, "{args:?} failed:\n{stderr}\n{stdout}");
    v
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

#[test]
fn experiments_deployments_alerts_and_retraining_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path());
    let project = id(&ok(&s, &["projects", "create", "churn-cli"]));
    let csv = fixtures().join("churn.csv");
    let data = ok(
        &s,
        &[
            "datasets",
            "upload",
            &project,
            csv.to_str().unwrap(),
            "--name",
            "churn",
        ],
    );
    let dsv = id(&data);

    // An experiment with --wait: progress lines on stderr (not a terminal here), JSON on stdout.
    let (success, exp, stdout, stderr) = cli(
        &s,
        &[
            "experiments",
            "create",
            &project,
            "--dataset-version",
            &dsv,
            "--target",
            "churned",
            "--max-models",
            "2",
            "--max-runtime-secs",
            "20",
            "--stopping-metric",
            "AUC",
            "--seed",
            "3",
            "--wait",
            "--timeout",
            "120",
        ],
    );
    assert!(success, "{stderr}\n{stdout}");
    let exp_id = id(&exp);
    assert_eq!(exp["status"], "succeeded", "{exp}");
    assert!(
        !stderr.contains('\r'),
        "no bar redrawing off a terminal: {stderr:?}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("{exp_id}: succeeded 100% after ")),
        "{stderr}"
    );
    let board = &exp["leaderboard"];
    assert_eq!(board["stopping_metric"], "auc");
    let models = board["models"].as_array().unwrap();
    assert!(models.len() >= 2);
    let best = exp["best_model_id"].as_str().unwrap().to_string();
    assert_eq!(models[0]["model_id"], best.as_str());
    assert_eq!(exp["config"]["max_models"], 2);
    assert_eq!(exp["config"]["seed"], 3);
    let model = ok(&s, &["models", "get", &best]);
    assert_eq!(model["status"], "candidate");
    assert_eq!(model["lineage"]["dataset_version_id"], dsv.as_str());
    assert_eq!(
        model["lineage"]["experiment"]["experiment_id"],
        exp_id.as_str()
    );

    // The leaderboard as a table, and the project's experiments.
    let (success, _, table, stderr) =
        cli(&s, &["experiments", "get", &exp_id, "--format", "table"]);
    assert!(success, "{stderr}");
    let header = table
        .lines()
        .find(|l| l.starts_with("rank"))
        .expect("a table header");
    assert_eq!(
        header.split_whitespace().take(5).collect::<Vec<_>>(),
        ["rank", "model_id", "name", "family", "auc"]
    );
    assert!(table.contains(&format!("best model: {best}")), "{table}");
    let list = ok(&s, &["experiments", "list", &project]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (success, _, _, stderr) = cli(&s, &["experiments", "cancel", &exp_id]);
    assert!(
        !success && stderr.starts_with("error: conflict (409): "),
        "{stderr}"
    );

    // A single-class target fails with the trainer's reason, and exit status 1.
    let one = dir.path().join("one_class.csv");
    std::fs::write(
        &one,
        (0..40).fold("a,b,y\n".to_string(), |acc, i| {
            acc + &format!("{i},{},1\n", i % 3)
        }),
    )
    .unwrap();
    let one_dsv = id(&ok(
        &s,
        &[
            "datasets",
            "upload",
            &project,
            one.to_str().unwrap(),
            "--name",
            "one",
        ],
    ));
    let (success, failed, _, stderr) = cli(
        &s,
        &[
            "experiments",
            "create",
            &project,
            "--dataset-version",
            &one_dsv,
            "--target",
            "y",
            "--task",
            "binary_classification",
            "--max-models",
            "2",
            "--max-runtime-secs",
            "20",
            "--wait",
        ],
    );
    assert!(!success);
    assert_eq!(failed["status"], "failed");
    let err = stderr.lines().last().unwrap();
    assert!(
        err.starts_with("error: experiment_failed: experiment exp_")
            && err.contains("only one class"),
        "{stderr}"
    );
    // An unknown column is the server's 422 naming the field.
    let (success, _, _, stderr) = cli(
        &s,
        &[
            "experiments",
            "create",
            &project,
            "--dataset-version",
            &dsv,
            "--target",
            "nope",
        ],
    );
    assert!(
        !success && stderr.starts_with("error: validation_failed (422): target"),
        "{stderr}"
    );

    // A deployment of the best model, predictions and monitoring.
    let dep = ok(
        &s,
        &[
            "deployments",
            "create",
            &project,
            "--model",
            &best,
            "--name",
            "churn",
            "--strategy",
            "direct",
        ],
    );
    let dep_id = id(&dep);
    assert_eq!(dep["serving_model_id"], best.as_str());
    assert_eq!(dep["status"], "active");
    let rows = json!([
        {"tenure": 0.1, "monthly_charges": -1.0, "support_calls": 2.0, "usage_trend": -1.5},
        {"tenure": 1.2, "monthly_charges": 0.3, "support_calls": -0.5, "usage_trend": 0.8}
    ])
    .to_string();
    let out = ok(&s, &["deployments", "predict", &dep_id, "--rows", &rows]);
    assert_eq!(out["predictions"].as_array().unwrap().len(), 2);
    assert_eq!(out["model_id"], best.as_str());
    let one_row =
        r#"{"tenure": 0.1, "monthly_charges": -1.0, "support_calls": 2.0, "usage_trend": -1.5}"#;
    let out = ok(&s, &["deployments", "predict", &dep_id, "--rows", one_row]);
    let request_id = out["request_ids"][0].as_str().unwrap().to_string();
    let fb = ok(
        &s,
        &[
            "deployments",
            "feedback",
            &dep_id,
            "--labels",
            &json!({ request_id: 1 }).to_string(),
        ],
    );
    assert_eq!(fb["accepted"], 1);
    let metrics = ok(&s, &["deployments", "metrics", &dep_id]);
    assert_eq!(metrics["deployment_id"], dep_id.as_str());
    let drift = ok(
        &s,
        &["deployments", "drift", &dep_id, "--window-minutes", "60"],
    );
    assert!(drift["features"].as_array().is_some(), "{drift}");
    let events = ok(&s, &["deployments", "events", &dep_id]);
    assert!(!events.as_array().unwrap().is_empty());
    let listed = ok(&s, &["deployments", "list", &project]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(ok(&s, &["deployments", "get", &dep_id])["name"], "churn");
    let (success, _, _, stderr) = cli(&s, &["deployments", "predict", &dep_id, "--rows", "[1,"]);
    assert!(
        !success && stderr.starts_with("error: --rows is not JSON"),
        "{stderr}"
    );

    // An alert rule.
    let alert = ok(
        &s,
        &[
            "alerts",
            "create",
            "--deployment",
            &dep_id,
            "--name",
            "drift",
            "--metric",
            "data_drift_score",
            "--condition",
            "greater_than",
            "--threshold",
            "0.15",
            "--channel",
            r#"{"type": "webhook", "url": "https://api.company.com/alerts"}"#,
            "--cooldown-minutes",
            "240",
        ],
    );
    let alert_id = id(&alert);
    assert_eq!(alert["cooldown_minutes"], 240);
    assert!(alert["signing_secrets"][0]["secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    let alerts = ok(&s, &["alerts", "list", &project, "--deployment", &dep_id]);
    assert_eq!(alerts[0]["id"], alert_id.as_str());
    assert_eq!(ok(&s, &["alerts", "history", &alert_id])["state"], "ok");
    ok(&s, &["alerts", "delete", &alert_id]);
    let (success, _, _, stderr) = cli(&s, &["alerts", "get", &alert_id]);
    assert!(
        !success && stderr.starts_with("error: not_found (404)"),
        "{stderr}"
    );

    // A weekly retraining policy, as in the guide.
    let (success, _, _, stderr) = cli(
        &s,
        &[
            "retraining",
            "create-policy",
            "--deployment",
            &dep_id,
            "--trigger",
            "schedule",
            "--schedule",
            "weekly",
            "--day-of-week",
            "sunday",
            "--hour-utc",
            "24",
        ],
    );
    assert!(!success);
    assert!(
        stderr
            .starts_with("error: validation_failed (422): hour_utc: 24 is not an hour of the day"),
        "{stderr}"
    );
    let policy = ok(
        &s,
        &[
            "retraining",
            "create-policy",
            "--deployment",
            &dep_id,
            "--trigger",
            "schedule",
            "--schedule",
            "weekly",
            "--day-of-week",
            "sunday",
            "--hour-utc",
            "3",
            "--max-models",
            "2",
            "--max-runtime-secs",
            "20",
            "--stopping-metric",
            "AUC",
        ],
    );
    let pol = id(&policy);
    assert_eq!(policy["trigger"], "schedule");
    assert_eq!(policy["config"]["day_of_week"], "sunday");
    assert_eq!(policy["config"]["hour_utc"], 3);
    assert_eq!(
        policy["training_config"],
        json!({"max_models": 2, "max_runtime_secs": 20.0, "stopping_metric": "AUC"})
    );
    assert_eq!(policy["auto_promote"], false);
    assert!(policy["next_run_at"]
        .as_str()
        .unwrap()
        .contains("T03:00:00"));
    let policies = ok(
        &s,
        &["retraining", "list", &project, "--deployment", &dep_id],
    );
    assert_eq!(policies[0]["id"], pol.as_str());
    assert_eq!(ok(&s, &["retraining", "get", &pol])["id"], pol.as_str());

    // A run by hand: trained, compared, and left for review.
    let (success, run, stdout, stderr) = cli(
        &s,
        &["retraining", "trigger", &pol, "--wait", "--timeout", "90"],
    );
    assert!(success, "{stderr}\n{stdout}");
    assert_eq!(run["status"], "awaiting_review", "{run}");
    assert_eq!(run["parent_model_id"], best.as_str());
    assert!(
        stderr.lines().next().unwrap().contains(": training after "),
        "{stderr}"
    );
    assert!(stderr.contains(": awaiting_review after "), "{stderr}");
    let runs = ok(&s, &["retraining", "runs", &pol]);
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["candidate_model_id"], run["candidate_model_id"]);
    assert_eq!(ok(&s, &["retraining", "disable", &pol])["enabled"], false);
    assert_eq!(ok(&s, &["retraining", "enable", &pol])["enabled"], true);
    ok(&s, &["retraining", "delete", &pol]);
    let (success, _, _, stderr) = cli(&s, &["retraining", "get", &pol]);
    assert!(
        !success && stderr.starts_with("error: not_found (404)"),
        "{stderr}"
    );
}

/// On a terminal, `--wait` draws a progress bar on stderr (redrawn in place) and prints the leaderboard
/// as a table. `script` gives the command a pseudo-terminal; without it the test has nothing to check.
#[test]
fn on_a_terminal_wait_draws_a_progress_bar_and_a_table() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("`script` is not installed; skipping the terminal check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path());
    let project = id(&ok(&s, &["projects", "create", "tty"]));
    let csv = fixtures().join("churn.csv");
    let dsv = id(&ok(
        &s,
        &[
            "datasets",
            "upload",
            &project,
            csv.to_str().unwrap(),
            "--name",
            "churn",
        ],
    ));
    let command = format!(
        "{BIN} experiments create {project} --dataset-version {dsv} --target churned \
         --max-models 2 --max-runtime-secs 20 --wait"
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("COREPLEX_URL", &s.url)
        .env("COREPLEX_API_KEY", &s.admin_key)
        .env("COLUMNS", "120")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    // stdout and stderr share the terminal: the bar, redrawn with \r, then the table.
    assert!(text.contains("\r\x1b[K"), "{text:?}");
    assert!(
        text.contains("[##############################] 100%"),
        "{text:?}"
    );
    assert!(text.contains("succeeded"), "{text:?}");
    let header = text
        .lines()
        .find(|l| l.starts_with("rank"))
        .unwrap_or_else(|| panic!("a leaderboard table: {text:?}"));
    assert!(
        header.contains("model_id") && header.contains("auc"),
        "{header}"
    );
}
