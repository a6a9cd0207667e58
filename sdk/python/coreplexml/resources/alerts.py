"""Alert rules on deployments (``client.alerts``): a metric, a condition and a threshold, checked every
``evaluation_window_minutes`` by the server over a window of that length, notifying Slack, email and
signed webhooks when the rule fires (and again when it resolves), with ``cooldown_minutes`` holding back
repeats.

    alert = client.alerts.create(
        deployment_id=dep.id, name="drift", metric="data_drift_score", condition="greater_than",
        threshold=0.15, channels=[{"type": "webhook", "url": "https://api.company.com/alerts"}],
    )
    alert.signing_secrets[0].secret     # the generated webhook secret: shown only in this answer
    alert.history().events              # fired / repeated / suppressed / resolved
    alert.deliveries()                  # every notification and how its delivery went

Channel secrets never come back in clear: webhook URLs read ``https://host/…`` and webhook secrets show
only their first characters.
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ._base import APIObject, Resource, id_of, seg

#: Metrics an alert can watch.
METRICS = (
    "data_drift_score", "max_psi", "concept_drift",
    "accuracy", "precision", "recall", "f1", "auc", "log_loss",
    "rmse", "mae", "r2",
    "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "latency_avg_ms",
    "error_rate", "throughput_rps", "requests", "shadow_dropped",
)
#: Conditions comparing the metric with the threshold.
CONDITIONS = (
    "greater_than", "greater_than_or_equal", "less_than", "less_than_or_equal", "equal", "not_equal",
)
#: Channel types.
CHANNEL_TYPES = ("slack", "email", "webhook")

# Fields update() may change.
_UPDATABLE = (
    "name",
    "metric",
    "condition",
    "threshold",
    "channels",
    "evaluation_window_minutes",
    "cooldown_minutes",
    "enabled",
)


class Alert(APIObject):
    """An alert rule: ``id`` (``alert_…``), ``project_id``, ``deployment_id``, ``name``, ``metric``,
    ``condition``, ``threshold``, ``channels`` (secrets redacted), ``evaluation_window_minutes``,
    ``cooldown_minutes``, ``enabled``, ``state`` (``ok`` or ``firing``), ``last_value``,
    ``last_evaluated_at``, ``last_notified_at``, ``created_at``, ``updated_at``.

    The answer to ``create`` (and to an ``update`` that replaced the channels) also carries
    ``signing_secrets``: ``[{channel, secret}]``, the signing secret generated for each webhook channel
    given without one (``channel`` is its index in ``channels``). It is shown only there: keep it to
    verify the webhook's signatures (``coreplexml.webhooks.verify_signature``). Other answers have
    ``signing_secrets == []``.
    """

    @property
    def signing_secrets(self) -> List[APIObject]:
        """Generated webhook signing secrets (``.channel``, ``.secret``); empty except in the answer
        that generated them."""
        return [APIObject(s) for s in self._data.get("signing_secrets") or []]

    @property
    def firing(self) -> bool:
        """Whether the rule is firing."""
        return self._data.get("state") == "firing"

    def refresh(self) -> "Alert":
        """The alert as it is now."""
        return self._client.alerts.get(self.id)

    def update(self, **fields: Any) -> "Alert":
        """Changes the rule; see ``AlertsResource.update``."""
        return self._client.alerts.update(self.id, **fields)

    def enable(self) -> "Alert":
        """Turns the rule on."""
        return self._client.alerts.update(self.id, enabled=True)

    def disable(self) -> "Alert":
        """Turns the rule off: it is no longer evaluated and its channels get no rollout events."""
        return self._client.alerts.update(self.id, enabled=False)

    def delete(self) -> None:
        """Deletes the rule."""
        self._client.alerts.delete(self.id)

    def history(self) -> "AlertHistory":
        """When the rule fired, repeated, was held back by the cooldown and resolved."""
        return self._client.alerts.history(self.id)

    def deliveries(self) -> List["Delivery"]:
        """Every notification of the rule and how its delivery went."""
        return self._client.alerts.deliveries(self.id)


class AlertEvent(APIObject):
    """One entry of an alert's history: ``at``, ``kind`` (``fired``, ``repeated``, ``suppressed``,
    ``resolved``), ``value`` (the metric's value then) and ``detail``."""


class AlertHistory(APIObject):
    """An alert's history: ``alert_id``, ``state`` (now) and ``events`` (``AlertEvent``, oldest first)."""

    @property
    def events(self) -> List[AlertEvent]:  # type: ignore[override]
        return [AlertEvent(e, self._client) for e in self._data.get("events") or []]

    @property
    def kinds(self) -> List[str]:
        """The kinds of the events, in order, e.g. ``["fired", "suppressed", "resolved"]``."""
        return [e.get("kind") for e in self._data.get("events") or []]

    def __len__(self) -> int:
        return len(self._data.get("events") or [])


class Delivery(APIObject):
    """One notification to one channel: ``id``, ``event`` (``alert.firing``, ``alert.resolved``,
    ``deployment.rolled_back`` …), ``channel`` (secrets redacted), ``status`` (``pending``,
    ``delivered`` or ``failed``), ``attempts``, ``max_attempts``, ``last_error``, ``next_attempt_at``
    (while pending), ``created_at``, ``delivered_at`` and ``payload`` (the JSON a webhook receives)."""

    @property
    def delivered(self) -> bool:
        return self._data.get("status") == "delivered"


class AlertsResource(Resource):
    """Alert rules: watch a deployment's drift, quality or operations and notify the team."""

    def create(
        self,
        deployment_id: str,
        name: str,
        metric: str,
        condition: str,
        threshold: float,
        channels: Sequence[Mapping[str, Any]],
        evaluation_window_minutes: int = 60,
        cooldown_minutes: int = 60,
        enabled: bool = True,
        *,
        idempotency_key: Optional[str] = None,
    ) -> Alert:
        """Creates an alert rule on a deployment.

        Args:
            deployment_id: the deployment to watch (or the deployment object).
            name: a name for people, e.g. ``"Churn model drift alert"``.
            metric: what to watch: ``data_drift_score``, ``max_psi``, ``concept_drift`` (1 while the
                quality metric is degraded), ``accuracy``, ``precision``, ``recall``, ``f1``, ``auc``,
                ``log_loss`` (classification), ``rmse``, ``mae``, ``r2`` (regression), ``latency_p50_ms``,
                ``latency_p95_ms``, ``latency_p99_ms``, ``latency_avg_ms``, ``error_rate``,
                ``throughput_rps``, ``requests`` or ``shadow_dropped``.
            condition: ``greater_than``, ``greater_than_or_equal``, ``less_than``,
                ``less_than_or_equal``, ``equal`` or ``not_equal``: the rule fires while
                ``metric <condition> threshold`` holds.
            threshold: the number the metric is compared with.
            channels: where to notify: ``{"type": "slack", "webhook_url": …}``,
                ``{"type": "email", "address": …}`` (or ``"addresses": [...]``; sent over the server's
                SMTP settings), ``{"type": "webhook", "url": …, "secret": …}`` (a JSON POST signed with
                HMAC-SHA256; leave ``secret`` out to have one generated, returned once in
                ``signing_secrets``).
            evaluation_window_minutes: how often the rule is checked, over a window of that length
                (1 to 10080).
            cooldown_minutes: after a notification, repeats are held back this long (0 to 43200).
            enabled: whether the rule is checked.

        Returns the alert; its ``signing_secrets`` hold any generated webhook secret (shown only here).
        Raises ``ValidationError`` naming the bad field (``metric``, ``condition``,
        ``channels[1].address`` …), e.g. a quality metric that does not apply to the deployment's task.
        """
        body: Dict[str, Any] = {
            "deployment_id": id_of(deployment_id),
            "name": name,
            "metric": metric,
            "condition": condition,
            "threshold": threshold,
            "channels": _channels(channels),
            "evaluation_window_minutes": evaluation_window_minutes,
            "cooldown_minutes": cooldown_minutes,
            "enabled": enabled,
        }
        return self._post("/alerts", Alert, body, idempotency_key=idempotency_key)

    def get(self, alert_id: str) -> Alert:
        """One alert rule; ``NotFoundError`` when it does not exist (or belongs to another organization)."""
        return self._get(f"/alerts/{seg(alert_id)}", Alert)

    def list(self, project_id: str, deployment_id: Optional[str] = None) -> List[Alert]:
        """The project's alert rules, or only those on ``deployment_id``."""
        return self._get_list(
            "/alerts", Alert, {"project_id": id_of(project_id), "deployment_id": id_of(deployment_id)}
        )

    def update(self, alert_id: str, **fields: Any) -> Alert:
        """Changes an alert rule and returns it.

        ``fields`` are any of ``name``, ``metric``, ``condition``, ``threshold``, ``channels`` (replaces
        them all; webhook channels given without a ``secret`` get a new generated one, returned in
        ``signing_secrets``), ``evaluation_window_minutes``, ``cooldown_minutes``, ``enabled``. Fields
        left out keep their values.

        ``channels`` must carry the real URLs and secrets: the redacted channels an alert shows
        (``https://hooks.slack.com/…``) cannot be sent back, and are refused with ``ValueError``.
        """
        unknown = sorted(set(fields) - set(_UPDATABLE))
        if unknown:
            raise TypeError(
                f"update() got unknown field(s) {', '.join(unknown)}; known: {', '.join(_UPDATABLE)}"
            )
        body = {k: v for k, v in fields.items() if v is not None}
        if "channels" in body:
            body["channels"] = _channels(body["channels"])
        if not body:
            raise ValueError("give at least one field to change")
        return self._patch(f"/alerts/{seg(alert_id)}", Alert, body)

    def delete(self, alert_id: str) -> None:
        """Deletes an alert rule."""
        self._delete(f"/alerts/{seg(alert_id)}")

    def history(self, alert_id: str) -> AlertHistory:
        """The rule's state and its events, oldest first: ``fired``, ``repeated``, ``suppressed`` (by the
        cooldown) and ``resolved``."""
        return self._get(f"/alerts/{seg(alert_id)}/history", AlertHistory)

    def deliveries(self, alert_id: str) -> List[Delivery]:
        """Every notification of the rule, one per channel, with its status, attempts and last error."""
        return self._get_list(f"/alerts/{seg(alert_id)}/deliveries", Delivery)


def _channels(channels: Any) -> List[Dict[str, Any]]:
    if isinstance(channels, (Mapping, APIObject)):
        channels = [channels]
    if isinstance(channels, (str, bytes)):
        raise TypeError(
            'channels must be a list of dicts such as {"type": "webhook", "url": "https://…"}'
        )
    out = []
    for i, ch in enumerate(channels):
        if isinstance(ch, APIObject):
            ch = ch.to_dict()
        if not isinstance(ch, Mapping):
            raise TypeError(
                f'channels[{i}] must be a dict such as {{"type": "webhook", "url": "https://…"}}, '
                f"got {type(ch).__name__}"
            )
        ch = dict(ch)
        for key in ("webhook_url", "url", "secret"):
            value = ch.get(key)
            if isinstance(value, str) and value.endswith("…"):
                raise ValueError(
                    f"channels[{i}].{key} is the redacted form the server shows ({value!r}); give the real "
                    f"value (the server never returns channel secrets, so channels read from an alert "
                    f"cannot be sent back as they are)"
                )
        out.append(ch)
    return out


__all__ = [
    "METRICS",
    "CONDITIONS",
    "CHANNEL_TYPES",
    "AlertsResource",
    "Alert",
    "AlertHistory",
    "AlertEvent",
    "Delivery",
]
