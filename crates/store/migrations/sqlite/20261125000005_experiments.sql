-- AutoML experiments: configuration, the job that runs them, and the leaderboard they produce.
CREATE TABLE experiments (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    dataset_version_id TEXT NOT NULL,
    config_json TEXT NOT NULL,
    status TEXT NOT NULL,
    job_id TEXT NOT NULL,
    leaderboard_json TEXT,
    best_model_id TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX experiments_project ON experiments (project_id, created_at);
