from __future__ import annotations

import pytest

from casefile.domain.access import Action, Scope, authorize
from casefile.domain.commands import FileCase
from liandong.tokens.claims import Principal, Role
from tests.unit.casefile.scenario import MAIN_PATH, SAMPLE, run

CASE = run(MAIN_PATH[:2])  # county 320583, officers o1/o2, monitoring staff m1

OFFICER = Principal("o1", frozenset({Role.ENFORCEMENT_OFFICER}))
OTHER_OFFICER = Principal("o9", frozenset({Role.ENFORCEMENT_OFFICER}))
STAFF = Principal("m1", frozenset({Role.MONITORING_STAFF}))
OTHER_STAFF = Principal("m9", frozenset({Role.MONITORING_STAFF}))
MANAGER = Principal("mgr", frozenset({Role.MANAGER}), ("3205",))
FAR_MANAGER = Principal("mgr2", frozenset({Role.MANAGER}), ("1101",))
ADMIN = Principal("ops", frozenset({Role.ADMIN}))
SERVICE = Principal("dispatch", frozenset({Role.SERVICE}))


def for_person(person: Principal, service: Principal = SERVICE) -> Principal:
    """The service's token acting for `person` (claim `act`)."""
    return Principal(service.subject, service.roles, service.jurisdictions, person)


A = Action
# Expected allowed actions per principal on CASE (hand-written matrix).
OFFICER_ALLOWED = {
    A.RECORD_ARRIVAL,
    A.RECORD_INSPECTION,
    A.ADD_EVIDENCE,
    A.HAND_OFF_CUSTODY,
    A.RECORD_FINDING,
    A.SERVE_NOTICE,
    A.REQUEST_HEARING,
    A.SERVE_DECISION,
    A.RECORD_ENFORCEMENT,
    A.RECORD_SITE_NOTE,
    A.READ,
    A.STREAM,
    A.VERIFY,
    A.EXPORT,
    A.DOWNLOAD_EVIDENCE,
}
STAFF_ALLOWED = {
    A.RECORD_SAMPLE,
    A.RECORD_SITE_NOTE,
    A.HAND_OFF_CUSTODY,
    A.RECORD_LAB_RESULT,
    A.CONFIRM_RESULT,
    A.READ,
    A.VERIFY,
}
MANAGER_ALLOWED = {
    A.OPEN_CASE,
    A.ADD_EVIDENCE,
    A.FILE_CASE,
    A.SERVE_NOTICE,
    A.REQUEST_HEARING,
    A.SCHEDULE_HEARING,
    A.RECORD_HEARING,
    A.DECIDE_PENALTY,
    A.SERVE_DECISION,
    A.RECORD_ENFORCEMENT,
    A.TRANSFER_CASE,
    A.CLOSE_CASE,
    A.EXTEND_CLOCK,
    A.PAUSE_CLOCK,
    A.RESUME_CLOCK,
    A.UPDATE_TEAM,
    A.READ,
    A.STREAM,
    A.VERIFY,
    A.EXPORT,
    A.DOWNLOAD_EVIDENCE,
}
ADMIN_ALLOWED = {A.OPEN_CASE, A.READ, A.STREAM, A.VERIFY, A.EXPORT, A.DOWNLOAD_EVIDENCE}
SERVICE_ALLOWED = ADMIN_ALLOWED | {A.UPDATE_TEAM}
# a service acting for a person: the field records that person may do and the evidence they
# may download themselves (monitoring staff see samples only), nothing else
# the phone API passes an officer's field records on, and reads the case for them
FOR_OFFICER_ALLOWED = {
    A.RECORD_ARRIVAL,
    A.RECORD_SITE_NOTE,
    A.ADD_EVIDENCE,
    A.DOWNLOAD_EVIDENCE,
    A.RECORD_INSPECTION,
    A.HAND_OFF_CUSTODY,
    A.READ,
}
FOR_STAFF_ALLOWED = {
    A.RECORD_SITE_NOTE,
    A.RECORD_SAMPLE,
    A.HAND_OFF_CUSTODY,
    A.RECORD_LAB_RESULT,
    A.CONFIRM_RESULT,
    A.READ,
}
# a service acting for a manager: reads within the manager's jurisdiction (the console: the
# case, its verification, its signed bundle) and passing on their cancellation of the case's
# task (dispatch), never a legal act
FOR_MANAGER_ALLOWED = {A.READ, A.VERIFY, A.EXPORT, A.RECORD_TASK_CANCELLED}

MATRIX = [
    (OFFICER, OFFICER_ALLOWED),
    (OTHER_OFFICER, set()),
    (STAFF, STAFF_ALLOWED),
    (OTHER_STAFF, set()),
    (MANAGER, MANAGER_ALLOWED),
    (FAR_MANAGER, set()),
    (ADMIN, ADMIN_ALLOWED),
    (SERVICE, SERVICE_ALLOWED),
    (for_person(OFFICER), FOR_OFFICER_ALLOWED),
    (for_person(STAFF), FOR_STAFF_ALLOWED),
    (for_person(OTHER_OFFICER), set()),  # not on the team
    (for_person(MANAGER), FOR_MANAGER_ALLOWED),  # reads only, never a legal act
    (for_person(FAR_MANAGER), set()),  # outside the manager's jurisdiction
    (for_person(OFFICER, ADMIN), set()),  # only a trusted service acts for someone
    (for_person(Principal("o1", frozenset())), set()),  # on the team, but no role named
    (for_person(Principal("m1", frozenset({Role.ENFORCEMENT_OFFICER}))), set()),  # wrong role
]


