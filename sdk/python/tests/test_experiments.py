"""AutoML experiments against the real server: training on the background worker, the leaderboard,
every model registered as a candidate with its lineage, failures with the trainer's reason,
cancellation and validation."""

import random

import pytest

from coreplexml import ConflictError, JobFailedError, NotFoundError, TimeoutError, ValidationError
from coreplexml.resources import Experiment, Leaderboard, LeaderboardRow

from conftest import CHURN_FEATURES, FIXTURES, churn_rows

ROW_FIELDS = {"rank", "model_id", "name", "family", "metrics", "cv_metrics", "hyperparameters", "training_secs"}
EXPERIMENT_FIELDS = {
    "id", "project_id", "name", "dataset_version_id", "config", "status", "progress", "message", "job_id",
    "leaderboard", "best_model_id", "error", "created_at", "updated_at",
}


@pytest.fixture
def churn_data(admin, project):
    return admin.datasets.upload(project_id=project.id, path=FIXTURES / "churn.csv", name="churn")


def test_an_experiment_trains_ranks_and_registers_every_model_with_lineage(admin, project, churn_data):
    exp = admin.experiments.create(
        project_id=project.id,
        dataset_version_id=churn_data.id,
        target="churned",
        max_models=2,
        max_runtime_secs=20,
        stopping_metric="AUC",
        seed=7,
        name="churn automl",
        model_name="churn-automl",
    )
    assert isinstance(exp, Experiment) and exp.id.startswith("exp_")
    assert set(exp.fields()) == EXPERIMENT_FIELDS
    assert exp.status in ("queued", "running") and exp.best_model_id is None
    assert exp.leaderboard == [] and exp.job_id.startswith("job_")
    assert (exp.name, exp.project_id, exp.dataset_version_id, exp.target) == (
        "churn automl", project.id, churn_data.id, "churned"
    )
    cfg = exp.config
    assert (cfg.max_models, cfg.max_runtime_secs, cfg.stopping_metric, cfg.seed, cfg.model_name) == (
        2, 20, "AUC", 7, "churn-automl"
    )

    same = exp.wait(timeout=120)
    assert same is exp  # wait() updates the object it is called on
    assert exp.status == "succeeded" and exp.progress == 1.0 and exp.error is None and exp.done

    board = exp.leaderboard
    assert isinstance(board, Leaderboard) and all(isinstance(r, LeaderboardRow) for r in board)
    assert board.task == "binary_classification" and board.stopping_metric == "auc"
    assert board.ranked_by in ("holdout", "cross_validation") and board.train_rows > 0
    assert board.elapsed_secs < 20 + 5
    # Two searched models (max_models) plus the stacked ensembles built on them, best first.
    assert [r.rank for r in board] == list(range(1, len(board) + 1))
    searched = [r for r in board if r.family != "stacked"]
    assert len(searched) == 2
    assert {r.family for r in board} >= {"stacked"}
    aucs = [r.metrics.auc for r in board]
    assert aucs == sorted(aucs, reverse=True)
    assert aucs[0] > 0.8  # churn.csv is learnable
    for row in board:
        assert set(row.fields()) == ROW_FIELDS
        assert row.training_secs >= 0 and row.hyperparameters.to_dict()
    assert exp.best_model_id == board[0].model_id == board.best.model_id
    assert board.row(board[0].name) == board[0] == board.row(board[0].model_id)

    # Every model is in the registry as a candidate with its lineage.
    models = {m.id: m for m in admin.models.list(project.id, name="churn-automl")}
    assert set(models) == set(board.model_ids)
    assert sorted(m.version for m in models.values()) == list(range(1, len(board) + 1))
    for row in board:
        m = models[row.model_id]
        assert (m.status, m.task) == ("candidate", "binary_classification")
        lineage = m.lineage
        assert lineage.dataset_version_id == churn_data.id
        assert lineage.experiment.experiment_id == exp.id
        assert (lineage.experiment.target, lineage.experiment.model) == ("churned", row.name)
        assert (lineage.experiment.max_models, lineage.experiment.seed) == (2, 7)
        assert lineage.hyperparameters == row.hyperparameters
        assert lineage.validation_metrics == row.metrics
        assert lineage.training_duration_secs == pytest.approx(row.training_secs)
        assert lineage.source == f"experiment:{exp.id}"
        assert m.tags.experiment == exp.id and m.tags.family == row.family
        assert [f.name for f in m.input_schema.features] == CHURN_FEATURES
    best = exp.best_model()
    assert best.id == exp.best_model_id and best.tags.leaderboard_rank == "1"
    assert board[0].model().id == best.id

    # The best model serves like an uploaded one.
    dep = admin.deployments.create(project_id=project.id, model_id=best.id, name="automl", strategy="direct")
    rows = churn_rows(20)
    out = dep.predict([r for r, _ in rows])
    assert out.model_id == best.id and len(out.labels) == 20
    assert sum(str(label) == str(y) for label, (_, y) in zip(out.labels, rows)) >= 14

    # get and list see the same experiment.
    again = admin.experiments.get(exp.id)
    assert again == exp and again.leaderboard.model_ids == board.model_ids
    assert [e.id for e in admin.experiments.list(project.id)] == [exp.id]
    with pytest.raises(ConflictError):
        exp.cancel()


