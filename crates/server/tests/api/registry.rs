//! The model registry through the API: registration of every scikit-learn export, schema, byte-exact
//! download, versions, lifecycle and lineage.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn every_fixture_registers_with_schema_and_downloads_byte_identical() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let cases = [
        ("logreg.onnx", "binary_classification", 4),
        ("forest.onnx", "binary_classification", 4),
        ("hgb.onnx", "binary_classification", 4),
        ("multiclass.onnx", "multiclass_classification", 4),
        ("pipeline.onnx", "binary_classification", 4),
        ("regressor.onnx", "regression", 3),
    ];
    for (fixture, task, n_features) in cases {
        let m = t
            .register(
                &p,
                fixture,
                fixture.trim_end_matches(".onnx"),
                task,
                &t.admin,
                json!({}),
            )
            .await
            .ok();
        assert_eq!(m["status"], "candidate", "{fixture}");
        assert_eq!(m["version"], 1);
        assert_eq!(m["task"], task);
        assert_eq!(
            m["input_schema"]["features"].as_array().unwrap().len(),
            n_features,
            "{fixture}"
        );
        assert!(
            m["output_schema"]["test_prediction"].is_object(),
            "{fixture} made a test prediction"
        );
        let id = m["id"].as_str().unwrap();
        let bytes = t
            .http
            .get(format!("{}/api/v1/models/{id}/artifact", t.url))
            .bearer_auth(&t.admin)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            bytes.as_ref(),
            std::fs::read(fixtures().join(fixture)).unwrap().as_slice(),
            "{fixture}"
        );
    }
    let pipeline = t
        .get(
            &format!("/api/v1/projects/{p}/models?name=pipeline"),
            &t.admin,
        )
        .await
        .ok();
    let features: Vec<(&str, &str)> = pipeline["items"][0]["input_schema"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["dtype"].as_str().unwrap()))
        .collect();
    assert_eq!(
        features,
        vec![
            ("plan", "string"),
            ("region", "string"),
            ("age", "float"),
            ("spend", "float")
        ]
    );
}

#[tokio::test]
async fn versions_count_up_and_lineage_round_trips() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let csv = std::fs::read(fixtures().join("churn.csv")).unwrap();
    let dsv = t.upload_csv(&p, "churn", &t.admin, csv).await.ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v1 = t
        .register(
            &p,
            "logreg.onnx",
            "churn",
            "binary_classification",
            &t.admin,
            json!({}),
        )
        .await
        .ok();
    let lineage = json!({
        "dataset_version_id": dsv, "parent_model_id": v1["id"], "hyperparameters": {"max_iter": 30},
        "validation_metrics": {"auc": 0.91}, "training_duration_secs": 12.5, "experiment": {"max_models": 20},
    });
    let v2 = t
        .register(
            &p,
            "hgb.onnx",
            "churn",
            "binary_classification",
            &t.admin,
            json!({"lineage": lineage, "model_card": "GBT", "tags": {"team": "growth"}}),
        )
        .await
        .ok();
    assert_eq!(v2["version"], 2);
    let got = t
        .get(
            &format!("/api/v1/models/{}", v2["id"].as_str().unwrap()),
            &t.admin,
        )
        .await
        .ok();
    for k in [
        "dataset_version_id",
        "parent_model_id",
        "hyperparameters",
        "validation_metrics",
        "training_duration_secs",
        "experiment",
    ] {
        assert_eq!(got["lineage"][k], lineage[k], "{k}");
    }
    assert_eq!(got["model_card"], "GBT");
    assert_eq!(got["tags"]["team"], "growth");
    let bad = t
        .register(
            &p,
            "hgb.onnx",
            "churn",
            "binary_classification",
            &t.admin,
            json!({"lineage": {"dataset_version_id": "dsv_nope"}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.message().starts_with("lineage.dataset_version_id: "),
        "{}",
        bad.message()
    );
}

#[tokio::test]
async fn invalid_models_are_422_with_the_reason_and_leave_nothing_stored() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let before = (
        t.artifacts(),
        t.get("/api/v1/audit", &t.admin).await.ok()["items"]
            .as_array()
            .unwrap()
            .len(),
    );
    let r = t
        .register(
            &p,
            "not_a_model.onnx",
            "x",
            "binary_classification",
            &t.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "validation_failed");
    assert!(
        r.message()
            .starts_with("file: the file is not a model ONNX Runtime can load: "),
        "{}",
        r.message()
    );
    let r = t
        .register(
            &p,
            "regressor.onnx",
            "x",
            "binary_classification",
            &t.admin,
            json!({}),
        )
        .await;
    assert!(
        r.message().starts_with("task: the graph is a regressor"),
        "{}",
        r.message()
    );
    let r = t
        .register(
            &p,
            "multiclass.onnx",
            "x",
            "binary_classification",
            &t.admin,
            json!({}),
        )
        .await;
    assert!(
        r.message().starts_with("task: the graph has 3 classes"),
        "{}",
        r.message()
    );
    let r = t
        .register(&p, "logreg.onnx", "x", "ranking", &t.admin, json!({}))
        .await;
    assert!(
        r.message().starts_with("task: unknown task `ranking`"),
        "{}",
        r.message()
    );
    let r = t
        .register(
            &p,
            "logreg.onnx",
            "x",
            "binary_classification",
            &t.admin,
            json!({"feature_names": ["a"]}),
        )
        .await;
    assert!(
        r.message()
            .starts_with("feature_names: the model takes 4 columns"),
        "{}",
        r.message()
    );
    let after = (
        t.artifacts(),
        t.get("/api/v1/audit", &t.admin).await.ok()["items"]
            .as_array()
            .unwrap()
            .len(),
    );
    assert_eq!(before, after, "nothing stored, nothing audited");
    assert_eq!(
        t.get(&format!("/api/v1/projects/{p}/models"), &t.admin)
            .await
            .ok()["items"],
        json!([])
    );
}

