"""Data drift and concept drift of live traffic, against the real server.

The model is registered with the dataset version of `churn.csv` as its training data; the deployment then
serves either the same rows (nothing drifts) or the same rows with `tenure` shifted by +2.5 (only `tenure`
drifts: the features are standardised, so that is 2.5 standard deviations).
"""

import datetime as dt

import pytest

from coreplexml import ConflictError, ValidationError
from coreplexml.resources import ConceptDriftReport, ConceptDriftWindow, DriftReport, FeatureDrift

from conftest import CHURN_FEATURES, FIXTURES, churn_rows

SHIFT = 2.5
FEATURE_FIELDS = {
    "name", "kind", "test", "statistic", "p_value", "psi", "wasserstein_normed", "jensen_shannon",
    "missing_share_reference", "missing_share_current", "reference_count", "current_count", "histogram",
    "drifted",
}
REPORT_FIELDS = {
    "features", "features_evaluated", "features_drifted", "data_drift_score", "max_psi", "current_rows",
    "alpha", "psi_threshold", "deployment_id", "model_id", "reference_dataset_version_id", "window_start",
    "window_end",
}


@pytest.fixture
def training_data(admin, project):
    return admin.datasets.upload(project_id=project.id, path=FIXTURES / "churn.csv", name="churn")


@pytest.fixture
def serve(admin, project, register_model):
    """Deploys logreg (registered with `lineage`) to a new endpoint and sends it rows of churn.csv."""

    def make(name: str, shift: float = 0.0, n=None, **lineage):
        model = register_model("logreg", name=name, **lineage)
        dep = admin.deployments.create(project_id=project.id, model_id=model.id, name=name)
        rows = [dict(r, tenure=r["tenure"] + shift) for r, _ in churn_rows(n)]
        out = dep.predict(rows)
        return dep, model, out

    return make


def test_same_distribution_does_not_drift(admin, training_data, serve):
    dep, model, _ = serve("steady", dataset_version_id=training_data.id)
    assert model.lineage.dataset_version_id == training_data.id

    report = admin.deployments.drift(dep.id)
    assert isinstance(report, DriftReport)
    assert REPORT_FIELDS <= set(report.fields())
    assert (report.deployment_id, report.model_id) == (dep.id, model.id)
    assert report.reference_dataset_version_id == training_data.id
    assert report.data_drift_score == 0 and report.features_drifted == 0
    assert report.features_evaluated == len(CHURN_FEATURES) and report.current_rows == 600
    assert (report.alpha, report.psi_threshold) == (0.05, 0.1)
    assert report.drifted_features == [] and not report.drifted
    assert report.window_start < report.window_end

    assert sorted(f.name for f in report.features) == sorted(CHURN_FEATURES)
    for f in report.features:
        assert isinstance(f, FeatureDrift)
        assert FEATURE_FIELDS <= set(f.fields())
        assert (f.kind, f.test, f.drifted) == ("numeric", "ks", False)
        assert (f.reference_count, f.current_count) == (600, 600)
        assert f.statistic == pytest.approx(0, abs=1e-9) and f.p_value == pytest.approx(1)
        assert f.psi == pytest.approx(0, abs=1e-6)
        assert (f.missing_share_reference, f.missing_share_current) == (0, 0)
        h = f.histogram
        assert len(h.edges) == len(h.reference) + 1 and sum(h.current) == pytest.approx(600)
    assert report.max_psi == pytest.approx(max(f.psi for f in report.features))

    # The same call from the deployment object, over an explicit time range.
    now = dt.datetime.now(dt.timezone.utc)
    ranged = dep.drift(since=now - dt.timedelta(minutes=30), until=now + dt.timedelta(minutes=1))
    assert ranged.current_rows == 600 and ranged.data_drift_score == 0
    # Nothing was logged a day ago: no feature can be compared.
    empty = dep.drift(since=now - dt.timedelta(days=2), until=now - dt.timedelta(days=1))
    assert empty.current_rows == 0 and empty.data_drift_score is None and empty.features_evaluated == 0


