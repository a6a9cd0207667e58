"""Retraining policies against the real server: validation naming the field, listing and changing
policies, and runs started by hand that train, register a candidate with its parent, compare it with
production and end (awaiting review, or promoted through the deployment's strategy)."""

import pytest

from coreplexml import ConflictError, NotFoundError, ValidationError
from coreplexml.resources import Policy, RetrainingRun
from coreplexml.resources.retraining import FINAL_RUN_STATUSES

from conftest import FIXTURES, churn_rows

POLICY_FIELDS = {
    "id", "project_id", "deployment_id", "trigger", "config", "training_config", "auto_promote", "enabled",
    "next_run_at", "last_triggered_at", "created_at", "updated_at",
}
RUN_FIELDS = {
    "id", "policy_id", "deployment_id", "trigger", "reason", "measured", "status", "experiment_id", "job_id",
    "parent_model_id", "candidate_model_id", "dataset_version_id", "comparison", "detail", "created_at",
    "finished_at",
}
# Small and quick: the spawned server trains churn.csv within a second or two.
QUICK = {"max_models": 2, "max_runtime_secs": 20, "stopping_metric": "AUC"}


@pytest.fixture
def churn_data(admin, project):
    return admin.datasets.upload(project_id=project.id, path=FIXTURES / "churn.csv", name="churn")


@pytest.fixture
def trained(admin, project, churn_data):
    """A model trained by an experiment on churn.csv (its lineage has the data and the target)."""
    exp = admin.experiments.create(project.id, churn_data.id, "churned", max_models=2, max_runtime_secs=20)
    return admin.models.get(exp.wait(timeout=120).best_model_id)


@pytest.fixture
def deployment(admin, project, trained):
    return admin.deployments.create(project_id=project.id, model_id=trained.id, name="churn", strategy="direct")


def schedule_policy(admin, deployment, **kwargs):
    args = dict(deployment_id=deployment.id, trigger="schedule", schedule="daily", hour_utc=4,
                training_config=QUICK)
    args.update(kwargs)
    return admin.retraining.create_policy(**args)


