//! A real server per test: fresh SQLite database and artifact folder in a temporary directory, a
//! manual clock, real HTTP on a random port. Background tasks are off: tests run jobs and ticks by hand.

use coreplex_domain::ManualClock;
use coreplex_server::{worker, Application, Config};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

pub struct TestApp {
    pub url: String,
    pub admin: String,
    pub http: reqwest::Client,
    pub app: Application,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

pub fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap()
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut t = spawn_app_in(dir.path(), ManualClock::new(1_795_600_000_000)).await;
    t.dir = dir;
    t
}

/// A server on an existing data folder (to restart one); `admin` is empty when the folder was
/// already bootstrapped.
pub async fn spawn_app_in(data: &std::path::Path, clock: ManualClock) -> TestApp {
    spawn_app_with(data, clock, |_| {}).await
}

/// A server with adjusted configuration (e.g. SMTP settings).
pub async fn spawn_app_with(
    data: &std::path::Path,
    clock: ManualClock,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    }
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_path_buf(),
        background: false,
        ..Config::default()
    };
    adjust(&mut config);
    let app = Application::build(config, Arc::new(clock.clone()))
        .await
        .expect("server starts");
    let admin = app.admin_key.clone().unwrap_or_default();
    TestApp {
        url: app.url(),
        admin,
        http: reqwest::Client::new(),
        app,
        clock,
        dir: tempfile::tempdir().unwrap(),
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
}

impl Resp {
    pub fn ok(self) -> Value {
        assert!(
            self.status.is_success(),
            "expected success, got {}: {}",
            self.status,
            self.body
        );
        self.body
    }
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub async fn call(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Resp {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        Resp {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }
    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, key, None).await
    }
    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::POST, path, key, Some(body)).await
    }

    pub async fn project(&self, name: &str) -> String {
        self.post("/api/v1/projects", &self.admin, json!({"name": name}))
            .await
            .ok()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn upload_csv(&self, project: &str, name: &str, key: &str, content: Vec<u8>) -> Resp {
        let r = self
            .http
            .post(format!("{}/api/v1/projects/{project}/datasets", self.url))
            .query(&[("name", name)])
            .bearer_auth(key)
            .header("content-type", "text/csv")
            .body(content)
            .send()
            .await
            .unwrap();
        let status = r.status();
        Resp {
            status,
            body: r.json().await.unwrap_or(Value::Null),
        }
    }

    /// Registers a fixture model; single-input fixtures get their feature names from expected.json.
    pub async fn register(
        &self,
        project: &str,
        fixture: &str,
        name: &str,
        task: &str,
        key: &str,
        extra: Value,
    ) -> Resp {
        let mut meta = json!({"name": name, "task": task});
        if let Some(f) = expected()[fixture]["features"].as_array() {
            if fixture != "pipeline.onnx" {
                meta["feature_names"] = json!(f);
            }
        }
        if let Value::Object(m) = extra {
            for (k, v) in m {
                meta[k] = v;
            }
        }
        let bytes = std::fs::read(fixtures().join(fixture)).unwrap();
        let form = reqwest::multipart::Form::new()
            .text("metadata", meta.to_string())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(fixture.to_string()),
            );
        let r = self
            .http
            .post(format!("{}/api/v1/projects/{project}/models", self.url))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        Resp {
            status,
            body: r.json().await.unwrap_or(Value::Null),
        }
    }

    /// Runs every due background job.
    pub async fn drain(&self) -> usize {
        worker::drain_jobs(&self.app.state).await.unwrap()
    }

    /// A key for `subject` with `role` in `project`.
    pub async fn member_key(&self, project: &str, subject: &str, role: &str) -> String {
        self.post(
            &format!("/api/v1/projects/{project}/members"),
            &self.admin,
            json!({"subject": subject, "role": role}),
        )
        .await
        .ok();
        self.post("/api/v1/keys", &self.admin, json!({"subject": subject}))
            .await
            .ok()["key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A second organization with its own admin key.
    pub async fn other_org(&self) -> String {
        let r = self
            .post("/api/v1/orgs", &self.admin, json!({"name": "other"}))
            .await
            .ok();
        r["admin_key"]["key"].as_str().unwrap().to_string()
    }

    /// Files in the artifact folder (not counting temporaries).
    pub fn artifacts(&self) -> Vec<String> {
        self.app.state.artifacts.list()
    }
}
