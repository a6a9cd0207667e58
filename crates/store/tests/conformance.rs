//! One conformance suite for every storage backend: each case runs against SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `COREPLEX_TEST_DATABASE_URL` (an admin URL; each case gets a fresh database).
//! Without it the PostgreSQL half is skipped with a note, except under CI (`CI=true`), where a missing
//! PostgreSQL is a failure.

use coreplex_domain::registry::ModelStatus;
use coreplex_domain::tenancy::KeyScope;
use coreplex_store::*;
use serde_json::json;
use std::future::Future;

struct Backend {
    name: &'static str,
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Backend {
        name: "sqlite",
        store: Store::connect(&url).await.unwrap(),
        _dir: Some(dir),
    }
}

async fn postgres() -> Option<Backend> {
    let Ok(admin) = std::env::var("COREPLEX_TEST_DATABASE_URL") else {
        if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
            panic!("COREPLEX_TEST_DATABASE_URL must point at PostgreSQL under CI");
        }
        eprintln!("note: COREPLEX_TEST_DATABASE_URL is not set; PostgreSQL cases skipped");
        return None;
    };
    Some(Backend {
        name: "postgres",
        store: Store::connect(&fresh_pg_database(&admin).await)
            .await
            .unwrap(),
        _dir: None,
    })
}

/// Creates an empty database next to the one `admin` points at and returns its URL.
pub async fn fresh_pg_database(admin: &str) -> String {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let name = coreplex_domain::ids::new_id("cpxtest");
    let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}

/// A backend for one case. The temporary folder of a SQLite database lives as long as `each` holds it.
struct B {
    name: &'static str,
    store: Store,
}

async fn each<F, Fut>(case: F)
where
    F: Fn(B) -> Fut,
    Fut: Future<Output = ()>,
{
    let lite = sqlite().await;
    case(B {
        name: lite.name,
        store: lite.store.clone(),
    })
    .await;
    if let Some(pg) = postgres().await {
        case(B {
            name: pg.name,
            store: pg.store.clone(),
        })
        .await;
    }
}

fn ctx(org: &str, at: i64) -> Ctx {
    Ctx {
        org_id: org.into(),
        actor: "alice".into(),
        at,
    }
}

async fn org_and_project(s: &Store) -> (Org, Project) {
    let org = Org {
        id: coreplex_domain::ids::new_id("org"),
        name: coreplex_domain::ids::new_id("o"),
        created_at: 1,
    };
    s.create_org(&ctx(&org.id, 1), &org).await.unwrap();
    let p = Project {
        id: coreplex_domain::ids::new_id("proj"),
        org_id: org.id.clone(),
        name: "churn".into(),
        description: String::new(),
        created_at: 2,
        updated_at: 2,
    };
    s.create_project(&ctx(&org.id, 2), &p, None).await.unwrap();
    (org, p)
}

fn new_model(project: &str, name: &str) -> NewModel {
    NewModel {
        id: coreplex_domain::ids::new_id("model"),
        project_id: project.into(),
        name: name.into(),
        task: "binary_classification".into(),
        artifact_key: "k".into(),
        sha256: "0".into(),
        size_bytes: 1,
        input_schema: json!({}),
        output_schema: json!({}),
        model_card: String::new(),
        tags: json!({}),
        lineage: json!({"dataset_version_id": "dsv_1"}),
    }
}

fn new_job(project: &str, at: i64) -> NewJob {
    NewJob {
        id: coreplex_domain::ids::new_id("job"),
        project_id: project.into(),
        kind: "test".into(),
        payload: json!({"n": 1}),
        max_attempts: 2,
        run_after: at,
    }
}

