"""Deployments against the real server: serving, the prediction log, delayed labels, metrics and the
rollout strategies with manual promote, rollback, pause and resume."""

import json
import math

import pytest

from coreplexml import ConflictError, NotFoundError, ValidationError
from coreplexml.resources import Deployment, PredictionResult

from conftest import CHURN_FEATURES, FIXTURES, churn_rows, unique

EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.fixture
def deploy(admin, project, register_model):
    """Deploys a fixture model directly to a new endpoint; returns (deployment, model)."""

    def make(fixture: str = "logreg", name: str = "churn"):
        model = register_model(fixture)
        return admin.deployments.create(project_id=project.id, model_id=model.id, name=name), model

    return make


def kinds(events):
    return [e.kind for e in events]


def last(events, kind):
    """The latest event of ``kind``. (Events of one millisecond may come in either order, so tests look
    events up by kind rather than by position.)"""
    found = [e for e in events if e.kind == kind]
    assert found, f"no {kind} event in {kinds(events)}"
    return found[-1]


# --- creating and reading ---------------------------------------------------------------------------


def test_create_direct_serves_the_model_at_once(admin, project, deploy):
    dep, model = deploy()
    assert isinstance(dep, Deployment)
    assert dep.id.startswith("dep_")
    assert (dep.project_id, dep.name, dep.strategy, dep.status) == (project.id, "churn", "direct", "active")
    assert dep.task == "binary_classification"
    assert dep.serving_model_id == model.id and dep.previous_model_id is None
    assert dep.rollout is None and not dep.rolling_out and dep.candidate_model_id is None
    assert [t.to_dict() for t in dep.traffic] == [{"model_id": model.id, "variant": "baseline", "percentage": 100.0}]
    assert dep.traffic_split() == {"baseline": 100.0}
    assert dep.shadow_model_id is None

    assert admin.deployments.get(dep.id) == dep
    assert dep.refresh() == dep
    assert [d.id for d in admin.deployments.list(project.id)] == [dep.id]
    assert admin.deployments.get_by_name(project.id, "churn") == dep
    assert admin.deployments.get_by_name(project.id, "nope") is None
    events = dep.events()
    assert sorted(kinds(events)) == ["created", "deployed"]
    assert last(events, "created").at <= last(events, "deployed").at
    assert admin.models.get(model.id).status == "production"
    (promotion,) = admin.models.promotions(model.id)
    assert (promotion.deployment_id, promotion.strategy, promotion.outcome) == (dep.id, "direct", "promoted")


def test_get_of_an_unknown_deployment_is_not_found(admin):
    with pytest.raises(NotFoundError):
        admin.deployments.get("dep_doesnotexist")


def test_create_validates_its_fields(admin, project, register_model):
    model = register_model("logreg")
    with pytest.raises(ValidationError) as info:
        admin.deployments.create(project.id, model.id, "churn", strategy="yolo")
    assert "strategy" in info.value.message
    with pytest.raises(ValidationError) as info:
        admin.deployments.create(project.id, "model_doesnotexist", "churn")
    assert "model_id" in info.value.message
    with pytest.raises(ValidationError) as info:
        admin.deployments.create(project.id, model.id, "churn", strategy="canary", rollback_threshold=2)
    assert "rollback_threshold" in info.value.message
    assert admin.deployments.list(project.id) == []


def test_a_model_of_another_project_cannot_be_deployed(admin, project, register_model):
    other = admin.projects.create(name=unique("other"))
    foreign = register_model("logreg", project_id=other.id)
    with pytest.raises(ValidationError) as info:
        admin.deployments.create(project.id, foreign.id, "churn")
    assert "model_id" in info.value.message


# --- predictions ------------------------------------------------------------------------------------


