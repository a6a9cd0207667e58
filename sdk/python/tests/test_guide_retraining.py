"""The product guide's three `client.retraining.create_policy(...)` snippets, run as written.

The snippets (section "Auto-Retraining Workflows" of `data/mlops_guide.txt`, or of COREPLEX_GUIDE) continue a
reader's session: they use the `client` and `deployment` of the guide's first deployment snippet. So that
snippet runs first, with its placeholders filled in (`base_url`, `api_key`, `project_id`, `model_id`), on a
model trained by an AutoML experiment (retraining needs the model's training data and target, which an
experiment records in its lineage), and then the three snippets run unchanged in the same namespace:
drift-triggered, schedule-based and performance-based retraining.
"""

import ast
import datetime as dt
from typing import List

import pytest

from coreplexml.resources import Policy

from conftest import FIXTURES
from test_guide_deployments import GUIDE, deployment_snippets, fill_in


def retraining_snippets(text: str) -> List[str]:
    """Every code snippet of the guide that calls `client.retraining.create_policy(`: from that line, the
    following lines until they form complete Python."""
    lines = text.splitlines()
    snippets = []
    for i, line in enumerate(lines):
        if "client.retraining.create_policy(" not in line:
            continue
        for j in range(i + 1, min(i + 40, len(lines)) + 1):
            code = "\n".join(lines[i:j])
            try:
                ast.parse(code)
            except SyntaxError:
                continue
            snippets.append(code + "\n")
            break
        else:
            raise AssertionError(f"the retraining snippet at line {i + 1} of the guide never parses")
    return snippets


@pytest.fixture(scope="module")
def guide_text() -> str:
    return GUIDE.read_text(encoding="utf-8")


def test_the_retraining_snippets_are_taken_from_the_guide_unchanged(guide_text):
    snippets = retraining_snippets(guide_text)
    assert [s.split('trigger="', 1)[1].split('"', 1)[0] for s in snippets] == ["drift", "schedule", "performance"]
    for snippet in snippets:
        assert snippet.rstrip("\n") in guide_text
        assert snippet.startswith("policy = client.retraining.create_policy(\ndeployment_id=deployment.id,\n")
        assert snippet.rstrip().endswith(")")
        assert '"stopping_metric": "AUC"' in snippet


def test_the_guides_retraining_snippets_run_as_written(server, admin, project, guide_text):
    drift_snippet, schedule_snippet, performance_snippet = retraining_snippets(guide_text)
    direct_snippet = deployment_snippets(guide_text)[0]

    # A model trained here, so its lineage has the training data and the target.
    data = admin.datasets.upload(project_id=project.id, path=FIXTURES / "churn.csv", name="churn")
    exp = admin.experiments.create(project.id, data.id, "churned", max_models=2, max_runtime_secs=20)
    model_id = exp.wait(timeout=120).best_model_id

    namespace = {"__name__": "guide"}
    setup = fill_in(direct_snippet, base_url=server.url, api_key=server.admin_key, project_id=project.id,
                    model_id=model_id)
    exec(compile(setup, f"<guide: {GUIDE.name}>", "exec"), namespace)
    deployment = namespace["deployment"]
    assert deployment.serving_model_id == model_id

    def run(snippet: str) -> Policy:
        exec(compile(snippet, f"<guide: {GUIDE.name}>", "exec"), namespace)
        policy = namespace["policy"]
        assert isinstance(policy, Policy) and policy.id.startswith("pol_")
        assert (policy.deployment_id, policy.project_id, policy.enabled) == (deployment.id, project.id, True)
        return policy

    # Drift-triggered: data_drift_score above 0.20, a candidate left for review.
    drift = run(drift_snippet)
    assert drift.trigger == "drift" and drift.auto_promote is False
    assert (drift.config.drift_metric, drift.config.drift_threshold) == ("data_drift_score", 0.2)
    assert drift.drift_threshold == 0.2  # the trigger's settings read directly too
    assert drift.training_config.to_dict() == {"max_runtime_secs": 600, "max_models": 20, "stopping_metric": "AUC"}
    assert drift.next_run_at is None and drift.last_triggered_at is None

    # Schedule-based: every Sunday at 03:00 UTC, promoted automatically when at least as good.
    weekly = run(schedule_snippet)
    assert weekly.trigger == "schedule" and weekly.auto_promote is True
    assert (weekly.config.schedule, weekly.config.day_of_week, weekly.config.hour_utc) == ("weekly", "sunday", 3)
    assert weekly.training_config.to_dict() == {"max_runtime_secs": 900, "max_models": 30, "stopping_metric": "AUC"}
    next_run = dt.datetime.fromisoformat(weekly.next_run_at.replace("Z", "+00:00"))
    now = dt.datetime.now(dt.timezone.utc)
    assert next_run.weekday() == 6 and (next_run.hour, next_run.minute, next_run.second) == (3, 0, 0)
    assert now < next_run <= now + dt.timedelta(days=7)

    # Performance-based: accuracy below 0.85 over 7 days of delayed labels.
    perf = run(performance_snippet)
    assert perf.trigger == "performance" and perf.auto_promote is True
    assert (perf.config.performance_metric, perf.config.performance_threshold) == ("accuracy", 0.85)
    assert perf.config.evaluation_window_days == 7
    assert perf.training_config.to_dict() == {"max_runtime_secs": 600, "max_models": 20, "stopping_metric": "AUC"}

    client = namespace["client"]
    listed = client.retraining.list_policies(project.id, deployment_id=deployment.id)
    assert sorted(p.id for p in listed) == sorted([drift.id, weekly.id, perf.id])
    assert {p.id: p for p in listed}[weekly.id] == weekly
    # None of them has fired: no traffic has drifted, no label has come, and it is not Sunday 03:00 yet.
    assert all(client.retraining.list_runs(p.id) == [] for p in listed)
    for p in listed:
        p.delete()
    assert client.retraining.list_policies(project.id) == []
    client.close()
