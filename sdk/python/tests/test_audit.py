"""The audit log records registrations and transitions with their actor, and filters and paginates."""

import datetime as dt

from conftest import unique


def test_registration_and_transitions_are_audited_with_the_actor(server, admin, project, register_logreg):
    subject = unique("ml-engineer")
    admin.projects.add_member(project.id, subject=subject, role="editor")
    key = admin.keys.create(subject=subject)
    with server.client(key.key) as engineer:
        model = register_logreg("churn", client=engineer)
        engineer.models.transition(model.id, "staging", reason="passed review")
        engineer.models.transition(model.id, "production", reason="ship it")

    entries = admin.audit.list(resource_id=model.id)
    actions = [(e.action, e.actor) for e in entries]
    assert actions == [
        ("model.register", subject),
        ("model.transition", subject),
        ("model.transition", subject),
    ]
    register, to_staging, to_production = entries
    assert register.project_id == project.id
    assert register.resource_type == "model"
    assert register.after.name == "churn"
    assert to_staging.before.status == "candidate" and to_staging.after.status == "staging"
    assert to_production.after.status == "production"

    # The project's member can read its project's log too.
    with server.client(key.key) as engineer:
        mine = engineer.audit.list(project_id=project.id, actor=subject)
        assert [e.id for e in mine] == [e.id for e in entries]


def test_audit_filters_by_action_time_and_paginates(admin, project, register_logreg):
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    models = [register_logreg(f"m{i}") for i in range(3)]
    after = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)

    registered = admin.audit.list(project_id=project.id, action="model.register", since=before, until=after)
    assert [e.resource_id for e in registered] == [m.id for m in models]
    assert admin.audit.list(project_id=project.id, action="model.register", since=after) == []
    assert admin.audit.list(project_id=project.id, action="model.register", until="2000-01-01T00:00:00Z") == []

    first = admin.audit.list(project_id=project.id, action="model.register", limit=2)
    assert len(first) == 2 and first.next_page_token
    rest = admin.audit.list(project_id=project.id, action="model.register", limit=2, page_token=first.next_page_token)
    assert [e.resource_id for e in list(first) + list(rest)] == [m.id for m in models]
    assert [e.id for e in admin.audit.iter(project_id=project.id, page_size=1)] == [
        e.id for e in admin.audit.list(project_id=project.id)
    ]


def test_project_creation_and_membership_are_audited(admin, project):
    admin.projects.add_member(project.id, subject="carol", role="viewer")
    actions = {e.action for e in admin.audit.list(project_id=project.id)}
    assert "project.create" in actions
    assert any(a.startswith("member") for a in actions)
