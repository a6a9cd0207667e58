"""Deployments (``client.deployments``): endpoints serving models, predictions, delayed labels,
metrics, and safe rollouts (direct, canary, blue-green, shadow) with manual promote/rollback/pause.

    dep = client.deployments.create(project_id=p.id, model_id=m.id, name="churn", strategy="direct")
    out = dep.predict([{"tenure": 3, "monthly_charges": 70.5, "support_calls": 1, "usage_trend": -0.2}])
    dep.feedback({out.request_ids[0]: 1})          # the true label, whenever it is known
    dep.drift().drifted_features                   # features whose live distribution moved
    client.deployments.create(project_id=p.id, model_id=better.id, name="churn",
                              strategy="canary", traffic_percentage=5)   # a rollout on the same endpoint
"""

import math
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from ._base import APIObject, Resource, id_of, seg
from .alerts import Alert, Delivery

#: Rollout strategies the server knows.
STRATEGIES = ("direct", "canary", "blue-green", "shadow")

# Strategy settings sent when given (None means: keep the endpoint's, or the server's default).
_STRATEGY_FIELDS = (
    "traffic_percentage",
    "promotion_steps",
    "auto_rollback",
    "rollback_threshold",
    "metric",
    "min_samples_per_step",
    "step_duration_minutes",
    "rollback_window_minutes",
    "comparison_window_days",
)


class Deployment(APIObject):
    """A named endpoint: ``id`` (``dep_…``), ``project_id``, ``name``, ``task``, ``strategy`` (of the
    latest rollout), ``config`` (its strategy settings), ``status`` (``active``, ``rolling_out`` or
    ``paused``), ``serving_model_id``, ``previous_model_id``, ``rollout`` (the rollout in progress or
    ``None``), ``traffic`` (``[{model_id, variant, percentage}]``: the rollout's split, or a running A/B
    test's variants as ``ab:<name>``), ``shadow_model_id``, ``ab_test_id`` (the running A/B test, or
    ``None``), ``created_at``, ``updated_at``.

    The calls below act on the deployment and return fresh objects; this one does not change.
    """

    @property
    def rolling_out(self) -> bool:
        """Whether a rollout (canary, blue-green watch window or shadow) is in progress."""
        return self.get("rollout") is not None

    @property
    def candidate_model_id(self) -> Optional[str]:
        """The model being rolled out, or ``None``."""
        rollout = self.get("rollout")
        return rollout.get("candidate_model_id") if rollout is not None else None

    def traffic_split(self) -> Dict[str, float]:
        """``{variant: percentage}`` of the current traffic, e.g. ``{"baseline": 95.0, "canary": 5.0}``."""
        return {t["variant"]: t["percentage"] for t in self._data.get("traffic") or []}

    def refresh(self) -> "Deployment":
        """The deployment as it is now."""
        return self._client.deployments.get(self.id)

    def predict(self, rows: Any = None, **kwargs: Any) -> "PredictionResult":
        """Predicts; see ``DeploymentsResource.predict``."""
        return self._client.deployments.predict(self.id, rows, **kwargs)

    def feedback(self, labels: Any, **kwargs: Any) -> "FeedbackResult":
        """Attaches true labels to logged predictions; see ``DeploymentsResource.feedback``."""
        return self._client.deployments.feedback(self.id, labels, **kwargs)

    def metrics(self, **kwargs: Any) -> "DeploymentMetrics":
        """Operational and quality metrics; see ``DeploymentsResource.metrics``."""
        return self._client.deployments.metrics(self.id, **kwargs)

    def events(self) -> List["DeploymentEvent"]:
        """The deployment's timeline, oldest first."""
        return self._client.deployments.events(self.id)

    def predictions(self, **kwargs: Any) -> Iterator["LoggedPrediction"]:
        """Iterates over the prediction log; see ``DeploymentsResource.predictions``."""
        return self._client.deployments.predictions(self.id, **kwargs)

    def comparison(self) -> "ShadowComparison":
        """The shadow comparison report of the shadow rollout in progress."""
        return self._client.deployments.comparison(self.id)

    def drift(self, **kwargs: Any) -> "DriftReport":
        """Data drift of live traffic against the training data; see ``DeploymentsResource.drift``."""
        return self._client.deployments.drift(self.id, **kwargs)

    def concept_drift(self, **kwargs: Any) -> "ConceptDriftReport":
        """Sustained quality degradation; see ``DeploymentsResource.concept_drift``."""
        return self._client.deployments.concept_drift(self.id, **kwargs)

    def notifications(self) -> List[Delivery]:
        """Every notification about this deployment (alerts and rollout events) and its delivery."""
        return self._client.deployments.notifications(self.id)

    def alerts(self) -> List[Alert]:
        """The alert rules on this deployment."""
        return self._client.alerts.list(self.project_id, deployment_id=self.id)

    def roll_out(self, model_id: str, strategy: Optional[str] = None, **fields: Any) -> "Deployment":
        """Rolls ``model_id`` out on this endpoint; see ``DeploymentsResource.rollout``. (The
        ``rollout`` attribute is the server's field: the rollout in progress.)"""
        return self._client.deployments.rollout(self.id, model_id, strategy, **fields)

    def promote(self, reason: Optional[str] = None) -> "Deployment":
        """Promotes the rollout's candidate now."""
        return self._client.deployments.promote(self.id, reason)

    def rollback(self, reason: Optional[str] = None) -> "Deployment":
        """Rolls back the rollout in progress (or to the previously served model)."""
        return self._client.deployments.rollback(self.id, reason)

    def pause(self) -> "Deployment":
        """Pauses the rollout in progress: traffic stays as it is."""
        return self._client.deployments.pause(self.id)

    def resume(self) -> "Deployment":
        """Resumes a paused rollout."""
        return self._client.deployments.resume(self.id)


