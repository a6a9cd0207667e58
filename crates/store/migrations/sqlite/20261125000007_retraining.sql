-- Retraining policies on deployments and the runs they start.
CREATE TABLE retraining_policies (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    trigger TEXT NOT NULL,
    config_json TEXT NOT NULL,
    training_config_json TEXT NOT NULL,
    auto_promote BIGINT NOT NULL,
    enabled BIGINT NOT NULL,
    next_run_at BIGINT,
    last_triggered_at BIGINT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX retraining_policies_deployment ON retraining_policies (deployment_id);

CREATE TABLE retraining_runs (
    id TEXT PRIMARY KEY,
    policy_id TEXT NOT NULL REFERENCES retraining_policies(id),
    project_id TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    trigger TEXT NOT NULL,
    reason TEXT NOT NULL,
    measured DOUBLE PRECISION,
    status TEXT NOT NULL,
    experiment_id TEXT,
    job_id TEXT,
    parent_model_id TEXT,
    candidate_model_id TEXT,
    dataset_version_id TEXT,
    comparison_json TEXT,
    detail TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX retraining_runs_policy ON retraining_runs (policy_id, created_at);
