"""Automatic retraining (``client.retraining``): policies on a deployment that retrain its model when
drift or a quality metric crosses a threshold, or on a schedule, and their runs.

    policy = client.retraining.create_policy(
        deployment_id=deployment.id, trigger="schedule", schedule="weekly", day_of_week="sunday",
        hour_utc=3, training_config={"max_runtime_secs": 900, "max_models": 30, "stopping_metric": "AUC"},
        auto_promote=True,
    )
    policy.next_run_at                      # when the schedule fires next (UTC)
    run = policy.trigger_now()              # a run now, whatever the trigger says
    run.wait().status                       # promoted, awaiting_review, rejected, rolled_back or failed
    for run in policy.runs():
        print(run.trigger, run.reason, run.status, run.candidate_model_id, run.comparison)

A run trains with the AutoML engine on the latest version of the serving model's dataset (optionally
joined with labelled production traffic), registers the best model as a ``candidate`` whose parent is the
serving model, compares both on the same holdout (and on recent labelled traffic), and then waits for
review (``auto_promote=False``), or rolls the candidate out through the deployment's own strategy, or
archives it when it is worse. Every step is in the audit log with the actor
``system:retraining:<policy id>``.
"""

import time
from typing import Any, Dict, List, Mapping, Optional

from .. import exceptions as exc
from .._objects import wrap
from ._base import APIObject, Resource, id_of, seg

#: What can start a run.
TRIGGERS = ("drift", "schedule", "performance")
#: Schedules of a ``schedule`` policy.
SCHEDULES = ("daily", "weekly", "monthly")
#: Run states while a run is in progress.
ACTIVE_RUN_STATUSES = frozenset({"training", "comparing", "rolling_out"})
#: Run states after which a run never changes again.
FINAL_RUN_STATUSES = frozenset({"promoted", "rolled_back", "awaiting_review", "rejected", "failed"})


class Policy(APIObject):
    """A retraining policy: ``id`` (``pol_…``), ``project_id``, ``deployment_id``, ``trigger``
    (``drift``, ``schedule`` or ``performance``), ``config`` (the trigger's settings: ``drift_metric``,
    ``drift_threshold``, ``drift_window_minutes``, ``schedule``, ``day_of_week``, ``day_of_month``,
    ``hour_utc``, ``performance_metric``, ``performance_threshold``, ``evaluation_window_days``,
    ``target``, ``include_production_data``, ``production_window_days``, ``cooldown_minutes``),
    ``training_config``, ``auto_promote``, ``enabled``, ``next_run_at`` (schedules), ``last_triggered_at``,
    ``created_at``, ``updated_at``.

    The trigger's settings can also be read directly: ``policy.drift_threshold`` is
    ``policy.config.drift_threshold``.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            config = object.__getattribute__(self, "_data").get("config")
            if isinstance(config, dict) and name in config:
                return wrap(config[name])
            raise

    def refresh(self) -> "Policy":
        """The policy as it is now."""
        return self._client.retraining.get_policy(self.id)

    def update(self, **fields: Any) -> "Policy":
        """Changes the policy; see ``RetrainingResource.update_policy``."""
        return self._client.retraining.update_policy(self.id, **fields)

    def enable(self) -> "Policy":
        """Turns the policy on."""
        return self._client.retraining.enable(self.id)

    def disable(self) -> "Policy":
        """Turns the policy off: its trigger is no longer evaluated (a run in progress finishes)."""
        return self._client.retraining.disable(self.id)

    def delete(self) -> None:
        """Deletes the policy."""
        self._client.retraining.delete_policy(self.id)

    def runs(self) -> List["RetrainingRun"]:
        """The policy's runs."""
        return self._client.retraining.list_runs(self.id)

    def trigger_now(self) -> "RetrainingRun":
        """Starts a run now; see ``RetrainingResource.trigger``. (``policy.trigger`` is the server's
        field: ``drift``, ``schedule`` or ``performance``.)"""
        return self._client.retraining.trigger(self.id)


