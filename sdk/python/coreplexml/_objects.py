"""Objects returned by the SDK: server JSON with attribute access.

``APIObject`` wraps one JSON object: ``obj.id``, ``obj["id"]``, ``obj.get("id")`` and ``obj.to_dict()``
all work, and nested objects are wrapped too (``model.lineage.dataset_version_id``). ``Page`` is a plain
Python list of objects with the ``next_page_token`` of the server page it came from.
"""

import copy
from typing import Any, Dict, Iterator, List, Optional


def wrap(value: Any, client: Any = None, cls: Optional[type] = None) -> Any:
    """Wraps JSON values: dicts become ``APIObject`` (or ``cls``), lists are wrapped element-wise."""
    if isinstance(value, dict):
        return (cls or APIObject)(value, client)
    if isinstance(value, list):
        return [wrap(v, client, cls) for v in value]
    return value


class APIObject:
    """One JSON object from the server, readable as attributes.

    Reading an attribute the server did not send raises ``AttributeError``; use ``.get(name, default)``
    for optional fields. Objects compare equal when their data is equal.
    """

    __slots__ = ("_data", "_client")

    def __init__(self, data: Optional[Dict[str, Any]] = None, client: Any = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))
        object.__setattr__(self, "_client", client)

    # --- access -------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        data = object.__getattribute__(self, "_data")
        if name in data:
            # Nested values are wrapped plainly; typed wrappers are only for top-level resources.
            return wrap(data[name])
        raise AttributeError(
            f"{type(self).__name__} has no field {name!r} (fields: {', '.join(sorted(data))})"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"{type(self).__name__} is read-only; change it through the client (e.g. update())"
        )

    def __getitem__(self, key: str) -> Any:
        return wrap(self._data[key])

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when the server did not send it."""
        return wrap(self._data[key]) if key in self._data else default

    def fields(self) -> List[str]:
        """The names of the fields the server sent."""
        return list(self._data)

    def to_dict(self) -> Dict[str, Any]:
        """A deep copy of the JSON object as plain dicts and lists."""
        return copy.deepcopy(self._data)

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | set(self._data))

    # --- comparison and display ---------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, APIObject):
            return self._data == other._data
        if isinstance(other, dict):
            return self._data == other
        return NotImplemented

    def __hash__(self) -> int:
        ident = self._data.get("id")
        return hash((type(self).__name__, ident)) if ident is not None else id(self)

    def __repr__(self) -> str:
        ident = self._data.get("id")
        shown = []
        if ident is not None:
            shown.append(f"id={ident!r}")
        for key in ("name", "version", "status", "task", "subject", "role", "action"):
            if key in self._data and not isinstance(self._data[key], (dict, list)):
                shown.append(f"{key}={self._data[key]!r}")
        if not shown:
            inner = ", ".join(f"{k}={v!r}" for k, v in list(self._data.items())[:6])
            return f"{type(self).__name__}({inner})"
        return f"{type(self).__name__}({', '.join(shown)})"

    def __copy__(self) -> "APIObject":
        return type(self)(self._data, self._client)

    def __deepcopy__(self, memo: Dict[int, Any]) -> "APIObject":
        return type(self)(copy.deepcopy(self._data, memo), self._client)

    def __getstate__(self) -> Dict[str, Any]:
        # The client (a live session) is not pickled; an unpickled object is plain data.
        return {"data": self._data}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        object.__setattr__(self, "_data", state["data"])
        object.__setattr__(self, "_client", None)


class Page(list):
    """One page of a paginated list: a Python list of objects plus ``next_page_token``.

    ``next_page_token`` is ``None`` on the last page; pass it as ``page_token=`` to get the next page.
    """

    def __init__(self, items: List[Any], next_page_token: Optional[str] = None) -> None:
        super().__init__(items)
        self.next_page_token = next_page_token

    @property
    def has_more(self) -> bool:
        """Whether the server has more items after this page."""
        return self.next_page_token is not None

    def __repr__(self) -> str:
        return f"Page({list.__repr__(self)}, next_page_token={self.next_page_token!r})"

