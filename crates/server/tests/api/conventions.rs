//! API conventions: error bodies, pagination, idempotent POSTs, OpenAPI, health checks, audit queries.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn health_openapi_and_unknown_routes() {
    let t = spawn_app().await;
    let h = t
        .http
        .get(format!("{}/healthz", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), StatusCode::OK);
    let r = t
        .http
        .get(format!("{}/readyz", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["database"],
        "ok"
    );
    let doc = t.get("/api/v1/openapi.json", &t.admin).await.ok();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api/v1/models/{model_id}/transitions"]["post"].is_object());
    let m = t
        .http
        .get(format!("{}/metrics", t.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("coreplex_models_loaded"));
    let r = t.get("/api/v1/nothing-here", &t.admin).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_field() {
    let t = spawn_app().await;
    let r = t
        .post("/api/v1/projects", &t.admin, json!({"title": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["details"]["field"], "title");
    let r = t.post("/api/v1/projects", &t.admin, json!({})).await;
    assert_eq!(r.body["error"]["details"]["field"], "name");
    let r = t
        .post("/api/v1/projects", &t.admin, json!({"name": 5}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let raw = t
        .http
        .post(format!("{}/api/v1/projects", t.url))
        .bearer_auth(&t.admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let p = t.project("churn").await;
    let r = t
        .post(
            &format!("/api/v1/projects/{p}/members"),
            &t.admin,
            json!({"subject": "a", "role": "owner"}),
        )
        .await;
    assert_eq!(
        r.message(),
        "role: unknown role `owner`; use viewer, editor or admin"
    );
    let r = t
        .get(&format!("/api/v1/projects/{p}/models?limit=0"), &t.admin)
        .await;
    assert_eq!(r.message(), "limit: must be between 1 and 500");
    let r = t
        .get(
            &format!("/api/v1/projects/{p}/models?status=live"),
            &t.admin,
        )
        .await;
    assert!(r.message().starts_with("status: unknown status `live`"));
    let r = t.get("/api/v1/audit?since=yesterday", &t.admin).await;
    assert!(r
        .message()
        .starts_with("since: `yesterday` is not an RFC 3339 time"));
    let dup = t
        .post("/api/v1/projects", &t.admin, json!({"name": "churn"}))
        .await;
    assert_eq!((dup.status, dup.code()), (StatusCode::CONFLICT, "conflict"));
}

#[tokio::test]
async fn lists_paginate_with_tokens() {
    let t = spawn_app().await;
    for i in 0..5 {
        t.project(&format!("p{i}")).await;
        t.clock.advance_ms(1);
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(tk) => format!("/api/v1/projects?limit=2&page_token={tk}"),
            None => "/api/v1/projects?limit=2".into(),
        };
        let page = t.get(&path, &t.admin).await.ok();
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_string()),
        );
        token = page["next_page_token"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, vec!["p0", "p1", "p2", "p3", "p4"]);
    let r = t.get("/api/v1/projects?page_token=garbage", &t.admin).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_repeated_post_with_the_same_idempotency_key_does_the_work_once() {
    let t = spawn_app().await;
    let send = |name: &'static str, key: &'static str| {
        t.http
            .post(format!("{}/api/v1/projects", t.url))
            .bearer_auth(&t.admin)
            .header("idempotency-key", key)
            .json(&json!({"name": name}))
            .send()
    };
    let a = send("churn", "k1").await.unwrap();
    assert_eq!(a.status(), StatusCode::CREATED);
    let a: serde_json::Value = a.json().await.unwrap();
    let b = send("churn", "k1").await.unwrap();
    assert_eq!(b.status(), StatusCode::CREATED);
    assert_eq!(b.headers()["idempotent-replay"], "true");
    let b: serde_json::Value = b.json().await.unwrap();
    assert_eq!(a["id"], b["id"]);
    let c = send("churn", "k2").await.unwrap();
    assert_eq!(
        c.status(),
        StatusCode::CONFLICT,
        "a new key does the work again"
    );
    let d = send("other", "k1").await.unwrap();
    assert_eq!(
        d.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "same key, different request"
    );
    let d: serde_json::Value = d.json().await.unwrap();
    assert!(d["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Idempotency-Key: this key was already used for a different request"));
    let projects = t.get("/api/v1/projects", &t.admin).await.ok();
    assert_eq!(projects["items"].as_array().unwrap().len(), 1);

    // Stored responses are kept for a day, then forgotten: the same key is a new request again
    // (here refused, since the project exists) instead of a replay of the old answer.
    t.clock.advance_minutes(23 * 60);
    coreplex_server::worker::tick(&t.app.state).await.unwrap();
    let e = send("churn", "k1").await.unwrap();
    assert_eq!(
        e.headers()["idempotent-replay"],
        "true",
        "kept within a day"
    );
    t.clock.advance_minutes(2 * 60);
    coreplex_server::worker::tick(&t.app.state).await.unwrap();
    let f = send("churn", "k1").await.unwrap();
    assert_eq!(f.status(), StatusCode::CONFLICT, "forgotten after a day");
    assert!(f.headers().get("idempotent-replay").is_none());
}

#[tokio::test]
async fn audit_log_answers_who_did_what_when_and_cannot_be_edited() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let editor = t.member_key(&p, "erin", "editor").await;
    let m = t
        .register(
            &p,
            "logreg.onnx",
            "churn",
            "binary_classification",
            &editor,
            json!({}),
        )
        .await
        .ok();
    let id = m["id"].as_str().unwrap();
    t.clock.advance_minutes(60);
    t.post(
        &format!("/api/v1/models/{id}/transitions"),
        &editor,
        json!({"status": "staging", "reason": "looks good"}),
    )
    .await
    .ok();
    let by_erin = t
        .get(
            &format!("/api/v1/audit?project_id={p}&actor=erin"),
            &t.admin,
        )
        .await
        .ok();
    let actions: Vec<&str> = by_erin["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["model.register", "model.transition"]);
    let last = &by_erin["items"][1];
    assert_eq!(last["before"]["status"], "candidate");
    assert_eq!(last["after"]["status"], "staging");
    assert_eq!(last["after"]["reason"], "looks good");
    let since = coreplex_domain::clock::to_rfc3339(coreplex_domain::Clock::now(&t.clock) - 1);
    let recent = t
        .get(
            &format!("/api/v1/audit?project_id={p}&since={since}"),
            &t.admin,
        )
        .await
        .ok();
    assert_eq!(recent["items"].as_array().unwrap().len(), 1);
    // Viewers read their project's log; nobody can change it.
    let viewer = t.member_key(&p, "vic", "viewer").await;
    assert_eq!(
        t.get(&format!("/api/v1/audit?project_id={p}"), &viewer)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.get("/api/v1/audit", &viewer).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::POST] {
        let r = t
            .call(method.clone(), "/api/v1/audit", &t.admin, Some(json!({})))
            .await;
        assert!(
            r.status == StatusCode::METHOD_NOT_ALLOWED || r.status == StatusCode::NOT_FOUND,
            "{method}: {}",
            r.status
        );
    }
}
