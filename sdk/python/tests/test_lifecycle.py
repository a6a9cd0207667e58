"""The model lifecycle (SPEC §4): allowed moves, 409 for every other, one production version per name."""

import itertools

import pytest

from coreplexml import ConflictError

STATUSES = ["candidate", "staging", "production", "archived"]
ALLOWED = {
    ("candidate", "staging"),
    ("candidate", "archived"),
    ("staging", "production"),
    ("staging", "candidate"),
    ("staging", "archived"),
    ("production", "archived"),
    ("archived", "staging"),
}
# How to bring a fresh candidate to each state.
PATH_TO = {
    "candidate": [],
    "staging": ["staging"],
    "production": ["staging", "production"],
    "archived": ["archived"],
}


def _model_in(admin, register_logreg, status):
    # One name per model so that promoting one never archives another.
    model = register_logreg(f"lifecycle-{status}-{len(PATH_TO[status])}-{id(object())}")
    for step in PATH_TO[status]:
        model = admin.models.transition(model.id, step, reason=f"to {step}")
    assert model.status == status
    return model


@pytest.mark.parametrize("source", STATUSES)
def test_every_forbidden_transition_is_a_conflict(admin, register_logreg, source):
    model = _model_in(admin, register_logreg, source)
    history = len(admin.models.transitions(model.id))
    for target in STATUSES:
        if (source, target) in ALLOWED:
            continue
        with pytest.raises(ConflictError) as info:
            admin.models.transition(model.id, target, reason="should not work")
        assert info.value.status == 409
        assert source in info.value.message and target in info.value.message
    assert admin.models.get(model.id).status == source
    assert len(admin.models.transitions(model.id)) == history


@pytest.mark.parametrize("source, target", sorted(ALLOWED))
def test_every_allowed_transition_is_recorded(admin, admin_subject, register_logreg, source, target):
    model = _model_in(admin, register_logreg, source)
    moved = admin.models.transition(model.id, target, reason=f"{source} to {target} in a test")
    assert moved.status == target
    last = admin.models.transitions(model.id)[-1]
    assert (last.from_status, last.to_status) == (source, target)
    assert last.reason == f"{source} to {target} in a test"
    assert last.actor == admin_subject
    assert last.at


def test_promoting_archives_the_previous_production_version(admin, project, register_logreg):
    v1 = register_logreg("churn")
    v2 = register_logreg("churn")
    other = register_logreg("other")
    for m in (v1, v2, other):
        admin.models.transition(m.id, "staging", reason="review")
    admin.models.transition(v1.id, "production", reason="first release")
    admin.models.transition(other.id, "production", reason="unrelated model")

    promoted = v2.transition("production", reason="better AUC")
    assert promoted.status == "production"

    old = admin.models.get(v1.id)
    assert old.status == "archived"
    last = admin.models.transitions(v1.id)[-1]
    assert (last.from_status, last.to_status) == ("production", "archived")
    assert last.reason  # says why it was archived
    production = admin.models.list(project.id, name="churn", status="production")
    assert [m.id for m in production] == [v2.id]
    # Another name keeps its own production version.
    assert admin.models.get(other.id).status == "production"


def test_history_lists_every_step_in_order(admin, register_logreg):
    model = register_logreg("churn")
    steps = ["staging", "candidate", "staging", "production", "archived", "staging"]
    for step in steps:
        model = admin.models.transition(model.id, step, reason=f"go {step}")
    history = admin.models.transitions(model.id)
    moves = [(t.from_status, t.to_status) for t in history if t.from_status is not None]
    assert moves == list(zip(["candidate"] + steps[:-1], steps))
    assert [t.reason for t in history if t.from_status is not None] == [f"go {s}" for s in steps]
    assert list(itertools.chain(*moves))  # non-empty


def test_promotion_history_is_empty_until_deployments_exist(admin, register_logreg):
    model = register_logreg("churn")
    assert admin.models.promotions(model.id) == []