class PredictionResult(APIObject):
    """The answer to ``predict``: ``predictions`` (one per row: ``label`` and ``probabilities`` keyed by
    class label for classification, ``value`` for regression), ``request_ids`` (one per row, for
    ``feedback``), ``model_id`` and ``variant`` (``baseline``, ``canary`` or ``green``) that answered."""

    def __len__(self) -> int:
        return len(self._data.get("predictions") or [])

    @property
    def labels(self) -> List[Any]:
        """The predicted class label of each row (classification)."""
        return [p.get("label") for p in self._data.get("predictions") or []]

    @property
    def values(self) -> List[Any]:
        """The predicted value of each row (regression)."""
        return [p.get("value") for p in self._data.get("predictions") or []]


class FeedbackResult(APIObject):
    """The answer to ``feedback``: ``accepted`` (how many labels matched a logged prediction) and
    ``unknown_request_ids`` (ids that match no prediction of this deployment)."""


class VariantMetrics(APIObject):
    """One variant in one window: ``variant``, ``model_id``, ``requests``, ``errors``, ``error_rate``,
    ``throughput_rps``, ``latency_avg_ms``, ``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms``,
    ``labelled`` and ``quality`` (``accuracy``, ``precision``, ``recall``, ``f1``, ``auc``, ``log_loss``
    for classification; ``rmse``, ``mae``, ``r2`` for regression; only those computable so far)."""


class MetricsWindow(APIObject):
    """One time window: ``start``, ``end`` and ``variants`` (``VariantMetrics``)."""

    @property
    def variants(self) -> List[VariantMetrics]:  # type: ignore[override]
        return [VariantMetrics(v, self._client) for v in self._data.get("variants") or []]

    def variant(self, name: str) -> Optional[VariantMetrics]:
        """The metrics of variant ``name`` (e.g. ``"canary"``) in this window, or ``None``."""
        for v in self.variants:
            if v.get("variant") == name:
                return v
        return None


