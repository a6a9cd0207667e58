"""The audit log (``client.audit``): read-only, append-only record of every change."""

from typing import Any, Dict, Iterator, Optional, Union
import datetime as _dt

from ._base import APIObject, Page, Resource, id_of

Time = Union[str, _dt.datetime, _dt.date, None]


class AuditEntry(APIObject):
    """One change: ``id`` (``evt_…``), ``at``, ``actor``, ``action`` (e.g. ``model.register``), ``project_id``,
    ``resource_type``, ``resource_id``, ``before``, ``after``."""


class AuditResource(Resource):
    """Query the audit log. Organization admins see the whole organization; others name a project."""

    @staticmethod
    def _filters(**kw: Any) -> Dict[str, Any]:
        kw["project_id"] = id_of(kw.get("project_id"))
        kw["resource_id"] = id_of(kw.get("resource_id"))
        return kw

    def list(
        self,
        project_id: Optional[str] = None,
        resource_id: Optional[str] = None,
        actor: Optional[str] = None,
        action: Optional[str] = None,
        since: Time = None,
        until: Time = None,
        limit: Optional[int] = None,
        *,
        resource_type: Optional[str] = None,
        page_token: Optional[str] = None,
    ) -> Page:
        """Audit entries matching the filters, oldest first.

        ``since``/``until`` take datetimes (naive ones are UTC) or RFC 3339 strings. With ``limit`` or
        ``page_token``, one page is returned (continue with its ``next_page_token``); without, every match.
        """
        params = self._filters(
            project_id=project_id, resource_id=resource_id, resource_type=resource_type,
            actor=actor, action=action, since=since, until=until,
        )
        return self._list("/audit", AuditEntry, params, limit=limit, page_token=page_token)

    def iter(
        self,
        project_id: Optional[str] = None,
        resource_id: Optional[str] = None,
        actor: Optional[str] = None,
        action: Optional[str] = None,
        since: Time = None,
        until: Time = None,
        *,
        resource_type: Optional[str] = None,
        page_size: Optional[int] = None,
    ) -> Iterator[AuditEntry]:
        """Iterates over every matching entry across all pages, fetching them lazily."""
        params = self._filters(
            project_id=project_id, resource_id=resource_id, resource_type=resource_type,
            actor=actor, action=action, since=since, until=until,
        )
        return self._iter("/audit", AuditEntry, params, page_size=page_size)
