"""The product guide's four `client.deployments.create(...)` snippets, run as written.

`data/mlops_guide.txt` is a verbatim copy of the guide users have ("MLOps Best Practices: From Model to
Production"); set COREPLEX_GUIDE to check another copy. The snippets are read from it and executed
unchanged except for four values a reader must fill in: `base_url`, `api_key`, `project_id` and
`model_id`. They run in guide order, sharing one namespace as they would in a reader's session; between
the canary and the blue-green snippet (both deploy to "Churn Predictor v2") the test promotes the canary,
and after the blue-green one it rolls back, outside the snippet code.
"""

import ast
import os
from pathlib import Path
from typing import List

import pytest

from conftest import churn_rows

GUIDE = Path(os.environ.get("COREPLEX_GUIDE") or Path(__file__).parent / "data" / "mlops_guide.txt")

# The placeholder literals of the guide and which value replaces each.
PLACEHOLDERS = {
    '"https://api.coreplexml.io"': "base_url",
    '"your-api-key"': "api_key",
    '"proj_abc123"': "project_id",
    '"model_best_xgb"': "model_id",
}


def deployment_snippets(text: str) -> List[str]:
    """Every code snippet of the guide that calls `client.deployments.create(`, in guide order.

    A snippet starts at a line beginning `from coreplexml` or containing `client.deployments.create(`
    and takes the following lines until they form complete Python that makes that call. (The guide's
    text has lost indentation; the snippets are still valid Python.)
    """
    lines = text.splitlines()
    snippets = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("from coreplexml") or "client.deployments.create(" in line:
            for j in range(i + 1, min(i + 40, len(lines)) + 1):
                code = "\n".join(lines[i:j])
                if "client.deployments.create(" not in code:
                    continue
                try:
                    ast.parse(code)
                except SyntaxError:
                    continue
                snippets.append(code + "\n")
                i = j - 1
                break
            else:
                raise AssertionError(f"the snippet at line {i + 1} of the guide never parses")
        i += 1
    return snippets


def fill_in(snippet: str, **values: str) -> str:
    """The snippet with its placeholder literals replaced; nothing else changes."""
    out = snippet
    for literal, field in PLACEHOLDERS.items():
        if literal in out:
            out = out.replace(literal, repr(values[field]))
    return out


@pytest.fixture(scope="module")
def snippets():
    text = GUIDE.read_text(encoding="utf-8")
    found = deployment_snippets(text)
    assert [s.split('strategy="', 1)[1].split('"', 1)[0] for s in found] == [
        "direct", "canary", "blue-green", "shadow"
    ], "the guide should have its four deployment snippets: direct, canary, blue-green, shadow"
    return found


def test_the_snippets_are_taken_from_the_guide_unchanged(snippets):
    text = GUIDE.read_text(encoding="utf-8")
    for snippet in snippets:
        assert snippet.rstrip("\n") in text
        assert snippet.count("client.deployments.create(") == 1
    assert snippets[0].startswith("from coreplexml import CorePlexClient\n")
    assert 'base_url="https://api.coreplexml.io"' in snippets[0]
    for snippet in snippets:
        assert 'project_id="proj_abc123"' in snippet and 'model_id="model_best_xgb"' in snippet


def test_the_guides_deployment_snippets_run_as_written(server, admin, project, register_model, snippets):
    direct_snippet, canary_snippet, blue_green_snippet, shadow_snippet = snippets
    models = {name: register_model(name) for name in ("logreg", "forest", "hgb", "weak")}
    values = dict(base_url=server.url, api_key=server.admin_key, project_id=project.id)
    namespace = {"__name__": "guide"}

    def run(snippet: str, model) -> object:
        code = fill_in(snippet, model_id=model.id, **values)
        # Only the four placeholders changed: the rest of the snippet is byte for byte the guide's.
        assert code.count(repr(model.id)) == 1
        exec(compile(code, f"<guide: {GUIDE.name}>", "exec"), namespace)
        return namespace["deployment"]

    row = churn_rows(1)[0][0]

    # Direct: a new endpoint serving the model at once.
    deployment = run(direct_snippet, models["logreg"])
    assert "client" in namespace and namespace["client"].base_url == server.url
    assert (deployment.name, deployment.strategy, deployment.status) == ("Churn Predictor v2", "direct", "active")
    assert deployment.serving_model_id == models["logreg"].id
    assert deployment.traffic_split() == {"baseline": 100.0}
    endpoint = deployment.id

    # Canary on the same endpoint: 5% of the traffic to the new model, the rest to the baseline.
    deployment = run(canary_snippet, models["forest"])
    assert deployment.id == endpoint
    assert (deployment.strategy, deployment.status) == ("canary", "rolling_out")
    assert deployment.traffic_split() == {"baseline": 95.0, "canary": 5.0}
    assert deployment.candidate_model_id == models["forest"].id
    config = deployment.config
    assert config.promotion_steps == [5, 25, 50, 100] and config.traffic_percentage == 5
    assert config.auto_rollback is True and config.rollback_threshold == 0.03
    assert admin.deployments.predict(endpoint, row).variant in ("baseline", "canary")
    admin.deployments.promote(endpoint, reason="guide walk-through: canary looks good")
    assert admin.deployments.get(endpoint).serving_model_id == models["forest"].id

    # Blue-green on the same endpoint: an atomic switch to green, watched for 30 minutes.
    deployment = run(blue_green_snippet, models["hgb"])
    assert deployment.id == endpoint
    assert (deployment.strategy, deployment.status) == ("blue-green", "rolling_out")
    assert deployment.config.auto_rollback is True and deployment.config.rollback_window_minutes == 30
    assert [(t.variant, t.model_id, t.percentage) for t in deployment.traffic] == [
        ("green", models["hgb"].id, 100.0)
    ]
    assert admin.deployments.predict(endpoint, row).model_id == models["hgb"].id
    back = admin.deployments.rollback(endpoint, reason="guide walk-through: instant rollback")
    assert back.serving_model_id == models["forest"].id

    # Shadow under its own name: a new endpoint, so the model has nothing to shadow and serves directly
    # (the timeline says so); its comparison window is kept for the endpoint's next rollouts.
    deployment = run(shadow_snippet, models["weak"])
    assert deployment.id != endpoint and deployment.name == "Churn Predictor v2 (Shadow)"
    assert deployment.strategy == "shadow" and deployment.config.comparison_window_days == 7
    assert deployment.serving_model_id == models["weak"].id
    assert any("first model" in str(e.detail.get("detail")) for e in deployment.events() if e.kind == "deployed")

    names = sorted(d.name for d in admin.deployments.list(project.id))
    assert names == ["Churn Predictor v2", "Churn Predictor v2 (Shadow)"]
    # A later model on that endpoint is mirrored, not served.
    shadow_endpoint = admin.deployments.create(
        project_id=project.id, model_id=models["hgb"].id, name="Churn Predictor v2 (Shadow)"
    )
    assert shadow_endpoint.shadow_model_id == models["hgb"].id
    assert shadow_endpoint.predict(row).model_id == models["weak"].id
    assert shadow_endpoint.comparison().paired == 1
    namespace["client"].close()
