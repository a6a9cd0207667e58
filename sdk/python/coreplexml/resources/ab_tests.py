"""A/B tests between model variants (``client.ab_tests``): two or more models share a deployment's
traffic by weight — sticky by ``entity_id``, so an entity always meets the same variant — and a success
metric from delayed labels or from business outcomes says which one is better, and how sure that is.

    test = client.ab_tests.create(
        project_id=p.id, name="ranker", deployment_id=dep.id,      # or the endpoint's name
        variants=[{"model_id": current.id, "traffic": 50}, {"model_id": challenger.id, "traffic": 50}],
        metric={"type": "proportion", "source": "outcomes", "name": "conversion", "baseline_rate": 0.1},
        minimum_detectable_effect=0.02,          # two points of conversion
    )
    out = dep.predict(rows, entity_id="user-42")               # out.variant == "ab:control" or "ab:treatment"
    client.ab_tests.record_outcomes(test.id, [{"request_id": out.request_ids[0], "value": 1}])
    r = client.ab_tests.results(test.id)
    r.recommendation, r.treatment.p_value, r.progress    # "keep_running", 0.31, 0.4
    client.ab_tests.promote_winner(test.id)              # once r.recommendation == "ship"

The first variant is the control. Proportions use the pooled two-proportion z-test, continuous metrics
Welch's t-test; ``sequential=True`` gives always-valid p-values and intervals, so the results may be
looked at any time without inflating false positives. Labels (``source="labels"``) measure correctness
(classification, a proportion) or absolute error (regression, continuous; lower is better).
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .. import exceptions as exc
from ._base import APIObject, Resource, id_of, seg

#: Metric types and sources.
METRIC_TYPES = ("proportion", "continuous")
METRIC_SOURCES = ("labels", "outcomes")
#: What ``results().recommendation`` may say.
RECOMMENDATIONS = ("keep_running", "ship", "no_difference", "stop")


class ABTest(APIObject):
    """An A/B test: ``id`` (``abt_…``), ``project_id``, ``deployment_id``, ``name``, ``description``,
    ``status`` (``running`` or ``stopped``), ``variants`` (``[{name, model_id, traffic, is_control}]``,
    the control first), ``control_model_id``, ``metric`` (``{type, source, name, higher_is_better,
    baseline_rate, sd}``), ``alpha``, ``power``, ``minimum_detectable_effect``, ``sequential``,
    ``assignments`` (``[{variant, model_id, units, requests, anonymous_requests, rows, entities}]``; not
    in lists), ``winner_model_id``, ``winner_variant``, ``stop_reason``, ``started_at``, ``stopped_at``,
    ``created_at``, ``created_by``, ``updated_at``. The answer to ``stop`` also has ``serving_model_id``.
    """

    @property
    def running(self) -> bool:
        return self._data.get("status") == "running"

    def assignment_counts(self) -> Dict[str, int]:
        """``{variant name: randomisation units assigned}`` (distinct entities plus requests without an
        entity)."""
        return {a["variant"]: a["units"] for a in self._data.get("assignments") or []}

    def refresh(self) -> "ABTest":
        return self._client.ab_tests.get(self.id)

    def results(self) -> "ABTestResults":
        return self._client.ab_tests.results(self.id)

    def record_outcomes(self, outcomes: Any) -> "OutcomeResult":
        return self._client.ab_tests.record_outcomes(self.id, outcomes)

    def stop(self, winner_model_id: Optional[str] = None, **kwargs: Any) -> "ABTest":
        return self._client.ab_tests.stop(self.id, winner_model_id, **kwargs)

    def promote_winner(self, reason: Optional[str] = None) -> "ABTest":
        return self._client.ab_tests.promote_winner(self.id, reason=reason)


class VariantResult(APIObject):
    """One variant against the control: ``name``, ``model_id``, ``traffic``, ``is_control``,
    ``assigned``, ``n`` (units with a value), ``successes`` (proportions) or ``mean`` and ``sd``
    (continuous), ``estimate``, ``difference`` (treatment − control), ``relative_lift``, ``ci_low``,
    ``ci_high``, ``p_value``, ``significant``, ``statistic`` (z or t), ``df`` (Welch), ``progress``
    and, for treatments, ``recommendation``; in sequential mode ``fixed_horizon`` holds the
    fixed-horizon test for reference. The control's test fields are ``None``."""


