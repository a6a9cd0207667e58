"""Projects and their members (``client.projects``)."""

from typing import Iterator, List, Optional

from ._base import APIObject, Page, Resource, seg


class Project(APIObject):
    """A project: ``id`` (``proj_…``), ``org_id``, ``name``, ``description``, ``created_at``, ``updated_at``."""


class Member(APIObject):
    """A project member: ``subject``, ``role`` (``viewer``, ``editor`` or ``admin``), ``added_at``."""


class ProjectsResource(Resource):
    """Projects: the unit that holds datasets, models and members."""

    def create(self, name: str, description: str = "", *, idempotency_key: Optional[str] = None) -> Project:
        """Creates a project (organization admins). A second project of the same name is a ``ConflictError``."""
        return self._post(
            "/projects", Project, {"name": name, "description": description or ""},
            idempotency_key=idempotency_key,
        )

    def list(self, *, limit: Optional[int] = None, page_token: Optional[str] = None) -> Page:
        """The projects the caller can see: all of them, or one page when ``limit``/``page_token`` is given."""
        return self._list("/projects", Project, limit=limit, page_token=page_token)

    def iter(self, *, page_size: Optional[int] = None) -> Iterator[Project]:
        """Iterates over every project, fetching pages lazily."""
        return self._iter("/projects", Project, page_size=page_size)

    def get(self, project_id: str) -> Project:
        """One project; ``NotFoundError`` when it does not exist or belongs to another organization."""
        return self._get(f"/projects/{seg(project_id)}", Project)

    def update(self, project_id: str, *, name: Optional[str] = None, description: Optional[str] = None) -> Project:
        """Renames a project or changes its description (project admins)."""
        body = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        return self._patch(f"/projects/{seg(project_id)}", Project, body)

    def members(self, project_id: str) -> List[Member]:
        """The project's members and their roles."""
        return self._get_list(f"/projects/{seg(project_id)}/members", Member)

    def add_member(
        self, project_id: str, subject: str, role: str, *, idempotency_key: Optional[str] = None
    ) -> Member:
        """Adds ``subject`` with ``role`` (``viewer``, ``editor`` or ``admin``), or changes their role."""
        return self._post(
            f"/projects/{seg(project_id)}/members", Member, {"subject": subject, "role": role},
            idempotency_key=idempotency_key,
        )

    def remove_member(self, project_id: str, subject: str) -> None:
        """Removes ``subject`` from the project."""
        self._delete(f"/projects/{seg(project_id)}/members/{seg(subject)}")
