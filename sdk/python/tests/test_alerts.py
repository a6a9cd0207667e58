"""Alert rules against the real server: the API surface, validation, secret redaction, and a rule that
fires on the server's own scheduler and delivers signed webhooks (and Slack payloads) to a receiver in
the test, plus rollout notifications through the same channels."""

import http.server
import json
import threading
import time
from typing import Any, Dict, List

import pytest

from coreplexml import NotFoundError, ValidationError, webhooks
from coreplexml.resources import Alert, AlertEvent, AlertHistory, Delivery

from conftest import churn_rows

SLACK_PATH = "/services/T0000/B0000/slack-path-is-a-credential"
DELIVERY_FIELDS = {
    "id", "event", "channel", "status", "attempts", "max_attempts", "last_error", "next_attempt_at",
    "created_at", "delivered_at", "payload",
}
ALERT_FIELDS = {
    "id", "project_id", "deployment_id", "name", "metric", "condition", "threshold", "channels",
    "evaluation_window_minutes", "cooldown_minutes", "enabled", "state", "last_value", "last_evaluated_at",
    "last_notified_at", "created_at", "updated_at",
}


@pytest.fixture
def deployment(admin, project, register_model):
    model = register_model("logreg")
    return admin.deployments.create(project_id=project.id, model_id=model.id, name="churn")


