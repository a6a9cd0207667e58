"""A/B tests against the real server: creating a test on a deployment, sticky weighted routing,
outcomes by request id and entity id, labels, results, validation, and stopping or promoting the
winner."""

import pytest

from coreplexml import ConflictError, CorePlexError, NotFoundError, ValidationError
from coreplexml.resources import ABTest, ABTestResults, OutcomeResult, VariantResult

from conftest import churn_rows

RESULT_FIELDS = {
    "metric", "control", "variants", "srm_p_value", "required_sample_size_per_variant", "recommendation",
    "progress", "sample_size_reached", "recommendation_reason", "recommended_model_id",
}
VARIANT_FIELDS = {
    "model_id", "n", "estimate", "difference", "relative_lift", "ci_low", "ci_high", "p_value", "significant",
}


@pytest.fixture
def setup(admin, project, register_model):
    """`logreg` serving on endpoint `churn`, `hgb` registered: (deployment, logreg, hgb)."""
    current = register_model("logreg")
    challenger = register_model("hgb")
    dep = admin.deployments.create(project_id=project.id, model_id=current.id, name="churn")
    return dep, current, challenger


def start(admin, project, dep, a, b, **kwargs):
    args = dict(
        variants=[{"model_id": a.id, "traffic": 50}, {"model_id": b.id, "traffic": 50}],
        metric={"type": "proportion", "source": "outcomes", "name": "conversion"},
        minimum_detectable_effect=0.05,
    )
    args.update(kwargs)
    return admin.ab_tests.create(project.id, "ranker", dep.id, **args)


def test_a_test_routes_sticky_by_entity_and_reports_results(admin, project, setup):
    dep, a, b = setup
    test = start(admin, project, dep, a, b)
    assert isinstance(test, ABTest)
    assert test.id.startswith("abt_") and test.running
    assert [(v.name, v.model_id, v.traffic, v.is_control) for v in test.variants] == [
        ("control", a.id, 50.0, True),
        ("treatment", b.id, 50.0, False),
    ]
    assert test.control_model_id == a.id
    assert (test.metric.type, test.metric.source, test.metric.name) == ("proportion", "outcomes", "conversion")
    assert (test.alpha, test.power, test.sequential) == (0.05, 0.8, False)

    rows = churn_rows(80)
    served = {}
    request_ids = {}
    for i, (row, _) in enumerate(rows):
        out = dep.predict(row, entity_id=f"user-{i}")
        assert out.variant in ("ab:control", "ab:treatment")
        assert out.model_id == (a.id if out.variant == "ab:control" else b.id)
        served[f"user-{i}"] = out.variant
        request_ids[out.request_ids[0]] = out.variant
    assert set(served.values()) == {"ab:control", "ab:treatment"}
    # The same entity meets the same variant.
    for i in range(0, 80, 8):
        assert dep.predict(rows[i][0], entity_id=f"user-{i}").variant == served[f"user-{i}"]
    counts = test.refresh().assignment_counts()
    assert counts == {
        "control": sum(v == "ab:control" for v in served.values()),
        "treatment": sum(v == "ab:treatment" for v in served.values()),
    }

    # Outcomes by request id ({request_id: value}) and by entity id.
    by_request = {rid: int(v == "ab:treatment") for rid, v in list(request_ids.items())[:40]}
    res = admin.ab_tests.record_outcomes(test.id, by_request)
    assert isinstance(res, OutcomeResult) and res.accepted == 40 and res.unknown_request_ids == []
    res = test.record_outcomes(
        [{"entity_id": f"user-{i}", "value": True} for i in range(40, 50)] + [{"entity_id": "ghost", "value": 0}]
    )
    assert (res.accepted, res.unknown_entity_ids) == (10, ["ghost"])

    r = admin.ab_tests.results(test.id)
    assert isinstance(r, ABTestResults)
    assert RESULT_FIELDS <= set(r.fields())
    assert r.control == a.id
    assert [v.model_id for v in r.variants] == [a.id, b.id]
    control, treatment = r.variants
    assert isinstance(treatment, VariantResult) and r.treatment == treatment
    assert VARIANT_FIELDS <= set(treatment.fields()) and "successes" in treatment
    assert control.is_control and control.p_value is None
    assert control.n + treatment.n == 50
    assert treatment.difference == pytest.approx(treatment.estimate - control.estimate)
    assert r.required_sample_size_per_variant is not None and 0 < r.progress <= 1
    assert r.recommendation in ("keep_running", "ship", "no_difference", "stop")
    assert not r.sample_ratio_mismatch
    assert r.variant("treatment") == treatment and r.variant(b.id) == treatment

    assert [t.id for t in admin.ab_tests.list(project.id)] == [test.id]
    assert [t.id for t in admin.ab_tests.list(project.id, deployment_id=dep.id)] == [test.id]

    # Stopping without a winner returns traffic to the serving model.
    stopped = test.stop(reason="enough")
    assert (stopped.status, stopped.stop_reason, stopped.winner_model_id) == ("stopped", "enough", None)
    assert stopped.serving_model_id == a.id
    assert dep.predict(rows[0][0], entity_id="user-1").variant == "baseline"
    with pytest.raises(ConflictError):
        test.stop()


