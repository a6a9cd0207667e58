//! Plain records as stored. JSON documents are `serde_json::Value`s; the server shapes them for the wire.

use coreplex_domain::tenancy::KeyScope;
use serde::Serialize;

/// Who is changing what, when: every write carries one, and it becomes the audit entry's actor and time.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub org_id: String,
    pub actor: String,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Project {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Member {
    pub project_id: String,
    pub subject: String,
    pub role: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub org_id: String,
    pub subject: String,
    pub name: String,
    pub prefix: String,
    pub org_admin: bool,
    pub instance_admin: bool,
    pub scope: KeyScope,
    pub created_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// A key to create: the hash of its secret is stored, never the secret.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub org_id: String,
    pub subject: String,
    pub name: String,
    pub prefix: String,
    pub hash: String,
    pub org_admin: bool,
    pub instance_admin: bool,
    pub scope: KeyScope,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    pub seq: i64,
    pub id: String,
    pub org_id: String,
    pub project_id: Option<String>,
    pub actor: String,
    pub at: i64,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub project_id: Option<String>,
    pub resource_id: Option<String>,
    pub resource_type: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dataset {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DatasetVersion {
    pub id: String,
    pub dataset_id: String,
    pub project_id: String,
    pub version: i64,
    pub status: String,
    pub artifact_key: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub row_count: i64,
    pub columns: serde_json::Value,
    pub profile: serde_json::Value,
    pub error: Option<String>,
    pub source: serde_json::Value,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone)]
pub struct NewDatasetVersion {
    pub id: String,
    pub status: String,
    pub artifact_key: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub row_count: i64,
    pub columns: serde_json::Value,
    pub source: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Model {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub version: i64,
    pub task: String,
    pub status: String,
    pub artifact_key: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub input_schema: serde_json::Value,
    pub output_schema: serde_json::Value,
    pub model_card: String,
    pub tags: serde_json::Value,
    pub lineage: serde_json::Value,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewModel {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub task: String,
    pub artifact_key: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub input_schema: serde_json::Value,
    pub output_schema: serde_json::Value,
    pub model_card: String,
    pub tags: serde_json::Value,
    pub lineage: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct ModelFilter {
    pub name: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelTransition {
    pub id: String,
    pub model_id: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub at: i64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Promotion {
    pub id: String,
    pub model_id: String,
    pub project_id: String,
    pub deployment_id: String,
    pub endpoint: String,
    pub strategy: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Job {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: String,
    pub progress: f64,
    pub message: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_after: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub cancel_requested: bool,
    pub result: serde_json::Value,
    pub error: Option<String>,
    pub created_at: i64,
    pub created_by: String,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub project_id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub max_attempts: i64,
    pub run_after: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobAttempt {
    pub job_id: String,
    pub attempt: i64,
    pub worker: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
}

/// A response kept for a POST that carried an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: String,
}
