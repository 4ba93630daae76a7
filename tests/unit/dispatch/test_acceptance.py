from datetime import timedelta

import pytest

from dispatch.domain.acceptance import NotOffered
from dispatch.domain.alerts import Severity
from dispatch.domain.dispatcher import Dispatcher
from dispatch.domain.effects import Escalate, Notify, Reassign, Remind
from dispatch.domain.policy import DispatchPolicy
from dispatch.domain.roster import Role
from dispatch.domain.tasks import TaskState, task_id_for
from tests.unit.dispatch.factories import NOW, person, roster, signal

E, M = Role.ENFORCEMENT, Role.MONITORING
MIN = timedelta(minutes=1)
TASK = task_id_for("A1")


def dispatcher(*extra_people) -> Dispatcher:
    people = [
        person("e1", E, north=0.01),
        person("e2", E, north=0.02),
        person("m1", M, north=0.01),
        person("dm", Role.DUTY_MANAGER),
        *extra_people,
    ]
    d = Dispatcher(DispatchPolicy(version="t"), roster(*people))
    d.on_alert(signal("A1", severity=Severity.HIGH), NOW)
    return d


def offers(effects) -> list[str]:
    return sorted(e.person_id for e in effects if isinstance(e, Notify) and e.kind == "offer")


def test_task_assigned_only_when_every_slot_accepted() -> None:
    d = dispatcher()
    task = d.state.tasks[TASK]
    assert task.state is TaskState.ASSIGNING
    assert d.on_accept(TASK, "e1", NOW + MIN) == []
    assert d.on_accept(TASK, "e1", NOW + MIN) == []  # repeated tap
    d.on_accept(TASK, "m1", NOW + MIN)
    assert task.state is TaskState.ASSIGNING
    effects = d.on_accept(TASK, "e2", NOW + 2 * MIN)
    assert task.state is TaskState.ASSIGNED
    assert task.history[-1].actor == "e2"
    confirmed = sorted(e.person_id for e in effects if isinstance(e, Notify))
    assert confirmed == ["e1", "e2", "m1"]


def test_decline_moves_slot_to_next_candidate() -> None:
    d = dispatcher(person("e3", E, north=0.03))
    effects = d.on_decline(TASK, "e2", "in court", NOW + MIN)
    reassign = [e for e in effects if isinstance(e, Reassign)]
    assert len(reassign) == 1 and reassign[0].slot_id == "ENFORCEMENT#2"
    assert "e2" in reassign[0].exclude
    assert offers(effects) == ["e3"]
    assert d.state.acceptance[TASK].refused["e2"] == "declined: in court"
    assert d.state.loads.get("e2", 0) == 0


def test_no_answer_within_timeout_moves_to_next_and_reminders_before() -> None:
    d = dispatcher(person("e3", E, north=0.03), person("m2", M, north=0.05))
    d.on_accept(TASK, "e1", NOW)
    at2 = d.on_tick(NOW + 2 * MIN)
    assert sorted((e.person_id, e.count) for e in at2 if isinstance(e, Remind)) == [
        ("e2", 1),
        ("m1", 1),
    ]
    assert [e for e in d.on_tick(NOW + 3 * MIN) if isinstance(e, Remind)] == []
    at4 = d.on_tick(NOW + 4 * MIN)
    assert sorted((e.person_id, e.count) for e in at4 if isinstance(e, Remind)) == [
        ("e2", 2),
        ("m1", 2),
    ]
    at5 = d.on_tick(NOW + 5 * MIN)
    assert offers(at5) == ["e3", "m2"]
    assert set(d.state.acceptance[TASK].refused) == {"e2", "m1"}
    with pytest.raises(NotOffered):
        d.on_accept(TASK, "e2", NOW + 6 * MIN)  # too late, the slot moved on


def test_timeout_configurable_per_priority() -> None:
    from dispatch.domain.policy import policy_from_dict

    policy = policy_from_dict({"version": "t", "acceptance": {"timeout_minutes": {"P2": 3}}})
    d = Dispatcher(policy, roster(person("e1", E), person("e2", E), person("m1", M)))
    d.on_alert(signal("A1", severity=Severity.HIGH), NOW)
    assert any(isinstance(e, Reassign) for e in d.on_tick(NOW + 3 * MIN))


def test_no_candidate_left_escalates_to_duty_manager_once() -> None:
    d = dispatcher()
    effects = d.on_decline(TASK, "m1", "sick", NOW + MIN)
    esc = [e for e in effects if isinstance(e, Escalate)]
    assert len(esc) == 1
    assert esc[0].manager_id == "dm" and "MONITORING#1" in esc[0].reason
    # retried after 10 min, still nobody: no second escalation for the slot
    later = d.on_tick(NOW + 11 * MIN)
    assert any(isinstance(e, Reassign) and e.slot_id == "MONITORING#1" for e in later)
    assert not [e for e in later if isinstance(e, Escalate) and "MONITORING#1" in e.reason]


def test_unfilled_slot_filled_on_retry_when_someone_comes_on_duty() -> None:
    d = dispatcher()
    d.on_decline(TASK, "m1", "sick", NOW + MIN)
    d.set_roster(roster(*d.roster.people, person("m9", M, north=0.2)))
    assert offers(d.on_tick(NOW + 11 * MIN)) == ["m9"]


def test_accept_by_stranger_rejected() -> None:
    d = dispatcher()
    with pytest.raises(NotOffered):
        d.on_accept(TASK, "nobody", NOW)


def test_no_answer_in_time_releases_the_silent_persons_load() -> None:
    d = dispatcher(person("e3", E, north=0.03))
    assert d.state.loads == {"e1": 1, "e2": 1, "m1": 1}
    d.on_accept(TASK, "e1", NOW)
    d.on_accept(TASK, "m1", NOW)
    effects = d.on_tick(NOW + 5 * MIN)  # e2 said nothing for the 5 min allowed
    assert offers(effects) == ["e3"]
    # e2 holds nothing on this task any more; e3 took the slot over
    assert d.state.loads == {"e1": 1, "m1": 1, "e3": 1}


def test_decline_then_timeout_of_the_replacement_keeps_loads_exact() -> None:
    d = dispatcher(person("e3", E, north=0.03), person("e4", E, north=0.04))
    d.on_accept(TASK, "e1", NOW)
    d.on_accept(TASK, "m1", NOW)
    d.on_decline(TASK, "e2", "in court", NOW + MIN)  # e3 offered at NOW+1
    d.on_tick(NOW + 6 * MIN)  # e3 silent for 5 min: e4 offered
    assert d.state.acceptance[TASK].members() == ("e1", "e4", "m1")
    assert d.state.loads == {"e1": 1, "e4": 1, "m1": 1}
    d.on_accept(TASK, "e4", NOW + 7 * MIN)
    manager = d.state.acceptance[TASK].manager_id or ""
    d.on_status(TASK, manager, TaskState.CANCELLED, None, NOW + 8 * MIN, "duplicate")
    assert d.state.loads == {}
