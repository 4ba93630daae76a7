from datetime import timedelta

import pytest

from dispatch.domain.alerts import AlertChange, Severity
from dispatch.domain.decision import CreateTask, Inhibited
from dispatch.domain.dispatcher import Dispatcher, TooFewOfficersPresent
from dispatch.domain.effects import (
    AlertAttached,
    DecisionRecorded,
    Escalate,
    Notify,
    OpenCaseRequest,
    SlaAtRisk,
    TeamProposed,
)
from dispatch.domain.policy import DispatchPolicy
from dispatch.domain.roster import Role
from dispatch.domain.routes import Priority
from dispatch.domain.sla import ClockName
from dispatch.domain.status_rights import NotPermitted
from dispatch.domain.tasks import OutsideGeofence, TaskEvent, TaskState, task_id_for
from tests.unit.dispatch.factories import NOW, OUTLET, person, roster, signal

E, M, OPS = Role.ENFORCEMENT, Role.MONITORING, Role.OPERATIONS
MIN = timedelta(minutes=1)


def make() -> Dispatcher:
    r = roster(
        person("e1", E, north=0.01),
        person("e2", E, north=0.02),
        person("m1", M, north=0.01),
        person("o1", OPS),
        person("dm", Role.DUTY_MANAGER),
    )
    return Dispatcher(DispatchPolicy(version="2026.1"), r)


def test_new_alert_creates_task_team_and_case_request() -> None:
    d = make()
    effects = d.on_alert(signal("A1", severity=Severity.HIGH, key_polluter=True), NOW)
    decision = effects[0]
    assert isinstance(decision, DecisionRecorded) and isinstance(decision.decision, CreateTask)
    tid = task_id_for("A1")
    events = [e for e in effects if isinstance(e, TaskEvent)]
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, TaskState.CREATED),
        (TaskState.CREATED, TaskState.ASSIGNING),
    ]
    case = [e for e in effects if isinstance(e, OpenCaseRequest)]
    assert case == [OpenCaseRequest(tid, "E1", "O1", ("A1",), Priority.P1)]
    team = next(e for e in effects if isinstance(e, TeamProposed)).assignment
    assert team.person_ids() == ("e1", "e2", "m1")
    notified = [e.person_id for e in effects if isinstance(e, Notify)]
    assert notified == ["e1", "e2", "m1"]
    assert d.state.loads == {"e1": 1, "e2": 1, "m1": 1}


def test_same_event_twice_yields_nothing_new() -> None:
    d = make()
    s = signal("A1")
    assert d.on_alert(s, NOW)
    assert d.on_alert(s, NOW + MIN) == []
    assert len(d.state.tasks) == 1


def test_replayed_alert_with_new_event_id_attaches_not_duplicates() -> None:
    d = make()
    d.on_alert(signal("A1", event_id="ev-1"), NOW)
    effects = d.on_alert(signal("A1", event_id="ev-2"), NOW + MIN)
    assert len(d.state.tasks) == 1
    assert [e for e in effects if isinstance(e, AlertAttached)] == [
        AlertAttached(task_id_for("A1"), "A1", Priority.P2)
    ]


def test_second_alert_of_enterprise_joins_and_raises_priority() -> None:
    d = make()
    d.on_alert(signal("A1", severity=Severity.MEDIUM), NOW)  # P3
    effects = d.on_alert(signal("A2", severity=Severity.CRITICAL, outlet_id="O2"), NOW + 30 * MIN)
    task = d.state.tasks[task_id_for("A1")]
    assert task.alert_ids == ["A1", "A2"]
    assert task.priority is Priority.P1
    assert len(d.state.tasks) == 1
    assert AlertAttached(task.task_id, "A2", Priority.P1) in effects


def test_device_fault_then_exceedance_is_inhibited_until_cleared() -> None:
    d = make()
    d.on_alert(signal("F1", kind="DEVICE_FAULT", severity=Severity.MEDIUM), NOW)
    effects = d.on_alert(signal("A1"), NOW + MIN)
    decision = effects[0]
    assert isinstance(decision, DecisionRecorded) and isinstance(decision.decision, Inhibited)
    assert decision.decision.by_alert_id == "F1"
    assert len(d.state.tasks) == 1  # only the operations task
    cleared = d.on_alert(
        signal("F1", kind="DEVICE_FAULT", change=AlertChange.CLEARED), NOW + 2 * MIN
    )
    ops = d.state.tasks[task_id_for("F1")]
    assert ops.state is TaskState.CANCELLED  # cleared before anyone left
    assert Notify(ops.task_id, "o1", "cancelled") in cleared
    assert d.state.loads.get("o1", 0) == 0
    again = d.on_alert(signal("A1", event_id="A1:again", change=AlertChange.UPDATED), NOW + 3 * MIN)
    assert isinstance(again[0], DecisionRecorded) and isinstance(again[0].decision, CreateTask)


