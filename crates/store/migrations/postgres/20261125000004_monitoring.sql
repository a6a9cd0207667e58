-- Monitoring: per-deployment feature sketches by time bucket (the live side of drift), alert rules,
-- their history and notification deliveries.

CREATE TABLE feature_sketches (
    deployment_id TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    writer TEXT NOT NULL,
    rows_seen BIGINT NOT NULL,
    sketch_json TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, bucket_start, writer)
);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    name TEXT NOT NULL,
    metric TEXT NOT NULL,
    condition TEXT NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    channels_json TEXT NOT NULL,
    evaluation_window_minutes BIGINT NOT NULL,
    cooldown_minutes BIGINT NOT NULL,
    enabled BIGINT NOT NULL,
    state TEXT NOT NULL,
    last_value DOUBLE PRECISION,
    last_evaluated_at BIGINT,
    last_notified_at BIGINT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX alerts_deployment ON alerts (deployment_id);

CREATE TABLE alert_events (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    value DOUBLE PRECISION,
    detail_json TEXT NOT NULL
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, at);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    alert_id TEXT,
    deployment_id TEXT,
    event_kind TEXT NOT NULL,
    channel_json TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_alert ON deliveries (alert_id, created_at);
