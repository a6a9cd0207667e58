//! The closed loop: retraining policies fire on drift, on a schedule or by hand, train on the
//! model's data, compare with production, and roll out, wait for review, or reject — notifying the
//! deployment's alert channels along the way.

use crate::helpers::*;
use crate::receivers::HttpReceiver;
use coreplex_server::worker;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

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

/// A project whose deployment serves a model trained here (so its lineage names data and target),
/// and a webhook channel listening to the deployment.
async fn setup(t: &TestApp) -> (String, String, String, HttpReceiver) {
    let p = t.project("churn").await;
    let csv = std::fs::read(fixtures().join("churn.csv")).unwrap();
    let v = t.upload_csv(&p, "churn", &t.admin, csv).await.ok();
    let e = t
        .post(&format!("/api/v1/projects/{p}/experiments"), &t.admin,
            json!({"dataset_version_id": v["id"], "target": "churned", "max_models": 2, "max_runtime_secs": 30, "seed": 3, "model_name": "churn"}))
        .await
        .ok();
    t.drain().await;
    let best = t
        .get(
            &format!("/api/v1/experiments/{}", e["id"].as_str().unwrap()),
            &t.admin,
        )
        .await
        .ok()["best_model_id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = t
        .post(&format!("/api/v1/projects/{p}/deployments"), &t.admin,
            json!({"name": "churn-api", "model_id": best, "strategy": "canary", "traffic_percentage": 50, "promotion_steps": [50, 100],
                   "min_samples_per_step": 20, "step_duration_minutes": 10}))
        .await
        .ok();
    let dep = d["id"].as_str().unwrap().to_string();
    let hook = HttpReceiver::start(0).await;
    t.post("/api/v1/alerts", &t.admin, json!({"deployment_id": dep, "name": "errors", "metric": "error_rate", "condition": "greater_than",
        "threshold": 0.5, "channels": [{"type": "webhook", "url": hook.url}]})).await.ok();
    (p, dep, best, hook)
}

async fn send(t: &TestApp, dep: &str, n: usize, shift: f64) {
    let all = rows();
    let mut labels = Vec::new();
    for i in 0..n {
        let (mut r, label) = all[i % all.len()].clone();
        r["tenure"] = json!(r["tenure"].as_f64().unwrap() + shift);
        let out = t
            .post(
                &format!("/api/v1/deployments/{dep}/predict"),
                &t.admin,
                json!({"rows": [r]}),
            )
            .await
            .ok();
        labels.push(json!({"request_id": out["request_ids"][0], "label": label}));
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

async fn runs(t: &TestApp, pol: &str) -> Vec<Value> {
    t.get(&format!("/api/v1/retraining/policies/{pol}/runs"), &t.admin)
        .await
        .ok()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn drift_fires_once_trains_and_leaves_a_candidate_for_review_with_a_notification() {
    let t = spawn_app().await;
    let (_, dep, parent, hook) = setup(&t).await;
    let pol = t
        .post("/api/v1/retraining/policies", &t.admin, json!({"deployment_id": dep, "trigger": "drift", "drift_metric": "data_drift_score",
            "drift_threshold": 0.2, "training_config": {"max_runtime_secs": 30, "max_models": 2, "stopping_metric": "AUC", "seed": 3},
            "auto_promote": false}))
        .await;
    assert_eq!(pol.status, StatusCode::CREATED, "{}", pol.body);
    let pol = pol.body["id"].as_str().unwrap().to_string();
    send(&t, &dep, 120, 0.0).await;
    tick(&t).await;
    assert!(runs(&t, &pol).await.is_empty(), "no drift, no run");
    send(&t, &dep, 200, 3.0).await;
    tick(&t).await;
    tick(&t).await;
    let r = runs(&t, &pol).await;
    assert_eq!(r.len(), 1, "the trigger fires once while its run is going");
    assert_eq!(r[0]["status"], "training");
    assert!(
        r[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("data_drift_score "),
        "{}",
        r[0]
    );
    t.drain().await;
    tick(&t).await;
    let r = runs(&t, &pol).await;
    assert_eq!(r[0]["status"], "awaiting_review", "{}", r[0]);
    let cand = r[0]["candidate_model_id"].as_str().unwrap();
    let m = t
        .get(&format!("/api/v1/models/{cand}"), &t.admin)
        .await
        .ok();
    assert_eq!(m["status"], "candidate");
    assert_eq!(m["lineage"]["parent_model_id"], parent.as_str());
    assert_eq!(m["lineage"]["source"], format!("retraining:{pol}"));
    assert!(r[0]["comparison"]["holdout"]["rows"].as_u64().unwrap() > 50);
    let got = hook.bodies();
    let ready = got
        .iter()
        .find(|b| b["event"] == "retraining.candidate_ready")
        .expect("team notified");
    assert_eq!(ready["candidate_model_id"], cand);
    let d = t
        .get(&format!("/api/v1/deployments/{dep}"), &t.admin)
        .await
        .ok();
    assert_eq!(
        d["serving_model_id"],
        parent.as_str(),
        "nothing deployed without auto_promote"
    );
    let audit = t
        .get(
            &format!("/api/v1/audit?actor=system:retraining:{pol}"),
            &t.admin,
        )
        .await
        .ok();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "retraining_run.triggered",
        "experiment.create",
        "model.register",
        "retraining_run.trained",
        "retraining_run.awaiting_review",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn a_sunday_schedule_retrains_and_promotes_through_the_canary() {
    let t = spawn_app().await;
    let (_, dep, parent, _) = setup(&t).await;
    let pol = t
        .post("/api/v1/retraining/policies", &t.admin, json!({"deployment_id": dep, "trigger": "schedule", "schedule": "weekly",
            "day_of_week": "sunday", "hour_utc": 3, "training_config": {"max_runtime_secs": 30, "max_models": 2, "stopping_metric": "AUC", "seed": 3},
            "auto_promote": true}))
        .await
        .ok();
    let next = pol["next_run_at"].as_str().unwrap().to_string();
    assert!(next.ends_with("T03:00:00.000Z"), "{next}");
    let pol = pol["id"].as_str().unwrap().to_string();
    tick(&t).await;
    assert!(runs(&t, &pol).await.is_empty());
    t.clock
        .set(coreplex_domain::clock::parse_rfc3339(&next).unwrap());
    tick(&t).await;
    assert_eq!(runs(&t, &pol).await.len(), 1);
    t.drain().await;
    tick(&t).await;
    let r = runs(&t, &pol).await;
    assert_eq!(r[0]["status"], "rolling_out", "{}", r[0]);
    let cand = r[0]["candidate_model_id"].as_str().unwrap().to_string();
    let d = t
        .get(&format!("/api/v1/deployments/{dep}"), &t.admin)
        .await
        .ok();
    assert_eq!(d["rollout"]["candidate_model_id"], cand.as_str());
    assert_eq!(
        d["rollout"]["phase"]["percentage"], 50.0,
        "the canary starts at the deployment's configured share"
    );
    for _ in 0..2 {
        send(&t, &dep, 120, 0.0).await;
        t.clock.advance_minutes(11);
        tick(&t).await;
    }
    tick(&t).await;
    let r = runs(&t, &pol).await;
    assert_eq!(r[0]["status"], "promoted", "{}", r[0]);
    assert_eq!(
        t.get(&format!("/api/v1/models/{cand}"), &t.admin)
            .await
            .ok()["status"],
        "production"
    );
    assert_eq!(
        t.get(&format!("/api/v1/models/{parent}"), &t.admin)
            .await
            .ok()["status"],
        "archived"
    );
    let pol_now = t
        .get(&format!("/api/v1/retraining/policies/{pol}"), &t.admin)
        .await
        .ok();
    assert!(
        pol_now["next_run_at"].as_str().unwrap() > next.as_str(),
        "the schedule moved on a week"
    );
}

#[tokio::test]
async fn a_worse_retrained_model_is_archived_with_an_alert_and_the_old_one_keeps_serving() {
    let t = spawn_app().await;
    let (p, dep, parent, hook) = setup(&t).await;
    // New data arrives with its labels scrambled: a model trained on it is worse.
    let text = std::fs::read_to_string(fixtures().join("churn.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (i, l) in lines.iter_mut().enumerate().skip(1) {
        let mut parts: Vec<String> = l.split(',').map(str::to_string).collect();
        parts[4] = if (i * 7919) % 3 == 0 {
            "1".into()
        } else {
            "0".into()
        };
        *l = parts.join(",");
    }
    t.upload_csv(
        &p,
        "churn",
        &t.admin,
        (lines.join("\n") + "\n").into_bytes(),
    )
    .await
    .ok();
    t.drain().await;
    let pol = t
        .post("/api/v1/retraining/policies", &t.admin, json!({"deployment_id": dep, "trigger": "performance", "performance_metric": "accuracy",
            "performance_threshold": 0.85, "evaluation_window_days": 7, "training_config": {"max_runtime_secs": 30, "max_models": 2, "seed": 3},
            "auto_promote": true}))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    send(&t, &dep, 100, 0.0).await;
    let run = t
        .post(
            &format!("/api/v1/retraining/policies/{pol}/trigger"),
            &t.admin,
            json!({}),
        )
        .await;
    assert_eq!(run.status, StatusCode::CREATED, "{}", run.body);
    assert_eq!(
        t.post(
            &format!("/api/v1/retraining/policies/{pol}/trigger"),
            &t.admin,
            json!({})
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    t.drain().await;
    tick(&t).await;
    let r = runs(&t, &pol).await;
    assert_eq!(r[0]["status"], "rejected", "{}", r[0]);
    let cand = r[0]["candidate_model_id"].as_str().unwrap();
    assert_eq!(
        t.get(&format!("/api/v1/models/{cand}"), &t.admin)
            .await
            .ok()["status"],
        "archived"
    );
    assert!(hook
        .bodies()
        .iter()
        .any(|b| b["event"] == "retraining.rejected"));
    let d = t
        .get(&format!("/api/v1/deployments/{dep}"), &t.admin)
        .await
        .ok();
    assert_eq!(d["serving_model_id"], parent.as_str());
    assert_eq!(
        d["traffic"],
        json!([{"model_id": parent, "variant": "baseline", "percentage": 100.0}])
    );
}

#[tokio::test]
async fn policy_fields_are_checked_by_name() {
    let t = spawn_app().await;
    let (_, dep, _, _) = setup(&t).await;
    let cases = [
        (
            json!({"trigger": "hourly"}),
            "trigger: unknown trigger `hourly`",
        ),
        (
            json!({"trigger": "schedule", "schedule": "weekly", "hour_utc": 3}),
            "day_of_week: a weekly schedule needs a day",
        ),
        (
            json!({"trigger": "schedule", "schedule": "daily", "hour_utc": 24}),
            "hour_utc: 24 is not an hour of the day",
        ),
        (
            json!({"trigger": "drift", "drift_metric": "vibes", "drift_threshold": 0.2}),
            "drift_metric: unknown drift metric `vibes`",
        ),
        (
            json!({"trigger": "performance", "performance_metric": "rmse", "performance_threshold": 1}),
            "performance_metric: `rmse` does not apply",
        ),
        (
            json!({"trigger": "drift", "drift_threshold": 0.2, "training_config": {"stopping_metric": "vibes"}}),
            "training_config.stopping_metric: ",
        ),
        (
            json!({"trigger": "drift", "drift_metric": "psi:no_such_feature", "drift_threshold": 0.2}),
            "drift_metric: the serving model has no feature `no_such_feature`",
        ),
        (
            json!({"trigger": "drift", "drift_threshold": 0.2, "drift_window_minutes": -5}),
            "drift_window_minutes: between 1 and 525600",
        ),
        (
            json!({"trigger": "schedule", "schedule": "daily", "drift_threshold": 0.2}),
            "drift_threshold: only for a drift trigger",
        ),
        (
            json!({"trigger": "drift", "drift_threshold": 0.2, "production_window_days": 0}),
            "production_window_days: between 0 and 365 days",
        ),
        (
            json!({"trigger": "drift", "drift_threshold": 0.2, "training_config": {"seed": -1}}),
            "training_config.seed: ",
        ),
    ];
    for (body, want) in cases {
        let mut b = body.clone();
        b["deployment_id"] = json!(dep);
        let r = t.post("/api/v1/retraining/policies", &t.admin, b).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(r.message().starts_with(want), "{body}: {}", r.message());
    }
    // A PATCH checks the training settings like a POST and leaves the stored policy as it was.
    let pol = t
        .post(
            "/api/v1/retraining/policies",
            &t.admin,
            json!({"deployment_id": dep, "trigger": "drift", "drift_threshold": 0.2,
                   "training_config": {"max_models": 3}}),
        )
        .await
        .ok();
    let id = pol["id"].as_str().unwrap();
    let r = t
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/retraining/policies/{id}"),
            &t.admin,
            Some(json!({"training_config": {"max_runtime_secs": -1}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.message()
            .starts_with("training_config.max_runtime_secs: "),
        "{}",
        r.message()
    );
    let kept = t
        .get(&format!("/api/v1/retraining/policies/{id}"), &t.admin)
        .await
        .ok();
    assert_eq!(kept["training_config"], json!({"max_models": 3}));
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_retraining_job_resumes_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = coreplex_domain::ManualClock::new(1_795_600_000_000);
    let t = spawn_app_in(dir.path(), clock.clone()).await;
    let admin = t.admin.clone();
    let (_, dep, _, _) = setup(&t).await;
    let pol = t
        .post(
            "/api/v1/retraining/policies",
            &t.admin,
            json!({"deployment_id": dep, "trigger": "drift", "drift_threshold": 0.5,
            "training_config": {"max_runtime_secs": 30, "max_models": 2, "seed": 3}}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = t
        .post(
            &format!("/api/v1/retraining/policies/{pol}/trigger"),
            &t.admin,
            json!({}),
        )
        .await
        .ok();
    let job = run["job_id"].as_str().unwrap().to_string();
    // A worker claims the training job and dies with it.
    let now = coreplex_domain::Clock::now(&clock);
    let claimed = t
        .app
        .state
        .store
        .claim_job("crashed-server", now, now + 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, job);
    t.app.stop().await;
    let t = spawn_app_in(dir.path(), clock.clone()).await;
    let t = TestApp { admin, ..t };
    assert_eq!(
        t.drain().await,
        0,
        "the job is still leased to the dead worker"
    );
    clock.advance_minutes(1);
    tick(&t).await;
    t.drain().await;
    tick(&t).await;
    let r = runs(&t, &pol).await;
    assert_eq!(r.len(), 1);
    assert!(
        ["awaiting_review", "rejected"].contains(&r[0]["status"].as_str().unwrap()),
        "{}",
        r[0]
    );
    let attempts = t
        .get(&format!("/api/v1/jobs/{job}/attempts"), &t.admin)
        .await
        .ok();
    let outcomes: Vec<&str> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        outcomes,
        vec!["lost", "succeeded"],
        "ran to the end exactly once after the crash"
    );
}

#[tokio::test]
async fn degraded_labels_fire_the_performance_trigger_once() {
    let t = spawn_app().await;
    let (_, dep, _, hook) = setup(&t).await;
    let pol = t
        .post("/api/v1/retraining/policies", &t.admin, json!({"deployment_id": dep, "trigger": "performance", "performance_metric": "accuracy",
            "performance_threshold": 0.85, "evaluation_window_days": 7, "training_config": {"max_runtime_secs": 30, "max_models": 2, "seed": 3}}))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    send(&t, &dep, 100, 0.0).await;
    tick(&t).await;
    assert!(runs(&t, &pol).await.is_empty(), "accuracy is fine");
    // The world changes: the same customers now churn the other way.
    let all = rows();
    let mut labels = Vec::new();
    for (r, label) in all.iter().take(150) {
        let out = t
            .post(
                &format!("/api/v1/deployments/{dep}/predict"),
                &t.admin,
                json!({"rows": [r]}),
            )
            .await
            .ok();
        labels.push(json!({"request_id": out["request_ids"][0], "label": if label == "1" { "0" } else { "1" }}));
    }
    t.post(
        &format!("/api/v1/deployments/{dep}/feedback"),
        &t.admin,
        json!(labels),
    )
    .await
    .ok();
    tick(&t).await;
    tick(&t).await;
    let r = runs(&t, &pol).await;
    assert_eq!(r.len(), 1, "fires once");
    assert_eq!(r[0]["trigger"], "performance");
    assert!(
        r[0]["reason"].as_str().unwrap().starts_with("accuracy "),
        "{}",
        r[0]
    );
    assert!(r[0]["measured"].as_f64().unwrap() < 0.85);
    t.drain().await;
    tick(&t).await;
    let r = runs(&t, &pol).await;
    assert!(
        ["awaiting_review", "rejected"].contains(&r[0]["status"].as_str().unwrap()),
        "{}",
        r[0]
    );
    assert!(hook
        .bodies()
        .iter()
        .any(|b| b["event"].as_str().unwrap_or("").starts_with("retraining.")));
}
