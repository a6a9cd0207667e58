"""What the deployments resource puts on the wire, checked against a scripted fake server."""

import json
import math

import pytest

from test_client import FakeServer, client_for

DEPLOYMENT = {"id": "dep_1", "name": "churn", "status": "active", "traffic": [], "rollout": None}
PREDICTION = {"predictions": [{"label": "1", "probabilities": {"0": 0.2, "1": 0.8}}], "request_ids": ["r"],
              "model_id": "model_1", "variant": "baseline"}


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
    return method, path, headers, json.loads(body) if body else None


def test_create_sends_only_the_settings_given(fake):
    srv = fake((201, DEPLOYMENT))
    dep = client_for(srv).deployments.create(
        project_id="proj_1", model_id="model_1", name="churn", strategy="canary",
        traffic_percentage=5, promotion_steps=[5, 25, 50, 100], auto_rollback=True, rollback_threshold=0.03,
    )
    assert dep.id == "dep_1"
    method, path, headers, body = sent(srv)
    assert (method, path) == ("POST", "/api/v1/projects/proj_1/deployments")
    assert body == {
        "name": "churn", "model_id": "model_1", "strategy": "canary", "traffic_percentage": 5,
        "promotion_steps": [5, 25, 50, 100], "auto_rollback": True, "rollback_threshold": 0.03,
    }
    assert headers.get("Idempotency-Key")


def test_create_without_a_strategy_leaves_it_to_the_server(fake):
    srv = fake((201, DEPLOYMENT))
    client_for(srv).deployments.create("proj_1", "model_1", "churn")
    assert sent(srv)[3] == {"name": "churn", "model_id": "model_1"}


def test_rollout_rejects_unknown_settings_before_sending(fake):
    srv = fake((200, DEPLOYMENT))
    client = client_for(srv)
    with pytest.raises(TypeError) as info:
        client.deployments.rollout("dep_1", "model_2", "canary", traffic_percent=5)
    assert "traffic_percent" in str(info.value)
    assert srv.requests == []
    client.deployments.rollout("dep_1", "model_2", "shadow", comparison_window_days=2)
    assert sent(srv)[1:4:2] == ("/api/v1/deployments/dep_1/rollouts",
                                {"model_id": "model_2", "strategy": "shadow", "comparison_window_days": 2})


def test_predict_is_sent_without_an_idempotency_key_and_retried(fake):
    unavailable = {"error": {"code": "unavailable", "message": "try again", "details": {}}}
    srv = fake((503, unavailable), (200, PREDICTION))
    out = client_for(srv).deployments.predict("dep_1", {"tenure": 1.0}, entity_id="c-1", request_id="r")
    assert out.labels == ["1"] and out.predictions[0].probabilities["1"] == 0.8
    assert len(srv.requests) == 2
    for i in (0, 1):
        method, path, headers, body = sent(srv, i)
        assert (method, path) == ("POST", "/api/v1/deployments/dep_1/predict")
        assert "Idempotency-Key" not in headers
        assert body == {"rows": [{"tenure": 1.0}], "entity_id": "c-1", "request_id": "r"}


def test_predict_with_an_explicit_idempotency_key_sends_it(fake):
    srv = fake((200, PREDICTION))
    client_for(srv).deployments.predict("dep_1", [{"tenure": 1.0}], idempotency_key="once")
    assert sent(srv)[2]["Idempotency-Key"] == "once"


def test_a_dataframe_is_sent_as_columns_with_missing_values_as_null(fake):
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    srv = fake((200, PREDICTION))
    frame = pd.DataFrame({"tenure": np.array([1.5, np.nan], dtype="float32"), "calls": np.array([2, 3])})
    client_for(srv).deployments.predict("dep_1", frame)
    assert sent(srv)[3] == {"columns": {"tenure": [1.5, None], "calls": [2, 3]}}


def test_rows_with_numpy_values_and_nan_are_plain_json(fake):
    np = pytest.importorskip("numpy")
    srv = fake((200, PREDICTION))
    client_for(srv).deployments.predict("dep_1", [{"a": np.float32(0.5), "b": np.int64(3), "c": math.nan}])
    assert sent(srv)[3] == {"rows": [{"a": 0.5, "b": 3, "c": None}]}


def test_predict_needs_rows_or_columns(fake):
    srv = fake()
    client = client_for(srv)
    with pytest.raises(ValueError):
        client.deployments.predict("dep_1")
    with pytest.raises(ValueError):
        client.deployments.predict("dep_1", [{"a": 1}], columns={"a": [1]})
    with pytest.raises(TypeError):
        client.deployments.predict("dep_1", "tenure=1")
    assert srv.requests == []


def test_feedback_accepts_a_list_or_a_mapping(fake):
    srv = fake((200, {"accepted": 2, "unknown_request_ids": []}), (200, {"accepted": 1, "unknown_request_ids": []}))
    client = client_for(srv)
    client.deployments.feedback("dep_1", {"r1": 1, "r2": "0"})
    assert sent(srv)[3] == [{"request_id": "r1", "label": 1}, {"request_id": "r2", "label": "0"}]
    client.deployments.feedback("dep_1", [{"request_id": "r3", "value": 2.5}])
    method, path, headers, body = sent(srv)
    assert (path, body) == ("/api/v1/deployments/dep_1/feedback", [{"request_id": "r3", "value": 2.5}])
    assert headers.get("Idempotency-Key")


def test_metrics_and_prediction_log_queries(fake):
    import datetime as dt

    srv = fake(
        (200, {"deployment_id": "dep_1", "task": "regression", "windows": [], "shadow_dropped": 0}),
        (200, {"items": [{"request_id": "a"}], "next_page_token": "t1"}),
        (200, {"items": [{"request_id": "b"}], "next_page_token": None}),
    )
    client = client_for(srv)
    m = client.deployments.metrics("dep_1", window_minutes=5, windows=3)
    assert m.latest is None and m.variant("baseline") is None
    assert sent(srv)[1] == "/api/v1/deployments/dep_1/metrics?window_minutes=5&windows=3"
    since = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert [p.request_id for p in client.deployments.predictions("dep_1", since=since, page_size=1)] == ["a", "b"]
    assert sent(srv, 1)[1] == "/api/v1/deployments/dep_1/predictions?since=2026-01-02T03%3A04%3A05Z&limit=1"
    assert sent(srv, 2)[1].endswith("limit=1&page_token=t1")


def test_manual_actions_send_their_reason(fake):
    srv = fake(*[(200, DEPLOYMENT)] * 4)
    client = client_for(srv)
    client.deployments.promote("dep_1", reason="ship it")
    assert sent(srv)[1:4:2] == ("/api/v1/deployments/dep_1/promote", {"reason": "ship it"})
    client.deployments.rollback("dep_1")
    assert sent(srv)[1:4:2] == ("/api/v1/deployments/dep_1/rollback", None)
    client.deployments.pause("dep_1")
    client.deployments.resume("dep_1")
    assert [r[1] for r in srv.requests[2:]] == ["/api/v1/deployments/dep_1/pause", "/api/v1/deployments/dep_1/resume"]