def test_a_shifted_feature_drifts(admin, training_data, serve):
    dep, _, _ = serve("shifted", shift=SHIFT, dataset_version_id=training_data.id)

    report = dep.drift(window_minutes=30)
    assert report.drifted_features == ["tenure"] and report.drifted
    assert report.features_drifted == 1 and report.data_drift_score == pytest.approx(1 / len(CHURN_FEATURES))
    tenure = report.feature("tenure")
    assert tenure.drifted and tenure.p_value < 1e-10 and tenure.psi >= 0.1
    assert report.max_psi == tenure.psi
    assert report.feature("nope") is None
    for name in ("monthly_charges", "support_calls", "usage_trend"):
        assert not report.feature(name).drifted

    # The KS statistic and p-value match scipy on the same samples.
    stats = pytest.importorskip("scipy.stats")
    reference = [r["tenure"] for r, _ in churn_rows()]
    ks = stats.ks_2samp(reference, [x + SHIFT for x in reference])
    assert tenure.statistic == pytest.approx(ks.statistic, rel=1e-6)
    assert tenure.p_value == pytest.approx(ks.pvalue, rel=1e-3, abs=1e-300)

    # The decision rule's settings are the caller's: a PSI bar nothing reaches means no drift.
    lenient = admin.deployments.drift(dep.id, psi_threshold=1e6, alpha=0.01)
    assert (lenient.alpha, lenient.psi_threshold) == (0.01, 1e6)
    assert lenient.data_drift_score == 0 and lenient.drifted_features == []


def test_drift_needs_a_reference(admin, project, training_data, serve):
    dep, _, _ = serve("no-lineage", shift=SHIFT, n=200)
    with pytest.raises(ConflictError) as info:
        dep.drift()
    assert "dataset_version_id" in info.value.message
    # A reference given with the call works without lineage.
    report = dep.drift(reference_dataset_version_id=training_data)
    assert report.reference_dataset_version_id == training_data.id
    assert report.current_rows == 200 and report.drifted_features == ["tenure"]


def test_drift_validates_its_parameters(admin, training_data, serve):
    dep, _, _ = serve("params", n=10, dataset_version_id=training_data.id)
    for kwargs, field in (
        ({"alpha": 1.5}, "alpha"),
        ({"psi_threshold": -1}, "psi_threshold"),
        ({"window_minutes": 0}, "window_minutes"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ):
        with pytest.raises(ValidationError) as info:
            admin.deployments.drift(dep.id, **kwargs)
        assert info.value.details["field"] == field, (kwargs, info.value.message)


def test_concept_drift_compares_quality_with_the_validation_value(admin, serve):
    # Labels opposite to the truth make the live AUC 1 - AUC: far below the validation value.
    dep, _, out = serve("concept", validation_metrics={"auc": 0.9})
    truth = [label for _, label in churn_rows()]
    assert dep.feedback({rid: 1 - y for rid, y in zip(out.request_ids, truth)}).accepted == 600

    report = dep.concept_drift(metric="auc", window_minutes=5, windows=1, tolerance=0.05)
    assert isinstance(report, ConceptDriftReport)
    assert (report.metric, report.validation_value) == ("auc", 0.9)
    (window,) = report.windows
    assert isinstance(window, ConceptDriftWindow)
    assert window.labelled == 600 and window.value < 0.5 and window.start < window.end
    assert report.degraded_windows == 1 and report.drifted is True

    # Three windows: the two older ones have no labels, so the degradation is not sustained.
    sustained = admin.deployments.concept_drift(dep.id, window_minutes=5, windows=3)
    assert sustained.metric == "auc" and len(sustained.windows) == 3
    assert [w.labelled for w in sustained.windows] == [0, 0, 600]
    assert sustained.degraded_windows == 1 and sustained.drifted is False

    with pytest.raises(ValidationError) as info:
        dep.concept_drift(tolerance=2)
    assert info.value.details["field"] == "tolerance"


def test_concept_drift_without_a_validation_value_never_drifts(serve):
    dep, _, out = serve("no-validation", n=50)
    dep.feedback({rid: 0 for rid in out.request_ids})
    report = dep.concept_drift(window_minutes=5, windows=1)
    assert report.validation_value is None and report.drifted is False
