"""The base of every resource: typed GET/POST/PATCH/DELETE helpers, pagination, downloads, waiting.

A new resource is one module in this package with a ``Resource`` subclass (and its object classes), added
to ``resources/__init__.py`` and as an attribute in ``CorePlexClient.__init__``.
"""

import hashlib
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Type, TypeVar, Union
from urllib.parse import quote

from .. import exceptions as exc
from .._objects import APIObject, Page, wrap

T = TypeVar("T", bound=APIObject)
PathLike = Union[str, "os.PathLike[str]"]

_CHUNK = 1024 * 1024


def seg(value: Any) -> str:
    """One URL path segment (ids and subjects are quoted so ``/`` or spaces cannot change the route)."""
    if isinstance(value, APIObject):
        value = value.id
    return quote(str(value), safe="")


def id_of(value: Any) -> Any:
    """Accepts either an id or an object that has one (``models.get(model)`` works like ``get(model.id)``)."""
    if isinstance(value, APIObject):
        return value.id
    return value


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: Optional[float],
    what: str,
    interval: float = 0.05,
    max_interval: float = 1.0,
) -> T:
    """Calls ``fetch`` until ``done`` is true, backing off from ``interval`` to ``max_interval``.

    Raises ``coreplexml.TimeoutError`` after ``timeout`` seconds (``None`` waits forever).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        obj = fetch()
        if done(obj):
            return obj
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise exc.TimeoutError(
                    f"{what} did not finish within {timeout:g}s (last status: "
                    f"{obj.get('status')!r}); wait again or raise the timeout"
                )
            time.sleep(min(interval, remaining))
        else:
            time.sleep(interval)
        interval = min(interval * 2, max_interval)


class Resource:
    """A group of API calls (``client.models``, ``client.projects`` …)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"

    # --- single objects ---------------------------------------------------------------------
    def _obj(self, cls: Type[T], data: Any) -> T:
        return cls(data, self._client)

    def _get(self, path: str, cls: Type[T] = APIObject, params: Optional[Mapping[str, Any]] = None) -> T:  # type: ignore[assignment]
        return self._obj(cls, self._client._request("GET", path, params=params))

    def _post(
        self,
        path: str,
        cls: Type[T] = APIObject,  # type: ignore[assignment]
        json: Any = None,
        *,
        params: Optional[Mapping[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        **kwargs: Any,
    ) -> T:
        data = self._client._request(
            "POST", path, json=json, params=params, idempotency_key=idempotency_key, **kwargs
        )
        return self._obj(cls, data)

    def _patch(self, path: str, cls: Type[T] = APIObject, json: Any = None) -> T:  # type: ignore[assignment]
        return self._obj(cls, self._client._request("PATCH", path, json=json))

    def _delete(self, path: str) -> Any:
        return self._client._request("DELETE", path)

    # --- lists -------------------------------------------------------------------------------
    def _get_list(self, path: str, cls: Type[T] = APIObject, params: Optional[Mapping[str, Any]] = None) -> List[T]:  # type: ignore[assignment]
        """An unpaginated list endpoint: a plain Python list."""
        data = self._client._request("GET", path, params=params)
        if isinstance(data, dict) and "items" in data:
            data = data["items"]
        return [self._obj(cls, d) for d in data or []]

    def _page(
        self,
        path: str,
        cls: Type[T],
        params: Optional[Mapping[str, Any]],
        limit: Optional[int],
        page_token: Optional[str],
    ) -> "Page":
        q: Dict[str, Any] = dict(params or {})
        q["limit"] = limit
        q["page_token"] = page_token
        data = self._client._request("GET", path, params=q)
        return Page([self._obj(cls, d) for d in data.get("items", [])], data.get("next_page_token"))

    def _list(
        self,
        path: str,
        cls: Type[T] = APIObject,  # type: ignore[assignment]
        params: Optional[Mapping[str, Any]] = None,
        *,
        limit: Optional[int] = None,
        page_token: Optional[str] = None,
    ) -> "Page":
        """A paginated endpoint.

        With neither ``limit`` nor ``page_token`` every page is fetched and returned as one list. With
        either, exactly one page is returned, whose ``next_page_token`` continues it.
        """
        if limit is not None or page_token is not None:
            return self._page(path, cls, params, limit, page_token)
        return Page(list(self._iter(path, cls, params)), None)

    def _iter(
        self,
        path: str,
        cls: Type[T] = APIObject,  # type: ignore[assignment]
        params: Optional[Mapping[str, Any]] = None,
        *,
        page_size: Optional[int] = None,
        page_token: Optional[str] = None,
    ) -> Iterator[T]:
        """Yields every item of a paginated endpoint, fetching pages as they are needed."""
        token = page_token
        while True:
            page = self._page(path, cls, params, page_size, token)
            yield from page
            if not page.next_page_token or page.next_page_token == token:
                return
            token = page.next_page_token

    # --- files -------------------------------------------------------------------------------
    def _download(
        self,
        path: str,
        dest: PathLike,
        *,
        default_name: Optional[str] = None,
        expected_sha256: Optional[str] = None,
    ) -> Path:
        """Streams a file answer to ``dest`` (a file path, or a folder to keep the server's filename).

        The file appears only when complete (written beside it, then renamed). With
        ``expected_sha256`` the bytes are checked and a mismatch raises ``CorePlexError``.
        """
        resp = self._client._request("GET", path, stream=True, timeout=self._client.upload_timeout)
        target = Path(dest)
        try:
            if target.is_dir():
                name = (
                    _filename_from(resp.headers.get("Content-Disposition"))
                    or default_name
                    or Path(path).name
                )
                target = target / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            digest = hashlib.sha256()
            try:
                with open(tmp, "wb") as f:
                    for chunk in resp.iter_content(_CHUNK):
                        if chunk:
                            f.write(chunk)
                            digest.update(chunk)
                if expected_sha256 and digest.hexdigest() != expected_sha256:
                    raise exc.CorePlexError(
                        f"downloaded file has sha256 {digest.hexdigest()}, the server recorded "
                        f"{expected_sha256}; download it again"
                    )
                os.replace(tmp, target)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        finally:
            resp.close()
        return target


def _filename_from(disposition: Optional[str]) -> Optional[str]:
    if not disposition:
        return None
    for part in disposition.split(";"):
        part = part.strip()
        if part.lower().startswith("filename="):
            name = part.split("=", 1)[1].strip().strip('"')
            name = os.path.basename(name)
            return name or None
    return None


__all__ = ["Resource", "APIObject", "Page", "wrap", "poll", "seg", "id_of"]
