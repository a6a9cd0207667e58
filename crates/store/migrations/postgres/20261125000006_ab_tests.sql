-- A/B tests: two or more models sharing a deployment's traffic by weight, how many requests and
-- entities each variant was assigned, which entity went where, and business outcomes posted later.

CREATE TABLE ab_tests (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    variants_json TEXT NOT NULL,
    metric_json TEXT NOT NULL,
    alpha DOUBLE PRECISION NOT NULL,
    power DOUBLE PRECISION NOT NULL,
    minimum_detectable_effect DOUBLE PRECISION NOT NULL,
    sequential BIGINT NOT NULL,
    winner_model_id TEXT,
    winner_variant TEXT,
    stop_reason TEXT,
    started_at BIGINT NOT NULL,
    stopped_at BIGINT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX ab_tests_project ON ab_tests (project_id, created_at);
-- One running test per deployment, even when two servers start one at the same moment.
CREATE UNIQUE INDEX ab_tests_one_running ON ab_tests (deployment_id) WHERE status = 'running';

CREATE TABLE ab_assignments (
    test_id TEXT NOT NULL REFERENCES ab_tests(id),
    variant TEXT NOT NULL,
    requests BIGINT NOT NULL,
    anonymous_requests BIGINT NOT NULL,
    rows_predicted BIGINT NOT NULL,
    entities BIGINT NOT NULL,
    PRIMARY KEY (test_id, variant)
);

CREATE TABLE ab_entities (
    test_id TEXT NOT NULL REFERENCES ab_tests(id),
    entity_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    model_id TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    PRIMARY KEY (test_id, entity_id)
);

CREATE TABLE ab_outcomes (
    test_id TEXT NOT NULL REFERENCES ab_tests(id),
    unit_kind TEXT NOT NULL,
    unit_key TEXT NOT NULL,
    variant TEXT NOT NULL,
    model_id TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (test_id, unit_kind, unit_key)
);
CREATE INDEX ab_outcomes_at ON ab_outcomes (test_id, at);
