//! Monitoring and alerts end to end: live drift against the training profile, concept drift, alert
//! rules with windows and cooldowns, and real deliveries to HTTP and SMTP receivers.

use crate::helpers::*;
use crate::receivers::{HttpReceiver, SmtpReceiver};
use coreplex_server::{config::SmtpConfig, worker};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use sha2::Sha256;

const FEATURES: [&str; 4] = ["tenure", "monthly_charges", "support_calls", "usage_trend"];

fn rows() -> Vec<(Map<String, Value>, String)> {
    let text = std::fs::read_to_string(fixtures().join("churn.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            let row = FEATURES
                .iter()
                .zip(&v)
                .map(|(f, x)| (f.to_string(), json!(x.parse::<f64>().unwrap())))
                .collect();
            (row, v[4].to_string())
        })
        .collect()
}

/// A project with the churn dataset profiled and an hgb model trained on it, deployed.
async fn setup(t: &TestApp) -> (String, String, String) {
    let p = t.project("churn").await;
    let csv = std::fs::read(fixtures().join("churn.csv")).unwrap();
    let v = t.upload_csv(&p, "churn", &t.admin, csv).await.ok();
    t.drain().await;
    let lineage = json!({"dataset_version_id": v["id"], "validation_metrics": {"auc": 0.99}});
    let m = t
        .register(
            &p,
            "hgb.onnx",
            "churn",
            "binary_classification",
            &t.admin,
            json!({"lineage": lineage}),
        )
        .await
        .ok();
    let d = t
        .post(
            &format!("/api/v1/projects/{p}/deployments"),
            &t.admin,
            json!({"name": "churn-api", "model_id": m["id"]}),
        )
        .await
        .ok();
    (
        p,
        d["id"].as_str().unwrap().to_string(),
        m["id"].as_str().unwrap().to_string(),
    )
}

/// Sends `n` rows, shifting `tenure` by `shift`; labels them (flipped when `flip`).
async fn send(t: &TestApp, dep: &str, n: usize, shift: f64, flip: bool) {
    send_batched(t, dep, n, shift, flip, 50).await
}

/// [`send`] with `batch` rows per request (the traffic split picks a variant per request).
async fn send_batched(t: &TestApp, dep: &str, n: usize, shift: f64, flip: bool, batch: usize) {
    let all = rows();
    let mut labels = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(batch) {
        let batch: Vec<Map<String, Value>> = chunk
            .iter()
            .map(|i| {
                let mut r = all[i % all.len()].0.clone();
                r["tenure"] = json!(r["tenure"].as_f64().unwrap() + shift);
                r
            })
            .collect();
        let r = t
            .post(
                &format!("/api/v1/deployments/{dep}/predict"),
                &t.admin,
                json!({"rows": batch}),
            )
            .await
            .ok();
        for (k, i) in chunk.iter().enumerate() {
            let truth = &all[i % all.len()].1;
            let label = if flip {
                if truth == "1" {
                    "0"
                } else {
                    "1"
                }
            } else {
                truth.as_str()
            };
            labels.push(json!({"request_id": r["request_ids"][k], "label": label}));
        }
    }
    t.post(
        &format!("/api/v1/deployments/{dep}/feedback"),
        &t.admin,
        json!(labels),
    )
    .await
    .ok();
}

async fn tick(t: &TestApp) {
    worker::tick(&t.app.state).await.unwrap();
}

#[tokio::test]
async fn live_drift_compares_traffic_with_the_training_profile() {
    let t = spawn_app().await;
    let (_, dep, _) = setup(&t).await;
    send(&t, &dep, 400, 0.0, false).await;
    let report = t
        .get(
            &format!("/api/v1/deployments/{dep}/drift?window_minutes=30"),
            &t.admin,
        )
        .await
        .ok();
    assert_eq!(report["features_evaluated"], 4, "{report}");
    assert_eq!(
        report["data_drift_score"], 0.0,
        "same distribution: {report}"
    );
    assert_eq!(report["current_rows"], 400);
    let tenure = &report["features"][0];
    assert_eq!(tenure["name"], "tenure");
    assert_eq!(tenure["test"], "ks");
    assert_eq!(tenure["histogram"]["edges"].as_array().unwrap().len(), 21);
    t.clock.advance_minutes(60);
    send(&t, &dep, 400, 2.5, false).await;
    let report = t
        .get(
            &format!("/api/v1/deployments/{dep}/drift?window_minutes=30"),
            &t.admin,
        )
        .await
        .ok();
    let f: Vec<(&str, bool)> = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["drifted"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        f,
        vec![
            ("tenure", true),
            ("monthly_charges", false),
            ("support_calls", false),
            ("usage_trend", false)
        ]
    );
    assert_eq!(report["data_drift_score"], 0.25);
    assert!(report["features"][0]["psi"].as_f64().unwrap() > 0.1);
    assert!(report["features"][0]["p_value"].as_f64().unwrap() < 1e-6);
    // A range covering both windows sees the mix.
    let since =
        coreplex_domain::clock::to_rfc3339(coreplex_domain::Clock::now(&t.clock) - 2 * 3_600_000);
    let both = t
        .get(
            &format!("/api/v1/deployments/{dep}/drift?since={since}"),
            &t.admin,
        )
        .await
        .ok();
    assert_eq!(both["current_rows"], 800);
    let bad = t
        .get(
            &format!("/api/v1/deployments/{dep}/drift?alpha=2"),
            &t.admin,
        )
        .await;
    assert_eq!(bad.message(), "alpha: must be in (0, 1)");
}