class DeploymentMetrics(APIObject):
    """Metrics of a deployment: ``deployment_id``, ``task``, ``windows`` (oldest first) and
    ``shadow_dropped`` (shadow requests dropped because the shadow model fell behind)."""

    @property
    def windows(self) -> List[MetricsWindow]:  # type: ignore[override]
        return [MetricsWindow(w, self._client) for w in self._data.get("windows") or []]

    @property
    def latest(self) -> Optional[MetricsWindow]:
        """The most recent window."""
        windows = self.windows
        return windows[-1] if windows else None

    def variant(self, name: str) -> Optional[VariantMetrics]:
        """The metrics of variant ``name`` in the most recent window, or ``None``."""
        latest = self.latest
        return latest.variant(name) if latest is not None else None


class DeploymentEvent(APIObject):
    """One entry of a deployment's timeline: ``id`` (``evt_…``), ``at``, ``kind`` (``created``,
    ``deployed``, ``rollout_started``, ``step_advanced``, ``promoted``, ``rolled_back``, ``paused``,
    ``resumed``, ``notification`` …), ``actor`` and ``detail``."""


class LoggedPrediction(APIObject):
    """One row of the prediction log: ``request_id``, ``at``, ``role`` (``primary`` or ``shadow``),
    ``model_id``, ``variant``, ``entity_id``, ``features``, ``output``, ``error``, ``latency_us``,
    ``label``, ``label_value``, ``labelled_at``."""


class ShadowComparison(APIObject):
    """The shadow report: ``primary_model_id``, ``shadow_model_id``, ``window_start``, ``window_end``,
    ``requests``, ``mirrored``, ``paired``, ``dropped``, ``primary`` and ``shadow`` (metrics of each),
    and ``agreement`` with a McNemar ``paired_test`` (classification) or ``difference`` with a paired
    t-test (regression)."""


class FeatureDrift(APIObject):
    """Drift of one feature: ``name``, ``kind`` (``numeric`` or ``categorical``), ``test`` (``ks`` or
    ``chi2``), ``statistic``, ``p_value``, ``psi``, ``wasserstein_normed``, ``jensen_shannon``,
    ``missing_share_reference``, ``missing_share_current``, ``reference_count``, ``current_count``,
    ``histogram`` (for plotting: ``{edges, reference, current}`` counts per bin of numeric features,
    ``{categories, reference, current}`` counts of categorical ones) and ``drifted`` (``p_value < alpha``
    and ``psi >= psi_threshold``).

    A feature that could not be compared has only ``name`` and ``status`` (``no_current_data``,
    ``not_in_reference``, ``no_values`` …) and is not counted in ``features_evaluated``."""


class DriftReport(APIObject):
    """Data drift of a deployment's live traffic: ``features`` (``FeatureDrift`` each),
    ``features_evaluated``, ``features_drifted``, ``data_drift_score`` (share of features drifted, 0…1;
    ``None`` when no feature could be compared, e.g. no traffic in the window), ``max_psi``, ``current_rows``, ``alpha``, ``psi_threshold``, ``deployment_id``, ``model_id``,
    ``reference_dataset_version_id``, ``window_start`` and ``window_end``."""

    @property
    def features(self) -> List[FeatureDrift]:  # type: ignore[override]
        return [FeatureDrift(f, self._client) for f in self._data.get("features") or []]

    @property
    def drifted_features(self) -> List[str]:
        """The names of the features that drifted, in report order."""
        return [f.get("name") for f in self._data.get("features") or [] if f.get("drifted")]

    @property
    def drifted(self) -> bool:
        """Whether any feature drifted."""
        return any(f.get("drifted") for f in self._data.get("features") or [])

    def feature(self, name: str) -> Optional[FeatureDrift]:
        """The result for feature ``name``, or ``None``."""
        for f in self._data.get("features") or []:
            if f.get("name") == name:
                return FeatureDrift(f, self._client)
        return None


class ConceptDriftWindow(APIObject):
    """One window of a concept-drift report: ``start``, ``end``, ``labelled`` (labelled predictions in
    it) and ``value`` (the quality metric there, ``None`` without enough labels)."""