def test_defaults_and_progress_reports(admin, project, churn_data):
    seen = []
    exp = admin.experiments.create(project.id, churn_data.id, "churned", max_models=2, max_runtime_secs=20)
    assert exp.config.stopping_metric == "AUTO" and exp.config.max_runtime_secs == 20
    assert exp.name == "churn → churned" and exp.config.model_name == "churn-churned"
    final = admin.experiments.wait(exp.id, timeout=120, poll=0.2, on_progress=seen.append)
    assert final.status == "succeeded"
    assert seen and seen[-1].status == "succeeded"
    assert all(0.0 <= e.progress <= 1.0 for e in seen) and seen[-1].progress == 1.0
    assert final.leaderboard.stopping_metric == "auc"  # AUTO on a binary target


def test_a_single_class_target_fails_with_the_reason(admin, project, tmp_path):
    path = tmp_path / "one_class.csv"
    path.write_text("tenure,calls,churned\n" + "".join(f"{i},{i % 5},1\n" for i in range(60)))
    data = admin.datasets.upload(project_id=project.id, path=path, name="one-class")
    exp = admin.experiments.create(project.id, data.id, "churned", task="binary_classification",
                                   max_models=2, max_runtime_secs=20)
    with pytest.raises(JobFailedError) as info:
        exp.wait(timeout=120)
    msg = str(info.value)
    assert exp.id in msg and "failed" in msg
    assert "only one class" in msg and "`churned`" in msg
    assert info.value.job is exp and exp.status == "failed"
    assert "only one class" in exp.error
    assert exp.best_model_id is None and exp.leaderboard == []
    # Without raising, the failed experiment is returned.
    failed = admin.experiments.wait(exp.id, timeout=10, raise_on_failure=False)
    assert failed.status == "failed" and failed.error == exp.error
    assert admin.models.list(project.id) == []


def test_validation_errors_name_the_field(admin, project, churn_data, register_model):
    cases = [
        (dict(target="no_such_column"), "target"),
        (dict(target="churned", task="clustering"), "task"),
        (dict(target="churned", stopping_metric="banana"), "stopping_metric"),
        (dict(target="churned", max_models=501), "max_models"),
        (dict(target="churned", max_runtime_secs=0), "max_runtime_secs"),
        (dict(target="churned", dataset_version_id="dsv_doesnotexist"), "dataset_version_id"),
    ]
    for kwargs, field in cases:
        args = dict(project_id=project.id, dataset_version_id=churn_data.id)
        args.update(kwargs)
        with pytest.raises(ValidationError) as info:
            admin.experiments.create(**args)
        assert field in info.value.message, (kwargs, info.value.message)
    err = pytest.raises(ValidationError, admin.experiments.create, project.id, churn_data.id, "nope").value
    assert "churned" in err.message  # the columns it does have
    other = admin.projects.create(name="other-experiments")
    with pytest.raises(ValidationError):
        admin.experiments.create(other.id, churn_data.id, "churned")
    with pytest.raises(NotFoundError):
        admin.experiments.get("exp_doesnotexist")
    assert admin.experiments.list(project.id) == []


def test_cancelling_a_running_experiment(admin, project, tmp_path):
    # Big enough that training takes well over the time it takes to cancel.
    rng = random.Random(0)
    path = tmp_path / "wide.csv"
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(10)) + ",y\n")
        for _ in range(20000):
            xs = [rng.gauss(0, 1) for _ in range(10)]
            y = int(xs[0] + xs[1] * xs[2] + rng.gauss(0, 1) > 0)
            f.write(",".join(f"{x:.4f}" for x in xs) + f",{y}\n")
    data = admin.datasets.upload(project_id=project.id, path=path, name="wide")
    exp = admin.experiments.create(project.id, data.id, "y", max_models=50, max_runtime_secs=120)
    with pytest.raises(TimeoutError):
        exp.wait(timeout=0.3)
    exp.cancel()
    with pytest.raises(JobFailedError) as info:
        exp.wait(timeout=60)
    assert exp.status == "cancelled" and "cancelled" in str(info.value)
    with pytest.raises(ConflictError):
        admin.experiments.cancel(exp.id)