class RetrainingRun(APIObject):
    """One run of a policy: ``id`` (``run_…``), ``policy_id``, ``deployment_id``, ``trigger``, ``reason``
    (what fired: the measured drift or metric, the schedule, or who started it), ``measured`` (the
    value that fired), ``status`` (``training``, ``comparing``, ``rolling_out``, then ``promoted``,
    ``rolled_back``, ``awaiting_review``, ``rejected`` or ``failed``), ``experiment_id``, ``job_id``,
    ``parent_model_id`` (the model it retrains), ``candidate_model_id`` (the best new model),
    ``dataset_version_id`` (what it trained on), ``comparison`` (``metric``, ``holdout`` and
    ``recent_traffic``: the candidate's and production's values), ``detail``, ``created_at``,
    ``finished_at``."""

    @property
    def done(self) -> bool:
        """Whether the run has ended."""
        return self._data.get("status") in FINAL_RUN_STATUSES

    def refresh(self) -> "RetrainingRun":
        """The run as it is now."""
        return self._client.retraining.get_run(self.policy_id, self.id)

    def wait(self, timeout: Optional[float] = 600, poll: float = 1.0) -> "RetrainingRun":
        """Waits until the run has ended and returns it as it ended; see ``RetrainingResource.wait_run``."""
        return self._client.retraining.wait_run(self.policy_id, self.id, timeout=timeout, poll=poll)

    def experiment(self) -> Any:
        """The experiment that trained the candidate (``None`` before it started)."""
        eid = self._data.get("experiment_id")
        return self._client.experiments.get(eid) if eid else None

    def candidate(self) -> Any:
        """The candidate model (``None`` until training has succeeded)."""
        mid = self._data.get("candidate_model_id")
        return self._client.models.get(mid) if mid else None


