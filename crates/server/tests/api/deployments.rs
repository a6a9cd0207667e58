//! Serving and the four strategies, driven through their whole life on a manual clock with real models
//! and labelled traffic (labels are the true outcomes of tests/fixtures/models/churn.csv).

use crate::helpers::*;
use coreplex_server::worker;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

const FEATURES: [&str; 4] = ["tenure", "monthly_charges", "support_calls", "usage_trend"];

/// Rows of churn.csv with their true label.
fn churn_rows() -> Vec<(Map<String, Value>, String)> {
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

async fn model(t: &TestApp, p: &str, fixture: &str, name: &str) -> String {
    t.register(
        p,
        fixture,
        name,
        "binary_classification",
        &t.admin,
        json!({}),
    )
    .await
    .ok()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn deploy(
    t: &TestApp,
    p: &str,
    name: &str,
    model_id: &str,
    extra: Value,
) -> (StatusCode, Value) {
    let mut body = json!({"name": name, "model_id": model_id});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = t
        .post(&format!("/api/v1/projects/{p}/deployments"), &t.admin, body)
        .await;
    (r.status, r.body)
}

/// Sends `n` single-row requests (cycling through churn.csv from `offset`) and labels them all.
/// Returns (variant, model_id) per request.
async fn traffic(t: &TestApp, dep: &str, n: usize, offset: usize) -> Vec<(String, String)> {
    let rows = churn_rows();
    let mut out = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let (row, label) = &rows[(offset + i) % rows.len()];
        let r = t
            .post(
                &format!("/api/v1/deployments/{dep}/predict"),
                &t.admin,
                json!({"rows": [row]}),
            )
            .await
            .ok();
        labels.push(json!({"request_id": r["request_ids"][0], "label": label}));
        out.push((
            r["variant"].as_str().unwrap().to_string(),
            r["model_id"].as_str().unwrap().to_string(),
        ));
    }
    let fb = t
        .post(
            &format!("/api/v1/deployments/{dep}/feedback"),
            &t.admin,
            json!(labels),
        )
        .await
        .ok();
    assert_eq!(fb["accepted"], n);
    out
}

async fn tick(t: &TestApp) {
    worker::tick(&t.app.state).await.unwrap();
}

async fn get_dep(t: &TestApp, dep: &str) -> Value {
    t.get(&format!("/api/v1/deployments/{dep}"), &t.admin)
        .await
        .ok()
}

async fn event_kinds(t: &TestApp, dep: &str) -> Vec<String> {
    t.get(&format!("/api/v1/deployments/{dep}/events"), &t.admin)
        .await
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn status(t: &TestApp, model: &str) -> String {
    t.get(&format!("/api/v1/models/{model}"), &t.admin)
        .await
        .ok()["status"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn promotions(t: &TestApp, model: &str) -> Vec<String> {
    t.get(&format!("/api/v1/models/{model}/promotions"), &t.admin)
        .await
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["outcome"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn direct_deployment_serves_logs_takes_labels_and_reports_metrics() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let m = model(&t, &p, "hgb.onnx", "churn").await;
    let (code, d) = deploy(&t, &p, "churn-api", &m, json!({})).await;
    assert_eq!(code, StatusCode::CREATED, "{d}");
    assert_eq!(d["serving_model_id"], m.as_str());
    assert_eq!(
        d["traffic"],
        json!([{"model_id": m, "variant": "baseline", "percentage": 100.0}])
    );
    assert_eq!(
        status(&t, &m).await,
        "production",
        "a direct deployment makes the model production"
    );
    let dep = d["id"].as_str().unwrap();
    let exp = expected();
    let case = &exp["hgb.onnx"];
    let r = t
        .post(
            &format!("/api/v1/deployments/{dep}/predict"),
            &t.admin,
            json!({"rows": case["rows"], "request_id": "batch7"}),
        )
        .await
        .ok();
    assert_eq!(
        r["request_ids"],
        json!(["batch7-0", "batch7-1", "batch7-2", "batch7-3", "batch7-4"])
    );
    for i in 0..5 {
        assert_eq!(r["predictions"][i]["label"], case["labels"][i]);
        let p1 = r["predictions"][i]["probabilities"]["1"].as_f64().unwrap();
        assert!((p1 - case["probabilities"][i][1].as_f64().unwrap()).abs() < 1e-6);
    }
    // Columnar form gives the same answers.
    let mut cols = Map::new();
    for f in FEATURES {
        cols.insert(
            f.into(),
            json!(case["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[f].clone())
                .collect::<Vec<_>>()),
        );
    }
    let c = t
        .post(
            &format!("/api/v1/deployments/{dep}/predict"),
            &t.admin,
            json!({"columns": cols}),
        )
        .await
        .ok();
    assert_eq!(c["predictions"], r["predictions"]);
    // Bad input names the field and is not logged.
    let bad = t
        .post(
            &format!("/api/v1/deployments/{dep}/predict"),
            &t.admin,
            json!({"rows": [{"tenure": 1}]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.message(), "monthly_charges: missing feature");
    let bad = t
        .post(&format!("/api/v1/deployments/{dep}/predict"), &t.admin, json!({"rows": [{"tenure": "x", "monthly_charges": 1, "support_calls": 1, "usage_trend": 1}]}))
        .await;
    assert_eq!(
        bad.message(),
        "tenure: expected a number, got the text \"x\""
    );
    // Gradient-boosted trees route a null (missing) value; a linear model cannot, and that is bad
    // input rather than a made-up answer.
    let null_row = json!({"rows": [{"tenure": null, "monthly_charges": 1, "support_calls": 1, "usage_trend": 1}]});
    t.post(
        &format!("/api/v1/deployments/{dep}/predict"),
        &t.admin,
        null_row.clone(),
    )
    .await
    .ok();
    let lr = model(&t, &p, "logreg.onnx", "linear").await;
    let (_, lr_dep) = deploy(&t, &p, "linear-api", &lr, json!({})).await;
    let bad = t
        .post(
            &format!(
                "/api/v1/deployments/{}/predict",
                lr_dep["id"].as_str().unwrap()
            ),
            &t.admin,
            null_row,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(
        bad.message(),
        "tenure: missing value (null): this model cannot predict without it"
    );
    let bad = t
        .post(
            &format!("/api/v1/deployments/{dep}/feedback"),
            &t.admin,
            json!([{"request_id": "batch7-0", "label": "banana"}]),
        )
        .await;
    assert_eq!(
        bad.message(),
        "labels[0].label: `banana` is not a class of this deployment's model (0, 1)"
    );
    // Delayed labels: unknown ids are reported back.
    let fb = t
        .post(
            &format!("/api/v1/deployments/{dep}/feedback"),
            &t.admin,
            json!([{"request_id": "batch7-0", "label": 1}, {"request_id": "nope", "label": 0}]),
        )
        .await
        .ok();
    assert_eq!(fb, json!({"accepted": 1, "unknown_request_ids": ["nope"]}));
    traffic(&t, dep, 200, 0).await;
    t.clock.advance_minutes(5);
    let metrics = t
        .get(
            &format!("/api/v1/deployments/{dep}/metrics?window_minutes=60"),
            &t.admin,
        )
        .await
        .ok();
    let v = &metrics["windows"][0]["variants"][0];
    assert_eq!(v["requests"], 211);
    assert_eq!(v["labelled"], 201);
    assert!(v["quality"]["auc"].as_f64().unwrap() > 0.95, "{v}");
    assert!(v["latency_p99_ms"].as_f64().unwrap() > 0.0);
    let log = t
        .get(
            &format!("/api/v1/deployments/{dep}/predictions?limit=3"),
            &t.admin,
        )
        .await
        .ok();
    assert_eq!(log["items"][0]["request_id"], "batch7-0");
    assert_eq!(log["items"][0]["label"], "1");
    // The logged features are the request's row, value for value.
    assert_eq!(log["items"][0]["features"], case["rows"][0]);
    let prom = t
        .http
        .get(format!("{}/metrics", t.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        prom.contains(&format!(
            "coreplex_predict_requests_total{{deployment=\"{dep}\",variant=\"baseline\"}} 203"
        )),
        "{prom}"
    );
    assert!(prom.contains("coreplex_predict_latency_seconds_bucket"));
}

#[tokio::test]
async fn a_better_canary_is_promoted_through_every_step() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let old = model(&t, &p, "weak.onnx", "churn").await;
    let new = model(&t, &p, "hgb.onnx", "churn").await;
    let (_, d) = deploy(&t, &p, "churn-api", &old, json!({})).await;
    let dep = d["id"].as_str().unwrap().to_string();
    let cfg = json!({"strategy": "canary", "traffic_percentage": 20, "promotion_steps": [20, 50, 100],
        "min_samples_per_step": 30, "step_duration_minutes": 10, "rollback_threshold": 0.03, "auto_rollback": true});
    let (code, d) = deploy(&t, &p, "churn-api", &new, cfg).await;
    assert_eq!(code, StatusCode::OK, "{d}");
    assert_eq!(d["status"], "rolling_out");
    assert_eq!(
        d["traffic"][1],
        json!({"model_id": new, "variant": "canary", "percentage": 20.0})
    );
    assert_eq!(status(&t, &new).await, "staging");
    let mut seen = Vec::new();
    for step in 0..3 {
        let served = traffic(&t, &dep, 250, step * 250).await;
        let canary_share =
            served.iter().filter(|(v, _)| v == "canary").count() as f64 / served.len() as f64;
        seen.push(canary_share);
        tick(&t).await;
        assert_eq!(
            get_dep(&t, &dep).await["status"],
            "rolling_out",
            "steps wait for their time"
        );
        t.clock.advance_minutes(11);
        tick(&t).await;
    }
    assert!(
        (seen[0] - 0.2).abs() < 0.1 && (seen[1] - 0.5).abs() < 0.12,
        "traffic follows the steps: {seen:?}"
    );
    assert!((seen[2] - 1.0).abs() < 1e-9);
    let d = get_dep(&t, &dep).await;
    assert_eq!(d["status"], "active");
    assert_eq!(d["serving_model_id"], new.as_str());
    assert_eq!(d["previous_model_id"], old.as_str());
    let kinds = event_kinds(&t, &dep).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "step_advanced").count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"promoted".to_string()));
    assert_eq!(status(&t, &new).await, "production");
    assert_eq!(
        status(&t, &old).await,
        "archived",
        "the previous production version of the name is archived"
    );
    assert_eq!(promotions(&t, &new).await, vec!["promoted"]);
    let r = traffic(&t, &dep, 20, 0).await;
    assert!(r.iter().all(|(_, m)| m == &new));
}

#[tokio::test]
async fn a_worse_canary_is_rolled_back_and_the_baseline_serves_everything() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let good = model(&t, &p, "hgb.onnx", "churn").await;
    let worse = model(&t, &p, "weak.onnx", "churn").await;
    let (_, d) = deploy(&t, &p, "churn-api", &good, json!({})).await;
    let dep = d["id"].as_str().unwrap().to_string();
    let cfg = json!({"strategy": "canary", "traffic_percentage": 25, "promotion_steps": [25, 100],
        "min_samples_per_step": 30, "step_duration_minutes": 60, "rollback_threshold": 0.03});
    deploy(&t, &p, "churn-api", &worse, cfg).await;
    traffic(&t, &dep, 300, 0).await;
    tick(&t).await;
    let d = get_dep(&t, &dep).await;
    assert_eq!(
        d["status"], "active",
        "rolled back without waiting for the step to end"
    );
    assert_eq!(d["serving_model_id"], good.as_str());
    assert_eq!(
        d["traffic"],
        json!([{"model_id": good, "variant": "baseline", "percentage": 100.0}])
    );
    let events = t
        .get(&format!("/api/v1/deployments/{dep}/events"), &t.admin)
        .await
        .ok();
    let rb = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "rolled_back")
        .unwrap()
        .clone();
    assert!(
        rb["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("worse than the baseline"),
        "{rb}"
    );
    assert_eq!(rb["actor"], "system:rollout");
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "notification" && e["detail"]["event"] == "rolled_back"));
    assert_eq!(status(&t, &worse).await, "archived");
    assert_eq!(status(&t, &good).await, "production");
    assert_eq!(promotions(&t, &worse).await, vec!["rolled_back"]);
    let served = traffic(&t, &dep, 40, 0).await;
    assert!(served.iter().all(|(v, m)| v == "baseline" && m == &good));
}

#[tokio::test]
async fn sticky_entities_keep_their_variant_and_pause_holds_a_rollout() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let a = model(&t, &p, "hgb.onnx", "churn").await;
    let b = model(&t, &p, "forest.onnx", "churn").await;
    let (_, d) = deploy(&t, &p, "api", &a, json!({})).await;
    let dep = d["id"].as_str().unwrap().to_string();
    deploy(&t, &p, "api", &b, json!({"strategy": "canary", "traffic_percentage": 50, "promotion_steps": [50, 100], "min_samples_per_step": 1, "step_duration_minutes": 1})).await;
    let row = &churn_rows()[0].0;
    for e in 0..20 {
        let first = t
            .post(
                &format!("/api/v1/deployments/{dep}/predict"),
                &t.admin,
                json!({"rows": [row], "entity_id": format!("cust-{e}")}),
            )
            .await
            .ok();
        for _ in 0..3 {
            let again = t
                .post(
                    &format!("/api/v1/deployments/{dep}/predict"),
                    &t.admin,
                    json!({"rows": [row], "entity_id": format!("cust-{e}")}),
                )
                .await
                .ok();
            assert_eq!(again["variant"], first["variant"]);
        }
    }
    let paused = t
        .post(
            &format!("/api/v1/deployments/{dep}/pause"),
            &t.admin,
            json!({}),
        )
        .await
        .ok();
    assert_eq!(paused["status"], "paused");
    traffic(&t, &dep, 60, 0).await;
    t.clock.advance_minutes(120);
    tick(&t).await;
    assert_eq!(
        get_dep(&t, &dep).await["rollout"]["phase"]["percentage"],
        50.0,
        "paused rollouts do not advance"
    );
    assert_eq!(
        t.post(
            &format!("/api/v1/deployments/{dep}/pause"),
            &t.admin,
            json!({})
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    t.post(
        &format!("/api/v1/deployments/{dep}/resume"),
        &t.admin,
        json!({}),
    )
    .await
    .ok();
    let r = t
        .post(
            &format!("/api/v1/deployments/{dep}/rollback"),
            &t.admin,
            json!({"reason": "changed our mind"}),
        )
        .await
        .ok();
    assert_eq!(r["serving_model_id"], a.as_str());
    assert_eq!(promotions(&t, &b).await, vec!["rolled_back"]);
    // Another rollout on the name while one runs is a conflict.
    deploy(&t, &p, "api", &b, json!({"strategy": "canary"})).await;
    let (code, body) = deploy(&t, &p, "api", &b, json!({"strategy": "canary"})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn blue_green_rolls_back_inside_the_window_and_releases_blue_after_it() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let blue = model(&t, &p, "hgb.onnx", "churn").await;
    let bad_green = model(&t, &p, "weak.onnx", "churn").await;
    let good_green = model(&t, &p, "forest.onnx", "churn").await;
    let (_, d) = deploy(&t, &p, "fraud", &blue, json!({})).await;
    let dep = d["id"].as_str().unwrap().to_string();
    traffic(&t, &dep, 150, 0).await;
    t.clock.advance_minutes(5);
    let cfg = json!({"strategy": "blue-green", "auto_rollback": true, "rollback_window_minutes": 30, "min_samples_per_step": 50});
    let (_, d) = deploy(&t, &p, "fraud", &bad_green, cfg.clone()).await;
    assert_eq!(
        d["traffic"],
        json!([{"model_id": bad_green, "variant": "green", "percentage": 100.0}]),
        "atomic switch"
    );
    let served = traffic(&t, &dep, 150, 150).await;
    assert!(served.iter().all(|(v, _)| v == "green"));
    t.clock.advance_minutes(10);
    tick(&t).await;
    let d = get_dep(&t, &dep).await;
    assert_eq!(
        d["serving_model_id"],
        blue.as_str(),
        "rolled back to blue inside the window"
    );
    assert_eq!(d["status"], "active");
    assert_eq!(status(&t, &bad_green).await, "archived");
    assert_eq!(promotions(&t, &bad_green).await, vec!["rolled_back"]);

    t.clock.advance_minutes(5);
    traffic(&t, &dep, 150, 300).await;
    t.clock.advance_minutes(5);
    deploy(&t, &p, "fraud", &good_green, cfg).await;
    traffic(&t, &dep, 150, 450).await;
    t.clock.advance_minutes(10);
    tick(&t).await;
    assert_eq!(
        get_dep(&t, &dep).await["status"],
        "rolling_out",
        "still watching"
    );
    t.clock.advance_minutes(25);
    tick(&t).await;
    let d = get_dep(&t, &dep).await;
    assert_eq!(d["status"], "active");
    assert_eq!(d["serving_model_id"], good_green.as_str());
    assert_eq!(d["previous_model_id"], blue.as_str());
    assert_eq!(status(&t, &good_green).await, "production");
    assert_eq!(status(&t, &blue).await, "archived");
    // A manual rollback is instant: back to blue.
    let r = t
        .post(
            &format!("/api/v1/deployments/{dep}/rollback"),
            &t.admin,
            json!({"reason": "pager went off"}),
        )
        .await
        .ok();
    assert_eq!(r["serving_model_id"], blue.as_str());
    let served = traffic(&t, &dep, 10, 0).await;
    assert!(served.iter().all(|(_, m)| m == &blue));
}

#[tokio::test]
async fn shadow_never_changes_primary_answers_and_its_report_matches_the_log() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let primary = model(&t, &p, "hgb.onnx", "churn").await;
    let shadow = model(&t, &p, "forest.onnx", "churn").await;
    let (_, d) = deploy(&t, &p, "churn-api", &primary, json!({})).await;
    let dep = d["id"].as_str().unwrap().to_string();
    let rows = churn_rows();
    let mut before = Vec::new();
    for (row, _) in rows.iter().take(50) {
        before.push(
            t.post(
                &format!("/api/v1/deployments/{dep}/predict"),
                &t.admin,
                json!({"rows": [row]}),
            )
            .await
            .ok()["predictions"][0]
                .clone(),
        );
    }
    t.clock.advance_minutes(1);
    let (_, d) = deploy(
        &t,
        &p,
        "churn-api",
        &shadow,
        json!({"strategy": "shadow", "comparison_window_days": 1}),
    )
    .await;
    assert_eq!(d["shadow_model_id"], shadow.as_str());
    let mut labels = Vec::new();
    for (i, (row, label)) in rows.iter().take(200).enumerate() {
        let r = t
            .post(
                &format!("/api/v1/deployments/{dep}/predict"),
                &t.admin,
                json!({"rows": [row]}),
            )
            .await
            .ok();
        assert_eq!(r["model_id"], primary.as_str());
        if i < 50 {
            assert_eq!(
                r["predictions"][0], before[i],
                "the shadow never changes a primary answer"
            );
        }
        labels.push(json!({"request_id": r["request_ids"][0], "label": label}));
    }
    t.post(
        &format!("/api/v1/deployments/{dep}/feedback"),
        &t.admin,
        json!(labels),
    )
    .await
    .ok();
    let report = t
        .get(&format!("/api/v1/deployments/{dep}/comparison"), &t.admin)
        .await
        .ok();
    assert_eq!(report["paired"], 200);
    assert_eq!(report["dropped"], 0);
    // Recompute agreement from the logged predictions.
    let since = coreplex_domain::clock::to_rfc3339(coreplex_domain::Clock::now(&t.clock) - 1);
    let log = t
        .get(
            &format!("/api/v1/deployments/{dep}/predictions?since={since}&limit=1000"),
            &t.admin,
        )
        .await
        .ok();
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 400, "both outputs logged under one request id");
    let mut by_id: std::collections::HashMap<String, (Option<Value>, Option<Value>)> =
        Default::default();
    for it in items {
        let e = by_id
            .entry(it["request_id"].as_str().unwrap().to_string())
            .or_default();
        if it["role"] == "primary" {
            e.0 = Some(it["output"]["label"].clone());
        } else {
            assert_eq!(it["model_id"], shadow.as_str());
            e.1 = Some(it["output"]["label"].clone());
        }
    }
    let agree = by_id.values().filter(|(a, b)| a == b).count() as f64 / by_id.len() as f64;
    assert!(
        (report["agreement"].as_f64().unwrap() - agree).abs() < 1e-12,
        "{} vs {agree}",
        report["agreement"]
    );
    assert_eq!(report["paired_test"]["test"], "mcnemar");
    assert!(report["primary"]["quality"]["auc"].as_f64().unwrap() > 0.9);
    assert!(report["shadow"]["quality"]["auc"].as_f64().unwrap() > 0.9);
    // After the comparison window the shadow is compared, then it can be promoted.
    t.clock.advance_minutes(24 * 60 + 1);
    tick(&t).await;
    assert_eq!(promotions(&t, &shadow).await, vec!["shadow_compared"]);
    assert!(event_kinds(&t, &dep)
        .await
        .contains(&"shadow_compared".to_string()));
    let d = t
        .post(
            &format!("/api/v1/deployments/{dep}/promote"),
            &t.admin,
            json!({"reason": "shadow looked good"}),
        )
        .await
        .ok();
    assert_eq!(d["serving_model_id"], shadow.as_str());
    assert_eq!(status(&t, &shadow).await, "production");
    assert_eq!(
        promotions(&t, &shadow).await,
        vec!["shadow_compared", "promoted"]
    );
}

#[tokio::test]
async fn a_rollout_survives_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = coreplex_domain::ManualClock::new(1_795_600_000_000);
    let (admin, dep, new) = {
        let t = spawn_app_in(dir.path(), clock.clone()).await;
        let p = t.project("churn").await;
        let old = model(&t, &p, "weak.onnx", "churn").await;
        let new = model(&t, &p, "hgb.onnx", "churn").await;
        let (_, d) = deploy(&t, &p, "api", &old, json!({})).await;
        let dep = d["id"].as_str().unwrap().to_string();
        deploy(
            &t,
            &p,
            "api",
            &new,
            json!({"strategy": "canary", "traffic_percentage": 30, "promotion_steps": [30, 60, 100],
            "min_samples_per_step": 20, "step_duration_minutes": 10}),
        )
        .await;
        traffic(&t, &dep, 200, 0).await;
        t.clock.advance_minutes(11);
        tick(&t).await;
        assert_eq!(
            get_dep(&t, &dep).await["rollout"]["phase"]["percentage"],
            60.0
        );
        t.app.stop().await;
        (t.admin, dep, new)
    };
    let t = spawn_app_in(dir.path(), clock.clone()).await;
    let t = TestApp { admin, ..t };
    let d = get_dep(&t, &dep).await;
    assert_eq!(
        d["rollout"]["phase"]["percentage"], 60.0,
        "the rollout resumes where it was"
    );
    let served = traffic(&t, &dep, 200, 200).await;
    assert!(
        served.iter().any(|(v, _)| v == "canary") && served.iter().any(|(v, _)| v == "baseline")
    );
    t.clock.advance_minutes(11);
    tick(&t).await;
    traffic(&t, &dep, 100, 400).await;
    t.clock.advance_minutes(11);
    tick(&t).await;
    let d = get_dep(&t, &dep).await;
    assert_eq!(d["serving_model_id"], new.as_str());
    assert_eq!(d["status"], "active");
}
