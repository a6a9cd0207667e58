"""``CorePlexClient``: the HTTP session, authentication, retries and error mapping.

Resources (``client.projects``, ``client.models`` …) live in ``coreplexml.resources``, one module each;
they only build paths and bodies and call ``client._request``. Everything about the wire — base URL,
``Authorization``, ``Idempotency-Key``, back-off, turning error bodies into exceptions — is here.
"""

import datetime as _dt
import logging
import os
import random
import time
import uuid
from typing import Any, Callable, Dict, Mapping, Optional, Union

import requests

from . import exceptions as exc
from ._version import __version__
from .resources import (
    ABTestsResource,
    AlertsResource,
    AuditResource,
    DatasetsResource,
    DeploymentsResource,
    ExperimentsResource,
    JobsResource,
    KeysResource,
    ModelsResource,
    OrgsResource,
    ProjectsResource,
    RetrainingResource,
)

__all__ = ["CorePlexClient", "DEFAULT_BASE_URL"]

log = logging.getLogger("coreplexml")

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
API_PREFIX = "/api/v1"

# Methods whose retry cannot do the work twice. POST joins them because every POST carries an
# Idempotency-Key, which makes the server replay the first answer instead of acting again.
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT", "POST"})
_RETRY_STATUSES = frozenset({502, 503, 504})
# Paths served outside /api/v1.
_ROOT_PATHS = ("/healthz", "/readyz", "/metrics")


def _format_param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, _dt.date):
        return value.isoformat() + "T00:00:00Z"
    return value