@pytest.mark.parametrize(("principal", "allowed"), MATRIX, ids=lambda x: getattr(x, "key", ""))
def test_access_matrix(principal: Principal, allowed: set[Action]) -> None:
    for action in Action:
        if action is Action.LIST:
            continue
        decision = authorize(principal, action, CASE)
        assert decision.allowed is (action in allowed), (principal.subject, action)
        assert decision.reason


def test_denial_reasons() -> None:
    assert authorize(OTHER_OFFICER, A.READ, CASE).reason == (
        "o9 is not an enforcement officer on case C1"
    )
    assert authorize(FAR_MANAGER, A.READ, CASE).reason == (
        "county 320583 is outside mgr2's jurisdiction"
    )
    assert (
        "monitoring staff handle samples and results only"
        in authorize(STAFF, A.FILE_CASE, CASE).reason
    )
    assert authorize(ADMIN, A.DECIDE_PENALTY, CASE).reason == (
        "platform operators perform no legal acts on a case"
    )
    assert authorize(Principal("x", frozenset()), A.READ, CASE).reason == "x has no role"


def test_scopes() -> None:
    assert authorize(STAFF, A.READ, CASE).scope is Scope.SAMPLES_AND_RESULTS
    assert authorize(OFFICER, A.READ, CASE).scope is Scope.FULL
    assert authorize(OFFICER, A.LIST, None).scope is Scope.OWN_CASES
    assert authorize(STAFF, A.LIST, None).scope is Scope.OWN_CASES
    assert authorize(MANAGER, A.LIST, None).scope is Scope.JURISDICTION
    assert authorize(ADMIN, A.LIST, None).scope is Scope.FULL
    assert not authorize(OFFICER, A.READ, None).allowed


def test_roles_combine_and_widest_scope_wins() -> None:
    both = Principal("m1", frozenset({Role.MONITORING_STAFF, Role.MANAGER}), ("32",))
    decision = authorize(both, A.READ, CASE)
    assert decision.allowed and decision.scope is Scope.FULL
    assert authorize(both, A.FILE_CASE, CASE).allowed


def test_jurisdiction_is_a_prefix_match() -> None:
    county = Principal("mgr", frozenset({Role.MANAGER}), ("320583",))
    assert authorize(county, A.READ, CASE).allowed
    sibling = Principal("mgr", frozenset({Role.MANAGER}), ("320584",))
    assert not authorize(sibling, A.READ, CASE).allowed
    empty = Principal("mgr", frozenset({Role.MANAGER}), ("",))
    assert not authorize(empty, A.READ, CASE).allowed


def test_action_for_command() -> None:
    assert Action.for_command(FileCase("x")) is Action.FILE_CASE
    assert Action.for_command(SAMPLE) is Action.RECORD_SAMPLE


def test_acting_for_someone_names_both_and_says_why() -> None:
    p = for_person(OFFICER)
    assert (p.actor, p.key) == ("o1", "dispatch>o1")
    assert (SERVICE.actor, SERVICE.key) == ("dispatch", "dispatch")
    allowed = authorize(p, A.RECORD_ARRIVAL, CASE)
    assert allowed.reason == "dispatch on behalf of o1: officer on case C1"
    assert allowed.scope is Scope.FULL
    assert authorize(for_person(OTHER_OFFICER), A.RECORD_ARRIVAL, CASE).reason == (
        "dispatch on behalf of o9: o9 is not on the team of C1"
    )
    assert authorize(p, A.RECORD_FINDING, CASE).reason == (
        "dispatch on behalf of o1: RecordFinding is not a field record passed on for them"
    )
    assert authorize(for_person(OFFICER, ADMIN), A.RECORD_ARRIVAL, CASE).reason == (
        "ops on behalf of o1: only a trusted service may act for someone"
    )


def test_the_team_is_changed_by_the_service_or_a_manager_of_the_county() -> None:
    assert authorize(SERVICE, A.UPDATE_TEAM, CASE).allowed
    assert authorize(MANAGER, A.UPDATE_TEAM, CASE).allowed
    assert not authorize(FAR_MANAGER, A.UPDATE_TEAM, CASE).allowed
    assert not authorize(ADMIN, A.UPDATE_TEAM, CASE).allowed
    assert not authorize(OFFICER, A.UPDATE_TEAM, CASE).allowed
    assert authorize(SERVICE, A.RECORD_ARRIVAL, CASE).reason == (
        "service dispatch performs no legal act in its own name"
    )


def test_a_task_cancellation_comes_only_from_a_service_acting_for_a_manager_of_the_county() -> None:
    cancel = Action.RECORD_TASK_CANCELLED
    assert authorize(for_person(MANAGER), cancel, CASE).allowed
    # in nobody's own name: only dispatch knows the task was cancelled, and by whom
    for principal in (MANAGER, SERVICE, ADMIN, OFFICER):
        assert not authorize(principal, cancel, CASE).allowed, principal.subject
    far = authorize(for_person(FAR_MANAGER), cancel, CASE)
    assert not far.allowed and "outside mgr2's jurisdiction" in far.reason
    officer = authorize(for_person(OFFICER), cancel, CASE)
    assert not officer.allowed and "cancelled by its duty manager" in officer.reason
    both = Principal("mgr", frozenset({Role.MANAGER, Role.ENFORCEMENT_OFFICER}), ("3205",))
    assert not authorize(for_person(both), cancel, CASE).allowed  # a manager, nothing more
    assert not authorize(for_person(MANAGER, ADMIN), cancel, CASE).allowed
    assert not authorize(for_person(MANAGER), cancel, None).allowed