def webhook(url: str = "https://api.company.com/alerts", **extra) -> Dict[str, Any]:
    return {"type": "webhook", "url": url, **extra}


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that records every POST: path, headers (lower-case names) and
    the raw body."""

    def __init__(self) -> None:
        received: List[Dict[str, Any]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                received.append({"path": self.path, "headers": headers, "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, timeout: float = 20.0) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in list(self.received):
                if predicate(r):
                    return r
            time.sleep(0.1)
        raise AssertionError(f"nothing matching arrived within {timeout:g}s; got {self.received!r}")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def wait_until(fetch, done, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout:g}s: {value!r}")
        time.sleep(0.2)


# --- create, read, list, update, delete ---------------------------------------------------------------


def test_create_returns_the_rule_with_defaults(admin, project, deployment):
    alert = admin.alerts.create(
        deployment_id=deployment.id, name="slow", metric="latency_p95_ms", condition="greater_than",
        threshold=250, channels=[{"type": "email", "address": "ml-team@company.com"}],
    )
    assert isinstance(alert, Alert)
    assert alert.id.startswith("alert_")
    assert ALERT_FIELDS <= set(alert.fields())
    assert (alert.project_id, alert.deployment_id, alert.name) == (project.id, deployment.id, "slow")
    assert (alert.metric, alert.condition, alert.threshold) == ("latency_p95_ms", "greater_than", 250)
    assert (alert.evaluation_window_minutes, alert.cooldown_minutes, alert.enabled) == (60, 60, True)
    assert alert.state == "ok" and not alert.firing
    assert alert.channels[0].to_dict() == {"type": "email", "address": "ml-team@company.com"}
    assert alert.signing_secrets == []  # no webhook, nothing generated

    got = admin.alerts.get(alert.id)
    assert got == alert.refresh()
    assert got.to_dict() == {k: v for k, v in alert.to_dict().items() if k != "signing_secrets"}


def test_list_by_project_and_deployment(admin, project, register_model, deployment):
    other_model = register_model("forest")
    other = admin.deployments.create(project_id=project.id, model_id=other_model.id, name="other")
    common = dict(metric="error_rate", condition="greater_than", threshold=0.05,
                  channels=[{"type": "email", "addresses": ["a@company.com", "b@company.com"]}])
    a = admin.alerts.create(deployment_id=deployment.id, name="errors", **common)
    b = admin.alerts.create(deployment_id=other, name="errors on other", **common)  # an object works too
    assert b.deployment_id == other.id
    assert sorted(x.id for x in admin.alerts.list(project.id)) == sorted([a.id, b.id])
    assert [x.id for x in admin.alerts.list(project.id, deployment_id=deployment.id)] == [a.id]
    assert [x.id for x in admin.alerts.list(project, deployment_id=other)] == [b.id]
    assert [x.id for x in deployment.alerts()] == [a.id]
    assert all(isinstance(x, Alert) for x in admin.alerts.list(project.id))


def test_update_changes_only_the_fields_given(admin, deployment):
    alert = admin.alerts.create(
        deployment_id=deployment.id, name="quality", metric="auc", condition="less_than", threshold=0.7,
        channels=[{"type": "email", "address": "ml-team@company.com"}], cooldown_minutes=240,
    )
    updated = admin.alerts.update(alert.id, threshold=0.75, condition="less_than_or_equal", name="quality v2")
    assert (updated.threshold, updated.condition, updated.name) == (0.75, "less_than_or_equal", "quality v2")
    assert (updated.metric, updated.cooldown_minutes, updated.channels) == ("auc", 240, alert.channels)
    assert updated.updated_at >= alert.updated_at

    off = updated.disable()
    assert off.enabled is False and admin.alerts.get(alert.id).enabled is False
    assert off.enable().enabled is True

    with pytest.raises(TypeError) as info:
        admin.alerts.update(alert.id, treshold=1)
    assert "treshold" in str(info.value)
    with pytest.raises(ValueError):
        admin.alerts.update(alert.id)


def test_delete_removes_the_rule(admin, project, deployment):
    alert = admin.alerts.create(
        deployment_id=deployment.id, name="gone", metric="requests", condition="less_than", threshold=1,
        channels=[{"type": "email", "address": "ml-team@company.com"}],
    )
    assert alert.delete() is None
    with pytest.raises(NotFoundError):
        admin.alerts.get(alert.id)
    with pytest.raises(NotFoundError):
        admin.alerts.history(alert.id)
    assert admin.alerts.list(project.id) == []
    with pytest.raises(NotFoundError):
        admin.alerts.delete(alert.id)


def test_history_and_deliveries_of_a_new_rule(admin, deployment):
    alert = admin.alerts.create(
        deployment_id=deployment.id, name="quiet", metric="error_rate", condition="greater_than",
        threshold=0.5, channels=[{"type": "email", "address": "ml-team@company.com"}],
    )
    history = alert.history()
    assert isinstance(history, AlertHistory)
    assert (history.alert_id, history.state) == (alert.id, "ok")
    assert history.events == [] and history.kinds == [] and len(history) == 0
    assert alert.deliveries() == []


def test_unknown_alert_is_not_found(admin):
    for call in (admin.alerts.get, admin.alerts.history, admin.alerts.deliveries):
        with pytest.raises(NotFoundError):
            call("alert_doesnotexist")


# --- validation -------------------------------------------------------------------------------------


def test_validation_errors_name_the_field(admin, deployment):
    good = dict(deployment_id=deployment.id, name="rule", metric="data_drift_score",
                condition="greater_than", threshold=0.15, channels=[webhook()])

    def field_of(**change) -> str:
        with pytest.raises(ValidationError) as info:
            admin.alerts.create(**{**good, **change})
        err = info.value
        assert err.status == 422 and err.code == "validation_failed"
        assert err.message.startswith(err.details["field"] + ":"), err.message
        return err.details["field"]

    assert field_of(metric="drift_score") == "metric"
    with pytest.raises(ValidationError) as info:
        admin.alerts.create(**{**good, "metric": "drift_score"})
    assert "unknown metric" in info.value.message
    assert field_of(metric="rmse") == "metric"  # a regression metric on a classifier
    assert field_of(condition="above") == "condition"
    assert field_of(deployment_id="dep_doesnotexist") == "deployment_id"
    assert field_of(name="") == "name"
    assert field_of(channels=[]) == "channels"
    assert field_of(channels=[{"type": "pager", "to": "x"}]) == "channels[0].type"
    assert field_of(channels=[webhook(), {"type": "email", "address": "not-an-address"}]) == "channels[1].address"
    assert field_of(channels=[{"type": "slack", "webhook_url": "hooks.slack.com/x"}]) == "channels[0].webhook_url"
    assert field_of(channels=[webhook("ftp://example.com/x")]) == "channels[0].url"
    assert field_of(channels=[webhook(secret="short")]) == "channels[0].secret"
    assert field_of(evaluation_window_minutes=0) == "evaluation_window_minutes"
    assert field_of(cooldown_minutes=-1) == "cooldown_minutes"

    with pytest.raises(TypeError):
        admin.alerts.create(**{**good, "channels": "https://hooks.slack.com/x"})

    alert = admin.alerts.create(**good)
    for change, field in (({"metric": "nope"}, "metric"), ({"condition": "above"}, "condition"),
                          ({"evaluation_window_minutes": 20_000}, "evaluation_window_minutes"),
                          ({"channels": [{"type": "email"}]}, "channels[0].address")):
        with pytest.raises(ValidationError) as info:
            admin.alerts.update(alert.id, **change)
        assert info.value.details["field"] == field
    assert admin.alerts.get(alert.id).metric == "data_drift_score"  # nothing changed


# --- secrets ------------------------------------------------------------------------------------------


def raw_texts(admin, alert_id: str, deployment_id: str, project_id: str) -> Dict[str, str]:
    """Every API answer about the alert, as the JSON text the server sent."""
    paths = {
        "get": f"/alerts/{alert_id}",
        "list": f"/alerts?project_id={project_id}",
        "history": f"/alerts/{alert_id}/history",
        "deliveries": f"/alerts/{alert_id}/deliveries",
        "notifications": f"/deployments/{deployment_id}/notifications",
        "events": f"/deployments/{deployment_id}/events",
    }
    return {k: admin._request("GET", p, raw=True).text for k, p in paths.items()}


def test_channel_secrets_are_never_returned_in_clear(admin, project, deployment):
    slack = "https://hooks.slack.com" + SLACK_PATH
    own_secret = "my-own-signing-secret-0123456789"
    alert = admin.alerts.create(
        deployment_id=deployment.id, name="drift", metric="max_psi", condition="greater_than_or_equal",
        threshold=0.2, enabled=False,
        channels=[
            {"type": "slack", "webhook_url": slack},
            webhook("https://api.company.com/alerts/token-in-path?key=abc"),
            webhook("https://hooks.company.com/receiver", secret=own_secret),
        ],
    )
    slack_ch, generated_ch, own_ch = alert.channels
    assert slack_ch.to_dict() == {"type": "slack", "webhook_url": "https://hooks.slack.com/…"}
    assert generated_ch.url == "https://api.company.com/…"
    assert own_ch.url == "https://hooks.company.com/…"
    assert own_ch.secret != own_secret and own_secret.startswith(own_ch.secret.rstrip("…"))
    # Only the generated secret comes back, once, with the index of its channel.
    (generated,) = alert.signing_secrets
    assert generated.channel == 1 and generated.secret.startswith("whsec_") and len(generated.secret) > 20
    assert generated_ch.secret != generated.secret

    created_text = json.dumps(alert.to_dict())
    assert SLACK_PATH not in created_text and "token-in-path" not in created_text
    assert own_secret not in created_text

    updated = admin.alerts.update(alert.id, threshold=0.3)
    assert updated.signing_secrets == []
    texts = raw_texts(admin, alert.id, deployment.id, project.id)
    texts["update"] = json.dumps(updated.to_dict())
    for name, text in texts.items():
        for secret in (SLACK_PATH, "hooks.slack.com/services", "token-in-path", "key=abc", own_secret,
                       generated.secret):
            assert secret not in text, f"{secret!r} appears in the {name} answer"

    # Replacing the channels generates a new secret for a webhook without one, shown in that answer.
    replaced = admin.alerts.update(alert.id, channels=[webhook("https://api.company.com/new")])
    (again,) = replaced.signing_secrets
    assert again.channel == 0 and again.secret.startswith("whsec_") and again.secret != generated.secret
    assert again.secret not in admin._request("GET", f"/alerts/{alert.id}", raw=True).text


# --- the scheduler, channels and signatures --------------------------------------------------------------


def test_a_rule_fires_on_the_scheduler_and_delivers_signed_webhooks(admin, project, register_model, deployment,
                                                                      receiver):
    row = churn_rows(1)[0][0]
    deployment.predict(row)
    alert = admin.alerts.create(
        deployment_id=deployment.id, name="traffic", metric="requests", condition="greater_than", threshold=0,
        channels=[webhook(receiver.url + "/hook"), {"type": "slack", "webhook_url": receiver.url + SLACK_PATH}],
        evaluation_window_minutes=1, cooldown_minutes=60,
    )
    (signing,) = alert.signing_secrets
    secret = signing.secret
    try:
        # The first scheduler tick after creation evaluates the rule: one request > 0 fires it.
        hook = receiver.wait_for(lambda r: r["path"] == "/hook")
        slack = receiver.wait_for(lambda r: r["path"] == SLACK_PATH)

        headers = hook["headers"]
        body = hook["body"]
        assert headers["content-type"] == "application/json"
        assert headers["x-coreplex-event"] == "alert.firing"
        ts, sig = headers["x-coreplex-timestamp"], headers["x-coreplex-signature"]
        assert abs(int(ts) - time.time()) < 60
        # The documented recipe, by hand and with the SDK's helper.
        import hashlib
        import hmac

        assert sig == "v1=" + hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        assert webhooks.verify_signature(secret, ts, body, sig)
        assert not webhooks.verify_signature(secret, ts, body + b" ", sig)
        assert not webhooks.verify_signature("whsec_wrong", ts, body, sig)
        assert not webhooks.verify_signature(secret, str(int(ts) + 1), body, sig)
        assert not webhooks.verify_signature(secret, ts, body, sig, now=int(ts) + 301)

        payload = json.loads(body)
        assert payload["event"] == "alert.firing" and payload["state"] == "firing"
        assert (payload["alert_id"], payload["alert"]) == (alert.id, "traffic")
        assert (payload["deployment_id"], payload["deployment"]) == (deployment.id, "churn")
        assert (payload["metric"], payload["condition"], payload["threshold"]) == ("requests", "greater_than", 0)
        assert payload["value"] >= 1 and "traffic" in payload["message"]
        assert json.loads(slack["body"]) == {"text": payload["message"]}

        deliveries = wait_until(alert.deliveries, lambda ds: len(ds) == 2 and all(d.delivered for d in ds))
        assert all(isinstance(d, Delivery) for d in deliveries)
        by_type = {d.channel.type: d for d in deliveries}
        assert set(by_type) == {"webhook", "slack"}
        assert by_type["webhook"].id == headers["x-coreplex-delivery"]
        for d in deliveries:
            assert DELIVERY_FIELDS <= set(d.fields())
            assert (d.event, d.status, d.attempts, d.last_error) == ("alert.firing", "delivered", 1, None)
            assert d.max_attempts >= 1 and d.next_attempt_at is None and d.delivered_at >= d.created_at
            assert d.payload.to_dict() == payload
        # The stored channels stay redacted; the local URLs' paths are hidden like any other.
        assert by_type["webhook"].channel.url == receiver.url + "/…"
        assert by_type["slack"].channel.webhook_url == receiver.url + "/…"

        now = alert.refresh()
        assert now.state == "firing" and now.firing and now.last_value >= 1
        assert now.last_evaluated_at and now.last_notified_at
        history = alert.history()
        assert history.state == "firing" and history.kinds == ["fired"]
        (fired,) = history.events
        assert isinstance(fired, AlertEvent) and fired.value >= 1 and fired.at

        # A rollback on the deployment notifies the same channels.
        newer = register_model("forest")
        admin.deployments.create(project_id=project.id, model_id=newer.id, name="churn", strategy="direct")
        deployment.rollback(reason="testing notifications")
        rolled = receiver.wait_for(lambda r: r["headers"].get("x-coreplex-event") == "deployment.rolled_back")
        assert webhooks.verify_signature(secret, rolled["headers"]["x-coreplex-timestamp"], rolled["body"],
                                         rolled["headers"]["x-coreplex-signature"])
        event = json.loads(rolled["body"])
        assert (event["deployment_id"], event["model_id"], event["reason"]) == (
            deployment.id, newer.id, "testing notifications")
        notes = wait_until(
            deployment.notifications,
            lambda ns: sum(n.event == "deployment.rolled_back" and n.delivered for n in ns) == 2,
        )
        assert all(isinstance(n, Delivery) for n in notes)
        assert {n.event for n in notes} >= {"alert.firing", "deployment.rolled_back"}
        assert {n.id for n in deliveries} <= {n.id for n in notes}
        assert notes == admin.deployments.notifications(deployment.id)

        everything = json.dumps([n.to_dict() for n in notes])
        assert SLACK_PATH not in everything and secret not in everything
    finally:
        alert.delete()