class ABTestResults(APIObject):
    """Results so far: ``test_id``, ``name``, ``status``, ``deployment_id``, ``metric``, ``control``
    (the control's model id), ``control_variant``, ``alpha``, ``alpha_per_comparison``, ``power``,
    ``minimum_detectable_effect``, ``sequential``, ``variants`` (``VariantResult``, the control first),
    ``srm_p_value`` and ``srm`` (``{chi2, p_value, mismatch}``), ``required_sample_size_per_variant``,
    ``sample_size_basis``, ``progress`` (0…1), ``sample_size_reached``, ``recommendation``
    (``keep_running``, ``ship``, ``no_difference`` or ``stop``), ``recommendation_reason``,
    ``recommended_model_id`` and ``recommended_variant``."""

    @property
    def variants(self) -> List[VariantResult]:  # type: ignore[override]
        return [VariantResult(v, self._client) for v in self._data.get("variants") or []]

    def variant(self, name_or_model_id: str) -> Optional[VariantResult]:
        """The variant with this name (e.g. ``"treatment"``) or model id."""
        for v in self.variants:
            if name_or_model_id in (v.get("name"), v.get("model_id")):
                return v
        return None

    @property
    def treatment(self) -> Optional[VariantResult]:
        """The first variant after the control (the only one in a two-variant test)."""
        v = self.variants
        return v[1] if len(v) > 1 else None

    @property
    def sample_ratio_mismatch(self) -> bool:
        """Whether assignment counts are off the weights (p < 0.001): results cannot be trusted."""
        srm = self._data.get("srm") or {}
        return bool(srm.get("mismatch"))


class OutcomeResult(APIObject):
    """What happened to posted outcomes: ``accepted``, ``unknown_request_ids`` (no variant of the test
    answered them) and ``unknown_entity_ids`` (the test never routed them)."""


def _variants(variants: Sequence[Any]) -> List[Dict[str, Any]]:
    out = []
    for i, v in enumerate(variants):
        if isinstance(v, APIObject) and "model_id" not in v:
            v = {"model_id": v.id}
        elif isinstance(v, APIObject):
            v = v.to_dict()
        if isinstance(v, str):
            v = {"model_id": v}
        if not isinstance(v, Mapping) or "model_id" not in v:
            raise TypeError(f"variants[{i}] must be {{'model_id', 'traffic'?, 'name'?}} or a model id, got {v!r}")
        item = {"model_id": id_of(v["model_id"])}
        for k in ("traffic", "name"):
            if v.get(k) is not None:
                item[k] = v[k]
        unknown = set(v) - {"model_id", "traffic", "name"}
        if unknown:
            raise TypeError(f"variants[{i}] has unknown field(s) {', '.join(sorted(unknown))}")
        out.append(item)
    return out


def _metric(metric: Union[str, Mapping[str, Any]]) -> Dict[str, Any]:
    if isinstance(metric, str):
        return {"type": metric}
    if isinstance(metric, APIObject):
        metric = metric.to_dict()
    if not isinstance(metric, Mapping) or "type" not in metric:
        raise TypeError("metric must be {'type': 'proportion'|'continuous', 'source'?: 'labels'|'outcomes', …}")
    return {k: v for k, v in metric.items() if v is not None}


def _outcomes(outcomes: Any) -> List[Dict[str, Any]]:
    if isinstance(outcomes, Mapping) and not ({"request_id", "entity_id"} & set(outcomes)):
        # {request_id: value}
        return [{"request_id": str(k), "value": _value(v)} for k, v in outcomes.items()]
    if isinstance(outcomes, (Mapping, APIObject)):
        outcomes = [outcomes]
    items = []
    for i, o in enumerate(outcomes):
        if isinstance(o, APIObject):
            o = o.to_dict()
        if not isinstance(o, Mapping) or not ({"request_id", "entity_id"} & set(o)) or "value" not in o:
            raise TypeError(f"outcomes[{i}] must be a dict with request_id (or entity_id) and value, got {o!r}")
        item = {k: (str(v) if k != "value" else _value(v)) for k, v in o.items()}
        items.append(item)
    if not items:
        raise ValueError("give at least one outcome")
    return items


