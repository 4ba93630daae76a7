"""Per-person presence at a joint inspection: each member's own geofenced check-in.

Geometry (factories.py): the outlet is at (32.0, 118.8); 0.001 degree of latitude due north
is 6371008.8 m * 0.001 * pi / 180 = 111.195 m, 0.002 degree 222.390 m, 0.003 degree
333.585 m. The geofence is 500 m."""

from dataclasses import replace
from datetime import timedelta

import pytest

from dispatch.domain.assignment import AssignmentPolicy, SlotSpec, TeamSpec
from dispatch.domain.dispatcher import Dispatcher
from dispatch.domain.effects import ArrivalDue, CheckedIn, Effect
from dispatch.domain.policy import DispatchPolicy
from dispatch.domain.presence import CheckIn
from dispatch.domain.roster import Role
from dispatch.domain.routes import Route
from dispatch.domain.sla import ClockName
from dispatch.domain.status_rights import NotPermitted
from dispatch.domain.tasks import (
    IllegalTransition,
    OutsideGeofence,
    TaskEvent,
    TaskState,
    task_id_for,
)
from tests.unit.dispatch.factories import NOW, OUTLET, person, roster, signal

E, M = Role.ENFORCEMENT, Role.MONITORING
MIN = timedelta(minutes=1)
TID = task_id_for("A1")


def north(degrees: float) -> tuple[float, float]:
    return (OUTLET[0] + degrees, OUTLET[1])


def make(officers: int = 2) -> Dispatcher:
    """A joint inspection of `officers` enforcement officers and one monitoring staff member,
    accepted by all and en route."""
    people = [person(f"e{i}", E, north=0.01 * i) for i in range(1, officers + 1)]
    r = roster(*people, person("m1", M, north=0.01), person("dm", Role.DUTY_MANAGER))
    base = DispatchPolicy(version="2026.1")
    team = TeamSpec((SlotSpec(E, officers, "enforcement_cert"), SlotSpec(M, 1)))
    policy = replace(
        base,
        assignment=AssignmentPolicy(teams={**base.assignment.teams, Route.JOINT_INSPECTION: team}),
    )
    d = Dispatcher(policy, r)
    d.on_alert(signal("A1"), NOW)
    for p in d.state.acceptance[TID].members():
        d.on_accept(TID, p, NOW + MIN)
    d.on_status(TID, "e1", TaskState.EN_ROUTE, None, NOW + 2 * MIN)
    return d


def only(effects: list[Effect], kind: type) -> list:
    return [e for e in effects if isinstance(e, kind)]


def test_monitoring_staff_first_are_recorded_and_the_task_stays_en_route() -> None:
    d = make()
    effects = d.on_status(TID, "m1", TaskState.ON_SITE, north(0.002), NOW + 20 * MIN, "at gate")
    task = d.state.tasks[TID]
    assert task.state is TaskState.EN_ROUTE
    assert d.state.clocks[TID].clocks[ClockName.ARRIVE].stopped_at is None
    assert only(effects, TaskEvent) == [] and only(effects, ArrivalDue) == []
    (checked,) = only(effects, CheckedIn)
    assert checked.to_case is False  # no arrival yet: the note waits for it
    c = checked.check_in
    assert (c.person_id, c.role, c.at, c.position, c.note) == (
        "m1", M, NOW + 20 * MIN, north(0.002), "at gate"
    )  # fmt: skip
    assert c.distance_m == pytest.approx(222.39, abs=0.01)
    assert [p.person_id for p in task.presence.check_ins] == ["m1"]


def test_first_officer_puts_the_task_on_site_and_the_second_makes_the_arrival() -> None:
    d = make()
    d.on_status(TID, "m1", TaskState.ON_SITE, north(0.002), NOW + 20 * MIN)
    first = d.on_status(TID, "e2", TaskState.ON_SITE, north(0.001), NOW + 25 * MIN)
    task = d.state.tasks[TID]
    assert task.state is TaskState.ON_SITE
    (event,) = only(first, TaskEvent)
    assert (event.to_state, event.actor, event.at) == (TaskState.ON_SITE, "e2", NOW + 25 * MIN)
    assert d.state.clocks[TID].clocks[ClockName.ARRIVE].stopped_at == NOW + 25 * MIN
    # one officer is not an on-site inspection (执法人员不得少于两人): no arrival yet
    assert only(first, ArrivalDue) == []
    second = d.on_status(TID, "e1", TaskState.ON_SITE, north(0.003), NOW + 31 * MIN)
    assert only(second, TaskEvent) == []  # already ON_SITE
    (arrival,) = only(second, ArrivalDue)
    assert (arrival.at, arrival.officers_present, arrival.position, arrival.by) == (
        NOW + 31 * MIN, ("e2", "e1"), north(0.003), "e1"
    )  # fmt: skip
    assert [c.person_id for c in arrival.held] == ["m1", "e2", "e1"]
    # CREATED, ASSIGNING, ASSIGNED, EN_ROUTE, ON_SITE: the status notes up to seq 4 waited
    assert arrival.held_through_seq == 4
    assert task.presence.arrival_covers == 3