def test_predict_single_batch_and_columnar_match_onnx_runtime(admin, deploy):
    dep, model = deploy("logreg")
    rows = EXPECTED["logreg.onnx"]["rows"]
    want = EXPECTED["logreg.onnx"]["probabilities"]

    one = admin.deployments.predict(dep.id, rows[0])
    assert isinstance(one, PredictionResult) and len(one) == 1
    assert (one.model_id, one.variant) == (model.id, "baseline")
    assert len(one.request_ids) == 1 and one.request_ids[0]
    assert one.predictions[0].label == EXPECTED["logreg.onnx"]["labels"][0]
    assert one.predictions[0].probabilities["1"] == pytest.approx(want[0][1], abs=1e-6)

    batch = admin.deployments.predict(dep.id, rows)
    assert len(batch.predictions) == len(rows) == len(set(batch.request_ids))
    assert batch.labels == EXPECTED["logreg.onnx"]["labels"]
    for pred, (p0, p1) in zip(batch.predictions, want):
        assert pred.probabilities["0"] == pytest.approx(p0, abs=1e-6)
        assert pred.probabilities["1"] == pytest.approx(p1, abs=1e-6)

    columns = {f: [r[f] for r in rows] for f in CHURN_FEATURES}
    columnar = admin.deployments.predict(dep.id, columns=columns)
    assert columnar.predictions == batch.predictions

    via_object = dep.predict(rows)
    assert via_object.predictions == batch.predictions


def test_predict_accepts_a_dataframe(admin, deploy):
    pd = pytest.importorskip("pandas")
    dep, _ = deploy("logreg")
    rows = EXPECTED["logreg.onnx"]["rows"]
    frame = pd.DataFrame(rows).astype("float32")
    out = admin.deployments.predict(dep.id, frame)
    assert out.labels == EXPECTED["logreg.onnx"]["labels"]


def test_request_ids_are_kept_and_logged(admin, deploy):
    dep, model = deploy("logreg")
    rows = [r for r, _ in churn_rows(3)]
    assert admin.deployments.predict(dep.id, rows[0], request_id="order-17").request_ids == ["order-17"]
    assert admin.deployments.predict(dep.id, rows, request_id="batch").request_ids == [
        "batch-0", "batch-1", "batch-2"
    ]
    assert admin.deployments.predict(dep.id, rows, request_ids=["a", "b", "c"]).request_ids == ["a", "b", "c"]
    with pytest.raises(ValidationError) as info:
        admin.deployments.predict(dep.id, rows, request_ids=["a"])
    assert "request_ids" in info.value.message

    logged = {p.request_id: p for p in admin.deployments.predictions(dep.id)}
    assert {"order-17", "batch-0", "batch-1", "batch-2", "a", "b", "c"} <= set(logged)
    entry = logged["batch-1"]
    assert (entry.model_id, entry.variant, entry.role, entry.error) == (model.id, "baseline", "primary", False)
    assert entry.features.to_dict() == pytest.approx(rows[1])
    assert entry.output.label in ("0", "1") and entry.label is None


def test_the_prediction_log_is_paged_oldest_first(admin, deploy):
    dep, _ = deploy("logreg")
    rows = [r for r, _ in churn_rows(5)]
    for i, row in enumerate(rows):
        admin.deployments.predict(dep.id, row, request_id=f"r{i}")
    assert [p.request_id for p in admin.deployments.predictions(dep.id, page_size=2)] == [
        "r0", "r1", "r2", "r3", "r4"
    ]


def test_a_missing_or_mistyped_feature_is_a_validation_error_naming_it(admin, deploy):
    dep, _ = deploy("logreg")
    row = dict(churn_rows(1)[0][0])
    del row["usage_trend"]
    with pytest.raises(ValidationError) as info:
        admin.deployments.predict(dep.id, row)
    assert info.value.code == "validation_failed"
    assert "usage_trend" in info.value.message
    assert info.value.details.get("field") == "usage_trend"

    bad = dict(churn_rows(1)[0][0], support_calls="many")
    with pytest.raises(ValidationError) as info:
        admin.deployments.predict(dep.id, [bad])
    assert "support_calls" in info.value.message

    with pytest.raises(ValidationError) as info:
        admin.deployments.predict(dep.id, [])
    assert "rows" in info.value.message


