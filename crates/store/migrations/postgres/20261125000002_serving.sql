-- Serving: deployments with their rollout state, the deployment timeline, and the prediction log.

CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    task TEXT NOT NULL,
    strategy TEXT NOT NULL,
    config_json TEXT NOT NULL,
    serving_model_id TEXT,
    previous_model_id TEXT,
    rollout_json TEXT,
    status TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE deployment_events (
    id TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE INDEX deployment_events_dep ON deployment_events (deployment_id, at);

CREATE TABLE predictions (
    request_id TEXT NOT NULL,
    role TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    at BIGINT NOT NULL,
    latency_us BIGINT NOT NULL,
    is_error BIGINT NOT NULL,
    entity_id TEXT,
    features_json TEXT NOT NULL,
    output_json TEXT NOT NULL,
    predicted TEXT,
    score DOUBLE PRECISION,
    label TEXT,
    label_value DOUBLE PRECISION,
    labelled_at BIGINT,
    PRIMARY KEY (request_id, role)
);
CREATE INDEX predictions_dep_at ON predictions (deployment_id, at);
