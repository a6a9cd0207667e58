//! Client commands against a running server: `COREPLEX_URL` (default http://127.0.0.1:8080) and
//! `COREPLEX_API_KEY`. Each prints the server's JSON answer; an error prints its code and message and
//! exits with 1.

use clap::{Args, Subcommand};
use reqwest::blocking::{multipart, Client, RequestBuilder};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct Conn {
    /// Server URL.
    #[arg(
        long,
        env = "COREPLEX_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// API key.
    #[arg(long, env = "COREPLEX_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Projects and their members.
    Projects {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: ProjectCmd,
    },
    /// API keys.
    Keys {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Datasets and their versions.
    Datasets {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: DatasetCmd,
    },
    /// The model registry.
    Models {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: ModelCmd,
    },
    /// Background jobs.
    Jobs {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: JobCmd,
    },
    /// The audit log.
    Audit {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        resource: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCmd {
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
    Get {
        project_id: String,
    },
    /// Add a member or change their role (viewer, editor, admin).
    AddMember {
        project_id: String,
        subject: String,
        role: String,
    },
    Members {
        project_id: String,
    },
    RemoveMember {
        project_id: String,
        subject: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    Create {
        #[arg(long)]
        subject: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        org_admin: bool,
        /// Scope the key to predictions from one deployment.
        #[arg(long)]
        deployment: Option<String>,
    },
    List,
    Revoke {
        key_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DatasetCmd {
    /// Upload a CSV file as a new version of dataset NAME.
    Upload {
        project_id: String,
        path: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    List {
        project_id: String,
    },
    Get {
        dataset_id: String,
    },
    Versions {
        dataset_id: String,
    },
    Version {
        version_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCmd {
    /// Register an ONNX file as a new version of model NAME.
    Register {
        project_id: String,
        path: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        task: String,
        #[arg(long, default_value = "")]
        model_card: String,
        /// Extra metadata as JSON (lineage, tags, feature_names, class_labels, input_example).
        #[arg(long)]
        metadata: Option<String>,
    },
    List {
        project_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    Get {
        model_id: String,
    },
    /// Move a model through its lifecycle (candidate, staging, production, archived).
    Transition {
        model_id: String,
        status: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Transitions {
        model_id: String,
    },
    Promotions {
        model_id: String,
    },
    /// Download the ONNX file.
    Download {
        model_id: String,
        output: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobCmd {
    Get { job_id: String },
    List { project_id: String },
    Cancel { job_id: String },
}

/// A blocking API client shared by the client commands.
pub(crate) struct Api {
    base: String,
    key: String,
    http: Client,
}

impl Api {
    pub(crate) fn from_parts(url: &str, api_key: Option<&str>) -> Result<Api, String> {
        let key = api_key
            .map(str::to_string)
            .ok_or("set COREPLEX_API_KEY (or --api-key) to an API key")?;
        Ok(Api {
            base: url.trim_end_matches('/').to_string(),
            key,
            http: Client::new(),
        })
    }
    fn new(conn: &Conn) -> Result<Api, String> {
        let key = conn
            .api_key
            .clone()
            .ok_or("set COREPLEX_API_KEY (or --api-key) to an API key")?;
        Ok(Api {
            base: conn.url.trim_end_matches('/').to_string(),
            key,
            http: Client::new(),
        })
    }
    pub(crate) fn req(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.key)
    }
    pub(crate) fn send(&self, rb: RequestBuilder) -> Result<Value, String> {
        let resp = rb
            .send()
            .map_err(|e| format!("cannot reach the server: {e}"))?;
        let status = resp.status();
        let body = resp.text().map_err(|e| e.to_string())?;
        let v: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or(Value::String(body))
        };
        if status.is_success() {
            Ok(v)
        } else {
            let code = v["error"]["code"].as_str().unwrap_or("error");
            let msg = v["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            Err(format!("{code} ({}): {msg}", status.as_u16()))
        }
    }
    pub(crate) fn get(&self, path: &str) -> Result<Value, String> {
        self.send(self.req(reqwest::Method::GET, path))
    }
    pub(crate) fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.send(self.req(reqwest::Method::POST, path).json(&body))
    }
    pub(crate) fn patch(&self, path: &str, body: Value) -> Result<Value, String> {
        self.send(self.req(reqwest::Method::PATCH, path).json(&body))
    }
    pub(crate) fn delete(&self, path: &str) -> Result<Value, String> {
        self.send(self.req(reqwest::Method::DELETE, path))
    }
}

fn exec(cmd: ClientCommand) -> Result<Value, String> {
    use reqwest::Method;
    match cmd {
        ClientCommand::Projects { conn, cmd } => {
            let api = Api::new(&conn)?;
            match cmd {
                ProjectCmd::Create { name, description } => api.post(
                    "/projects",
                    json!({"name": name, "description": description}),
                ),
                ProjectCmd::List => api.get("/projects"),
                ProjectCmd::Get { project_id } => api.get(&format!("/projects/{project_id}")),
                ProjectCmd::AddMember {
                    project_id,
                    subject,
                    role,
                } => api.post(
                    &format!("/projects/{project_id}/members"),
                    json!({"subject": subject, "role": role}),
                ),
                ProjectCmd::Members { project_id } => {
                    api.get(&format!("/projects/{project_id}/members"))
                }
                ProjectCmd::RemoveMember {
                    project_id,
                    subject,
                } => api.delete(&format!("/projects/{project_id}/members/{subject}")),
            }
        }
        ClientCommand::Keys { conn, cmd } => {
            let api = Api::new(&conn)?;
            match cmd {
                KeyCmd::Create { subject, name, org_admin, deployment } => api.post(
                    "/keys",
                    json!({"subject": subject, "name": name, "org_admin": org_admin, "deployment_id": deployment}),
                ),
                KeyCmd::List => api.get("/keys"),
                KeyCmd::Revoke { key_id } => api.delete(&format!("/keys/{key_id}")),
            }
        }
        ClientCommand::Datasets { conn, cmd } => {
            let api = Api::new(&conn)?;
            match cmd {
                DatasetCmd::Upload {
                    project_id,
                    path,
                    name,
                    description,
                } => {
                    let file = std::fs::File::open(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    let mut q = vec![("name", name)];
                    if let Some(d) = description {
                        q.push(("description", d));
                    }
                    api.send(
                        api.req(Method::POST, &format!("/projects/{project_id}/datasets"))
                            .query(&q)
                            .header("content-type", "text/csv")
                            .body(reqwest::blocking::Body::new(file)),
                    )
                }
                DatasetCmd::List { project_id } => {
                    api.get(&format!("/projects/{project_id}/datasets"))
                }
                DatasetCmd::Get { dataset_id } => api.get(&format!("/datasets/{dataset_id}")),
                DatasetCmd::Versions { dataset_id } => {
                    api.get(&format!("/datasets/{dataset_id}/versions"))
                }
                DatasetCmd::Version { version_id } => {
                    api.get(&format!("/dataset-versions/{version_id}"))
                }
            }
        }
        ClientCommand::Models { conn, cmd } => {
            let api = Api::new(&conn)?;
            match cmd {
                ModelCmd::Register {
                    project_id,
                    path,
                    name,
                    task,
                    model_card,
                    metadata,
                } => {
                    let mut meta: Value = match metadata {
                        Some(m) => serde_json::from_str(&m)
                            .map_err(|e| format!("--metadata is not JSON: {e}"))?,
                        None => json!({}),
                    };
                    meta["name"] = json!(name);
                    meta["task"] = json!(task);
                    if !model_card.is_empty() {
                        meta["model_card"] = json!(model_card);
                    }
                    let file = multipart::Part::file(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    let form = multipart::Form::new()
                        .text("metadata", meta.to_string())
                        .part("file", file);
                    api.send(
                        api.req(Method::POST, &format!("/projects/{project_id}/models"))
                            .multipart(form),
                    )
                }
                ModelCmd::List {
                    project_id,
                    name,
                    status,
                } => {
                    let mut q = Vec::new();
                    if let Some(n) = name {
                        q.push(("name", n));
                    }
                    if let Some(s) = status {
                        q.push(("status", s));
                    }
                    api.send(
                        api.req(Method::GET, &format!("/projects/{project_id}/models"))
                            .query(&q),
                    )
                }
                ModelCmd::Get { model_id } => api.get(&format!("/models/{model_id}")),
                ModelCmd::Transition {
                    model_id,
                    status,
                    reason,
                } => api.post(
                    &format!("/models/{model_id}/transitions"),
                    json!({"status": status, "reason": reason}),
                ),
                ModelCmd::Transitions { model_id } => {
                    api.get(&format!("/models/{model_id}/transitions"))
                }
                ModelCmd::Promotions { model_id } => {
                    api.get(&format!("/models/{model_id}/promotions"))
                }
                ModelCmd::Download { model_id, output } => {
                    let resp = api
                        .req(Method::GET, &format!("/models/{model_id}/artifact"))
                        .send()
                        .map_err(|e| format!("cannot reach the server: {e}"))?;
                    if !resp.status().is_success() {
                        return api.send(api.req(Method::GET, &format!("/models/{model_id}")));
                    }
                    let bytes = resp.bytes().map_err(|e| e.to_string())?;
                    std::fs::write(&output, &bytes)
                        .map_err(|e| format!("{}: {e}", output.display()))?;
                    Ok(json!({"model_id": model_id, "path": output, "bytes": bytes.len()}))
                }
            }
        }
        ClientCommand::Jobs { conn, cmd } => {
            let api = Api::new(&conn)?;
            match cmd {
                JobCmd::Get { job_id } => api.get(&format!("/jobs/{job_id}")),
                JobCmd::List { project_id } => api.get(&format!("/projects/{project_id}/jobs")),
                JobCmd::Cancel { job_id } => api.post(&format!("/jobs/{job_id}/cancel"), json!({})),
            }
        }
        ClientCommand::Audit {
            conn,
            project,
            resource,
            actor,
            action,
            since,
            until,
            limit,
        } => {
            let api = Api::new(&conn)?;
            let mut q: Vec<(&str, String)> = Vec::new();
            for (k, v) in [
                ("project_id", project),
                ("resource_id", resource),
                ("actor", actor),
                ("action", action),
                ("since", since),
                ("until", until),
                ("limit", limit.map(|l| l.to_string())),
            ] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            api.send(api.req(Method::GET, "/audit").query(&q))
        }
    }
}

pub fn run(cmd: ClientCommand) -> ExitCode {
    match exec(cmd) {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