def test_promote_winner_switches_the_deployment_to_the_recommended_variant(admin, project, setup):
    dep, a, b = setup
    test = start(
        admin, project, dep, a, b,
        metric={"type": "proportion", "baseline_rate": 0.2},
        minimum_detectable_effect=0.5,
    )
    with pytest.raises(CorePlexError) as e:
        admin.ab_tests.promote_winner(test.id)
    assert e.value.code == "no_winner"
    # The challenger converts four times in five, the current model one time in five.
    outcomes = []
    for i, (row, _) in enumerate(churn_rows(120)):
        out = dep.predict(row)
        win = out.variant == "ab:treatment"
        outcomes.append({"request_id": out.request_ids[0], "value": int((i % 5 != 0) == win)})
    admin.ab_tests.record_outcomes(test.id, outcomes)
    r = test.results()
    assert r.sample_size_reached and r.treatment.significant
    assert (r.recommendation, r.recommended_model_id) == ("ship", b.id)

    won = test.promote_winner()
    assert (won.status, won.winner_model_id, won.winner_variant) == ("stopped", b.id, "treatment")
    dep = dep.refresh()
    assert (dep.serving_model_id, dep.previous_model_id) == (b.id, a.id)
    assert dep.predict(churn_rows(1)[0][0]).model_id == b.id
    kinds = [e.kind for e in dep.events()]
    assert "ab_test_started" in kinds and "ab_test_stopped" in kinds
    history = admin.models.promotions(b.id)
    assert (history[-1].strategy, history[-1].outcome) == ("ab_test", "promoted")
    assert admin.models.get(b.id).status == "production"
    actions = [e.action for e in admin.audit.list(resource_id=test.id)]
    assert actions == ["ab_test.create", "ab_test.stop"]


def test_labels_measure_correctness(admin, project, setup):
    dep, a, b = setup
    test = start(admin, project, dep, a, b, metric={"type": "proportion", "source": "labels"})
    labels = {}
    correct = {"ab:control": 0, "ab:treatment": 0}
    n = {"ab:control": 0, "ab:treatment": 0}
    for row, truth in churn_rows(60):
        out = dep.predict(row)
        labels[out.request_ids[0]] = truth
        n[out.variant] += 1
        correct[out.variant] += int(out.labels[0] == str(truth))
    dep.feedback(labels)
    r = test.results()
    assert (r.variants[0].n, r.variants[1].n) == (n["ab:control"], n["ab:treatment"])
    assert (r.variants[0].successes, r.variants[1].successes) == (correct["ab:control"], correct["ab:treatment"])
    with pytest.raises(ConflictError):
        test.record_outcomes({"x": 1})


def test_bad_tests_are_refused(admin, project, setup, register_model):
    dep, a, b = setup
    with pytest.raises(ValidationError) as e:
        start(admin, project, dep, a, b, variants=[a.id])
    assert e.value.details["field"] == "variants"
    with pytest.raises(ValidationError) as e:
        start(admin, project, dep, a, b, metric={"type": "ratio"})
    assert e.value.details["field"] == "metric.type"
    with pytest.raises(ValidationError) as e:
        start(admin, project, dep, a, b, alpha=0.7)
    assert e.value.details["field"] == "alpha"
    with pytest.raises(TypeError):
        admin.ab_tests.create(project.id, "x", dep.id, variants=[a.id, b.id])

    # By endpoint name; an even split when no traffic is given.
    test = admin.ab_tests.create(
        project.id, "by-name", endpoint="churn", variants=[a, b], metric="proportion", minimum_detectable_effect=0.1
    )
    assert test.deployment_id == dep.id and [v.traffic for v in test.variants] == [50.0, 50.0]
    with pytest.raises(ConflictError):
        start(admin, project, dep, a, b)
    with pytest.raises(ValidationError) as e:
        test.record_outcomes([{"request_id": "r", "value": 0.5}])
    assert e.value.details["field"] == "outcomes[0].value"
    test.stop()
    with pytest.raises(NotFoundError):
        admin.ab_tests.get("abt_missing")
