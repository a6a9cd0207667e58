//! Tenancy and roles: every route checked with each project role, and another organization sees
//! nothing of this one.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Need {
    /// Any valid key.
    Anyone,
    Viewer,
    Editor,
    ProjectAdmin,
    OrgAdmin,
    InstanceAdmin,
}

struct Ids {
    abt: String,
    pol: String,
    exp: String,
    alert: String,
    dep: String,
    p: String,
    ds: String,
    dsv: String,
    model: String,
    job: String,
    key: String,
}

fn routes(ids: &Ids) -> Vec<(Method, String, &'static str, Need, Option<Value>)> {
    let Ids {
        abt,
        pol,
        exp,
        alert,
        dep,
        p,
        ds,
        dsv,
        model,
        job,
        key,
    } = ids;
    use Need::*;
    vec![
        (
            Method::POST,
            "/api/v1/orgs".into(),
            "/api/v1/orgs",
            InstanceAdmin,
            Some(json!({"name": "x"})),
        ),
        (
            Method::GET,
            "/api/v1/orgs".into(),
            "/api/v1/orgs",
            Anyone,
            None,
        ),
        (
            Method::POST,
            "/api/v1/keys".into(),
            "/api/v1/keys",
            OrgAdmin,
            Some(json!({"subject": "s"})),
        ),
        (
            Method::GET,
            "/api/v1/keys".into(),
            "/api/v1/keys",
            Anyone,
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/keys/{key}"),
            "/api/v1/keys/{key_id}",
            OrgAdmin,
            None,
        ),
        (
            Method::POST,
            "/api/v1/projects".into(),
            "/api/v1/projects",
            OrgAdmin,
            Some(json!({"name": "x"})),
        ),
        (
            Method::GET,
            "/api/v1/projects".into(),
            "/api/v1/projects",
            Anyone,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}"),
            "/api/v1/projects/{project_id}",
            Viewer,
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/projects/{p}"),
            "/api/v1/projects/{project_id}",
            ProjectAdmin,
            Some(json!({"description": "d"})),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/members"),
            "/api/v1/projects/{project_id}/members",
            Viewer,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/members"),
            "/api/v1/projects/{project_id}/members",
            ProjectAdmin,
            Some(json!({"subject": "zed", "role": "viewer"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/projects/{p}/members/zed"),
            "/api/v1/projects/{project_id}/members/{subject}",
            ProjectAdmin,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/audit?project_id={p}"),
            "/api/v1/audit",
            Viewer,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/datasets?name=d"),
            "/api/v1/projects/{project_id}/datasets",
            Editor,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/datasets"),
            "/api/v1/projects/{project_id}/datasets",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/datasets/{ds}"),
            "/api/v1/datasets/{dataset_id}",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/datasets/{ds}/versions"),
            "/api/v1/datasets/{dataset_id}/versions",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/dataset-versions/{dsv}"),
            "/api/v1/dataset-versions/{version_id}",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/dataset-versions/{dsv}/download"),
            "/api/v1/dataset-versions/{version_id}/download",
            Viewer,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/models"),
            "/api/v1/projects/{project_id}/models",
            Editor,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/models"),
            "/api/v1/projects/{project_id}/models",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/models/{model}"),
            "/api/v1/models/{model_id}",
            Viewer,
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/models/{model}"),
            "/api/v1/models/{model_id}",
            Editor,
            Some(json!({"model_card": "c"})),
        ),
        (
            Method::POST,
            format!("/api/v1/models/{model}/transitions"),
            "/api/v1/models/{model_id}/transitions",
            Editor,
            Some(json!({"status": "staging"})),
        ),
        (
            Method::GET,
            format!("/api/v1/models/{model}/transitions"),
            "/api/v1/models/{model_id}/transitions",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/models/{model}/promotions"),
            "/api/v1/models/{model_id}/promotions",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/models/{model}/artifact"),
            "/api/v1/models/{model_id}/artifact",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/jobs/{job}"),
            "/api/v1/jobs/{job_id}",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/jobs"),
            "/api/v1/projects/{project_id}/jobs",
            Viewer,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/jobs/{job}/cancel"),
            "/api/v1/jobs/{job_id}/cancel",
            Editor,
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/api/v1/jobs/{job}/attempts"),
            "/api/v1/jobs/{job_id}/attempts",
            Viewer,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/deployments"),
            "/api/v1/projects/{project_id}/deployments",
            Editor,
            Some(json!({"name": "churn-endpoint", "model_id": model})),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/deployments"),
            "/api/v1/projects/{project_id}/deployments",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/deployments/{dep}"),
            "/api/v1/deployments/{deployment_id}",
            Viewer,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/deployments/{dep}/rollouts"),
            "/api/v1/deployments/{deployment_id}/rollouts",
            Editor,
            Some(json!({"model_id": model})),
        ),
        (
            Method::POST,
            format!("/api/v1/deployments/{dep}/predict"),
            "/api/v1/deployments/{deployment_id}/predict",
            Viewer,
            Some(predict_body()),
        ),
        (
            Method::POST,
            format!("/api/v1/deployments/{dep}/feedback"),
            "/api/v1/deployments/{deployment_id}/feedback",
            Editor,
            Some(json!([{"request_id": "r1", "label": 1}])),
        ),
        (
            Method::GET,
            format!("/api/v1/deployments/{dep}/metrics"),
            "/api/v1/deployments/{deployment_id}/metrics",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/deployments/{dep}/events"),
            "/api/v1/deployments/{deployment_id}/events",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/deployments/{dep}/predictions"),
            "/api/v1/deployments/{deployment_id}/predictions",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/deployments/{dep}/comparison"),
            "/api/v1/deployments/{deployment_id}/comparison",
            Viewer,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/deployments/{dep}/promote"),
            "/api/v1/deployments/{deployment_id}/promote",
            Editor,
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/deployments/{dep}/rollback"),
            "/api/v1/deployments/{deployment_id}/rollback",
            Editor,
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/deployments/{dep}/pause"),
            "/api/v1/deployments/{deployment_id}/pause",
            Editor,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/deployments/{dep}/resume"),
            "/api/v1/deployments/{deployment_id}/resume",
            Editor,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/deployments/{dep}/drift"),
            "/api/v1/deployments/{deployment_id}/drift",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/deployments/{dep}/concept-drift"),
            "/api/v1/deployments/{deployment_id}/concept-drift",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/deployments/{dep}/notifications"),
            "/api/v1/deployments/{deployment_id}/notifications",
            Viewer,
            None,
        ),
        (
            Method::POST,
            "/api/v1/alerts".into(),
            "/api/v1/alerts",
            Editor,
            Some(alert_body(dep)),
        ),
        (
            Method::GET,
            format!("/api/v1/alerts?project_id={p}"),
            "/api/v1/alerts",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/alerts/{alert}"),
            "/api/v1/alerts/{alert_id}",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/alerts/{alert}/history"),
            "/api/v1/alerts/{alert_id}/history",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/alerts/{alert}/deliveries"),
            "/api/v1/alerts/{alert_id}/deliveries",
            Viewer,
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/alerts/{alert}"),
            "/api/v1/alerts/{alert_id}",
            Editor,
            Some(json!({"threshold": 5})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/alerts/{alert}"),
            "/api/v1/alerts/{alert_id}",
            Editor,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/experiments"),
            "/api/v1/projects/{project_id}/experiments",
            Editor,
            Some(json!({"dataset_version_id": dsv, "target": "churned", "max_models": 1})),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/experiments"),
            "/api/v1/projects/{project_id}/experiments",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/experiments/{exp}"),
            "/api/v1/experiments/{experiment_id}",
            Viewer,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/experiments/{exp}/cancel"),
            "/api/v1/experiments/{experiment_id}/cancel",
            Editor,
            None,
        ),
        (
            Method::POST,
            "/api/v1/retraining/policies".into(),
            "/api/v1/retraining/policies",
            Editor,
            Some(
                json!({"deployment_id": dep, "trigger": "schedule", "schedule": "daily", "target": "churned"}),
            ),
        ),
        (
            Method::GET,
            format!("/api/v1/retraining/policies?project_id={p}"),
            "/api/v1/retraining/policies",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/retraining/policies/{pol}"),
            "/api/v1/retraining/policies/{policy_id}",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/retraining/policies/{pol}/runs"),
            "/api/v1/retraining/policies/{policy_id}/runs",
            Viewer,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/retraining/policies/{pol}/trigger"),
            "/api/v1/retraining/policies/{policy_id}/trigger",
            Editor,
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/retraining/policies/{pol}"),
            "/api/v1/retraining/policies/{policy_id}",
            Editor,
            Some(json!({"enabled": true})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/retraining/policies/{pol}"),
            "/api/v1/retraining/policies/{policy_id}",
            Editor,
            None,
        ),
        (
            Method::POST,
            "/api/v1/ab-tests".into(),
            "/api/v1/ab-tests",
            Editor,
            Some(ab_test_body(dep, model)),
        ),
        (
            Method::GET,
            format!("/api/v1/ab-tests?project_id={p}"),
            "/api/v1/ab-tests",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/ab-tests/{abt}"),
            "/api/v1/ab-tests/{ab_test_id}",
            Viewer,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/ab-tests/{abt}/results"),
            "/api/v1/ab-tests/{ab_test_id}/results",
            Viewer,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/ab-tests/{abt}/outcomes"),
            "/api/v1/ab-tests/{ab_test_id}/outcomes",
            Editor,
            Some(json!([{"request_id": "r1", "value": 1}])),
        ),
        (
            Method::POST,
            format!("/api/v1/ab-tests/{abt}/stop"),
            "/api/v1/ab-tests/{ab_test_id}/stop",
            Editor,
            Some(json!({})),
        ),
    ]
}

fn alert_body(dep: &str) -> Value {
    json!({"deployment_id": dep, "name": "volume", "metric": "requests", "condition": "greater_than", "threshold": 1,
           "channels": [{"type": "email", "address": "team@example.com"}]})
}

fn ab_test_body(dep: &str, model: &str) -> Value {
    json!({"deployment_id": dep, "name": "a/a", "variants": [{"model_id": model}, {"model_id": model}],
           "metric": {"type": "proportion", "source": "outcomes"}, "minimum_detectable_effect": 0.05})
}

fn predict_body() -> Value {
    json!({"rows": [{"tenure": 0.1, "monthly_charges": 0.2, "support_calls": 0.3, "usage_trend": 0.4}]})
}

async fn setup(t: &TestApp) -> Ids {
    let p = t.project("churn").await;
    let csv = std::fs::read(fixtures().join("churn.csv")).unwrap();
    let v = t.upload_csv(&p, "churn", &t.admin, csv).await.ok();
    let model = t
        .register(
            &p,
            "logreg.onnx",
            "churn",
            "binary_classification",
            &t.admin,
            json!({"lineage": {"dataset_version_id": v["id"]}}),
        )
        .await
        .ok();
    let key = t
        .post("/api/v1/keys", &t.admin, json!({"subject": "someone"}))
        .await
        .ok();
    let dep = t
        .post(
            &format!("/api/v1/projects/{p}/deployments"),
            &t.admin,
            json!({"name": "churn-endpoint", "model_id": model["id"]}),
        )
        .await
        .ok();
    let dep_id = dep["id"].as_str().unwrap().to_string();
    let alert = t
        .post("/api/v1/alerts", &t.admin, alert_body(&dep_id))
        .await
        .ok();
    let exp = t
        .post(
            &format!("/api/v1/projects/{p}/experiments"),
            &t.admin,
            json!({"dataset_version_id": v["id"], "target": "churned", "max_models": 1}),
        )
        .await
        .ok();
    let pol = t
        .post("/api/v1/retraining/policies", &t.admin, json!({"deployment_id": dep_id, "trigger": "schedule", "schedule": "daily", "target": "churned"}))
        .await
        .ok();
    let abt = t
        .post(
            "/api/v1/ab-tests",
            &t.admin,
            ab_test_body(&dep_id, model["id"].as_str().unwrap()),
        )
        .await
        .ok();
    Ids {
        abt: abt["id"].as_str().unwrap().into(),
        pol: pol["id"].as_str().unwrap().into(),
        exp: exp["id"].as_str().unwrap().into(),
        alert: alert["id"].as_str().unwrap().into(),
        dep: dep_id,
        p,
        ds: v["dataset_id"].as_str().unwrap().into(),
        dsv: v["id"].as_str().unwrap().into(),
        model: model["id"].as_str().unwrap().into(),
        job: v["profile_job_id"].as_str().unwrap().into(),
        key: key["id"].as_str().unwrap().into(),
    }
}

fn allowed(need: Need, role: &str) -> bool {
    let rank = |r: &str| match r {
        "viewer" => 1,
        "editor" => 2,
        "admin" => 3,
        _ => 0,
    };
    match need {
        Need::Anyone => true,
        Need::Viewer => rank(role) >= 1,
        Need::Editor => rank(role) >= 2,
        Need::ProjectAdmin => rank(role) >= 3,
        Need::OrgAdmin | Need::InstanceAdmin => false,
    }
}

#[tokio::test]
async fn every_route_allows_and_denies_by_role() {
    let t = spawn_app().await;
    let ids = setup(&t).await;
    let table = routes(&ids);
    // The table covers every route the server documents, so a new route cannot skip this test.
    let doc = t.get("/api/v1/openapi.json", &t.admin).await.ok();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&m.as_str()) {
                documented.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    let covered: BTreeSet<(String, String)> = table
        .iter()
        .map(|(m, _, tpl, _, _)| (m.to_string(), tpl.to_string()))
        .collect();
    assert_eq!(
        documented, covered,
        "the role table must list exactly the documented routes"
    );

    for role in ["viewer", "editor", "admin"] {
        let key = t.member_key(&ids.p, &format!("{role}-user"), role).await;
        for (method, path, _, need, body) in &table {
            let r = t.call(method.clone(), path, &key, body.clone()).await;
            let denied = r.status == StatusCode::FORBIDDEN
                || (r.status == StatusCode::NOT_FOUND && path.contains("/keys/"));
            if allowed(*need, role) {
                assert!(
                    !denied && r.status != StatusCode::UNAUTHORIZED,
                    "{role} {method} {path}: {} {}",
                    r.status,
                    r.body
                );
            } else {
                assert!(
                    denied,
                    "{role} must not {method} {path}: got {} {}",
                    r.status, r.body
                );
            }
        }
    }
    // Without a key, nothing but health checks answers.
    let r = t
        .http
        .get(format!("{}/api/v1/projects", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = t.get("/api/v1/projects", "cpx_not_a_key").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
}

#[tokio::test]
async fn another_organization_sees_nothing_of_this_one() {
    let t = spawn_app().await;
    let ids = setup(&t).await;
    let other = t.other_org().await;
    for (method, path, _, _, body) in routes(&ids) {
        if !path.contains(&ids.p)
            && !path.contains(&ids.model)
            && !path.contains(&ids.ds)
            && !path.contains(&ids.job)
            && !path.contains(&ids.key)
            && !path.contains(&ids.dsv)
            && !path.contains(&ids.dep)
            && !path.contains(&ids.alert)
            && !path.contains(&ids.exp)
            && !path.contains(&ids.pol)
            && !path.contains(&ids.abt)
        {
            continue;
        }
        let r = t.call(method.clone(), &path, &other, body).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            r.body
        );
        assert_eq!(r.code(), "not_found");
    }
    let listed = t.get("/api/v1/projects", &other).await.ok();
    assert_eq!(listed["items"], json!([]));
    let audit = t.get("/api/v1/audit", &other).await.ok();
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["resource_id"] != ids.model.as_str()));
    // A member who is not in the project does not see it either.
    let outsider = t
        .post("/api/v1/keys", &t.admin, json!({"subject": "outsider"}))
        .await
        .ok()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        t.get(&format!("/api/v1/models/{}", ids.model), &outsider)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn keys_are_shown_once_listed_by_prefix_and_stop_working_when_revoked() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let created = t
        .post(
            "/api/v1/keys",
            &t.admin,
            json!({"subject": "bob", "name": "ci"}),
        )
        .await
        .ok();
    let secret = created["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    let listed = t.get("/api/v1/keys", &t.admin).await.ok();
    let text = listed.to_string();
    assert!(!text.contains(&secret), "the secret is never listed");
    assert!(text.contains(created["prefix"].as_str().unwrap()));
    t.post(
        &format!("/api/v1/projects/{p}/members"),
        &t.admin,
        json!({"subject": "bob", "role": "viewer"}),
    )
    .await
    .ok();
    assert_eq!(
        t.get(&format!("/api/v1/projects/{p}"), &secret)
            .await
            .status,
        StatusCode::OK
    );
    let id = created["id"].as_str().unwrap();
    t.call(
        Method::DELETE,
        &format!("/api/v1/keys/{id}"),
        &t.admin,
        None,
    )
    .await
    .ok();
    assert_eq!(
        t.get(&format!("/api/v1/projects/{p}"), &secret)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let audit = t
        .get(&format!("/api/v1/audit?resource_id={id}"), &t.admin)
        .await
        .ok();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["key.issue", "key.revoke"]);
    assert!(!audit.to_string().contains(&secret));
    // A key scoped to one deployment may do nothing else.
    let scoped = t
        .post(
            "/api/v1/keys",
            &t.admin,
            json!({"subject": "svc", "deployment_id": "dep_x"}),
        )
        .await
        .ok();
    let r = t
        .get(
            &format!("/api/v1/projects/{p}/models"),
            scoped["key"].as_str().unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.message().contains("dep_x"));
}