def test_full_lifecycle_through_phones() -> None:
    d = make()
    d.on_alert(signal("A1"), NOW)
    tid = task_id_for("A1")
    for p in ("e1", "e2", "m1"):
        d.on_accept(tid, p, NOW + MIN)
    d.on_status(tid, "e1", TaskState.EN_ROUTE, None, NOW + 2 * MIN)
    with pytest.raises(OutsideGeofence):
        d.on_status(tid, "e1", TaskState.ON_SITE, (OUTLET[0] + 0.01, OUTLET[1]), NOW + 30 * MIN)
    d.on_status(tid, "e1", TaskState.ON_SITE, OUTLET, NOW + 31 * MIN)
    d.on_status(tid, "m1", TaskState.SAMPLING, OUTLET, NOW + 40 * MIN)
    with pytest.raises(NotPermitted):
        d.on_status(tid, "o1", TaskState.COMPLETED, None, NOW + 50 * MIN)
    # one officer checked in: the case has no arrival yet, so the inspection cannot end
    with pytest.raises(TooFewOfficersPresent, match=r"checked in: e1\)"):
        d.on_status(tid, "e1", TaskState.COMPLETED, None, NOW + 60 * MIN)
    d.on_status(tid, "e2", TaskState.ON_SITE, OUTLET, NOW + 61 * MIN)
    d.on_status(tid, "e2", TaskState.COMPLETED, None, NOW + 90 * MIN)
    task = d.state.tasks[tid]
    assert [e.to_state for e in task.history][-4:] == [
        TaskState.EN_ROUTE, TaskState.ON_SITE, TaskState.SAMPLING, TaskState.COMPLETED
    ]  # fmt: skip
    assert d.state.loads == {}
    assert all(c.stopped_at is not None for c in d.state.clocks[tid].clocks.values())
    assert d.on_tick(NOW + timedelta(days=10)) == []


def test_a_joint_inspection_is_checked_in_by_its_enforcement_officers() -> None:
    d = make()
    d.on_alert(signal("A1"), NOW)
    tid = task_id_for("A1")
    for p in ("e1", "e2", "m1"):
        d.on_accept(tid, p, NOW + MIN)
    d.on_status(tid, "m1", TaskState.EN_ROUTE, None, NOW + 2 * MIN)
    # the monitoring staff member arrives first: recorded as present, but the task stays
    # EN_ROUTE and the clock runs on
    assert [
        type(e).__name__ for e in d.on_status(tid, "m1", TaskState.ON_SITE, OUTLET, NOW + 20 * MIN)
    ] == ["CheckedIn"]
    task = d.state.tasks[tid]
    assert task.state is TaskState.EN_ROUTE
    assert d.state.clocks[tid].clocks[ClockName.ARRIVE].stopped_at is None
    effects = d.on_status(tid, "e2", TaskState.ON_SITE, OUTLET, NOW + 25 * MIN)
    assert task.state is TaskState.ON_SITE and effects[0].actor == "e2"
    assert d.state.clocks[tid].clocks[ClockName.ARRIVE].stopped_at == NOW + 25 * MIN
    # from then on the monitoring staff move the task on (sampling) as before
    d.on_status(tid, "m1", TaskState.SAMPLING, OUTLET, NOW + 40 * MIN)
    assert task.state is TaskState.SAMPLING


def test_sla_at_risk_escalates_to_duty_manager_once() -> None:
    d = make()
    d.on_alert(signal("A1", severity=Severity.HIGH), NOW)  # P2: accept within 30 min
    tid = task_id_for("A1")
    for p in ("e1", "e2", "m1"):
        d.on_accept(tid, p, NOW)
    effects = d.on_tick(NOW + timedelta(hours=6, minutes=24))  # 80 % of the 8 h arrive clock
    assert [e for e in effects if isinstance(e, SlaAtRisk)] == [
        SlaAtRisk(tid, "ARRIVE", NOW + timedelta(hours=8), NOW + timedelta(hours=6, minutes=24))
    ]
    esc = [e for e in effects if isinstance(e, Escalate)]
    assert len(esc) == 1 and esc[0].manager_id == "dm" and "ARRIVE" in esc[0].reason
    assert d.on_tick(NOW + timedelta(hours=6, minutes=30)) == []