class ConceptDriftReport(APIObject):
    """Concept drift: ``metric``, ``validation_value`` (from the model's lineage ``validation_metrics``;
    ``None`` when it has none, and then nothing can drift), ``tolerance``, ``windows``
    (``ConceptDriftWindow``, oldest first), ``degraded_windows`` (worse than the validation value by more
    than the tolerance), ``drifted`` (every window degraded), ``deployment_id`` and ``model_id``."""

    @property
    def windows(self) -> List[ConceptDriftWindow]:  # type: ignore[override]
        return [ConceptDriftWindow(w, self._client) for w in self._data.get("windows") or []]


class DeploymentsResource(Resource):
    """Deployments: serve registered models and change them safely while they serve."""

    def create(
        self,
        project_id: str,
        model_id: str,
        name: str,
        strategy: Optional[str] = None,
        *,
        traffic_percentage: Optional[float] = None,
        promotion_steps: Optional[Sequence[float]] = None,
        auto_rollback: Optional[bool] = None,
        rollback_threshold: Optional[float] = None,
        metric: Optional[str] = None,
        min_samples_per_step: Optional[int] = None,
        step_duration_minutes: Optional[int] = None,
        rollback_window_minutes: Optional[int] = None,
        comparison_window_days: Optional[float] = None,
        description: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> Deployment:
        """Deploys ``model_id`` to the endpoint called ``name`` in the project.

        A new name creates the endpoint and the model serves all its traffic at once, whatever the
        strategy (there is nothing to compare it with yet; the timeline says so). An existing name starts
        a rollout of the model there:

        - ``direct``: the model takes all traffic at once;
        - ``canary``: the model gets ``traffic_percentage`` of the traffic, then each of
          ``promotion_steps`` (ending at 100) while its ``metric`` (default AUC, or RMSE for regression)
          on labelled predictions stays within ``rollback_threshold`` (a relative drop, 0.03 = 3%) of the
          baseline's over ``min_samples_per_step`` samples and ``step_duration_minutes``; with
          ``auto_rollback`` a worse canary is rolled back;
        - ``blue-green``: an atomic switch to the model, watched for ``rollback_window_minutes``;
        - ``shadow``: the model gets a copy of every request and its answers are only logged and
          compared (``comparison()``) over ``comparison_window_days``.

        ``strategy`` defaults to ``direct`` for a new endpoint and to the endpoint's own strategy for an
        existing one; settings not given keep the endpoint's (or the server's defaults).

        Returns the deployment. Raises ``ConflictError`` when a rollout is already in progress there or
        the model already serves there, ``ValidationError`` naming a bad field.
        """
        body: Dict[str, Any] = {"name": name, "model_id": id_of(model_id)}
        if description is not None:
            body["description"] = description
        body.update(
            _strategy_body(
                strategy,
                traffic_percentage=traffic_percentage,
                promotion_steps=promotion_steps,
                auto_rollback=auto_rollback,
                rollback_threshold=rollback_threshold,
                metric=metric,
                min_samples_per_step=min_samples_per_step,
                step_duration_minutes=step_duration_minutes,
                rollback_window_minutes=rollback_window_minutes,
                comparison_window_days=comparison_window_days,
            )
        )
        return self._post(
            f"/projects/{seg(project_id)}/deployments", Deployment, body, idempotency_key=idempotency_key
        )

    def get(self, deployment_id: str) -> Deployment:
        """One deployment."""
        return self._get(f"/deployments/{seg(deployment_id)}", Deployment)

    def list(self, project_id: str) -> List[Deployment]:
        """The project's deployments."""
        return self._get_list(f"/projects/{seg(project_id)}/deployments", Deployment)

    def get_by_name(self, project_id: str, name: str) -> Optional[Deployment]:
        """The project's deployment called ``name``, or ``None``."""
        for d in self.list(project_id):
            if d.name == name:
                return d
        return None

    def rollout(
        self,
        deployment_id: str,
        model_id: str,
        strategy: Optional[str] = None,
        *,
        idempotency_key: Optional[str] = None,
        **fields: Any,
    ) -> Deployment:
        """Rolls ``model_id`` out on the deployment under ``strategy`` (default: the deployment's).

        ``fields`` are the strategy settings of ``create`` (``traffic_percentage``, ``promotion_steps``,
        ``auto_rollback``, ``rollback_threshold``, ``metric``, ``min_samples_per_step``,
        ``step_duration_minutes``, ``rollback_window_minutes``, ``comparison_window_days``).
        """
        unknown = sorted(set(fields) - set(_STRATEGY_FIELDS))
        if unknown:
            raise TypeError(
                f"rollout() got unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(_STRATEGY_FIELDS)}"
            )
        body: Dict[str, Any] = {"model_id": id_of(model_id)}
        body.update(_strategy_body(strategy, **fields))
        return self._post(
            f"/deployments/{seg(deployment_id)}/rollouts", Deployment, body, idempotency_key=idempotency_key
        )

    def predict(
        self,
        deployment_id: str,
        rows: Any = None,
        entity_id: Optional[str] = None,
        request_id: Optional[str] = None,
        *,
        columns: Optional[Mapping[str, Sequence[Any]]] = None,
        request_ids: Optional[Sequence[str]] = None,
        idempotency_key: Optional[str] = None,
    ) -> PredictionResult:
        """Predicts one output per row with the model the deployment's traffic split picks.

        Args:
            rows: a list of ``{feature: value}`` dicts, one dict (a single row), or a pandas
                ``DataFrame`` (its columns are the features).
            entity_id: a sticky routing key: the same entity always reaches the same variant.
            request_id: your id for the request; with several rows the server suffixes ``-0``, ``-1`` …
            columns: instead of ``rows``, ``{feature: [values]}`` with lists of one length.
            request_ids: one id per row.
            idempotency_key: by default predictions are sent without one (a repeated prediction only
                logs again, and the server's idempotency store stays off the prediction path); give one
                to have a retry answered with the first response.

        Returns ``.predictions`` (``label``/``probabilities`` or ``value`` per row), ``.request_ids``,
        ``.model_id`` and ``.variant``. A missing or mistyped feature is a ``ValidationError`` naming it.
        """
        body: Dict[str, Any] = {}
        if rows is not None and columns is not None:
            raise ValueError("give rows or columns, not both")
        if columns is not None:
            body["columns"] = {str(k): [_plain(v) for v in vals] for k, vals in columns.items()}
        elif rows is None:
            raise ValueError("give rows (a list of {feature: value} dicts or a DataFrame) or columns")
        elif _is_dataframe(rows):
            body["columns"] = {
                str(k): [_plain(v) for v in vals] for k, vals in rows.to_dict(orient="list").items()
            }
        elif isinstance(rows, Mapping):
            body["rows"] = [_row(rows)]
        elif isinstance(rows, (str, bytes)):
            raise TypeError("rows must be a list of {feature: value} dicts, a dict or a DataFrame")
        else:
            body["rows"] = [_row(r) for r in rows]
        if entity_id is not None:
            body["entity_id"] = str(entity_id)
        if request_id is not None:
            body["request_id"] = str(request_id)
        if request_ids is not None:
            body["request_ids"] = [str(r) for r in request_ids]
        data = self._client._request(
            "POST",
            f"/deployments/{seg(deployment_id)}/predict",
            json=body,
            idempotency_key=idempotency_key if idempotency_key is not None else False,
        )
        return self._obj(PredictionResult, data)

    def feedback(
        self,
        deployment_id: str,
        labels: Any,
        *,
        idempotency_key: Optional[str] = None,
    ) -> FeedbackResult:
        """Attaches true outcomes to logged predictions by request id, at any later time; the quality
        metrics of the windows they fall in reflect them from then on.

        ``labels`` is a list of ``{"request_id": …, "label": …}`` (classification) or
        ``{"request_id": …, "value": …}`` (regression) dicts, or a dict ``{request_id: label}``.
        Returns ``.accepted`` and ``.unknown_request_ids`` (ids of no logged prediction here).
        """
        if isinstance(labels, Mapping) and "request_id" not in labels:
            items = [{"request_id": str(k), "label": _plain(v)} for k, v in labels.items()]
        else:
            if isinstance(labels, (Mapping, APIObject)):
                labels = [labels]
            items = []
            for i, entry in enumerate(labels):
                if isinstance(entry, APIObject):
                    entry = entry.to_dict()
                if not isinstance(entry, Mapping) or "request_id" not in entry:
                    raise TypeError(
                        f"labels[{i}] must be a dict with request_id and label (or value), got {entry!r}"
                    )
                items.append({str(k): _plain(v) for k, v in entry.items()})
        if not items:
            raise ValueError("give at least one label")
        return self._post(
            f"/deployments/{seg(deployment_id)}/feedback",
            FeedbackResult,
            items,
            idempotency_key=idempotency_key,
        )

    def metrics(
        self,
        deployment_id: str,
        window_minutes: Optional[int] = None,
        windows: Optional[int] = None,
        since: Any = None,
        until: Any = None,
    ) -> DeploymentMetrics:
        """Operational and quality metrics per variant and time window, from the prediction log.

        By default one window of the last 60 minutes; ``windows`` windows of ``window_minutes`` each
        back from now; or one window from ``since`` to ``until`` (datetimes or RFC 3339 strings).
        """
        return self._get(
            f"/deployments/{seg(deployment_id)}/metrics",
            DeploymentMetrics,
            {"window_minutes": window_minutes, "windows": windows, "since": since, "until": until},
        )

    def events(self, deployment_id: str) -> List[DeploymentEvent]:
        """The deployment's timeline, oldest first: creation, rollouts, steps, promotions, rollbacks,
        pauses and notifications."""
        return self._get_list(f"/deployments/{seg(deployment_id)}/events", DeploymentEvent)

    def predictions(
        self,
        deployment_id: str,
        since: Any = None,
        until: Any = None,
        *,
        page_size: Optional[int] = None,
    ) -> Iterator[LoggedPrediction]:
        """Iterates over the prediction log (primary and shadow rows), oldest first, fetching pages
        lazily. The server's default range is the last 24 hours."""
        return self._iter(
            f"/deployments/{seg(deployment_id)}/predictions",
            LoggedPrediction,
            {"since": since, "until": until},
            page_size=page_size,
        )

    def comparison(self, deployment_id: str) -> ShadowComparison:
        """The comparison report of the shadow rollout in progress (``ConflictError`` without one)."""
        return self._get(f"/deployments/{seg(deployment_id)}/comparison", ShadowComparison)

    def drift(
        self,
        deployment_id: str,
        window_minutes: Optional[int] = None,
        since: Any = None,
        until: Any = None,
        reference_dataset_version_id: Optional[str] = None,
        alpha: Optional[float] = None,
        psi_threshold: Optional[float] = None,
    ) -> DriftReport:
        """Data drift of the deployment's live traffic against the serving model's training data.

        Every feature of the logged predictions in the window is compared with the profile of the
        dataset version in the model's lineage (or ``reference_dataset_version_id``): numeric features
        with a two-sample Kolmogorov–Smirnov test, categorical ones with a chi-squared test, both with
        PSI. A feature has drifted when its p-value is below ``alpha`` (default 0.05) **and** its PSI is
        at least ``psi_threshold`` (default 0.1); ``data_drift_score`` is the share of features drifted.

        The window is the last ``window_minutes`` (default 60), or ``since`` to ``until`` (datetimes or
        RFC 3339 strings; ``until`` defaults to now).

        Returns ``.data_drift_score``, ``.max_psi``, ``.features`` (per-feature results with histograms)
        and ``.drifted_features`` (their names). Raises ``ConflictError`` when the serving model was
        registered without a ``dataset_version_id`` (and no reference is given).
        """
        return self._get(
            f"/deployments/{seg(deployment_id)}/drift",
            DriftReport,
            {
                "window_minutes": window_minutes,
                "since": since,
                "until": until,
                "reference_dataset_version_id": id_of(reference_dataset_version_id),
                "alpha": alpha,
                "psi_threshold": psi_threshold,
            },
        )

    def concept_drift(
        self,
        deployment_id: str,
        metric: Optional[str] = None,
        window_minutes: Optional[int] = None,
        windows: Optional[int] = None,
        tolerance: Optional[float] = None,
    ) -> ConceptDriftReport:
        """Concept drift: whether a quality metric, computed from labelled predictions, has been worse
        than the model's validation value by more than ``tolerance`` (relative, default 0.05) in each of
        the last ``windows`` (default 3) windows of ``window_minutes`` (default 60).

        ``metric`` defaults to AUC for classification and RMSE for regression; the validation value is
        the model's lineage ``validation_metrics`` entry of that name.
        """
        return self._get(
            f"/deployments/{seg(deployment_id)}/concept-drift",
            ConceptDriftReport,
            {"metric": metric, "window_minutes": window_minutes, "windows": windows, "tolerance": tolerance},
        )

    def notifications(self, deployment_id: str) -> List[Delivery]:
        """Every notification about the deployment — alert firings and resolutions, and rollout events
        such as ``deployment.rolled_back`` sent to the channels of its alerts — with its delivery status."""
        return self._get_list(f"/deployments/{seg(deployment_id)}/notifications", Delivery)

    def promote(self, deployment_id: str, reason: Optional[str] = None) -> Deployment:
        """Promotes the rollout's candidate now: it takes all traffic and becomes ``production``.
        ``ConflictError`` when no rollout is in progress."""
        return self._action(deployment_id, "promote", reason)

    def rollback(self, deployment_id: str, reason: Optional[str] = None) -> Deployment:
        """Rolls back at once: during a rollout all traffic returns to the baseline; otherwise the
        endpoint returns to the model it served before."""
        return self._action(deployment_id, "rollback", reason)

    def pause(self, deployment_id: str) -> Deployment:
        """Pauses the rollout in progress: traffic stays split as it is and nothing advances."""
        return self._action(deployment_id, "pause")

    def resume(self, deployment_id: str) -> Deployment:
        """Resumes a paused rollout (a canary step's clock starts again)."""
        return self._action(deployment_id, "resume")

    def _action(self, deployment_id: str, action: str, reason: Optional[str] = None) -> Deployment:
        body = {"reason": reason} if reason else None
        return self._post(f"/deployments/{seg(deployment_id)}/{action}", Deployment, body)


def _strategy_body(strategy: Optional[str], **fields: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {}
    if strategy is not None:
        body["strategy"] = str(strategy)
    for key, value in fields.items():
        if value is None:
            continue
        if key == "promotion_steps":
            value = [_plain(v) for v in value]
        body[key] = _plain(value)
    return body


def _is_dataframe(value: Any) -> bool:
    # pandas is optional: recognise a DataFrame without importing it.
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_dict") and hasattr(value, "columns")


def _row(row: Any) -> Dict[str, Any]:
    if isinstance(row, APIObject):
        row = row.to_dict()
    if not isinstance(row, Mapping):
        raise TypeError(f"each row must be a {{feature: value}} dict, got {type(row).__name__}")
    return {str(k): _plain(v) for k, v in row.items()}


def _plain(value: Any) -> Any:
    """JSON-ready values: numpy scalars become Python numbers, NaN becomes null (a missing value)."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


__all__ = [
    "STRATEGIES",
    "DeploymentsResource",
    "Deployment",
    "PredictionResult",
    "FeedbackResult",
    "DeploymentMetrics",
    "MetricsWindow",
    "VariantMetrics",
    "DeploymentEvent",
    "LoggedPrediction",
    "ShadowComparison",
    "DriftReport",
    "FeatureDrift",
    "ConceptDriftReport",
    "ConceptDriftWindow",
]
