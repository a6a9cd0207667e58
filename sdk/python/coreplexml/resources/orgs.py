"""Organizations (``client.orgs``): the tenancy boundary."""

from typing import List, Optional

from ._base import APIObject, Resource


class Organization(APIObject):
    """An organization: ``id`` (``org_…``), ``name``, ``created_at``."""


class CreatedOrg(APIObject):
    """A new organization: ``org`` and ``admin_key`` (its first admin key; ``admin_key.key`` is the secret,
    shown only here)."""


class OrgsResource(Resource):
    """Organizations: created by instance admins; each has its own projects, keys and audit log."""

    def create(
        self, name: str, admin_subject: Optional[str] = None, *, idempotency_key: Optional[str] = None
    ) -> CreatedOrg:
        """Creates an organization and its first admin key (subject ``admin_subject``, default ``admin``)."""
        body = {"name": name}
        if admin_subject is not None:
            body["admin_subject"] = admin_subject
        return self._post("/orgs", CreatedOrg, body, idempotency_key=idempotency_key)

    def list(self) -> List[Organization]:
        """The caller's organization."""
        return self._get_list("/orgs", Organization)
