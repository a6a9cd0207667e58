"""Projects, members, idempotent creation and the shape of errors."""

import pytest

from coreplexml import (
    AuthenticationError,
    ConflictError,
    CorePlexClient,
    CorePlexError,
    NotFoundError,
    ValidationError,
)

from conftest import unique


def test_create_get_and_update_a_project(admin):
    name = unique("churn")
    project = admin.projects.create(name=name, description="churn models")
    assert project.id.startswith("proj_")
    assert project.name == name
    assert project.description == "churn models"

    fetched = admin.projects.get(project.id)
    assert fetched == project
    assert fetched.to_dict()["name"] == name

    renamed = admin.projects.update(project.id, name=name + "-v2")
    assert renamed.name == name + "-v2"
    assert renamed.description == "churn models"
    assert admin.projects.get(project.id).name == name + "-v2"


def test_project_names_are_unique_in_an_organization(admin, project):
    with pytest.raises(ConflictError) as info:
        admin.projects.create(name=project.name)
    err = info.value
    assert err.status == 409
    assert err.code == "conflict"
    assert project.name in err.message


def test_list_paginates_and_iterates_over_every_project(admin):
    made = {admin.projects.create(name=unique("page")).id for _ in range(3)}

    first = admin.projects.list(limit=2)
    assert len(first) == 2
    assert first.has_more and first.next_page_token
    second = admin.projects.list(limit=2, page_token=first.next_page_token)
    assert not {p.id for p in first} & {p.id for p in second}

    everything = admin.projects.list()
    assert made <= {p.id for p in everything}
    assert everything.next_page_token is None
    assert [p.id for p in admin.projects.iter(page_size=1)] == [p.id for p in everything]


def test_members_can_be_added_changed_and_removed(admin, project):
    admin.projects.add_member(project.id, subject="ana@example.com", role="viewer")
    member = admin.projects.add_member(project.id, subject="ana@example.com", role="editor")
    assert (member.subject, member.role) == ("ana@example.com", "editor")
    roles = {m.subject: m.role for m in admin.projects.members(project.id)}
    assert roles["ana@example.com"] == "editor"

    admin.projects.remove_member(project.id, "ana@example.com")
    assert "ana@example.com" not in {m.subject for m in admin.projects.members(project.id)}
    with pytest.raises(NotFoundError):
        admin.projects.remove_member(project.id, "ana@example.com")


def test_an_unknown_role_is_a_validation_error_naming_the_field(admin, project):
    with pytest.raises(ValidationError) as info:
        admin.projects.add_member(project.id, subject="bob", role="owner")
    assert info.value.code == "validation_failed"
    assert "role" in info.value.message


def test_idempotent_post_replays_the_first_answer(admin):
    name = unique("idem")
    key = unique("idempotency-key")
    first = admin.projects.create(name=name, idempotency_key=key)
    # Without the key the same request is a conflict; with it, the stored answer comes back.
    again = admin.projects.create(name=name, idempotency_key=key)
    assert again.id == first.id

    resp = admin._request(
        "POST", "/projects", json={"name": name, "description": ""}, idempotency_key=key, raw=True
    )
    assert resp.headers.get("idempotent-replay") == "true"
    assert resp.json()["id"] == first.id


def test_errors_carry_the_server_code_message_and_status(admin):
    with pytest.raises(NotFoundError) as info:
        admin.projects.get("proj_doesnotexist")
    err = info.value
    assert isinstance(err, CorePlexError)
    assert err.status == 404
    assert err.code == "not_found"
    assert "proj_doesnotexist" in err.message
    assert isinstance(err.details, dict)
    assert "404" in str(err) and "not_found" in str(err)


def test_an_unknown_key_is_an_authentication_error(server):
    client = CorePlexClient(base_url=server.url, api_key="cpx_not_a_real_key")
    with pytest.raises(AuthenticationError) as info:
        client.projects.list()
    assert info.value.status == 401
    assert info.value.code == "unauthorized"


def test_missing_key_is_an_authentication_error(server, monkeypatch):
    monkeypatch.delenv("COREPLEX_API_KEY", raising=False)
    client = CorePlexClient(base_url=server.url)
    with pytest.raises(AuthenticationError):
        client.projects.list()


def test_client_reads_url_and_key_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("COREPLEX_URL", server.url + "/api/v1/")
    monkeypatch.setenv("COREPLEX_API_KEY", server.admin_key)
    client = CorePlexClient()
    assert client.base_url == server.url
    assert client.health()["status"] == "ok"
    assert isinstance(client.projects.list(limit=1), list)
    assert server.admin_key not in repr(client)


def test_generic_request_reaches_any_route(admin, project):
    body = admin._request("GET", f"/projects/{project.id}")
    assert body["id"] == project.id
    page = admin._request("GET", "/projects", params={"limit": 1, "page_token": None})
    assert set(page) >= {"items", "next_page_token"}