# --- delayed labels and metrics ---------------------------------------------------------------------


def test_feedback_reports_unknown_ids_and_metrics_show_quality(admin, deploy):
    dep, model = deploy("logreg")
    data = churn_rows(40)
    out = admin.deployments.predict(dep.id, [r for r, _ in data])
    truth = {rid: y for rid, (_, y) in zip(out.request_ids, data)}

    before = admin.deployments.metrics(dep.id).variant("baseline")
    assert (before.requests, before.errors, before.labelled) == (40, 0, 0)
    assert before.error_rate == 0 and before.latency_p50_ms > 0 and before.throughput_rps > 0

    ids = out.request_ids
    first = [{"request_id": rid, "label": truth[rid]} for rid in ids[:20]]
    result = admin.deployments.feedback(dep.id, first + [{"request_id": "req_nobody", "label": 1}])
    assert result.accepted == 20 and result.unknown_request_ids == ["req_nobody"]
    result = dep.feedback({rid: str(truth[rid]) for rid in ids[20:]})
    assert result.accepted == 20 and result.unknown_request_ids == []

    metrics = admin.deployments.metrics(dep.id, window_minutes=30, windows=2)
    assert metrics.deployment_id == dep.id and metrics.task == "binary_classification"
    assert len(metrics.windows) == 2 and metrics.windows[0].variants == []
    now = metrics.variant("baseline")
    assert (now.model_id, now.requests, now.labelled) == (model.id, 40, 40)
    correct = sum(p.label == str(truth[rid]) for p, rid in zip(out.predictions, ids))
    assert now.quality.accuracy == pytest.approx(correct / 40)
    for name in ("precision", "recall", "f1", "auc", "log_loss"):
        assert math.isfinite(now.quality[name]), name
    assert 0.5 < now.quality.auc <= 1.0

    logged = {p.request_id: p for p in dep.predictions()}
    assert logged[ids[0]].label == str(truth[ids[0]]) and logged[ids[0]].labelled_at


def test_feedback_checks_its_input(admin, deploy):
    dep, _ = deploy("logreg")
    with pytest.raises(TypeError):
        admin.deployments.feedback(dep.id, [{"label": 1}])
    with pytest.raises(ValidationError) as info:
        admin.deployments.feedback(dep.id, [{"request_id": "x"}])
    assert "label" in info.value.message


def test_regression_predictions_take_values_as_feedback(admin, project):
    expected = EXPECTED["regressor.onnx"]
    model = admin.models.register(
        project.id, "spend", FIXTURES / "regressor.onnx", "regression", feature_names=expected["features"]
    )
    dep = admin.deployments.create(project.id, model.id, "spend")
    out = dep.predict(expected["rows"])
    assert out.values == pytest.approx(expected["values"], rel=1e-5, abs=1e-5)
    result = dep.feedback([{"request_id": rid, "value": v + 1.0} for rid, v in zip(out.request_ids, out.values)])
    assert result.accepted == len(out.request_ids)
    quality = dep.metrics().variant("baseline").quality
    assert quality.rmse == pytest.approx(1.0, abs=1e-4) and quality.mae == pytest.approx(1.0, abs=1e-4)


# --- rollouts ---------------------------------------------------------------------------------------