#[tokio::test]
async fn concept_drift_is_sustained_degradation_against_the_validation_metric() {
    let t = spawn_app().await;
    let (_, dep, _) = setup(&t).await;
    for _ in 0..2 {
        send(&t, &dep, 150, 0.0, true).await;
        t.clock.advance_minutes(60);
    }
    send(&t, &dep, 150, 0.0, false).await;
    let r = t
        .get(
            &format!("/api/v1/deployments/{dep}/concept-drift?window_minutes=60&windows=3"),
            &t.admin,
        )
        .await
        .ok();
    assert_eq!(r["validation_value"], 0.99);
    assert_eq!(r["degraded_windows"], 2, "{r}");
    assert_eq!(r["drifted"], false, "one good window breaks the streak");
    t.clock.advance_minutes(60);
    send(&t, &dep, 150, 0.0, true).await;
    t.clock.advance_minutes(60);
    send(&t, &dep, 150, 0.0, true).await;
    t.clock.advance_minutes(60);
    send(&t, &dep, 150, 0.0, true).await;
    let r = t
        .get(
            &format!("/api/v1/deployments/{dep}/concept-drift?window_minutes=60&windows=3"),
            &t.admin,
        )
        .await
        .ok();
    assert_eq!(r["drifted"], true, "{r}");
    // A regression metric on a classifier is refused, naming the field.
    let r = t
        .get(
            &format!("/api/v1/deployments/{dep}/concept-drift?metric=rmse"),
            &t.admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.message().starts_with("metric: `rmse` does not apply"),
        "{}",
        r.message()
    );
}