def test_arrival_names_only_officers_who_checked_in_not_the_accepted_list() -> None:
    d = make(officers=3)
    assert [m for m in d.state.acceptance[TID].members() if m.startswith("e")] == [
        "e1", "e2", "e3"
    ]  # fmt: skip
    d.on_status(TID, "m1", TaskState.ON_SITE, north(0.001), NOW + 20 * MIN)
    d.on_status(TID, "e3", TaskState.ON_SITE, north(0.001), NOW + 21 * MIN)
    (arrival,) = only(d.on_status(TID, "e1", TaskState.ON_SITE, OUTLET, NOW + 22 * MIN), ArrivalDue)
    assert arrival.officers_present == ("e3", "e1")  # e2 accepted but has not checked in
    # a later officer reaches the case as a site note of their own
    late = d.on_status(TID, "e2", TaskState.ON_SITE, north(0.002), NOW + 40 * MIN)
    assert only(late, ArrivalDue) == []
    (checked,) = only(late, CheckedIn)
    assert checked.to_case is True and checked.check_in.person_id == "e2"


def test_monitoring_staff_after_the_arrival_are_a_site_note() -> None:
    d = make()
    d.on_status(TID, "e1", TaskState.ON_SITE, OUTLET, NOW + 20 * MIN)
    d.on_status(TID, "e2", TaskState.ON_SITE, OUTLET, NOW + 21 * MIN)
    d.on_status(TID, "m1", TaskState.SAMPLING, OUTLET, NOW + 30 * MIN)
    effects = d.on_status(TID, "m1", TaskState.ON_SITE, north(0.001), NOW + 35 * MIN)
    (checked,) = only(effects, CheckedIn)
    assert (checked.to_case, checked.check_in.role) == (True, M)
    assert d.state.tasks[TID].state is TaskState.SAMPLING  # a check-in does not move it back


def test_a_second_check_in_by_the_same_person_records_nothing() -> None:
    d = make()
    d.on_status(TID, "e1", TaskState.ON_SITE, north(0.001), NOW + 20 * MIN)
    task = d.state.tasks[TID]
    before = (list(task.presence.check_ins), task.seq, len(task.history))
    # again, later and elsewhere (even outside the fence): the first check-in stands
    assert d.on_status(TID, "e1", TaskState.ON_SITE, north(0.002), NOW + 21 * MIN) == []
    assert d.on_status(TID, "e1", TaskState.ON_SITE, north(0.02), NOW + 22 * MIN) == []
    assert (list(task.presence.check_ins), task.seq, len(task.history)) == before
    assert task.presence.check_ins == [
        CheckIn("e1", E, NOW + 20 * MIN, north(0.001), task.presence.check_ins[0].distance_m)
    ]


def test_outside_the_fence_is_refused_and_nothing_recorded() -> None:
    d = make()
    # 0.005 degree north is 555.97 m from the outlet, beyond the 500 m fence
    with pytest.raises(OutsideGeofence) as refused:
        d.on_status(TID, "m1", TaskState.ON_SITE, north(0.005), NOW + 20 * MIN)
    assert refused.value.distance_m == pytest.approx(555.97, abs=0.01)
    with pytest.raises(OutsideGeofence):
        d.on_status(TID, "e1", TaskState.ON_SITE, None, NOW + 20 * MIN)
    assert d.state.tasks[TID].presence.check_ins == []
    assert d.state.tasks[TID].state is TaskState.EN_ROUTE


def test_only_team_members_check_in() -> None:
    d = make()
    manager = d.state.acceptance[TID].manager_id
    assert manager == "dm"
    for outsider in ("dm", "stranger"):  # the duty manager is not on the team either
        with pytest.raises(NotPermitted):
            d.on_status(TID, outsider, TaskState.ON_SITE, OUTLET, NOW + 20 * MIN)
    assert d.state.tasks[TID].presence.check_ins == []


def test_check_in_before_setting_off_or_after_the_end_is_refused() -> None:
    d = make()
    d.on_status(TID, "dm", TaskState.CANCELLED, None, NOW + 5 * MIN, "alarm withdrawn")
    with pytest.raises(IllegalTransition):
        d.on_status(TID, "e2", TaskState.ON_SITE, OUTLET, NOW + 20 * MIN)


def test_a_task_on_site_before_presence_was_kept_sends_later_check_ins_as_notes() -> None:
    d = make()
    d.on_status(TID, "e1", TaskState.ON_SITE, OUTLET, NOW + 20 * MIN)
    task = d.state.tasks[TID]
    task.presence.check_ins.clear()  # as an older version stored it: ON_SITE, no check-ins
    task.presence.arrival_covers = None
    assert task.arrival_asked()  # that version sent the arrival at its check-in
    effects = d.on_status(TID, "e2", TaskState.ON_SITE, OUTLET, NOW + 30 * MIN)
    assert only(effects, ArrivalDue) == []
    (checked,) = only(effects, CheckedIn)
    assert checked.to_case is True