def _clean_params(params: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    if not params:
        return None
    return {k: _format_param(v) for k, v in params.items() if v is not None}


class CorePlexClient:
    """A client for one CorePlexML server.

    Args:
        base_url: where the server listens, e.g. ``"http://127.0.0.1:8080"`` (a trailing ``/api/v1`` is
            accepted). Defaults to the ``COREPLEX_URL`` environment variable, then
            ``http://127.0.0.1:8080``.
        api_key: the API key (``cpx_…``). Defaults to the ``COREPLEX_API_KEY`` environment variable.
        timeout: seconds to wait for the server on each request.
        max_retries: how many times an idempotent call is retried after a connection error or a
            502/503/504 answer, with exponential back-off. Every POST is sent with an
            ``Idempotency-Key`` so that its retry is safe.
        backoff_factor: first back-off delay in seconds; it doubles with each retry.
        upload_timeout: seconds to wait for the server's answer to a file upload (it checks the whole
            file before it answers).

    Resources: ``projects``, ``datasets``, ``experiments``, ``models``, ``deployments``, ``alerts``,
    ``retraining``, ``ab_tests``, ``jobs``, ``audit``, ``keys``, ``orgs``.

    The client can be used as a context manager; ``close()`` releases its connections.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        *,
        backoff_factor: float = 0.25,
        max_backoff: float = 8.0,
        upload_timeout: float = 600.0,
        session: Optional[requests.Session] = None,
        user_agent: Optional[str] = None,
    ) -> None:
        base_url = base_url or os.environ.get("COREPLEX_URL") or DEFAULT_BASE_URL
        base_url = base_url.strip().rstrip("/")
        if base_url.endswith(API_PREFIX):
            base_url = base_url[: -len(API_PREFIX)]
        if "://" not in base_url:
            base_url = "http://" + base_url
        if api_key is None:
            api_key = os.environ.get("COREPLEX_API_KEY") or None
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.max_backoff = max_backoff
        self.upload_timeout = upload_timeout
        self._session = session or requests.Session()
        self._user_agent = user_agent or f"coreplexml-python/{__version__}"

        self.projects = ProjectsResource(self)
        self.datasets = DatasetsResource(self)
        self.experiments = ExperimentsResource(self)
        self.models = ModelsResource(self)
        self.deployments = DeploymentsResource(self)
        self.alerts = AlertsResource(self)
        self.retraining = RetrainingResource(self)
        self.ab_tests = ABTestsResource(self)
        self.jobs = JobsResource(self)
        self.audit = AuditResource(self)
        self.keys = KeysResource(self)
        self.orgs = OrgsResource(self)

    # --- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Closes the client's connections."""
        self._session.close()

    def __enter__(self) -> "CorePlexClient":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        # Never show the key.
        return f"CorePlexClient(base_url={self.base_url!r})"

    # --- server status -----------------------------------------------------------------------
    def health(self) -> Dict[str, Any]:
        """``GET /healthz``: ``{"status": "ok"}`` when the server is alive."""
        return self._request("GET", "/healthz")

    def ready(self) -> Dict[str, Any]:
        """``GET /readyz``: database and model readiness. Raises ``ServerError`` when not ready."""
        return self._request("GET", "/readyz")

    # --- the wire ----------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if not path.startswith("/"):
            path = "/" + path
        if path.startswith(API_PREFIX + "/") or path == API_PREFIX or path.startswith(_ROOT_PATHS):
            return self.base_url + path
        return self.base_url + API_PREFIX + path

    def _backoff(self, attempt: int, retry_after: Optional[str] = None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), 30.0)
            except ValueError:
                pass
        delay = min(self.backoff_factor * (2 ** attempt), self.max_backoff)
        # Jitter spreads the retries of many clients hitting the same outage.
        return delay * (0.5 + random.random() / 2)

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        data: Union[None, bytes, str, Callable[[], Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        idempotency_key: Union[None, str, bool] = None,
        timeout: Any = None,
        stream: bool = False,
        raw: bool = False,
        retry: Optional[bool] = None,
    ) -> Any:
        """Sends one API call and returns the decoded JSON answer (``None`` for an empty answer).

        Args:
            method: HTTP method.
            path: ``/projects`` (``/api/v1`` is added) or a full ``/api/v1/…`` path.
            json: a JSON body.
            params: query parameters; ``None`` values are left out, datetimes sent as RFC 3339.
            data: a raw body, or a function returning a fresh body (e.g. an opened file) for each
                attempt, so a streamed upload can be retried. A returned object with ``close()`` is
                closed after its attempt.
            headers: extra headers.
            idempotency_key: the ``Idempotency-Key`` of a POST; one is generated when not given, and
                none is sent when ``False`` (for calls that are safe to repeat, such as predictions).
            timeout: this call's timeout instead of the client's.
            stream: leave the body unread (for downloads); implies ``raw``.
            raw: return the ``requests.Response`` instead of decoded JSON.
            retry: force retries on or off; by default idempotent methods are retried.

        Raises:
            CorePlexError subclasses: the typed error of a 4xx/5xx answer, ``ConnectionError`` when the
            server cannot be reached.
        """
        method = method.upper()
        url = self._url(path)
        hdrs: Dict[str, str] = {"User-Agent": self._user_agent, "Accept": "application/json"}
        if self.api_key:
            hdrs["Authorization"] = f"Bearer {self.api_key}"
        if method == "POST" and idempotency_key is not False:
            hdrs["Idempotency-Key"] = idempotency_key or f"cpx-py-{uuid.uuid4().hex}"
        if headers:
            hdrs.update(headers)
        if retry is None:
            retry = method in _IDEMPOTENT_METHODS
        attempts = 1 + (self.max_retries if retry else 0)
        clean = _clean_params(params)
        req_timeout = self.timeout if timeout is None else timeout

        for attempt in range(attempts):
            last = attempt == attempts - 1
            body = data() if callable(data) else data
            try:
                try:
                    resp = self._session.request(
                        method,
                        url,
                        params=clean,
                        json=json,
                        data=body,
                        headers=hdrs,
                        timeout=req_timeout,
                        stream=stream,
                    )
                finally:
                    if callable(data) and hasattr(body, "close"):
                        body.close()
            except requests.exceptions.SSLError as e:
                raise exc.ConnectionError(
                    f"TLS error talking to {self.base_url}: {e}", method=method, url=url
                ) from e
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                if not last:
                    delay = self._backoff(attempt)
                    log.debug("%s %s: %s; retry %d in %.2fs", method, url, e, attempt + 1, delay)
                    time.sleep(delay)
                    continue
                kind = "timed out" if isinstance(e, requests.exceptions.Timeout) else "failed"
                raise exc.ConnectionError(
                    f"could not reach the CorePlexML server at {self.base_url} ({method} {path} "
                    f"{kind} after {attempt + 1} attempt(s)): {e}. Check base_url / COREPLEX_URL and "
                    f"that `coreplex serve` is running.",
                    method=method,
                    url=url,
                ) from e

            if resp.status_code in _RETRY_STATUSES and not last:
                delay = self._backoff(attempt, resp.headers.get("Retry-After"))
                log.debug(
                    "%s %s: HTTP %d; retry %d in %.2fs", method, url, resp.status_code, attempt + 1, delay
                )
                resp.close()
                time.sleep(delay)
                continue
            if resp.status_code >= 400:
                try:
                    raise exc.error_from_response(resp, method=method)
                finally:
                    resp.close()
            if stream or raw:
                return resp
            if resp.status_code == 204 or not resp.content:
                return None
            ctype = resp.headers.get("Content-Type", "")
            if "json" in ctype:
                return resp.json()
            return resp.content
        raise AssertionError("unreachable")  # pragma: no cover
