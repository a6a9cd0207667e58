"""Registering models: every fixture, versions, artifacts, lineage, card and tags."""

import hashlib
import json

import pytest

from coreplexml import NotFoundError, ValidationError

from conftest import CHURN_FEATURES

# fixture file -> (task, feature_names to send or None for a graph with one named input per feature)
FIXTURE_MODELS = {
    "logreg.onnx": ("binary_classification", CHURN_FEATURES),
    "forest.onnx": ("binary_classification", CHURN_FEATURES),
    "hgb.onnx": ("binary_classification", CHURN_FEATURES),
    "multiclass.onnx": ("multiclass_classification", ["a", "b", "c", "d"]),
    "regressor.onnx": ("regression", ["x0", "x1", "x2"]),
    "pipeline.onnx": ("binary_classification", None),
}


@pytest.fixture(scope="module")
def expected(fixtures_dir):
    return json.loads((fixtures_dir / "expected.json").read_text())


@pytest.mark.parametrize("filename", sorted(FIXTURE_MODELS))
def test_each_fixture_model_registers_with_its_schema(admin, project, fixtures_dir, expected, filename, tmp_path):
    task, features = FIXTURE_MODELS[filename]
    name = filename.split(".")[0]
    model = admin.models.register(
        project_id=project.id,
        name=name,
        artifact_path=fixtures_dir / filename,
        task=task,
        feature_names=features,
        input_example=expected[filename]["rows"][0],
    )
    assert model.id.startswith("model_")
    assert (model.name, model.version, model.task, model.status) == (name, 1, task, "candidate")
    assert [f.name for f in model.input_schema.features] == expected[filename]["features"]
    assert model.lineage.source == "upload"

    data = (fixtures_dir / filename).read_bytes()
    assert model.sha256 == hashlib.sha256(data).hexdigest()
    assert model.size_bytes == len(data)
    out = admin.models.download(model.id, tmp_path / "back.onnx")
    assert out.read_bytes() == data

    again = admin.models.register(project.id, name, fixtures_dir / filename, task, feature_names=features)
    assert again.version == 2 and again.id != model.id
    versions = admin.models.list(project.id, name=name)
    assert sorted(m.version for m in versions) == [1, 2]


def test_download_into_a_folder_uses_the_server_file_name(register_logreg, admin, tmp_path, fixtures_dir):
    model = register_logreg("churn")
    out = model.download(tmp_path)
    assert out.parent == tmp_path and out.suffix == ".onnx"
    assert out.read_bytes() == (fixtures_dir / "logreg.onnx").read_bytes()


def test_an_invalid_file_is_a_validation_error_with_the_loader_reason(admin, project, fixtures_dir):
    with pytest.raises(ValidationError) as info:
        admin.models.register(project.id, "broken", fixtures_dir / "not_a_model.onnx", "binary_classification")
    assert info.value.code == "validation_failed"
    assert "ONNX Runtime" in info.value.message
    assert admin.models.list(project.id, name="broken") == []


def test_an_unknown_task_is_a_validation_error(admin, project, fixtures_dir):
    with pytest.raises(ValidationError) as info:
        admin.models.register(
            project.id, "churn", fixtures_dir / "logreg.onnx", "clustering", feature_names=CHURN_FEATURES
        )
    assert "task" in info.value.message


def test_lineage_round_trips(admin, project, fixtures_dir, register_logreg):
    dataset = admin.datasets.upload(project.id, fixtures_dir / "churn.csv", "churn")
    parent = register_logreg("churn")
    model = register_logreg(
        "churn",
        model_card="Logistic regression on the churn table.",
        tags={"team": "growth", "stage": "beta"},
        dataset_version_id=dataset.id,
        experiment={"target": "churned", "max_models": 5, "search": "random"},
        hyperparameters={"C": 0.5, "penalty": "l2"},
        validation_metrics={"auc": 0.81, "accuracy": 0.74},
        training_duration_secs=12.5,
        parent_model_id=parent.id,
    )
    for m in (model, admin.models.get(model.id)):
        lineage = m.lineage
        assert lineage.dataset_version_id == dataset.id
        assert lineage.experiment.to_dict() == {"target": "churned", "max_models": 5, "search": "random"}
        assert lineage.hyperparameters.to_dict() == {"C": 0.5, "penalty": "l2"}
        assert lineage.validation_metrics.to_dict() == pytest.approx({"auc": 0.81, "accuracy": 0.74})
        assert lineage.training_duration_secs == pytest.approx(12.5)
        assert lineage.parent_model_id == parent.id
        assert m.model_card == "Logistic regression on the churn table."
        assert m.tags.to_dict() == {"team": "growth", "stage": "beta"}


def test_model_card_and_tags_can_be_changed(admin, register_logreg):
    model = register_logreg("churn", tags={"team": "growth"})
    updated = admin.models.update(model.id, model_card="Now with a card.")
    assert updated.model_card == "Now with a card."
    assert updated.tags.to_dict() == {"team": "growth"}
    updated = admin.models.update(model.id, tags={"team": "risk", "reviewed": True})
    assert updated.tags.to_dict() == {"team": "risk", "reviewed": "True"}
    assert updated.model_card == "Now with a card."
    assert updated.sha256 == model.sha256 and updated.version == model.version


def test_list_filters_by_name_and_status(admin, project, register_logreg):
    a1 = register_logreg("a")
    register_logreg("a")
    b1 = register_logreg("b")
    admin.models.transition(a1.id, "archived", reason="superseded")
    assert sorted((m.name, m.version) for m in admin.models.list(project.id)) == [("a", 1), ("a", 2), ("b", 1)]
    assert [m.id for m in admin.models.list(project.id, status="archived")] == [a1.id]
    assert [m.id for m in admin.models.list(project.id, name="b", status="candidate")] == [b1.id]
    page = admin.models.list(project.id, limit=2)
    assert len(page) == 2 and page.next_page_token
    assert len(list(admin.models.iter(project.id, page_size=1))) == 3


def test_unknown_model_is_not_found(admin):
    with pytest.raises(NotFoundError):
        admin.models.get("model_doesnotexist")


@pytest.mark.parametrize(
    "lineage, field",
    [
        ({"dataset_version_id": "dsv_doesnotexist"}, "lineage.dataset_version_id"),
        ({"parent_model_id": "model_doesnotexist"}, "lineage.parent_model_id"),
    ],
)
def test_lineage_must_point_at_things_in_the_project(register_logreg, lineage, field):
    with pytest.raises(ValidationError) as info:
        register_logreg("churn", **lineage)
    assert info.value.details.get("field") == field
    assert field in info.value.message


def test_wrong_task_for_the_graph_is_a_validation_error(admin, project, fixtures_dir):
    with pytest.raises(ValidationError) as info:
        admin.models.register(
            project.id, "reg", fixtures_dir / "regressor.onnx", "binary_classification",
            feature_names=["x0", "x1", "x2"],
        )
    assert info.value.details.get("field") == "task"