#[tokio::test]
async fn a_drifted_stream_fires_the_cooldown_suppresses_and_recovery_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpReceiver::start().await;
    let port = smtp.port;
    let t = spawn_app_with(
        dir.path(),
        coreplex_domain::ManualClock::new(1_795_600_000_000),
        |c| {
            c.smtp = Some(SmtpConfig {
                host: "127.0.0.1".into(),
                port,
                username: Some("alerts".into()),
                password: Some("hunter2".into()),
                from: "CorePlexML <alerts@coreplex.local>".into(),
                tls: "none".into(),
            })
        },
    )
    .await;
    let (_, dep, _) = setup(&t).await;
    let slack = HttpReceiver::start(0).await;
    let hook = HttpReceiver::start(0).await;
    let created = t
        .post(
            "/api/v1/alerts",
            &t.admin,
            json!({
                "deployment_id": dep, "name": "Churn model drift alert", "metric": "data_drift_score",
                "condition": "greater_than", "threshold": 0.15,
                "channels": [{"type": "slack", "webhook_url": slack.url}, {"type": "email", "address": "ml-team@company.com"},
                             {"type": "webhook", "url": hook.url}],
                "evaluation_window_minutes": 60, "cooldown_minutes": 120
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let alert = created.body;
    let secret = alert["signing_secrets"][0]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let id = alert["id"].as_str().unwrap().to_string();
    // Secrets are never returned in clear.
    let shown = t.get(&format!("/api/v1/alerts/{id}"), &t.admin).await.ok();
    assert!(
        !shown.to_string().contains(&secret) && !shown.to_string().contains("/hook"),
        "{shown}"
    );
    assert!(shown.get("signing_secrets").is_none());

    // Hour 1: drifted traffic → fires, every channel gets one notification.
    send(&t, &dep, 300, 2.5, false).await;
    t.clock.advance_minutes(60);
    tick(&t).await;
    let h = t
        .get(&format!("/api/v1/alerts/{id}/history"), &t.admin)
        .await
        .ok();
    assert_eq!(h["state"], "firing");
    assert_eq!(h["events"][0]["kind"], "fired");
    assert_eq!(slack.bodies().len(), 1);
    assert!(slack.bodies()[0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Alert: Churn model drift alert on churn-api"));
    assert_eq!(hook.bodies().len(), 1);
    assert_eq!(hook.bodies()[0]["event"], "alert.firing");
    let msgs = smtp.messages.lock().unwrap().clone();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].0, vec!["ml-team@company.com".to_string()]);
    assert!(
        msgs[0]
            .1
            .contains("Subject: [CorePlexML] Alert: Churn model drift alert"),
        "{}",
        msgs[0].1
    );
    assert_eq!(smtp.auth_lines.lock().unwrap().len(), 1, "logged in");
    // The webhook's signature verifies with the documented recipe.
    let (headers, body) = hook.received.lock().unwrap()[0].clone();
    let ts = headers["x-coreplex-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&body);
    let want = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-coreplex-signature"].to_str().unwrap(), want);

    // Hour 2: still drifted, inside the 120 min cooldown → suppressed, nothing sent.
    send(&t, &dep, 300, 2.5, false).await;
    t.clock.advance_minutes(60);
    tick(&t).await;
    assert_eq!(slack.bodies().len(), 1, "the cooldown suppresses repeats");
    // Hour 3: back to normal → resolved, notified.
    send(&t, &dep, 300, 0.0, false).await;
    t.clock.advance_minutes(60);
    tick(&t).await;
    let h = t
        .get(&format!("/api/v1/alerts/{id}/history"), &t.admin)
        .await
        .ok();
    let kinds: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["fired", "suppressed", "resolved"]);
    assert_eq!(h["state"], "ok");
    assert_eq!(hook.bodies().len(), 2);
    assert_eq!(hook.bodies()[1]["event"], "alert.resolved");
    let deliveries = t
        .get(&format!("/api/v1/alerts/{id}/deliveries"), &t.admin)
        .await
        .ok();
    assert_eq!(deliveries.as_array().unwrap().len(), 6);
    assert!(deliveries
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["status"] == "delivered"));
    assert!(!deliveries.to_string().contains(&secret));
}

#[tokio::test]
async fn a_receiver_that_fails_three_times_then_recovers_gets_exactly_one_delivery() {
    let t = spawn_app().await;
    let (_, dep, _) = setup(&t).await;
    let flaky = HttpReceiver::start(3).await;
    let healthy = HttpReceiver::start(0).await;
    let a = t
        .post(
            "/api/v1/alerts",
            &t.admin,
            json!({"deployment_id": dep, "name": "volume", "metric": "requests", "condition": "greater_than", "threshold": 10,
                   "channels": [{"type": "webhook", "url": flaky.url}, {"type": "webhook", "url": healthy.url, "secret": "0123456789abcdef0123"}],
                   "evaluation_window_minutes": 600, "cooldown_minutes": 600}),
        )
        .await
        .ok();
    send(&t, &dep, 50, 0.0, false).await;
    tick(&t).await;
    assert_eq!(
        healthy.bodies().len(),
        1,
        "a failing channel does not block the others"
    );
    for _ in 0..4 {
        t.clock.advance_minutes(10);
        tick(&t).await;
    }
    assert_eq!(flaky.attempts.load(std::sync::atomic::Ordering::SeqCst), 4);
    assert_eq!(
        flaky.bodies().len(),
        1,
        "exactly one delivery after recovering"
    );
    let d = t
        .get(
            &format!("/api/v1/alerts/{}/deliveries", a["id"].as_str().unwrap()),
            &t.admin,
        )
        .await
        .ok();
    let flaky_d = d
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["attempts"] == 4)
        .unwrap()
        .clone();
    assert_eq!(flaky_d["status"], "delivered");
    assert_eq!(flaky_d["last_error"], "HTTP 500 from the receiver");
    assert_eq!(healthy.bodies().len(), 1, "no repeats inside the cooldown");
}

