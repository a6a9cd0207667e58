"""The product guide's `client.alerts.create(...)` snippet, run as written.

The snippet (section "Alert Configuration" of `data/mlops_guide.txt`, or of COREPLEX_GUIDE) continues a
reader's session: it uses the `client` and `deployment` of the guide's first deployment snippet. So that
snippet runs first, with its placeholders filled in (`base_url`, `api_key`, `project_id`, `model_id`), and
then the alerts snippet runs unchanged in the same namespace.

Its channels are the guide's example URLs and address. The rule watches `data_drift_score` hourly; its
deliveries (if any) would fail against those examples and retry in the background, which is harmless.
"""

import ast
from typing import List

import pytest

from test_guide_deployments import GUIDE, deployment_snippets, fill_in


def alert_snippets(text: str) -> List[str]:
    """Every code snippet of the guide that calls `client.alerts.create(`: from that line, the following
    lines until they form complete Python."""
    lines = text.splitlines()
    snippets = []
    for i, line in enumerate(lines):
        if "client.alerts.create(" not in line:
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
            raise AssertionError(f"the alerts snippet at line {i + 1} of the guide never parses")
    return snippets


@pytest.fixture(scope="module")
def guide_text() -> str:
    return GUIDE.read_text(encoding="utf-8")


def test_the_alerts_snippet_is_taken_from_the_guide_unchanged(guide_text):
    (snippet,) = alert_snippets(guide_text)
    assert snippet.rstrip("\n") in guide_text
    assert snippet.startswith("alert = client.alerts.create(\ndeployment_id=deployment.id,\n")
    assert snippet.rstrip().endswith(")")
    assert 'metric="data_drift_score"' in snippet and "cooldown_minutes=240" in snippet


def test_the_guides_alerts_snippet_runs_as_written(server, admin, project, register_model, guide_text):
    (alert_snippet,) = alert_snippets(guide_text)
    direct_snippet = deployment_snippets(guide_text)[0]
    model = register_model("logreg")
    namespace = {"__name__": "guide"}

    # The reader's earlier step: the client and a deployment.
    setup = fill_in(direct_snippet, base_url=server.url, api_key=server.admin_key, project_id=project.id,
                    model_id=model.id)
    exec(compile(setup, f"<guide: {GUIDE.name}>", "exec"), namespace)
    deployment = namespace["deployment"]
    assert deployment.serving_model_id == model.id

    # The alerts snippet, byte for byte.
    exec(compile(alert_snippet, f"<guide: {GUIDE.name}>", "exec"), namespace)
    alert = namespace["alert"]

    assert alert.id.startswith("alert_")
    assert (alert.deployment_id, alert.project_id) == (deployment.id, project.id)
    assert alert.name == "Churn model drift alert"
    assert (alert.metric, alert.condition, alert.threshold) == ("data_drift_score", "greater_than", 0.15)
    assert (alert.evaluation_window_minutes, alert.cooldown_minutes) == (60, 240)
    assert alert.enabled is True and alert.state == "ok"
    slack, email, hook = (c.to_dict() for c in alert.channels)
    assert slack == {"type": "slack", "webhook_url": "https://hooks.slack.com/…"}
    assert email == {"type": "email", "address": "ml-team@company.com"}
    assert (hook["type"], hook["url"]) == ("webhook", "https://api.company.com/…")
    # The webhook had no secret: one was generated and is shown in this answer only.
    (generated,) = alert.signing_secrets
    assert generated.channel == 2 and generated.secret.startswith("whsec_")
    assert hook["secret"].endswith("…") and generated.secret not in hook["secret"]

    again = admin.alerts.get(alert.id)
    assert again.signing_secrets == [] and again.channels == alert.channels
    assert [a.id for a in admin.alerts.list(project.id, deployment_id=deployment.id)] == [alert.id]
    namespace["client"].close()
