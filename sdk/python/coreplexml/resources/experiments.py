"""AutoML experiments (``client.experiments``): train models on a dataset version as a background job
on the server, within ``max_models`` and ``max_runtime_secs``, ranked by ``stopping_metric``. Every
trained model is registered as a ``candidate`` with its lineage (dataset version, experiment settings,
hyperparameters, validation metrics, training time).

    exp = client.experiments.create(project_id=p.id, dataset_version_id=data.id, target="churned",
                                    max_models=20, max_runtime_secs=600, stopping_metric="AUC")
    exp.wait()                          # polls until it ends; raises JobFailedError if it failed
    for row in exp.leaderboard:         # best first
        print(row.rank, row.name, row.family, row.metrics.auc, row.training_secs)
    best = client.models.get(exp.best_model_id)
"""

import time
from typing import Any, Callable, Dict, List, Optional

from .. import exceptions as exc
from ._base import APIObject, Resource, id_of, seg

#: Experiment states after which an experiment never changes again.
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
#: Tasks an experiment can train for (inferred from the target column when not given).
TASKS = ("binary_classification", "multiclass_classification", "regression")
#: Ranking metrics (H2O AutoML's names); ``AUTO`` is AUC for binary classification, log loss for
#: multiclass and RMSE for regression.
STOPPING_METRICS = (
    "AUTO", "AUC", "AUCPR", "logloss", "accuracy", "mean_per_class_error", "RMSE", "MSE", "MAE", "R2",
)


class LeaderboardRow(APIObject):
    """One trained model of an experiment, as ranked: ``rank`` (1 = best), ``model_id`` (the registry
    model), ``name`` (e.g. ``gbm_1``, ``stacked_all``), ``family`` (``gbm``, ``drf``, ``glm``,
    ``stacked`` …), ``metrics`` (what it was ranked on: holdout, or cross-validation for small data),
    ``cv_metrics``, ``hyperparameters`` and ``training_secs``."""

    def model(self) -> Any:
        """The registry model this row describes."""
        return self._client.models.get(self._data["model_id"])


class Leaderboard(list):
    """The trained models of an experiment, best first (a list of ``LeaderboardRow``), with the
    ranking's settings as attributes: ``task``, ``stopping_metric`` (the metric used, e.g. ``auc``),
    ``ranked_by`` (``holdout`` or ``cross_validation``), ``train_rows``, ``holdout_rows``,
    ``elapsed_secs`` and ``ignored_columns`` (``[{name, reason}]``). Empty until the experiment has
    succeeded."""

    def __init__(self, data: Optional[Dict[str, Any]], client: Any = None) -> None:
        data = data if isinstance(data, dict) else {}
        super().__init__(LeaderboardRow(r, client) for r in data.get("models") or [])
        self.task: Optional[str] = data.get("task")
        self.stopping_metric: Optional[str] = data.get("stopping_metric")
        self.ranked_by: Optional[str] = data.get("ranked_by")
        self.train_rows: Optional[int] = data.get("train_rows")
        self.holdout_rows: Optional[int] = data.get("holdout_rows")
        self.elapsed_secs: Optional[float] = data.get("elapsed_secs")
        self.ignored_columns: List[APIObject] = [APIObject(c) for c in data.get("ignored_columns") or []]

    @property
    def best(self) -> Optional[LeaderboardRow]:
        """The first row, or ``None`` when there is none."""
        return self[0] if self else None

    @property
    def model_ids(self) -> List[str]:
        """The registry ids of the models, best first."""
        return [r.model_id for r in self]

    def row(self, name: str) -> Optional[LeaderboardRow]:
        """The row of the model named ``name`` (e.g. ``"gbm_1"``) or with that ``model_id``."""
        for r in self:
            if name in (r.get("name"), r.get("model_id")):
                return r
        return None

    def __repr__(self) -> str:
        names = ", ".join(str(r.get("name")) for r in self)
        return f"Leaderboard([{names}], ranked_by={self.ranked_by!r}, stopping_metric={self.stopping_metric!r})"


