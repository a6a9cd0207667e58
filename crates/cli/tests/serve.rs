//! The real binary: `coreplex serve` start-up, the admin key, restarts, client commands, and two
//! servers sharing one PostgreSQL database without running a job twice.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_coreplex");

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

/// A running server process, killed when dropped.
struct Server {
    child: Child,
    url: String,
    admin_key: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
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
        admin_key,
    }
}

fn client(url: &str, key: &str, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("COREPLEX_URL", url)
        .env("COREPLEX_API_KEY", key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn missing_onnx_runtime_fails_start_up_saying_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--onnxruntime-lib",
            "/nonexistent/libonnxruntime.so",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ONNX Runtime library not found"), "{err}");
    assert!(err.contains("scripts/fetch-onnxruntime.sh"), "{err}");
}

#[test]
fn serve_bootstraps_an_admin_key_once_and_the_cli_drives_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let (url, key) = {
        let s = serve(dir.path(), &[]);
        let key = s
            .admin_key
            .clone()
            .expect("first start prints the admin key");
        let saved = std::fs::read_to_string(dir.path().join("admin.key")).unwrap();
        assert_eq!(saved.trim(), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("admin.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (ok, p, err) = client(&s.url, &key, &["projects", "create", "churn"]);
        assert!(ok, "{err}");
        let pid = p["id"].as_str().unwrap().to_string();
        let csv = fixtures().join("churn.csv");
        let (ok, v, err) = client(
            &s.url,
            &key,
            &[
                "datasets",
                "upload",
                &pid,
                csv.to_str().unwrap(),
                "--name",
                "churn",
            ],
        );
        assert!(ok, "{err}");
        assert_eq!(v["row_count"], 600);
        let onnx = fixtures().join("logreg.onnx");
        let meta =
            r#"{"feature_names": ["tenure", "monthly_charges", "support_calls", "usage_trend"]}"#;
        let (ok, m, err) = client(
            &s.url,
            &key,
            &[
                "models",
                "register",
                &pid,
                onnx.to_str().unwrap(),
                "--name",
                "churn",
                "--task",
                "binary_classification",
                "--metadata",
                meta,
            ],
        );
        assert!(ok, "{err}");
        let mid = m["id"].as_str().unwrap().to_string();
        let (ok, _, err) = client(&s.url, &key, &["models", "transition", &mid, "production"]);
        assert!(!ok);
        assert!(err.contains("conflict (409)"), "{err}");
        let out = dir.path().join("back.onnx");
        let (ok, _, err) = client(
            &s.url,
            &key,
            &["models", "download", &mid, out.to_str().unwrap()],
        );
        assert!(ok, "{err}");
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&onnx).unwrap());
        let (ok, audit, _) = client(&s.url, &key, &["audit", "--project", &pid]);
        assert!(ok);
        assert!(audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "model.register"));
        (s.url.clone(), key)
    };
    // A restart on the same data folder keeps everything and issues no new key.
    let s = serve(dir.path(), &["--log-json"]);
    assert!(s.admin_key.is_none());
    assert_ne!(s.url, url);
    let (ok, projects, _) = client(&s.url, &key, &["projects", "list"]);
    assert!(ok);
    assert_eq!(projects["items"][0]["name"], "churn");
    let (ok, _, err) = client(&s.url, "cpx_wrong", &["projects", "list"]);
    assert!(!ok && err.contains("unauthorized (401)"), "{err}");
}

#[test]
fn two_servers_on_one_postgres_database_never_run_the_same_job_twice() {
    let Ok(admin) = std::env::var("COREPLEX_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CI").map(|v| v != "true").unwrap_or(true),
            "CI must provide COREPLEX_TEST_DATABASE_URL"
        );
        eprintln!("note: COREPLEX_TEST_DATABASE_URL is not set; two-server test skipped");
        return;
    };
    // A fresh database for this test.
    let name = format!("cpxtwo{}", std::process::id());
    let status = Command::new("psql")
        .arg(&admin)
        .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
        .status();
    assert!(
        status.map(|s| s.success()).unwrap_or(false),
        "psql can create a database"
    );
    let db = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let d1 = tempfile::tempdir().unwrap();
    let artifacts = d1.path().join("shared-artifacts");
    let art = artifacts.to_str().unwrap();
    let a = serve(d1.path(), &["--database-url", &db, "--artifact-store", art]);
    let key = a.admin_key.clone().expect("the first server bootstraps");
    let d2 = tempfile::tempdir().unwrap();
    let b = serve(d2.path(), &["--database-url", &db, "--artifact-store", art]);
    assert!(
        b.admin_key.is_none(),
        "only one server bootstraps a shared database"
    );
    let (ok, p, err) = client(&a.url, &key, &["projects", "create", "shared"]);
    assert!(ok, "{err}");
    let pid = p["id"].as_str().unwrap().to_string();
    let csv = fixtures().join("churn.csv");
    let mut jobs = Vec::new();
    for i in 0..16 {
        let url = if i % 2 == 0 { &a.url } else { &b.url };
        let (ok, v, err) = client(
            url,
            &key,
            &[
                "datasets",
                "upload",
                &pid,
                csv.to_str().unwrap(),
                "--name",
                "churn",
            ],
        );
        assert!(ok, "{err}");
        jobs.push(v["profile_job_id"].as_str().unwrap().to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut workers = std::collections::BTreeSet::new();
    for job in &jobs {
        loop {
            let (_, j, _) = client(&a.url, &key, &["jobs", "get", job]);
            if j["status"] == "succeeded" {
                break;
            }
            assert!(Instant::now() < deadline, "job {job} did not finish: {j}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let http = reqwest::blocking::Client::new();
        let attempts: Value = http
            .get(format!("{}/api/v1/jobs/{job}/attempts", b.url))
            .bearer_auth(&key)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(
            attempts.as_array().unwrap().len(),
            1,
            "job {job} ran once: {attempts}"
        );
        workers.insert(attempts[0]["worker"].as_str().unwrap().to_string());
    }
    eprintln!("jobs were run by {} server(s)", workers.len());
}