#[tokio::test]
async fn rollbacks_notify_through_the_alert_channels() {
    let t = spawn_app().await;
    let (p, dep, _) = setup(&t).await;
    let hook = HttpReceiver::start(0).await;
    t.post(
        "/api/v1/alerts",
        &t.admin,
        json!({"deployment_id": dep, "name": "quality", "metric": "auc", "condition": "less_than", "threshold": 0.8,
               "channels": [{"type": "webhook", "url": hook.url}]}),
    )
    .await
    .ok();
    let weak = t
        .register(
            &p,
            "weak.onnx",
            "churn",
            "binary_classification",
            &t.admin,
            json!({}),
        )
        .await
        .ok();
    t.post(&format!("/api/v1/projects/{p}/deployments"), &t.admin, json!({"name": "churn-api", "model_id": weak["id"],
        "strategy": "canary", "traffic_percentage": 50, "promotion_steps": [50, 100], "min_samples_per_step": 30})).await.ok();
    send_batched(&t, &dep, 200, 0.0, false, 1).await;
    tick(&t).await;
    let got = hook.bodies();
    let rb = got
        .iter()
        .find(|b| b["event"] == "deployment.rolled_back")
        .expect("rollback notified");
    assert_eq!(rb["model_id"], weak["id"]);
    assert!(rb["reason"]
        .as_str()
        .unwrap()
        .contains("worse than the baseline"));
    let n = t
        .get(
            &format!("/api/v1/deployments/{dep}/notifications"),
            &t.admin,
        )
        .await
        .ok();
    assert!(n
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["event"] == "deployment.rolled_back" && d["status"] == "delivered"));
}

#[tokio::test]
async fn alert_input_is_checked_field_by_field() {
    let t = spawn_app().await;
    let (_, dep, _) = setup(&t).await;
    let base = json!({"deployment_id": dep, "name": "x", "metric": "data_drift_score", "condition": "greater_than",
        "threshold": 0.1, "channels": [{"type": "email", "address": "a@b.c"}]});
    let cases = [
        ("metric", json!("vibes"), "metric: unknown metric `vibes`"),
        (
            "metric",
            json!("rmse"),
            "metric: `rmse` does not apply to a binary_classification deployment",
        ),
        (
            "condition",
            json!("above"),
            "condition: unknown condition `above`",
        ),
        (
            "channels",
            json!([{"type": "pager"}]),
            "channels[0].type: unknown channel type",
        ),
        (
            "channels",
            json!([{"type": "slack", "webhook_url": "not a url"}]),
            "channels[0].webhook_url: ",
        ),
        ("channels", json!([]), "channels: give at least one channel"),
        (
            "evaluation_window_minutes",
            json!(0),
            "evaluation_window_minutes: between 1 and 10080",
        ),
        (
            "deployment_id",
            json!("dep_nope"),
            "deployment_id: no deployment dep_nope",
        ),
    ];
    for (field, value, want) in cases {
        let mut body = base.clone();
        body[field] = value;
        let r = t.post("/api/v1/alerts", &t.admin, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(r.message().starts_with(want), "{field}: {}", r.message());
    }

    // A webhook URL needs a host.
    let mut body = base.clone();
    body["channels"] = json!([{"type": "webhook", "url": "https:///hooks/x"}]);
    let r = t.post("/api/v1/alerts", &t.admin, body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.message().starts_with("channels[0].url: "),
        "{}",
        r.message()
    );

    // Sending the channels back as a GET shows them (redacted) keeps the stored URL and secret.
    let url = "http://127.0.0.1:9/hooks/T0KEN-in-the-path";
    let secret = "s3cret-of-sixteen-chars";
    let mut body = base.clone();
    body["channels"] = json!([{"type": "webhook", "url": url, "secret": secret}]);
    let created = t.post("/api/v1/alerts", &t.admin, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let shown = t.get(&format!("/api/v1/alerts/{id}"), &t.admin).await.body;
    assert_eq!(shown["channels"][0]["url"], "http://127.0.0.1:9/…");
    assert!(!shown["channels"][0]["secret"]
        .as_str()
        .unwrap()
        .contains("s3cret"));
    let r = t
        .call(
            Method::PATCH,
            &format!("/api/v1/alerts/{id}"),
            &t.admin,
            Some(json!({"name": "renamed", "channels": shown["channels"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let org = t.get("/api/v1/projects", &t.admin).await.body["items"][0]["org_id"]
        .as_str()
        .map(str::to_string);
    let stored = match org {
        Some(org) => t
            .app
            .state
            .store
            .get_alert(&org, &id)
            .await
            .unwrap()
            .unwrap(),
        None => panic!("no project listed"),
    };
    assert_eq!(stored.name, "renamed");
    assert_eq!(stored.channels[0]["url"], url);
    assert_eq!(stored.channels[0]["secret"], secret);
    // A redacted value that stands for nothing stored is refused, naming the field.
    let r = t
        .call(
            Method::PATCH,
            &format!("/api/v1/alerts/{id}"),
            &t.admin,
            Some(json!({"channels": [{"type": "webhook", "url": "http://elsewhere.example/…"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.message().starts_with("channels[0].url: "),
        "{}",
        r.message()
    );
}