class Experiment(APIObject):
    """An AutoML experiment: ``id`` (``exp_…``), ``project_id``, ``name``, ``dataset_version_id``,
    ``config`` (target, task, max_models, max_runtime_secs, stopping_metric, seed, model_name),
    ``status`` (``queued``, ``running``, ``succeeded``, ``failed`` or ``cancelled``), ``progress``
    (0…1), ``message`` (what it is doing), ``job_id``, ``leaderboard`` (a ``Leaderboard``),
    ``best_model_id``, ``error`` (why it failed), ``created_at``, ``updated_at``.

    Unlike other objects, an experiment follows its progress: ``wait()``, ``refresh()`` and
    ``cancel()`` update this object to the server's latest state (and return it).
    """

    @property
    def leaderboard(self) -> Leaderboard:  # type: ignore[override]
        """The trained models, best first (empty until the experiment has succeeded)."""
        return Leaderboard(self._data.get("leaderboard"), self._client)

    @property
    def done(self) -> bool:
        """Whether the experiment has ended (succeeded, failed or was cancelled)."""
        return self._data.get("status") in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self._data.get("status") == "succeeded"

    @property
    def target(self) -> Optional[str]:
        """The column the experiment predicts."""
        return (self._data.get("config") or {}).get("target")

    def _replace(self, other: APIObject) -> "Experiment":
        object.__setattr__(self, "_data", dict(other._data))
        return self

    def refresh(self) -> "Experiment":
        """Fetches the experiment's current state into this object and returns it."""
        return self._replace(self._client.experiments.get(self.id))

    def wait(
        self,
        timeout: Optional[float] = None,
        poll: float = 1.0,
        *,
        raise_on_failure: bool = True,
        on_progress: Optional[Callable[["Experiment"], Any]] = None,
    ) -> "Experiment":
        """Waits until the experiment ends, updates this object and returns it; see
        ``ExperimentsResource.wait``."""
        final = self._client.experiments.wait(
            self.id, timeout=timeout, poll=poll, raise_on_failure=False, on_progress=on_progress
        )
        self._replace(final)
        if raise_on_failure:
            _raise_if_failed(self)
        return self

    def cancel(self) -> "Experiment":
        """Asks the server to stop the experiment; updates this object and returns it."""
        return self._replace(self._client.experiments.cancel(self.id))

    def best_model(self) -> Any:
        """The best model in the registry (``None`` until the experiment has succeeded)."""
        best = self._data.get("best_model_id")
        return self._client.models.get(best) if best else None


def _raise_if_failed(e: Experiment) -> None:
    status = e.get("status")
    if status == "succeeded":
        return
    reason = e.get("error") or e.get("message") or "no reason given"
    if status == "cancelled":
        text = f"experiment {e.id} ({e.get('name')}) was cancelled: {reason}"
    else:
        text = f"experiment {e.id} ({e.get('name')}) failed: {reason}"
    raise exc.JobFailedError(text, job=e, code=f"experiment_{status}")