#[tokio::test]
async fn projects_are_unique_per_org_and_scoped_to_it() {
    each(|b| async move {
        let s = &b.store;
        let (org, p) = org_and_project(s).await;
        let dup = Project {
            id: "proj_other".into(),
            ..p.clone()
        };
        assert!(
            matches!(
                s.create_project(&ctx(&org.id, 3), &dup, None).await,
                Err(Error::Conflict(_))
            ),
            "{}",
            b.name
        );
        let (org2, _) = org_and_project(s).await;
        assert!(
            s.get_project(&org2.id, &p.id).await.unwrap().is_none(),
            "{}",
            b.name
        );
        assert_eq!(
            s.get_project(&org.id, &p.id).await.unwrap().unwrap().name,
            "churn"
        );
        let page = s.list_projects(&org.id, None, 10, 0).await.unwrap();
        assert_eq!(page.items.len(), 1);
        s.put_member(&ctx(&org.id, 4), &p.id, "bob", "viewer")
            .await
            .unwrap();
        assert_eq!(
            s.list_projects(&org.id, Some("bob"), 10, 0)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        assert_eq!(
            s.list_projects(&org.id, Some("carol"), 10, 0)
                .await
                .unwrap()
                .items
                .len(),
            0
        );
        s.put_member(&ctx(&org.id, 5), &p.id, "bob", "editor")
            .await
            .unwrap();
        assert_eq!(
            s.member_role(&p.id, "bob").await.unwrap().as_deref(),
            Some("editor")
        );
    })
    .await;
}

#[tokio::test]
async fn keys_are_found_by_hash_until_revoked() {
    each(|b| async move {
        let s = &b.store;
        let (org, _) = org_and_project(s).await;
        let k = NewApiKey {
            id: "key_1".into(),
            org_id: org.id.clone(),
            subject: "bob".into(),
            name: "ci".into(),
            prefix: "cpx_abc".into(),
            hash: format!("hash-{}", org.id),
            org_admin: false,
            instance_admin: false,
            scope: KeyScope::Predict {
                deployment_id: "dep_1".into(),
            },
        };
        let key = s.create_api_key(&ctx(&org.id, 3), &k).await.unwrap();
        let found = s.find_key_by_hash(&k.hash).await.unwrap().unwrap();
        assert_eq!(
            found.scope,
            KeyScope::Predict {
                deployment_id: "dep_1".into()
            },
            "{}",
            b.name
        );
        s.revoke_api_key(&ctx(&org.id, 4), &key).await.unwrap();
        assert!(s.find_key_by_hash(&k.hash).await.unwrap().is_none());
        assert_eq!(
            s.list_api_keys(&org.id, Some("bob")).await.unwrap()[0].revoked_at,
            Some(4)
        );
    })
    .await;
}

#[tokio::test]
async fn audit_log_filters_pages_and_refuses_edits() {
    each(|b| async move {
        let s = &b.store;
        let (org, p) = org_and_project(s).await;
        for i in 0..5 {
            s.put_member(
                &Ctx {
                    org_id: org.id.clone(),
                    actor: format!("actor{}", i % 2),
                    at: 10 + i,
                },
                &p.id,
                &format!("m{i}"),
                "viewer",
            )
            .await
            .unwrap();
        }
        let all = s
            .list_audit(&org.id, &AuditFilter::default(), 100, 0)
            .await
            .unwrap();
        assert_eq!(
            all.items.len(),
            7,
            "{}: org.create, project.create and 5 member.add",
            b.name
        );
        let f = AuditFilter {
            actor: Some("actor1".into()),
            ..Default::default()
        };
        assert_eq!(
            s.list_audit(&org.id, &f, 100, 0).await.unwrap().items.len(),
            2
        );
        let f = AuditFilter {
            since: Some(11),
            until: Some(13),
            ..Default::default()
        };
        assert_eq!(
            s.list_audit(&org.id, &f, 100, 0).await.unwrap().items.len(),
            2
        );
        let f = AuditFilter {
            resource_id: Some("m3".into()),
            ..Default::default()
        };
        let one = s.list_audit(&org.id, &f, 100, 0).await.unwrap();
        assert_eq!(one.items[0].after["role"], "viewer");
        let first = s
            .list_audit(&org.id, &AuditFilter::default(), 3, 0)
            .await
            .unwrap();
        let token = first.next_page_token.clone().unwrap();
        let seq: i64 = token[1..].parse().unwrap();
        let second = s
            .list_audit(&org.id, &AuditFilter::default(), 3, seq)
            .await
            .unwrap();
        assert_eq!(second.items.len(), 3);
        assert!(second.items[0].seq > first.items[2].seq);
        // The database itself refuses to change history.
        assert!(
            s.debug_execute("UPDATE audit_log SET actor = 'mallory'")
                .await
                .is_err(),
            "{}",
            b.name
        );
        assert!(
            s.debug_execute("DELETE FROM audit_log").await.is_err(),
            "{}",
            b.name
        );
        assert_eq!(
            s.list_audit(&org.id, &AuditFilter::default(), 100, 0)
                .await
                .unwrap()
                .items
                .len(),
            7
        );
    })
    .await;
}

#[tokio::test]
async fn dataset_and_model_versions_count_up_per_name() {
    each(|b| async move {
        let s = &b.store;
        let (org, p) = org_and_project(s).await;
        let c = ctx(&org.id, 5);
        let v = |id: &str| NewDatasetVersion {
            id: id.into(),
            status: "profiling".into(),
            artifact_key: "a".into(),
            sha256: "s".into(),
            size_bytes: 3,
            row_count: 2,
            columns: json!([]),
            source: json!({}),
        };
        let (d1, v1) = s
            .create_dataset_version(&c, &p.id, "churn", "", &v("dsv_a"))
            .await
            .unwrap();
        let (d2, v2) = s
            .create_dataset_version(&c, &p.id, "churn", "", &v("dsv_b"))
            .await
            .unwrap();
        assert_eq!(
            (d1.id == d2.id, v1.version, v2.version),
            (true, 1, 2),
            "{}",
            b.name
        );
        s.finish_dataset_profile(&c, "dsv_a", "ready", Some(&json!({"columns": []})), None)
            .await
            .unwrap();
        assert_eq!(
            s.get_dataset_version(&org.id, "dsv_a")
                .await
                .unwrap()
                .unwrap()
                .status,
            "ready"
        );
        let m1 = s
            .create_model(&c, &new_model(&p.id, "churn"))
            .await
            .unwrap();
        let m2 = s
            .create_model(&c, &new_model(&p.id, "churn"))
            .await
            .unwrap();
        let other = s
            .create_model(&c, &new_model(&p.id, "fraud"))
            .await
            .unwrap();
        assert_eq!((m1.version, m2.version, other.version), (1, 2, 1));
        assert_eq!(m1.status, "candidate");
        assert_eq!(m1.lineage["dataset_version_id"], "dsv_1");
    })
    .await;
}

#[tokio::test]
async fn lifecycle_keeps_one_production_version_and_records_every_move() {
    each(|b| async move {
        let s = &b.store;
        let (org, p) = org_and_project(s).await;
        let c = ctx(&org.id, 5);
        let a = s
            .create_model(&c, &new_model(&p.id, "churn"))
            .await
            .unwrap();
        let bm = s
            .create_model(&c, &new_model(&p.id, "churn"))
            .await
            .unwrap();
        assert!(matches!(
            s.transition_model(&c, &a.id, ModelStatus::Production, "")
                .await,
            Err(Error::Conflict(_))
        ));
        for m in [&a, &bm] {
            s.transition_model(&ctx(&org.id, 6), &m.id, ModelStatus::Staging, "review")
                .await
                .unwrap();
        }
        s.transition_model(&ctx(&org.id, 7), &a.id, ModelStatus::Production, "first")
            .await
            .unwrap();
        let after = s
            .transition_model(&ctx(&org.id, 9), &bm.id, ModelStatus::Production, "better")
            .await
            .unwrap();
        assert_eq!(after.status, "production", "{}", b.name);
        let a_now = s.get_model(&org.id, &a.id).await.unwrap().unwrap();
        assert_eq!(a_now.status, "archived");
        let t = s.list_model_transitions(&a.id).await.unwrap();
        let moves: Vec<(Option<String>, String)> = t
            .iter()
            .map(|t| (t.from_status.clone(), t.to_status.clone()))
            .collect();
        assert_eq!(
            moves,
            vec![
                (None, "candidate".into()),
                (Some("candidate".into()), "staging".into()),
                (Some("staging".into()), "production".into()),
                (Some("production".into()), "archived".into())
            ]
        );
        assert_eq!(t[3].reason, format!("replaced in production by {}", bm.id));
        assert_eq!(t[3].at, 9);
        let f = ModelFilter {
            status: Some("production".into()),
            ..Default::default()
        };
        assert_eq!(
            s.list_models(&p.id, &f, 10, 0).await.unwrap().items.len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_claimers_never_get_the_same_job() {
    each(|b| async move {
        let s = b.store.clone();
        let (org, p) = org_and_project(&s).await;
        let mut ids = Vec::new();
        for _ in 0..40 {
            ids.push(
                s.enqueue_job(&ctx(&org.id, 10), &new_job(&p.id, 10))
                    .await
                    .unwrap()
                    .id,
            );
        }
        let mut tasks = Vec::new();
        for w in 0..4 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(j) = s.claim_job(&format!("w{w}"), 20, 30_000).await.unwrap() {
                    got.push(j.id.clone());
                    assert!(s
                        .finish_job_succeeded(&j.id, &format!("w{w}"), 21, &json!({}))
                        .await
                        .unwrap());
                }
                got
            }));
        }
        let mut claimed = Vec::new();
        for t in tasks {
            claimed.extend(t.await.unwrap());
        }
        claimed.sort();
        ids.sort();
        assert_eq!(claimed, ids, "{}: every job exactly once", b.name);
        for id in &ids {
            assert_eq!(s.list_job_attempts(id).await.unwrap().len(), 1);
        }
    })
    .await;
}

#[tokio::test]
async fn jobs_of_a_dead_worker_are_recovered_then_fail_after_their_attempts() {
    each(|b| async move {
        let s = &b.store;
        let (org, p) = org_and_project(s).await;
        let j = s
            .enqueue_job(&ctx(&org.id, 0), &new_job(&p.id, 0))
            .await
            .unwrap();
        assert!(s.claim_job("dead", 0, 100).await.unwrap().is_some());
        assert!(
            s.claim_job("other", 50, 150).await.unwrap().is_none(),
            "{}: leased",
            b.name
        );
        assert_eq!(s.recover_expired_jobs(50).await.unwrap(), 0);
        assert_eq!(s.recover_expired_jobs(101).await.unwrap(), 1);
        let again = s.claim_job("other", 102, 200).await.unwrap().unwrap();
        assert_eq!(again.attempts, 2);
        // The dead worker wakes up: it no longer holds the lease and cannot finish the job.
        assert!(!s
            .finish_job_succeeded(&j.id, "dead", 103, &json!({}))
            .await
            .unwrap());
        assert_eq!(
            s.heartbeat_job(&j.id, "dead", 103, 300, 0.5, "")
                .await
                .unwrap(),
            jobs::Heartbeat::LeaseLost
        );
        assert_eq!(s.recover_expired_jobs(201).await.unwrap(), 1);
        let failed = s.get_job(&org.id, &j.id).await.unwrap().unwrap();
        assert_eq!(failed.status, "failed", "{}: no attempts left", b.name);
        let outcomes: Vec<Option<String>> = s
            .list_job_attempts(&j.id)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.outcome)
            .collect();
        assert_eq!(outcomes, vec![Some("lost".into()), Some("lost".into())]);
    })
    .await;
}

