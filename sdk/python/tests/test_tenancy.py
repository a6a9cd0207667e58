"""Organizations, keys and roles: another organization sees nothing, viewers cannot change anything."""

import pytest

from coreplexml import AuthenticationError, NotFoundError, PermissionDeniedError

from conftest import CHURN_FEATURES, unique


@pytest.fixture(scope="module")
def other_org(server, admin):
    created = admin.orgs.create(name=unique("other-org"))
    assert created.org.id.startswith("org_")
    assert created.admin_key.key.startswith("cpx_")
    with server.client(created.admin_key.key) as client:
        yield client


def test_another_organization_gets_not_found_for_everything(admin, other_org, project, register_logreg, fixtures_dir):
    model = register_logreg("churn")
    version = admin.datasets.upload(project.id, fixtures_dir / "churn.csv", "churn")

    for call in (
        lambda: other_org.projects.get(project.id),
        lambda: other_org.models.get(model.id),
        lambda: other_org.models.list(project.id),
        lambda: other_org.models.transition(model.id, "staging", reason="not mine"),
        lambda: other_org.models.download(model.id, "unused.onnx"),
        lambda: other_org.datasets.get_version(version.id),
        lambda: other_org.datasets.upload(project.id, fixtures_dir / "churn.csv", "sneaky"),
        lambda: other_org.models.register(
            project.id, "sneaky", fixtures_dir / "logreg.onnx", "binary_classification",
            feature_names=CHURN_FEATURES,
        ),
        lambda: other_org.jobs.get(version.profile_job_id),
        lambda: other_org.projects.add_member(project.id, subject="intruder", role="admin"),
    ):
        with pytest.raises(NotFoundError):
            call()

    assert project.id not in {p.id for p in other_org.projects.list()}
    assert all(e.resource_id != model.id for e in other_org.audit.list())
    assert admin.models.get(model.id).status == "candidate"


def test_the_other_organization_works_in_its_own_projects(other_org, fixtures_dir):
    mine = other_org.projects.create(name=unique("theirs"))
    model = other_org.models.register(
        mine.id, "churn", fixtures_dir / "logreg.onnx", "binary_classification", feature_names=CHURN_FEATURES
    )
    assert model.version == 1
    assert [o.id for o in other_org.orgs.list()] == [mine.org_id]


def test_a_viewer_can_read_but_not_register_or_transition(server, admin, project, register_logreg, fixtures_dir):
    model = register_logreg("churn")
    subject = unique("viewer")
    admin.projects.add_member(project.id, subject=subject, role="viewer")
    issued = admin.keys.create(subject=subject, name="read only")
    assert issued.key.startswith(issued.prefix)

    with server.client(issued.key) as viewer:
        assert viewer.projects.get(project.id).id == project.id
        assert [m.id for m in viewer.models.list(project.id)] == [model.id]
        with pytest.raises(PermissionDeniedError) as info:
            viewer.models.register(
                project.id, "churn", fixtures_dir / "logreg.onnx", "binary_classification",
                feature_names=CHURN_FEATURES,
            )
        assert info.value.status == 403
        assert info.value.code == "forbidden"
        with pytest.raises(PermissionDeniedError):
            viewer.models.transition(model.id, "staging", reason="viewer tries")
        with pytest.raises(PermissionDeniedError):
            viewer.datasets.upload(project.id, fixtures_dir / "churn.csv", "churn")
        with pytest.raises(PermissionDeniedError):
            viewer.projects.add_member(project.id, subject=subject, role="admin")
    assert len(admin.models.list(project.id)) == 1


def test_an_editor_can_register_but_not_manage_members(server, admin, project, fixtures_dir):
    subject = unique("editor")
    admin.projects.add_member(project.id, subject=subject, role="editor")
    issued = admin.keys.create(subject=subject)
    with server.client(issued.key) as editor:
        model = editor.models.register(
            project.id, "churn", fixtures_dir / "logreg.onnx", "binary_classification",
            feature_names=CHURN_FEATURES,
        )
        assert model.created_by == subject
        with pytest.raises(PermissionDeniedError):
            editor.projects.add_member(project.id, subject="someone", role="viewer")


def test_keys_are_listed_by_prefix_and_stop_working_when_revoked(server, admin, project):
    subject = unique("temp")
    admin.projects.add_member(project.id, subject=subject, role="viewer")
    issued = admin.keys.create(subject=subject, name="temporary")
    listed = {k.id: k for k in admin.keys.list()}
    assert issued.id in listed
    assert "key" not in listed[issued.id]
    assert listed[issued.id].prefix == issued.prefix

    with server.client(issued.key) as temp:
        assert temp.projects.get(project.id).id == project.id
        revoked = admin.keys.revoke(issued.id)
        assert revoked.revoked_at
        with pytest.raises(AuthenticationError):
            temp.projects.get(project.id)


def test_a_key_without_membership_sees_no_project(server, admin, project):
    issued = admin.keys.create(subject=unique("outsider"))
    with server.client(issued.key) as outsider:
        with pytest.raises(NotFoundError):
            outsider.projects.get(project.id)
        assert project.id not in {p.id for p in outsider.projects.list()}