class RetrainingResource(Resource):
    """Retraining policies and their runs."""

    def create_policy(
        self,
        deployment_id: str,
        trigger: str,
        drift_metric: Optional[str] = None,
        drift_threshold: Optional[float] = None,
        drift_window_minutes: Optional[int] = None,
        schedule: Optional[str] = None,
        day_of_week: Optional[str] = None,
        day_of_month: Optional[int] = None,
        hour_utc: Optional[int] = None,
        performance_metric: Optional[str] = None,
        performance_threshold: Optional[float] = None,
        evaluation_window_days: Optional[float] = None,
        training_config: Optional[Mapping[str, Any]] = None,
        auto_promote: bool = False,
        target: Optional[str] = None,
        include_production_data: bool = False,
        production_window_days: Optional[float] = None,
        cooldown_minutes: Optional[int] = None,
        enabled: Optional[bool] = None,
        *,
        idempotency_key: Optional[str] = None,
    ) -> Policy:
        """Creates a retraining policy on a deployment.

        Args:
            deployment_id: the deployment (or the deployment object) whose serving model is retrained.
                That model needs a training dataset in its lineage (models trained by an experiment have
                one; register an uploaded model with ``dataset_version_id=``).
            trigger: ``drift``, ``schedule`` or ``performance``.
            drift_metric: (drift) ``data_drift_score`` (default), ``max_psi`` or ``psi:<feature>``.
            drift_threshold: (drift) retrain when the metric exceeds this, e.g. ``0.2``.
            drift_window_minutes: (drift) the window drift is measured over (default 60).
            schedule: (schedule) ``daily``, ``weekly`` or ``monthly``.
            day_of_week: (weekly) ``monday`` … ``sunday``.
            day_of_month: (monthly) 1 … 31 (a day past the month's end means its last day).
            hour_utc: (schedule) 0 … 23, the hour of the day in UTC (default 0).
            performance_metric: (performance) a quality metric of the deployment's task: ``accuracy``,
                ``precision``, ``recall``, ``f1``, ``auc``, ``log_loss``, ``rmse``, ``mae``, ``r2``.
            performance_threshold: (performance) retrain when the metric is worse than this, computed
                from the delayed labels (``deployments.feedback``).
            evaluation_window_days: (performance) the window the metric is computed over (default 7).
            training_config: ``{"max_runtime_secs", "max_models", "stopping_metric", "seed"}`` for the
                AutoML run (defaults 600, 20, ``AUTO``).
            auto_promote: roll a candidate that is at least as good as production out through the
                deployment's strategy; otherwise it waits for review and the team is notified.
            target: the column to predict (default: the one the serving model was trained on; needed for
                a model that was uploaded rather than trained here).
            include_production_data: train on the dataset joined with labelled production traffic, stored
                as a new dataset version.
            production_window_days: how far back that traffic goes (default 7).
            cooldown_minutes: a trigger that fires again within this long starts nothing (default 60).
            enabled: whether the trigger is evaluated (default ``True``).

        Returns the policy (``next_run_at`` tells when a schedule fires next). Raises
        ``ValidationError`` naming the field, e.g. ``hour_utc: 24 is not an hour of the day``.
        """
        if isinstance(training_config, APIObject):
            training_config = training_config.to_dict()
        body: Dict[str, Any] = {
            "deployment_id": id_of(deployment_id),
            "trigger": trigger,
            "auto_promote": auto_promote,
            "include_production_data": include_production_data,
        }
        optional = {
            "drift_metric": drift_metric,
            "drift_threshold": drift_threshold,
            "drift_window_minutes": drift_window_minutes,
            "schedule": schedule,
            "day_of_week": day_of_week,
            "day_of_month": day_of_month,
            "hour_utc": hour_utc,
            "performance_metric": performance_metric,
            "performance_threshold": performance_threshold,
            "evaluation_window_days": evaluation_window_days,
            "training_config": dict(training_config) if training_config is not None else None,
            "target": target,
            "production_window_days": production_window_days,
            "cooldown_minutes": cooldown_minutes,
            "enabled": enabled,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return self._post("/retraining/policies", Policy, body, idempotency_key=idempotency_key)

    def get_policy(self, policy_id: str) -> Policy:
        """One policy; ``NotFoundError`` when it does not exist (or was deleted)."""
        return self._get(f"/retraining/policies/{seg(policy_id)}", Policy)

    def list_policies(self, project_id: str, deployment_id: Optional[str] = None) -> List[Policy]:
        """The project's policies, or only those on ``deployment_id``."""
        return self._get_list(
            "/retraining/policies",
            Policy,
            {"project_id": id_of(project_id), "deployment_id": id_of(deployment_id)},
        )

    def update_policy(
        self,
        policy_id: str,
        enabled: Optional[bool] = None,
        auto_promote: Optional[bool] = None,
        training_config: Optional[Mapping[str, Any]] = None,
    ) -> Policy:
        """Turns a policy on or off, or changes its auto-promotion or training settings (a new
        ``training_config`` replaces the old one). Fields left out keep their values."""
        if isinstance(training_config, APIObject):
            training_config = training_config.to_dict()
        body: Dict[str, Any] = {}
        if enabled is not None:
            body["enabled"] = enabled
        if auto_promote is not None:
            body["auto_promote"] = auto_promote
        if training_config is not None:
            body["training_config"] = dict(training_config)
        if not body:
            raise ValueError("give at least one of enabled, auto_promote, training_config")
        return self._patch(f"/retraining/policies/{seg(policy_id)}", Policy, body)

    def enable(self, policy_id: str) -> Policy:
        """Turns a policy on."""
        return self.update_policy(policy_id, enabled=True)

    def disable(self, policy_id: str) -> Policy:
        """Turns a policy off."""
        return self.update_policy(policy_id, enabled=False)

    def delete_policy(self, policy_id: str) -> None:
        """Deletes a policy (its runs stay in the audit log)."""
        self._delete(f"/retraining/policies/{seg(policy_id)}")

    def list_runs(self, policy_id: str) -> List[RetrainingRun]:
        """The policy's runs with their trigger, reason, job, candidate, comparison and outcome."""
        return self._get_list(f"/retraining/policies/{seg(policy_id)}/runs", RetrainingRun)

    def get_run(self, policy_id: str, run_id: str) -> RetrainingRun:
        """One run of a policy."""
        run_id = id_of(run_id)
        for run in self.list_runs(policy_id):
            if run.id == run_id:
                return run
        raise exc.NotFoundError(f"policy {id_of(policy_id)} has no run {run_id}", status=404, code="not_found")

    def trigger(self, policy_id: str, *, idempotency_key: Optional[str] = None) -> RetrainingRun:
        """Starts a run now, whatever the trigger says. A run already in progress is a
        ``ConflictError``."""
        return self._post(
            f"/retraining/policies/{seg(policy_id)}/trigger", RetrainingRun, idempotency_key=idempotency_key
        )

    def wait_run(
        self, policy_id: str, run_id: str, timeout: Optional[float] = 600, poll: float = 1.0
    ) -> RetrainingRun:
        """Polls the run until it has ended (``promoted``, ``rolled_back``, ``awaiting_review``,
        ``rejected`` or ``failed``) and returns it. A failed or rejected run is returned, not raised:
        its ``detail`` says why. Raises ``coreplexml.TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = min(0.1, poll)
        while True:
            run = self.get_run(policy_id, run_id)
            if run.done:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise exc.TimeoutError(
                    f"retraining run {id_of(run_id)} did not end within {timeout:g}s (status "
                    f"{run.get('status')!r}); wait again or raise the timeout"
                )
            time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic())))
            interval = min(interval * 2, poll)


__all__ = [
    "TRIGGERS",
    "SCHEDULES",
    "ACTIVE_RUN_STATUSES",
    "FINAL_RUN_STATUSES",
    "RetrainingResource",
    "Policy",
    "RetrainingRun",
]