#[tokio::test]
async fn retries_wait_for_their_time_and_cancellation_reaches_running_jobs() {
    each(|b| async move {
        let s = &b.store;
        let (org, p) = org_and_project(s).await;
        let j = s
            .enqueue_job(&ctx(&org.id, 0), &new_job(&p.id, 0))
            .await
            .unwrap();
        s.claim_job("w", 0, 1000).await.unwrap().unwrap();
        assert_eq!(
            s.heartbeat_job(&j.id, "w", 1, 1000, 0.4, "half")
                .await
                .unwrap(),
            jobs::Heartbeat::Continue
        );
        assert!(s
            .finish_job_failed(&j.id, "w", 2, "flaky", Some(2002))
            .await
            .unwrap());
        assert!(
            s.claim_job("w", 2001, 3000).await.unwrap().is_none(),
            "{}: not before retry time",
            b.name
        );
        let j2 = s.claim_job("w", 2002, 3000).await.unwrap().unwrap();
        assert_eq!(j2.error.as_deref(), Some("flaky"));
        s.cancel_job(&ctx(&org.id, 2003), &j.id).await.unwrap();
        assert_eq!(
            s.heartbeat_job(&j.id, "w", 2004, 4000, 0.5, "")
                .await
                .unwrap(),
            jobs::Heartbeat::CancelRequested
        );
        assert!(s.finish_job_cancelled(&j.id, "w", 2005).await.unwrap());
        assert_eq!(
            s.get_job(&org.id, &j.id).await.unwrap().unwrap().status,
            "cancelled"
        );
        let q = s
            .enqueue_job(&ctx(&org.id, 0), &new_job(&p.id, 5000))
            .await
            .unwrap();
        assert_eq!(
            s.cancel_job(&ctx(&org.id, 1), &q.id).await.unwrap().status,
            "cancelled"
        );
        assert!(matches!(
            s.cancel_job(&ctx(&org.id, 1), &q.id).await,
            Err(Error::Conflict(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn controller_leases_have_one_holder_until_they_expire() {
    each(|b| async move {
        let s = &b.store;
        assert!(s.acquire_lease("scheduler", "a", 0, 100).await.unwrap());
        assert!(
            !s.acquire_lease("scheduler", "b", 50, 150).await.unwrap(),
            "{}",
            b.name
        );
        assert!(s.acquire_lease("scheduler", "a", 60, 160).await.unwrap());
        assert!(s.acquire_lease("scheduler", "b", 161, 260).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_other_requests_and_settings_are_kept_once() {
    each(|b| async move {
        let s = &b.store;
        let claim = |fp: &'static str, now: i64| {
            s.claim_idempotency_key("key_1", "k", "/x", fp, now, now - 100)
        };
        assert_eq!(
            claim("f1", 1).await.unwrap(),
            IdempotencyClaim::Claimed,
            "{}",
            b.name
        );
        assert_eq!(claim("f1", 2).await.unwrap(), IdempotencyClaim::InProgress);
        assert_eq!(
            claim("f2", 2).await.unwrap(),
            IdempotencyClaim::Mismatch { path: "/x".into() }
        );
        let r = StoredResponse {
            method: "POST".into(),
            path: "/x".into(),
            status: 201,
            body: "{}".into(),
        };
        s.finish_idempotency_key("key_1", "k", Some(&r))
            .await
            .unwrap();
        assert_eq!(claim("f1", 3).await.unwrap(), IdempotencyClaim::Replay(r));
        // A claim whose server died is taken over once stale; a server error releases it at once.
        assert_eq!(
            s.claim_idempotency_key("key_1", "j", "/x", "f", 10, 0)
                .await
                .unwrap(),
            IdempotencyClaim::Claimed
        );
        assert_eq!(
            s.claim_idempotency_key("key_1", "j", "/x", "f", 500, 400)
                .await
                .unwrap(),
            IdempotencyClaim::Claimed
        );
        s.finish_idempotency_key("key_1", "j", None).await.unwrap();
        assert_eq!(
            s.claim_idempotency_key("key_1", "j", "/x", "f", 501, 400)
                .await
                .unwrap(),
            IdempotencyClaim::Claimed
        );
        assert_eq!(
            s.claim_idempotency_key("key_2", "k", "/x", "f1", 1, 0)
                .await
                .unwrap(),
            IdempotencyClaim::Claimed
        );
        assert!(s.set_setting_once("bootstrap", "a").await.unwrap());
        assert!(!s.set_setting_once("bootstrap", "b").await.unwrap());
        assert_eq!(
            s.get_setting("bootstrap").await.unwrap().as_deref(),
            Some("a")
        );
    })
    .await;
}

#[tokio::test]
async fn logged_predictions_come_back_with_their_features_once_each() {
    each(|b| async move {
        let s = &b.store;
        let row = json!({"age": 41, "income": -0.13826430117118466, "plan": "gold", "note": null,
                         "flags": [1, 2], "active": true});
        let record = |i: usize| PredictionRecord {
            request_id: format!("req-{i}"),
            role: "primary",
            deployment_id: "dep_1".into(),
            model_id: "mdl_1".into(),
            variant: "primary".into(),
            at: 1_000 + i as i64,
            latency_us: 40,
            is_error: false,
            entity_id: None,
            features: features_codec::encode(row.as_object().unwrap()),
            output: r#"{"label":"1"}"#.into(),
            predicted: Some("1".into()),
            score: Some(0.9),
        };
        let batch: Vec<PredictionRecord> = (0..300).map(record).collect();
        let mut writer = s.prediction_writer();
        writer.insert(&batch).await.unwrap();
        // A batch retried after a failure leaves one row per request id.
        writer.insert(&batch[..10]).await.unwrap();
        assert_eq!(
            s.count_predictions("dep_1").await.unwrap(),
            300,
            "{}",
            b.name
        );
        let page = s.list_predictions("dep_1", 0, 10_000, 5, 0).await.unwrap();
        assert_eq!(page.items[0]["request_id"], "req-0", "{}", b.name);
        assert_eq!(page.items[0]["features"], row, "{}", b.name);
        let unknown = s
            .label_predictions(
                "dep_1",
                &[
                    LabelUpdate {
                        request_id: "req-0".into(),
                        label: Some("1".into()),
                        value: None,
                    },
                    LabelUpdate {
                        request_id: "req-missing".into(),
                        label: Some("0".into()),
                        value: None,
                    },
                ],
                5_000,
            )
            .await
            .unwrap();
        assert_eq!(unknown, vec!["req-missing".to_string()], "{}", b.name);
    })
    .await;
}