#[tokio::test]
async fn lifecycle_allows_exactly_the_documented_moves_and_keeps_one_production_version() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let allowed = [
        ("candidate", "staging"),
        ("staging", "production"),
        ("production", "archived"),
        ("candidate", "archived"),
        ("staging", "candidate"),
        ("staging", "archived"),
        ("archived", "staging"),
    ];
    // Paths that bring a fresh model into each status.
    let reach = |s: &str| -> Vec<&'static str> {
        match s {
            "candidate" => vec![],
            "staging" => vec!["staging"],
            "production" => vec!["staging", "production"],
            _ => vec!["archived"],
        }
    };
    for from in ["candidate", "staging", "production", "archived"] {
        for to in ["candidate", "staging", "production", "archived"] {
            let m = t
                .register(
                    &p,
                    "logreg.onnx",
                    &format!("m-{from}-{to}"),
                    "binary_classification",
                    &t.admin,
                    json!({}),
                )
                .await
                .ok();
            let id = m["id"].as_str().unwrap();
            for step in reach(from) {
                t.post(
                    &format!("/api/v1/models/{id}/transitions"),
                    &t.admin,
                    json!({"status": step}),
                )
                .await
                .ok();
            }
            let r = t
                .post(
                    &format!("/api/v1/models/{id}/transitions"),
                    &t.admin,
                    json!({"status": to, "reason": "test"}),
                )
                .await;
            if allowed.contains(&(from, to)) {
                assert_eq!(r.status, StatusCode::OK, "{from} -> {to}: {}", r.body);
                assert_eq!(r.body["status"], to);
            } else {
                assert_eq!(r.status, StatusCode::CONFLICT, "{from} -> {to}");
                assert_eq!(r.code(), "conflict");
            }
        }
    }
    // Two versions of one name: promoting the second archives the first, with the reason.
    let a = t
        .register(
            &p,
            "logreg.onnx",
            "churn",
            "binary_classification",
            &t.admin,
            json!({}),
        )
        .await
        .ok();
    let b = t
        .register(
            &p,
            "hgb.onnx",
            "churn",
            "binary_classification",
            &t.admin,
            json!({}),
        )
        .await
        .ok();
    for m in [&a, &b] {
        let id = m["id"].as_str().unwrap();
        t.post(
            &format!("/api/v1/models/{id}/transitions"),
            &t.admin,
            json!({"status": "staging"}),
        )
        .await
        .ok();
        t.clock.advance_ms(1);
        t.post(
            &format!("/api/v1/models/{id}/transitions"),
            &t.admin,
            json!({"status": "production", "reason": "better"}),
        )
        .await
        .ok();
        t.clock.advance_ms(1);
    }
    let a_id = a["id"].as_str().unwrap();
    assert_eq!(
        t.get(&format!("/api/v1/models/{a_id}"), &t.admin)
            .await
            .ok()["status"],
        "archived"
    );
    let hist = t
        .get(&format!("/api/v1/models/{a_id}/transitions"), &t.admin)
        .await
        .ok();
    let last = hist.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["to_status"], "archived");
    assert_eq!(last["actor"], "admin");
    assert!(last["reason"]
        .as_str()
        .unwrap()
        .contains(b["id"].as_str().unwrap()));
    let prod = t
        .get(
            &format!("/api/v1/projects/{p}/models?name=churn&status=production"),
            &t.admin,
        )
        .await
        .ok();
    assert_eq!(prod["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        t.get(&format!("/api/v1/models/{a_id}/promotions"), &t.admin)
            .await
            .ok(),
        json!([])
    );
}
