//! AutoML experiments through the API: a background job that trains, registers every model as a
//! candidate with its lineage, and serves the same predictions before and after a restart.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn an_experiment_trains_registers_candidates_with_lineage_and_they_serve() {
    let dir = tempfile::tempdir().unwrap();
    let clock = coreplex_domain::ManualClock::new(1_795_600_000_000);
    let t = spawn_app_in(dir.path(), clock.clone()).await;
    let admin = t.admin.clone();
    let p = t.project("churn").await;
    let csv = std::fs::read(fixtures().join("churn.csv")).unwrap();
    let v = t.upload_csv(&p, "churn", &t.admin, csv).await.ok();
    let bad = t
        .post(
            &format!("/api/v1/projects/{p}/experiments"),
            &t.admin,
            json!({"dataset_version_id": v["id"], "target": "churn"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.message()
            .starts_with("target: no column `churn` in the dataset; its columns are tenure, "),
        "{}",
        bad.message()
    );
    let e = t
        .post(
            &format!("/api/v1/projects/{p}/experiments"),
            &t.admin,
            json!({"dataset_version_id": v["id"], "target": "churned", "max_models": 3, "max_runtime_secs": 60,
                   "stopping_metric": "AUC", "seed": 7, "model_name": "churn"}),
        )
        .await;
    assert_eq!(e.status, StatusCode::CREATED, "{}", e.body);
    let id = e.body["id"].as_str().unwrap().to_string();
    assert_eq!(e.body["status"], "queued");
    t.drain().await;
    let e = t
        .get(&format!("/api/v1/experiments/{id}"), &t.admin)
        .await
        .ok();
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["progress"], 1.0);
    let board = e["leaderboard"]["models"].as_array().unwrap().clone();
    assert!(board.len() >= 3, "{e}");
    assert_eq!(e["leaderboard"]["task"], "binary_classification");
    assert_eq!(
        e["leaderboard"]["unregistered"],
        json!([]),
        "within its budget"
    );
    let best = e["best_model_id"].as_str().unwrap().to_string();
    assert_eq!(board[0]["model_id"], best.as_str());
    let aucs: Vec<f64> = board
        .iter()
        .map(|m| m["metrics"]["auc"].as_f64().unwrap())
        .collect();
    // Ranked best first below the leader; the leader is the best, or a simpler model that the
    // best beats only within cross-validation noise.
    assert!(
        aucs[1..].windows(2).all(|w| w[0] >= w[1]),
        "ranked best first: {aucs:?}"
    );
    assert!(
        aucs[0] >= aucs[1] || board[0]["family"] != "stacked",
        "{aucs:?}"
    );
    let m = t
        .get(&format!("/api/v1/models/{best}"), &t.admin)
        .await
        .ok();
    assert_eq!(m["status"], "candidate");
    assert_eq!(m["name"], "churn");
    assert_eq!(m["lineage"]["dataset_version_id"], v["id"]);
    assert_eq!(m["lineage"]["experiment"]["experiment_id"], id.as_str());
    assert_eq!(m["lineage"]["source"], format!("experiment:{id}"));
    assert!(m["lineage"]["validation_metrics"]["auc"].as_f64().unwrap() > 0.8);
    assert!(m["lineage"]["training_duration_secs"].as_f64().unwrap() >= 0.0);
    assert!(m["lineage"]["hyperparameters"].is_object());
    // Serve it, predict, restart, predict again: identical.
    let d = t
        .post(
            &format!("/api/v1/projects/{p}/deployments"),
            &t.admin,
            json!({"name": "trained", "model_id": best}),
        )
        .await
        .ok();
    let dep = d["id"].as_str().unwrap().to_string();
    let rows = expected()["hgb.onnx"]["rows"].clone();
    let before = t
        .post(
            &format!("/api/v1/deployments/{dep}/predict"),
            &t.admin,
            json!({"rows": rows}),
        )
        .await
        .ok();
    t.app.stop().await;
    let t2 = spawn_app_in(dir.path(), clock).await;
    let after = t2
        .post(
            &format!("/api/v1/deployments/{dep}/predict"),
            &admin,
            json!({"rows": rows}),
        )
        .await
        .ok();
    assert_eq!(before["predictions"], after["predictions"]);
    // The downloaded artifact is ONNX that loads again.
    let bytes = t2
        .http
        .get(format!("{}/api/v1/models/{best}/artifact", t2.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(coreplex_runtime::LoadedModel::load(&bytes, &Default::default()).is_ok());
}

#[tokio::test]
async fn an_experiment_that_cannot_train_fails_with_a_clear_reason() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let v = t
        .upload_csv(
            &p,
            "one",
            &t.admin,
            b"x,y\n1,a\n2,a\n3,a\n4,a\n5,a\n6,a\n7,a\n8,a\n9,a\n10,a\n".to_vec(),
        )
        .await
        .ok();
    let e = t
        .post(&format!("/api/v1/projects/{p}/experiments"), &t.admin, json!({"dataset_version_id": v["id"], "target": "y", "max_models": 2, "max_runtime_secs": 10}))
        .await
        .ok();
    t.drain().await;
    let e = t
        .get(
            &format!("/api/v1/experiments/{}", e["id"].as_str().unwrap()),
            &t.admin,
        )
        .await
        .ok();
    assert_eq!(e["status"], "failed");
    assert!(!e["error"].as_str().unwrap().is_empty(), "{e}");
    let job = t
        .get(
            &format!("/api/v1/jobs/{}", e["job_id"].as_str().unwrap()),
            &t.admin,
        )
        .await
        .ok();
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"], e["error"]);
}