def test_validation_errors_name_the_field(admin, deployment):
    cases = [
        (dict(trigger="sometimes"), "trigger"),
        (dict(trigger="schedule", schedule="weekly", day_of_week="sunday", hour_utc=24), "hour_utc"),
        (dict(trigger="schedule", schedule="weekly", hour_utc=3), "day_of_week"),
        (dict(trigger="schedule", schedule="weekly", day_of_week="someday", hour_utc=3), "day_of_week"),
        (dict(trigger="schedule", schedule="hourly"), "schedule"),
        (dict(trigger="schedule", schedule="monthly", day_of_month=32), "day_of_month"),
        (dict(trigger="drift", drift_metric="vibes", drift_threshold=0.2), "drift_metric"),
        (dict(trigger="drift", drift_metric="data_drift_score"), "drift_threshold"),
        (dict(trigger="performance", performance_threshold=0.8), "performance_metric"),
        (dict(trigger="performance", performance_metric="rmse", performance_threshold=0.8), "performance_metric"),
        (dict(trigger="performance", performance_metric="accuracy"), "performance_threshold"),
        (dict(trigger="performance", performance_metric="accuracy", performance_threshold=0.8,
              evaluation_window_days=0), "evaluation_window_days"),
        (dict(trigger="drift", drift_threshold=0.2, training_config={"max_trees": 3}), "training_config.max_trees"),
        (dict(trigger="drift", drift_threshold=0.2, training_config={"stopping_metric": "RMSE"}),
         "training_config.stopping_metric"),
        (dict(trigger="drift", drift_threshold=0.2, training_config={"max_runtime_secs": -1}),
         "training_config.max_runtime_secs"),
        (dict(trigger="drift", drift_threshold=0.2, cooldown_minutes=-5), "cooldown_minutes"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as info:
            admin.retraining.create_policy(deployment_id=deployment.id, **kwargs)
        assert info.value.code == "validation_failed"
        assert info.value.message.startswith(field), (kwargs, info.value.message)
    hour = pytest.raises(
        ValidationError, admin.retraining.create_policy, deployment.id, "schedule", schedule="daily", hour_utc=24
    ).value
    assert hour.message.startswith("hour_utc: 24 is not an hour of the day")
    weekly = pytest.raises(ValidationError, admin.retraining.create_policy, deployment.id, "schedule",
                           schedule="weekly", hour_utc=3).value
    assert weekly.message.startswith("day_of_week: a weekly schedule needs a day")
    with pytest.raises(ValidationError) as info:
        admin.retraining.create_policy(deployment_id="dep_doesnotexist", trigger="drift", drift_threshold=0.2)
    assert info.value.message.startswith("deployment_id")
    assert admin.retraining.list_policies(deployment.project_id) == []


def test_an_uploaded_model_needs_its_training_data_and_target(admin, project, churn_data, register_model):
    bare = register_model("logreg")
    dep = admin.deployments.create(project_id=project.id, model_id=bare.id, name="uploaded")
    with pytest.raises(ValidationError) as info:
        admin.retraining.create_policy(dep.id, "drift", drift_threshold=0.2, target="churned")
    assert info.value.message.startswith("deployment_id") and "dataset_version_id" in info.value.message

    with_data = register_model("forest", dataset_version_id=churn_data.id)
    dep = admin.deployments.create(project_id=project.id, model_id=with_data.id, name="uploaded-with-data")
    with pytest.raises(ValidationError) as info:
        admin.retraining.create_policy(dep.id, "drift", drift_threshold=0.2)
    assert info.value.message.startswith("target")
    policy = admin.retraining.create_policy(dep.id, "drift", drift_threshold=0.2, target="churned")
    assert policy.config.target == "churned"


def test_policies_are_listed_changed_enabled_and_deleted(admin, project, deployment, trained):
    weekly = schedule_policy(admin, deployment, schedule="weekly", day_of_week="Mon", hour_utc=0,
                             cooldown_minutes=30, enabled=False)
    assert isinstance(weekly, Policy) and set(weekly.fields()) == POLICY_FIELDS
    assert weekly.enabled is False and weekly.auto_promote is False
    assert (weekly.schedule, weekly.day_of_week, weekly.hour_utc) == ("weekly", "monday", 0)
    assert weekly.config.cooldown_minutes == 30 and weekly.config.include_production_data is False
    assert weekly.next_run_at.endswith("T00:00:00Z") or weekly.next_run_at.endswith("T00:00:00.000Z")
    monthly = schedule_policy(admin, deployment, schedule="monthly", day_of_month=31, hour_utc=23)
    assert (monthly.config.day_of_month, monthly.config.hour_utc) == (31, 23)
    drift = admin.retraining.create_policy(
        deployment, "drift", drift_metric="psi:tenure", drift_threshold=0.3, drift_window_minutes=30,
        include_production_data=True, production_window_days=14,
    )
    assert (drift.drift_metric, drift.drift_window_minutes) == ("psi:tenure", 30)
    assert (drift.include_production_data, drift.production_window_days) == (True, 14)
    assert drift.training_config.to_dict() == {}

    other = admin.deployments.create(project_id=project.id, model_id=trained.id, name="churn-2")
    elsewhere = admin.retraining.create_policy(other.id, "drift", drift_threshold=0.5)
    ids = lambda ps: sorted(p.id for p in ps)  # noqa: E731
    assert ids(admin.retraining.list_policies(project.id)) == ids([weekly, monthly, drift, elsewhere])
    assert ids(admin.retraining.list_policies(project.id, deployment_id=deployment)) == ids([weekly, monthly, drift])
    assert admin.retraining.get_policy(weekly.id) == weekly

    on = weekly.enable()
    assert on.enabled is True and on.refresh().enabled is True
    assert admin.retraining.disable(weekly.id).enabled is False
    changed = admin.retraining.update_policy(weekly.id, auto_promote=True, training_config={"max_models": 5})
    assert changed.auto_promote is True and changed.training_config.to_dict() == {"max_models": 5}
    assert changed.enabled is False and changed.schedule == "weekly"
    with pytest.raises(ValueError):
        admin.retraining.update_policy(weekly.id)

    weekly.delete()
    with pytest.raises(NotFoundError):
        admin.retraining.get_policy(weekly.id)
    assert ids(admin.retraining.list_policies(project.id, deployment_id=deployment.id)) == ids([monthly, drift])
    with pytest.raises(NotFoundError):
        admin.retraining.list_runs("pol_doesnotexist")


def _check_candidate(admin, run, policy, parent, churn_data):
    candidate = admin.models.get(run.candidate_model_id)
    assert candidate.name == parent.name and candidate.version > parent.version
    assert candidate.lineage.parent_model_id == parent.id
    assert candidate.lineage.source == f"retraining:{policy.id}"
    assert candidate.lineage.dataset_version_id == run.dataset_version_id == churn_data.id
    assert candidate.lineage.experiment.experiment_id == run.experiment_id
    assert candidate.lineage.experiment.max_models == 2
    experiment = run.experiment()
    assert experiment.status == "succeeded" and experiment.best_model_id == candidate.id
    return candidate


def test_a_run_started_by_hand_trains_compares_and_waits_for_review(admin, deployment, trained, churn_data):
    policy = schedule_policy(admin, deployment)
    run = admin.retraining.trigger(policy.id)
    assert isinstance(run, RetrainingRun) and set(run.fields()) == RUN_FIELDS
    assert run.id.startswith("run_") and run.policy_id == policy.id and run.deployment_id == deployment.id
    assert (run.trigger, run.status) == ("schedule", "training")
    assert "by hand" in run.reason and run.parent_model_id == trained.id
    assert run.experiment_id.startswith("exp_") and run.job_id.startswith("job_")
    assert run.finished_at is None

    # One run at a time per policy.
    with pytest.raises(ConflictError) as info:
        policy.trigger_now()
    assert "in progress" in info.value.message

    done = run.wait(timeout=60, poll=0.25)
    assert done.id == run.id and done.status in FINAL_RUN_STATUSES
    # The same data and seed: the candidate is as good as production, and waits for review.
    assert done.status == "awaiting_review", done.detail
    assert done.finished_at is not None and done.candidate_model_id in done.detail
    cmp = done.comparison
    assert cmp.metric == "auc" and cmp.holdout.rows > 0 and cmp.holdout.at_least_as_good is True
    assert cmp.holdout.candidate >= cmp.holdout.production - 1e-9
    candidate = _check_candidate(admin, done, policy, trained, churn_data)
    assert candidate.status == "candidate"
    assert admin.deployments.get(deployment.id).serving_model_id == trained.id
    assert [r.id for r in policy.runs()] == [run.id]
    assert policy.refresh().last_triggered_at is not None


def test_auto_promote_rolls_the_candidate_out_through_the_deployments_strategy(admin, deployment, trained, churn_data):
    policy = schedule_policy(admin, deployment, auto_promote=True)
    run = policy.trigger_now()
    done = admin.retraining.wait_run(policy.id, run.id, timeout=60, poll=0.25)
    # A direct deployment switches at once.
    assert done.status == "promoted", done.detail
    candidate = _check_candidate(admin, done, policy, trained, churn_data)
    dep = admin.deployments.get(deployment.id)
    assert dep.serving_model_id == candidate.id
    assert admin.models.get(candidate.id).status == "production"
    row = churn_rows(1)[0][0]
    assert dep.predict(row).model_id == candidate.id
    steps = [e.actor for e in admin.audit.list(resource_id=run.id)]
    assert steps and all(a == f"system:retraining:{policy.id}" for a in steps)