def _value(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    return v


class ABTestsResource(Resource):
    """A/B tests: which model is better on a deployment's real traffic, and how sure that is."""

    def create(
        self,
        project_id: str,
        name: str,
        deployment_id: Optional[str] = None,
        variants: Sequence[Any] = (),
        metric: Union[str, Mapping[str, Any]] = "proportion",
        alpha: float = 0.05,
        power: float = 0.8,
        minimum_detectable_effect: Optional[float] = None,
        sequential: bool = False,
        *,
        endpoint: Optional[str] = None,
        description: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> ABTest:
        """Starts an A/B test on a deployment (by id, or by name with ``endpoint=`` or as
        ``deployment_id``).

        Args:
            variants: two or more ``{"model_id", "traffic"?, "name"?}`` (or model ids for an even split);
                shares are scaled to add up to 100; the first is the control. Default names are
                ``control`` then ``treatment`` (``treatment_1`` … with more); the prediction log and
                ``predict()`` answers name a variant ``ab:<name>``.
            metric: ``{"type": "proportion"|"continuous", "source": "outcomes"|"labels", "name"?,
                "higher_is_better"?, "baseline_rate"? (proportions), "sd"? (continuous)}``, or just the
                type. A baseline plans the sample size before data; otherwise the control's data does.
            alpha: significance level (divided among the comparisons with more than two variants).
            power: power at ``minimum_detectable_effect``.
            minimum_detectable_effect: the smallest difference worth detecting, in the metric's units
                (an absolute difference of rates for proportions, e.g. ``0.02``).
            sequential: always-valid p-values and intervals, safe to look at any time.

        Raises ``ConflictError`` when a test already runs on the deployment or a rollout is in progress
        there, ``ValidationError`` naming a bad field.
        """
        if minimum_detectable_effect is None:
            raise TypeError("create() needs minimum_detectable_effect: the smallest difference worth detecting")
        if deployment_id is None and endpoint is None:
            raise TypeError("create() needs deployment_id (or endpoint, the deployment's name)")
        body: Dict[str, Any] = {
            "project_id": id_of(project_id),
            "name": name,
            "variants": _variants(variants),
            "metric": _metric(metric),
            "alpha": alpha,
            "power": power,
            "minimum_detectable_effect": minimum_detectable_effect,
            "sequential": bool(sequential),
        }
        if deployment_id is not None:
            body["deployment_id"] = id_of(deployment_id)
        if endpoint is not None:
            body["endpoint"] = endpoint
        if description is not None:
            body["description"] = description
        return self._post("/ab-tests", ABTest, body, idempotency_key=idempotency_key)

    def get(self, test_id: str) -> ABTest:
        """One test, with its assignment counts."""
        return self._get(f"/ab-tests/{seg(test_id)}", ABTest)

    def list(
        self,
        project_id: str,
        deployment_id: Optional[str] = None,
        *,
        limit: Optional[int] = None,
        page_token: Optional[str] = None,
    ) -> List[ABTest]:
        """The project's tests (optionally of one deployment), newest first."""
        params = {"project_id": id_of(project_id), "deployment_id": id_of(deployment_id)}
        return self._list("/ab-tests", ABTest, params, limit=limit, page_token=page_token)

    def results(self, test_id: str) -> ABTestResults:
        """Every variant against the control, the SRM check, the sample size and progress, and a
        recommendation."""
        return self._get(f"/ab-tests/{seg(test_id)}/results", ABTestResults)

    def record_outcomes(
        self,
        test_id: str,
        outcomes: Any,
        *,
        idempotency_key: Optional[str] = None,
    ) -> OutcomeResult:
        """Records business outcomes of units the test routed: a list of ``{"request_id" or
        "entity_id", "value"}`` (0/1 or booleans for a proportion), or ``{request_id: value}``. A unit
        posted again keeps its latest value. Returns ``.accepted``, ``.unknown_request_ids`` and
        ``.unknown_entity_ids``."""
        return self._post(
            f"/ab-tests/{seg(test_id)}/outcomes",
            OutcomeResult,
            _outcomes(outcomes),
            idempotency_key=idempotency_key,
        )

    def stop(
        self,
        test_id: str,
        winner_model_id: Optional[str] = None,
        *,
        winner_variant: Optional[str] = None,
        reason: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> ABTest:
        """Stops the test. With a winner (its model id, or ``winner_variant`` by name) all traffic goes to
        it: it becomes the deployment's serving model and moves to ``production``, recorded in the
        timeline, the models' promotion history and the audit log. Without one, traffic returns to the
        model the deployment served."""
        body: Dict[str, Any] = {}
        if winner_model_id is not None:
            body["winner_model_id"] = id_of(winner_model_id)
        if winner_variant is not None:
            body["winner_variant"] = winner_variant
        if reason is not None:
            body["reason"] = reason
        return self._post(f"/ab-tests/{seg(test_id)}/stop", ABTest, body, idempotency_key=idempotency_key)

    def promote_winner(self, test_id: str, reason: Optional[str] = None) -> ABTest:
        """Stops the test with the variant its results recommend shipping as the winner.

        Raises ``CorePlexError`` (code ``no_winner``) while the results recommend no variant to ship:
        keep the test running, or ``stop()`` it with a winner of your choosing.
        """
        r = self.results(test_id)
        if r.get("recommendation") != "ship" or not r.get("recommended_model_id"):
            raise exc.CorePlexError(
                f"A/B test {test_id} has no winner to promote: the results say "
                f"{r.get('recommendation')!r} ({r.get('recommendation_reason')})",
                code="no_winner",
                details={"recommendation": r.get("recommendation")},
            )
        return self.stop(
            test_id,
            winner_variant=r.get("recommended_variant"),
            reason=reason or f"promoted the recommended winner: {r.get('recommendation_reason')}",
        )


__all__ = ["ABTestsResource", "ABTest", "ABTestResults", "VariantResult", "OutcomeResult"]
