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
    /// A/B tests between model variants on a deployment (`coreplex ab` is the offline analysis).
    AbTests {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: AbTestCmd,
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

#[derive(Debug, Subcommand)]
pub enum AbTestCmd {
    /// Start an A/B test on a deployment of PROJECT_ID; the first --variant is the control.
    Create {
        project_id: String,
        #[arg(long)]
        name: String,
        /// The deployment: its id (dep_…) or its name.
        #[arg(long)]
        deployment: String,
        /// MODEL_ID[:TRAFFIC[:NAME]], two or more; shares are scaled to add up to 100 (even when
        /// left out).
        #[arg(long = "variant", required = true)]
        variants: Vec<String>,
        /// proportion or continuous.
        #[arg(long, default_value = "proportion")]
        metric: String,
        /// outcomes (posted with `ab-tests outcomes`) or labels (the deployment's delayed labels:
        /// correctness, or absolute error for regression).
        #[arg(long, default_value = "outcomes")]
        source: String,
        /// A name for reports, e.g. conversion or revenue.
        #[arg(long)]
        metric_name: Option<String>,
        /// Proportions: the control's expected rate, to plan the sample size before data arrives.
        #[arg(long)]
        baseline_rate: Option<f64>,
        /// Continuous metrics: the per-unit standard deviation, for the same purpose.
        #[arg(long)]
        sd: Option<f64>,
        /// A smaller value of the metric is better (e.g. an error or a cost).
        #[arg(long)]
        lower_is_better: bool,
        /// Significance level (default 0.05).
        #[arg(long)]
        alpha: Option<f64>,
        /// Power at the minimum detectable effect (default 0.8).
        #[arg(long)]
        power: Option<f64>,
        /// The minimum detectable effect: the smallest difference worth detecting, in the metric's
        /// units (a difference of rates for proportions, e.g. 0.02).
        #[arg(long)]
        mde: f64,
        /// Always-valid p-values and intervals: safe to look at the results any time.
        #[arg(long)]
        sequential: bool,
        #[arg(long)]
        description: Option<String>,
    },
    List {
        project_id: String,
        #[arg(long)]
        deployment: Option<String>,
    },
    /// The test and its assignment counts.
    Get { ab_test_id: String },
    /// Every variant against the control, the SRM check, sample size, progress and a recommendation.
    Results { ab_test_id: String },
    /// Record outcomes: a JSON list of {"request_id" or "entity_id", "value"}, given inline or as @FILE.
    Outcomes {
        ab_test_id: String,
        outcomes: String,
    },
    /// Stop the test; with a winner, it takes all traffic and becomes the deployment's model.
    Stop {
        ab_test_id: String,
        /// The winning variant's model id.
        #[arg(long)]
        winner: Option<String>,
        /// Or the winning variant's name.
        #[arg(long)]
        winner_variant: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Stop the test with the variant its results recommend shipping as the winner.
    PromoteWinner {
        ab_test_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

/// `MODEL_ID[:TRAFFIC[:NAME]]` as a variant of a create request.
fn variant_arg(spec: &str) -> Result<Value, String> {
    let mut parts = spec.splitn(3, ':');
    let model = parts
        .next()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| format!("--variant {spec}: give MODEL_ID[:TRAFFIC[:NAME]]"))?;
    let mut v = json!({"model_id": model});
    if let Some(t) = parts.next().filter(|t| !t.is_empty()) {
        let traffic: f64 = t
            .parse()
            .map_err(|_| format!("--variant {spec}: `{t}` is not a traffic share"))?;
        v["traffic"] = json!(traffic);
    }
    if let Some(n) = parts.next() {
        v["name"] = json!(n);
    }
    Ok(v)
}

fn ab_tests(api: &Api, cmd: AbTestCmd) -> Result<Value, String> {
    match cmd {
        AbTestCmd::Create {
            project_id,
            name,
            deployment,
            variants,
            metric,
            source,
            metric_name,
            baseline_rate,
            sd,
            lower_is_better,
            alpha,
            power,
            mde,
            sequential,
            description,
        } => {
            let mut m = json!({"type": metric, "source": source});
            for (k, v) in [
                ("name", metric_name.map(Value::from)),
                ("baseline_rate", baseline_rate.map(Value::from)),
                ("sd", sd.map(Value::from)),
                (
                    "higher_is_better",
                    lower_is_better.then_some(Value::from(false)),
                ),
            ] {
                if let Some(v) = v {
                    m[k] = v;
                }
            }
            let mut body = json!({
                "project_id": project_id, "name": name, "deployment_id": deployment, "metric": m,
                "minimum_detectable_effect": mde, "sequential": sequential,
                "variants": variants.iter().map(|v| variant_arg(v)).collect::<Result<Vec<_>, _>>()?,
            });
            for (k, v) in [
                ("alpha", alpha.map(Value::from)),
                ("power", power.map(Value::from)),
                ("description", description.map(Value::from)),
            ] {
                if let Some(v) = v {
                    body[k] = v;
                }
            }
            api.post("/ab-tests", body)
        }
        AbTestCmd::List {
            project_id,
            deployment,
        } => {
            let mut q = vec![("project_id", project_id)];
            if let Some(d) = deployment {
                q.push(("deployment_id", d));
            }
            api.send(api.req(reqwest::Method::GET, "/ab-tests").query(&q))
        }
        AbTestCmd::Get { ab_test_id } => api.get(&format!("/ab-tests/{ab_test_id}")),
        AbTestCmd::Results { ab_test_id } => api.get(&format!("/ab-tests/{ab_test_id}/results")),
        AbTestCmd::Outcomes {
            ab_test_id,
            outcomes,
        } => {
            let text = match outcomes.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
                None => outcomes,
            };
            let body: Value =
                serde_json::from_str(&text).map_err(|e| format!("outcomes are not JSON: {e}"))?;
            api.post(&format!("/ab-tests/{ab_test_id}/outcomes"), body)
        }
        AbTestCmd::Stop {
            ab_test_id,
            winner,
            winner_variant,
            reason,
        } => api.post(
            &format!("/ab-tests/{ab_test_id}/stop"),
            json!({"winner_model_id": winner, "winner_variant": winner_variant, "reason": reason}),
        ),
        AbTestCmd::PromoteWinner { ab_test_id, reason } => {
            let r = api.get(&format!("/ab-tests/{ab_test_id}/results"))?;
            match (r["recommendation"].as_str(), r["recommended_variant"].as_str()) {
                (Some("ship"), Some(variant)) => api.post(
                    &format!("/ab-tests/{ab_test_id}/stop"),
                    json!({"winner_variant": variant, "reason": reason.unwrap_or_else(|| format!(
                        "promoted the recommended winner: {}",
                        r["recommendation_reason"].as_str().unwrap_or("")
                    ))}),
                ),
                (rec, _) => Err(format!(
                    "no_winner: A/B test {ab_test_id} has no winner to promote: the results say {} ({})",
                    rec.unwrap_or("nothing"),
                    r["recommendation_reason"].as_str().unwrap_or("")
                )),
            }
        }
    }
}

/// A blocking API client shared by the client commands.
pub(crate) struct Api {
    base: String,
    key: String,
    http: Client,
}

impl Conn {
    /// The client for this server and key.
    pub(crate) fn api(&self) -> Result<Api, String> {
        let key = self
            .api_key
            .clone()
            .ok_or("set COREPLEX_API_KEY (or --api-key) to an API key")?;
        Ok(Api {
            base: self.url.trim_end_matches('/').to_string(),
            key,
            http: Client::new(),
        })
    }
}

impl Api {
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
            let api = conn.api()?;
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
            let api = conn.api()?;
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
            let api = conn.api()?;
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
            let api = conn.api()?;
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
            let api = conn.api()?;
            match cmd {
                JobCmd::Get { job_id } => api.get(&format!("/jobs/{job_id}")),
                JobCmd::List { project_id } => api.get(&format!("/projects/{project_id}/jobs")),
                JobCmd::Cancel { job_id } => api.post(&format!("/jobs/{job_id}/cancel"), json!({})),
            }
        }
        ClientCommand::AbTests { conn, cmd } => ab_tests(&conn.api()?, cmd),
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
            let api = conn.api()?;
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