def test_a_canary_to_an_existing_name_splits_the_traffic(admin, project, deploy, register_model):
    dep, baseline = deploy("logreg")
    candidate = register_model("forest")
    rolled = admin.deployments.create(
        project_id=project.id, model_id=candidate.id, name="churn", strategy="canary",
        traffic_percentage=20, promotion_steps=[20, 50, 100], rollback_threshold=0.05,
    )
    assert rolled.id == dep.id
    assert (rolled.status, rolled.strategy, rolled.serving_model_id) == ("rolling_out", "canary", baseline.id)
    assert rolled.rolling_out and rolled.candidate_model_id == candidate.id
    assert rolled.traffic_split() == {"baseline": 80.0, "canary": 20.0}
    assert {t.variant: t.model_id for t in rolled.traffic} == {"baseline": baseline.id, "canary": candidate.id}
    assert rolled.config.promotion_steps == [20, 50, 100] and rolled.config.rollback_threshold == 0.05
    assert admin.models.get(candidate.id).status == "staging"

    row = churn_rows(1)[0][0]
    seen = {}
    for i in range(120):
        out = admin.deployments.predict(dep.id, row, entity_id=f"customer-{i}")
        seen.setdefault(out.variant, set()).add(out.model_id)
        # Routing by entity is sticky.
        assert admin.deployments.predict(dep.id, row, entity_id=f"customer-{i}").variant == out.variant
    assert seen == {"baseline": {baseline.id}, "canary": {candidate.id}}
    by_variant = {v.variant: v for v in admin.deployments.metrics(dep.id).latest.variants}
    assert set(by_variant) == {"baseline", "canary"}
    assert by_variant["baseline"].requests + by_variant["canary"].requests == 240
    assert 0 < by_variant["canary"].requests < by_variant["baseline"].requests

    other = register_model("hgb")
    with pytest.raises(ConflictError):
        admin.deployments.create(project.id, other.id, "churn", strategy="canary")
    with pytest.raises(ConflictError):
        admin.deployments.rollout(dep.id, other.id)
    started = last(admin.deployments.events(dep.id), "rollout_started")
    assert (started.detail.model_id, started.detail.strategy) == (candidate.id, "canary")


def test_manual_promote_and_rollback(admin, project, deploy, register_model):
    dep, baseline = deploy("logreg")
    candidate = register_model("forest")
    with pytest.raises(ConflictError):
        admin.deployments.promote(dep.id)

    rolled = admin.deployments.rollout(dep.id, candidate.id, strategy="canary", traffic_percentage=10)
    assert rolled.traffic_split() == {"baseline": 90.0, "canary": 10.0}
    promoted = admin.deployments.promote(dep.id, reason="looks good on the dashboard")
    assert (promoted.status, promoted.serving_model_id, promoted.previous_model_id) == (
        "active", candidate.id, baseline.id
    )
    assert promoted.rollout is None and promoted.traffic_split() == {"baseline": 100.0}
    assert dep.predict(churn_rows(1)[0][0]).model_id == candidate.id
    event = last(dep.events(), "promoted")
    assert "looks good on the dashboard" in json.dumps(event.detail.to_dict())
    assert admin.models.get(candidate.id).status == "production"
    assert admin.models.promotions(candidate.id)[-1].outcome == "promoted"

    # A rollout that is rolled back: traffic returns to the baseline at once.
    third = register_model("hgb")
    dep.refresh().roll_out(third.id, strategy="canary", traffic_percentage=50)
    back = dep.rollback(reason="canary AUC dropped")
    assert (back.status, back.serving_model_id) == ("active", candidate.id)
    assert back.traffic_split() == {"baseline": 100.0}
    assert "canary AUC dropped" in json.dumps(last(dep.events(), "rolled_back").detail.to_dict())
    assert admin.models.promotions(third.id)[-1].outcome == "rolled_back"

    # Without a rollout, rollback returns the endpoint to the model it served before.
    reverted = admin.deployments.rollback(dep.id)
    assert reverted.serving_model_id == baseline.id
    assert dep.predict(churn_rows(1)[0][0]).model_id == baseline.id


def test_pause_and_resume_a_rollout(admin, deploy, register_model):
    dep, baseline = deploy("logreg")
    candidate = register_model("forest")
    with pytest.raises(ConflictError):
        admin.deployments.pause(dep.id)
    dep.roll_out(candidate.id, strategy="canary", traffic_percentage=25)
    paused = admin.deployments.pause(dep.id)
    assert paused.status == "paused" and paused.rollout.paused is True
    assert paused.traffic_split() == {"baseline": 75.0, "canary": 25.0}
    resumed = dep.resume()
    assert resumed.status == "rolling_out" and resumed.rollout.paused is False
    assert resumed.traffic_split() == {"baseline": 75.0, "canary": 25.0}
    events = dep.events()
    assert last(events, "paused").at <= last(events, "resumed").at