class ExperimentsResource(Resource):
    """AutoML experiments: train and rank models on a dataset version."""

    def create(
        self,
        project_id: str,
        dataset_version_id: str,
        target: str,
        task: Optional[str] = None,
        max_models: int = 20,
        max_runtime_secs: float = 600,
        stopping_metric: str = "AUTO",
        seed: Optional[int] = None,
        name: Optional[str] = None,
        model_name: Optional[str] = None,
        *,
        idempotency_key: Optional[str] = None,
    ) -> Experiment:
        """Starts an AutoML experiment; it runs as a background job on the server.

        Args:
            project_id: the project (or the project object).
            dataset_version_id: the training data, a dataset version of the project (``datasets.upload``).
            target: the column to predict.
            task: ``binary_classification``, ``multiclass_classification`` or ``regression``; inferred
                from the target column when left out.
            max_models: how many models to train at most (stacked ensembles come on top, as in H2O).
            max_runtime_secs: the time budget; the experiment keeps the best models found within it.
            stopping_metric: what models are ranked by: ``AUTO`` (AUC, log loss or RMSE by task),
                ``AUC``, ``AUCPR``, ``logloss``, ``accuracy``, ``mean_per_class_error``, ``RMSE``,
                ``MSE``, ``MAE`` or ``R2``.
            seed: makes the experiment repeatable (the server's default is 1).
            name: a name for people (default: the dataset's name and the target).
            model_name: the registry name of the trained models (default: ``<dataset>-<target>``); each
                one is a new version of it.

        Returns the experiment (``status`` ``queued``); call ``.wait()`` to follow it to the end.
        Raises ``ValidationError`` naming the field, e.g. a target column the dataset does not have.
        """
        body: Dict[str, Any] = {
            "dataset_version_id": id_of(dataset_version_id),
            "target": target,
            "max_models": max_models,
            "max_runtime_secs": max_runtime_secs,
            "stopping_metric": stopping_metric,
        }
        for key, value in (("task", task), ("seed", seed), ("name", name), ("model_name", model_name)):
            if value is not None:
                body[key] = value
        return self._post(
            f"/projects/{seg(project_id)}/experiments", Experiment, body, idempotency_key=idempotency_key
        )

    def get(self, experiment_id: str) -> Experiment:
        """One experiment as it is now."""
        return self._get(f"/experiments/{seg(experiment_id)}", Experiment)

    def list(self, project_id: str) -> List[Experiment]:
        """The project's experiments."""
        return self._get_list(f"/projects/{seg(project_id)}/experiments", Experiment)

    def cancel(self, experiment_id: str, *, idempotency_key: Optional[str] = None) -> Experiment:
        """Stops an experiment: a queued one at once, a running one at its next progress report.
        An experiment that already ended is a ``ConflictError``."""
        return self._post(
            f"/experiments/{seg(experiment_id)}/cancel", Experiment, idempotency_key=idempotency_key
        )

    def wait(
        self,
        experiment_id: str,
        timeout: Optional[float] = None,
        poll: float = 1.0,
        *,
        raise_on_failure: bool = True,
        on_progress: Optional[Callable[[Experiment], Any]] = None,
    ) -> Experiment:
        """Polls ``GET /experiments/{id}`` until the experiment has succeeded, failed or been cancelled.

        Args:
            timeout: seconds to wait at most (``None``: as long as it takes; the experiment's own
                ``max_runtime_secs`` bounds it).
            poll: the longest pause between two checks, in seconds (checks start more often).
            raise_on_failure: raise ``JobFailedError`` carrying the server's reason (e.g. a target with
                a single class) when it failed or was cancelled; its ``job`` is the experiment.
            on_progress: called with the experiment each time its status, progress or message changes.

        Raises ``coreplexml.TimeoutError`` when it has not ended within ``timeout``.
        """
        experiment_id = id_of(experiment_id)
        if poll <= 0:
            raise ValueError("poll must be a positive number of seconds")
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = min(0.05, poll)
        seen = None
        while True:
            e = self.get(experiment_id)
            state = (e.get("status"), e.get("progress"), e.get("message"))
            if on_progress is not None and state != seen:
                on_progress(e)
            seen = state
            if e.done:
                break
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise exc.TimeoutError(
                        f"experiment {experiment_id} did not end within {timeout:g}s (status "
                        f"{e.get('status')!r}, progress {e.get('progress', 0):.0%}); wait again or "
                        f"raise the timeout"
                    )
                time.sleep(min(interval, remaining))
            else:
                time.sleep(interval)
            interval = min(interval * 2, poll)
        if raise_on_failure:
            _raise_if_failed(e)
        return e


__all__ = [
    "TERMINAL_STATUSES",
    "TASKS",
    "STOPPING_METRICS",
    "ExperimentsResource",
    "Experiment",
    "Leaderboard",
    "LeaderboardRow",
]
