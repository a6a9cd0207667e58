"""What the alerts resource and the drift calls put on the wire (against a scripted fake server), and the
webhook signature helper."""

import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from coreplexml import webhooks
from coreplexml.resources import Alert, Deployment

from test_client import FakeServer, client_for

ALERT = {"id": "alert_1", "project_id": "proj_1", "deployment_id": "dep_1", "name": "drift", "state": "ok",
         "channels": [], "signing_secrets": [{"channel": 0, "secret": "whsec_abc"}]}


@pytest.fixture
def fake():
    servers = []

    def make(*script):
        srv = FakeServer(script)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


def sent(srv, i=-1):
    method, path, headers, body = srv.requests[i]
    url = urlsplit(path)
    return method, url.path, parse_qs(url.query), json.loads(body) if body else None


def test_create_sends_every_field_with_the_defaults(fake):
    srv = fake((201, ALERT))
    alert = client_for(srv).alerts.create(
        deployment_id=Deployment({"id": "dep_1"}), name="drift", metric="data_drift_score",
        condition="greater_than", threshold=0.15, channels=[{"type": "webhook", "url": "https://x.io/a"}],
    )
    assert isinstance(alert, Alert) and alert.signing_secrets[0].secret == "whsec_abc"
    method, path, query, body = sent(srv)
    assert (method, path, query) == ("POST", "/api/v1/alerts", {})
    assert body == {
        "deployment_id": "dep_1", "name": "drift", "metric": "data_drift_score", "condition": "greater_than",
        "threshold": 0.15, "channels": [{"type": "webhook", "url": "https://x.io/a"}],
        "evaluation_window_minutes": 60, "cooldown_minutes": 60, "enabled": True,
    }
    assert srv.requests[-1][2].get("Idempotency-Key")


def test_update_patches_only_the_fields_given(fake):
    srv = fake((200, ALERT))
    client_for(srv).alerts.update("alert_1", threshold=0.2, enabled=False)
    assert sent(srv) == ("PATCH", "/api/v1/alerts/alert_1", {}, {"threshold": 0.2, "enabled": False})


def test_redacted_channels_are_refused_before_sending(fake):
    srv = fake()
    client = client_for(srv)
    shown = Alert({"channels": [{"type": "slack", "webhook_url": "https://hooks.slack.com/…"}]})
    with pytest.raises(ValueError) as info:
        client.alerts.update("alert_1", channels=shown.channels)
    assert "channels[0].webhook_url" in str(info.value)
    with pytest.raises(ValueError):
        client.alerts.create("dep_1", "x", "requests", "greater_than", 0,
                             [{"type": "webhook", "url": "https://x.io/a", "secret": "whsec_ab…"}])
    assert srv.requests == []


def test_list_history_deliveries_delete_paths(fake):
    srv = fake((200, [ALERT]), (200, {"alert_id": "alert_1", "state": "ok", "events": [{"kind": "fired"}]}),
               (200, [{"id": "dlv_1", "status": "delivered"}]), (204, b""), (200, [{"id": "dlv_2"}]))
    client = client_for(srv)
    assert [a.id for a in client.alerts.list("proj_1", deployment_id="dep_1")] == ["alert_1"]
    assert sent(srv)[:3] == ("GET", "/api/v1/alerts", {"project_id": ["proj_1"], "deployment_id": ["dep_1"]})
    assert client.alerts.history("alert_1").kinds == ["fired"]
    assert sent(srv)[:2] == ("GET", "/api/v1/alerts/alert_1/history")
    assert client.alerts.deliveries("alert_1")[0].delivered
    assert sent(srv)[:2] == ("GET", "/api/v1/alerts/alert_1/deliveries")
    assert client.alerts.delete("alert_1") is None
    assert sent(srv)[:2] == ("DELETE", "/api/v1/alerts/alert_1")
    assert [n.id for n in client.deployments.notifications("dep_1")] == ["dlv_2"]
    assert sent(srv)[:2] == ("GET", "/api/v1/deployments/dep_1/notifications")


def test_drift_sends_only_the_parameters_given(fake):
    report = {"features": [{"name": "a", "drifted": True}, {"name": "b", "drifted": False},
                           {"name": "c", "status": "no_current_data"}], "data_drift_score": 0.5}
    srv = fake((200, report), (200, report), (200, {"windows": [{"value": 0.7}], "drifted": False}))
    client = client_for(srv)
    out = client.deployments.drift("dep_1")
    assert sent(srv)[:3] == ("GET", "/api/v1/deployments/dep_1/drift", {})
    assert out.drifted_features == ["a"] and out.drifted and out.feature("c").status == "no_current_data"
    client.deployments.drift("dep_1", since=dt.datetime(2026, 1, 1, 12, 0), until="2026-01-01T13:00:00Z",
                             reference_dataset_version_id="dsv_1", alpha=0.01, psi_threshold=0.2)
    assert sent(srv)[2] == {
        "since": ["2026-01-01T12:00:00Z"], "until": ["2026-01-01T13:00:00Z"],
        "reference_dataset_version_id": ["dsv_1"], "alpha": ["0.01"], "psi_threshold": ["0.2"],
    }
    cd = client.deployments.concept_drift("dep_1", metric="f1", window_minutes=30, windows=4, tolerance=0.1)
    assert cd.windows[0].value == 0.7
    assert sent(srv)[1:3] == ("/api/v1/deployments/dep_1/concept-drift", {
        "metric": ["f1"], "window_minutes": ["30"], "windows": ["4"], "tolerance": ["0.1"]})


# --- webhook signatures -------------------------------------------------------------------------------


def test_sign_follows_the_documented_recipe():
    # The same vector as the server's own test.
    expected = "v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
    assert webhooks.sign("secret", 1_700_000_000, b"{}") == expected
    assert webhooks.sign(b"secret", "1700000000", "{}") == expected


def test_verify_signature():
    body = b'{"event":"alert.firing","value":0.2}'
    ts = 1_700_000_000
    sig = webhooks.sign("whsec_k", ts, body)
    assert webhooks.verify_signature("whsec_k", str(ts), body, sig, now=ts + 10)
    assert webhooks.verify_signature("whsec_k", ts, body.decode(), sig, now=ts - 10)
    assert webhooks.verify_signature("whsec_k", ts, body, "v1=00," + sig, now=ts)  # one of several
    assert webhooks.verify_signature("whsec_k", ts, body, sig, tolerance_secs=None, now=ts + 10**6)
    assert not webhooks.verify_signature("whsec_k", ts, body, sig, now=ts + 301)  # too old
    assert not webhooks.verify_signature("whsec_k", ts, body, sig, now=ts - 301)
    assert not webhooks.verify_signature("whsec_x", ts, body, sig, now=ts)
    assert not webhooks.verify_signature("whsec_k", ts, body + b"\n", sig, now=ts)
    assert not webhooks.verify_signature("whsec_k", ts + 1, body, sig, now=ts)
    assert not webhooks.verify_signature("whsec_k", ts, body, sig[3:], now=ts)  # no v1= scheme
    assert not webhooks.verify_signature("whsec_k", "soon", body, sig, now=ts)
    assert not webhooks.verify_signature("", ts, body, sig, now=ts)
