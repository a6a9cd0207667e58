"""API keys (``client.keys``)."""

from typing import List, Optional

from ._base import APIObject, Resource, seg


class APIKey(APIObject):
    """An API key as listed: ``id`` (``key_…``), ``subject``, ``name``, ``prefix``, ``org_admin``, ``scope``,
    ``created_at``, ``created_by``, ``revoked_at``. The secret is never listed."""


class CreatedKey(APIKey):
    """A newly issued key; ``key`` holds the secret, shown in this answer only."""


class KeysResource(Resource):
    """API keys: issue (organization admins), list by prefix, revoke."""

    def create(
        self,
        subject: str,
        name: Optional[str] = None,
        org_admin: bool = False,
        deployment_id: Optional[str] = None,
        *,
        idempotency_key: Optional[str] = None,
    ) -> CreatedKey:
        """Issues a key acting as ``subject``; its project roles decide what it may do.

        ``org_admin=True`` makes it an organization admin; ``deployment_id`` restricts it to predictions
        from that deployment. Keep ``.key``: it is not shown again.
        """
        body = {"subject": subject, "org_admin": bool(org_admin)}
        if name is not None:
            body["name"] = name
        if deployment_id is not None:
            body["deployment_id"] = deployment_id
        return self._post("/keys", CreatedKey, body, idempotency_key=idempotency_key)

    def list(self) -> List[APIKey]:
        """All keys of the organization (admins) or the caller's own."""
        return self._get_list("/keys", APIKey)

    def revoke(self, key_id: str) -> APIKey:
        """Revokes a key: it stops working at once."""
        return self._obj(APIKey, self._delete(f"/keys/{seg(key_id)}"))