def test_blue_green_switches_atomically_and_rolls_back_instantly(admin, deploy, register_model):
    dep, blue = deploy("logreg")
    green = register_model("hgb")
    switched = dep.roll_out(green.id, strategy="blue-green", rollback_window_minutes=15)
    assert (switched.status, switched.strategy, switched.config.rollback_window_minutes) == (
        "rolling_out", "blue-green", 15
    )
    assert [t.to_dict() for t in switched.traffic] == [{"model_id": green.id, "variant": "green", "percentage": 100.0}]
    out = dep.predict(churn_rows(1)[0][0])
    assert (out.model_id, out.variant) == (green.id, "green")

    back = dep.rollback()
    assert back.serving_model_id == blue.id and back.traffic_split() == {"baseline": 100.0}
    assert dep.predict(churn_rows(1)[0][0]).model_id == blue.id


def test_shadow_never_changes_a_response_and_is_compared(admin, deploy, register_model):
    dep, primary = deploy("logreg")
    shadow = register_model("weak")
    data = churn_rows(30)
    rows = [r for r, _ in data]

    def send():
        # Ten single rows and one batch, the same way before and during the shadow rollout.
        return [dep.predict(row) for row in rows[:10]] + [dep.predict(rows[10:])]

    before = [p for out in send() for p in out.predictions]
    with pytest.raises(ConflictError):
        dep.comparison()

    mirrored = dep.roll_out(shadow.id, strategy="shadow", comparison_window_days=3)
    assert (mirrored.status, mirrored.serving_model_id, mirrored.shadow_model_id) == (
        "rolling_out", primary.id, shadow.id
    )
    assert mirrored.traffic_split() == {"baseline": 100.0}

    outs = send()
    for out in outs:
        assert (out.model_id, out.variant) == (primary.id, "baseline")
    during = [p for out in outs for p in out.predictions]
    assert during == before
    request_ids = [rid for out in outs for rid in out.request_ids]
    dep.feedback({rid: y for rid, (_, y) in zip(request_ids, data)})

    report = dep.comparison()
    assert (report.primary_model_id, report.shadow_model_id) == (primary.id, shadow.id)
    assert (report.requests, report.mirrored, report.paired, report.dropped) == (30, 30, 30, 0)
    assert 0.0 <= report.agreement <= 1.0
    test = report.paired_test
    assert test.test == "mcnemar" and 0.0 <= test.p_value <= 1.0
    assert report.primary.requests == report.shadow.requests == 30
    assert report.primary.labelled == 30

    log = [p for p in dep.predictions() if p.request_id in set(request_ids)]
    assert sorted(p.role for p in log) == ["primary"] * 30 + ["shadow"] * 30
    assert {p.model_id for p in log if p.role == "shadow"} == {shadow.id}
    assert dep.metrics().shadow_dropped == 0

    promoted = dep.promote()
    assert promoted.serving_model_id == shadow.id and promoted.shadow_model_id is None
    assert dep.predict(rows[0]).model_id == shadow.id


def test_a_new_endpoint_under_a_rollout_strategy_serves_directly(admin, project, register_model):
    model = register_model("forest")
    dep = admin.deployments.create(project.id, model.id, "fresh", strategy="canary", traffic_percentage=5)
    assert (dep.status, dep.serving_model_id, dep.rollout) == ("active", model.id, None)
    assert dep.traffic_split() == {"baseline": 100.0}
    deployed = [e for e in dep.events() if e.kind == "deployed"]
    assert deployed and "first model" in deployed[0].detail.detail
    # The endpoint remembers the strategy for its next rollout.
    assert dep.strategy == "canary"
    nxt = admin.deployments.create(project.id, register_model("hgb").id, "fresh")
    assert nxt.status == "rolling_out" and nxt.strategy == "canary"
