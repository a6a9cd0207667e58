//! Datasets: upload, validation with line numbers, profiling as a background job, download.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn upload_is_profiled_by_a_job_and_downloads_byte_identical() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let csv = std::fs::read(fixtures().join("churn.csv")).unwrap();
    let v = t.upload_csv(&p, "churn", &t.admin, csv.clone()).await.ok();
    assert_eq!(v["status"], "profiling");
    assert_eq!(v["row_count"], 600);
    assert_eq!(v["version"], 1);
    let kinds: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["numeric"; 5]);
    assert_eq!(t.drain().await, 1);
    let id = v["id"].as_str().unwrap();
    let ready = t
        .get(&format!("/api/v1/dataset-versions/{id}"), &t.admin)
        .await
        .ok();
    assert_eq!(ready["status"], "ready");
    let tenure = &ready["profile"]["columns"][0];
    assert_eq!(tenure["count"], 600);
    assert_eq!(tenure["missing_share"], 0.0);
    assert!(tenure["quantiles"]["0.5"].is_number());
    assert_eq!(tenure["histogram"]["counts"].as_array().unwrap().len(), 20);
    assert!(tenure.get("sketch").is_none(), "sketches only on request");
    let with = t
        .get(
            &format!("/api/v1/dataset-versions/{id}?sketches=true"),
            &t.admin,
        )
        .await
        .ok();
    assert!(with["profile"]["columns"][0]["sketch"].is_object());
    let job = t
        .get(
            &format!("/api/v1/jobs/{}", v["profile_job_id"].as_str().unwrap()),
            &t.admin,
        )
        .await
        .ok();
    assert_eq!(
        (job["status"].as_str(), job["progress"].as_f64()),
        (Some("succeeded"), Some(1.0))
    );
    let got = t
        .http
        .get(format!("{}/api/v1/dataset-versions/{id}/download", t.url))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), csv.as_slice());
    let v2 = t
        .upload_csv(&p, "churn", &t.admin, b"a,b\n1,x\n".to_vec())
        .await
        .ok();
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["dataset_id"], v["dataset_id"]);
}

#[tokio::test]
async fn malformed_csv_is_422_naming_the_line_and_leaves_everything_as_it_was() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    t.upload_csv(&p, "good", &t.admin, b"a,b\n1,2\n".to_vec())
        .await
        .ok();
    let audit_len = || async {
        t.get("/api/v1/audit", &t.admin).await.ok()["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = (
        t.artifacts(),
        audit_len().await,
        t.get(&format!("/api/v1/projects/{p}/datasets"), &t.admin)
            .await
            .ok(),
    );
    let cases: [(&[u8], &str); 5] = [
        (
            b"",
            "file: the file is empty; upload a CSV file with a header row and data rows",
        ),
        (
            b"a,b\n",
            "file: line 1: the file has a header but no data rows",
        ),
        (
            b"a,b\n1,2\n3,4,5\n",
            "file: line 3: expected 2 fields like the header, found 3",
        ),
        (
            b"a,b\n1,\xc3\x28\n",
            "file: line 2: field 2 (`b`) is not valid UTF-8",
        ),
        (b",b\n1,2\n", "file: line 1: column 1 has no name"),
    ];
    for (content, want) in cases {
        let r = t.upload_csv(&p, "bad", &t.admin, content.to_vec()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{want}");
        assert_eq!(r.body["error"]["message"], want);
    }
    let after = (
        t.artifacts(),
        audit_len().await,
        t.get(&format!("/api/v1/projects/{p}/datasets"), &t.admin)
            .await
            .ok(),
    );
    assert_eq!(before, after);
    let tmp = std::fs::read_dir(t.dir.path().join("artifacts/tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 0, "no temporary files left behind");
    assert_eq!(
        t.upload_csv(&p, " ", &t.admin, b"a\n1\n".to_vec())
            .await
            .body["error"]["message"],
        "name: must not be empty"
    );
}

#[tokio::test]
async fn cancelling_a_queued_profile_job_stops_it_and_is_audited() {
    let t = spawn_app().await;
    let p = t.project("churn").await;
    let v = t
        .upload_csv(&p, "d", &t.admin, b"a\n1\n".to_vec())
        .await
        .ok();
    let job = v["profile_job_id"].as_str().unwrap();
    let c = t
        .post(&format!("/api/v1/jobs/{job}/cancel"), &t.admin, json!({}))
        .await
        .ok();
    assert_eq!(c["status"], "cancelled");
    assert_eq!(t.drain().await, 0);
    let again = t
        .post(&format!("/api/v1/jobs/{job}/cancel"), &t.admin, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let audit = t
        .get(&format!("/api/v1/audit?resource_id={job}"), &t.admin)
        .await
        .ok();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["job.create", "job.cancel"]);
}
