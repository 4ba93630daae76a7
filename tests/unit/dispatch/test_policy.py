from datetime import timedelta

import pytest

from dispatch.domain.alerts import AlertChange, Severity
from dispatch.domain.decision import (
    AttachToTask,
    CloseOrNote,
    CreateTask,
    Ignored,
    Inhibited,
    Suppressed,
)
from dispatch.domain.marks import DataMark
from dispatch.domain.policy import ActiveFault, DispatchPolicy, decide, policy_from_dict
from dispatch.domain.routes import Priority, Route
from dispatch.domain.tasks import TaskState, new_task
from tests.unit.dispatch.factories import COUNTY, NOW, signal

POLICY = DispatchPolicy(version="2026.1")


def open_task(alert_id: str, route: Route, created_ago: timedelta, enterprise: str = "E1"):
    task, _ = new_task(
        alert_id, route, Priority.P2, enterprise, "O9", COUNTY, 32.0, 118.8, NOW - created_ago
    )
    return task


@pytest.mark.parametrize(
    ("kind", "severity", "route"),
    [
        ("EXCEEDANCE", Severity.CRITICAL, Route.JOINT_INSPECTION),
        ("EXCEEDANCE", Severity.MEDIUM, Route.JOINT_INSPECTION),
        ("EXCEEDANCE", Severity.LOW, Route.DESK_REVIEW),
        ("PREWARNING", Severity.HIGH, Route.DESK_REVIEW),
        ("DEVICE_FAULT", Severity.HIGH, Route.OPERATIONS),
        ("OFFLINE", Severity.LOW, Route.OPERATIONS),
        ("OVER_RANGE", Severity.MEDIUM, Route.OPERATIONS),
        ("CONSTANT_VALUE", Severity.LOW, Route.JOINT_INSPECTION),
        ("ZERO_VALUE", Severity.MEDIUM, Route.JOINT_INSPECTION),
        ("DILUTION", Severity.HIGH, Route.JOINT_INSPECTION),
        ("PARAMETER_CHANGED", Severity.HIGH, Route.JOINT_INSPECTION),  # outside marks
        ("PARAMETER_CHANGED", Severity.MEDIUM, Route.DESK_REVIEW),  # under calibration
        ("some_new_kind", Severity.HIGH, Route.DESK_REVIEW),  # unknown kinds tolerated
    ],
)
def test_routing_table(kind: str, severity: Severity, route: Route) -> None:
    d = decide(POLICY, signal(kind=kind, severity=severity), [], [], [], NOW)
    assert isinstance(d, CreateTask)
    assert d.route is route
    assert d.policy_version == "2026.1"


def test_unknown_kind_ignored_when_no_default_route() -> None:
    policy = policy_from_dict({"version": "v2", "default_route": "IGNORE"})
    d = decide(policy, signal(kind="SATELLITE_HINT"), [], [], [], NOW)
    assert isinstance(d, Ignored)
    assert d.policy_version == "v2"


@pytest.mark.parametrize(
    ("severity", "kp", "rv", "expected"),
    [
        (Severity.CRITICAL, False, False, Priority.P1),
        (Severity.HIGH, False, False, Priority.P2),
        (Severity.HIGH, True, False, Priority.P1),
        (Severity.MEDIUM, False, True, Priority.P2),
        (Severity.MEDIUM, True, True, Priority.P1),
        (Severity.LOW, True, False, Priority.P3),
        (Severity.CRITICAL, True, True, Priority.P1),  # never past P1
    ],
)
def test_priority_raised_for_key_polluters_and_repeat_violators(
    severity: Severity, kp: bool, rv: bool, expected: Priority
) -> None:
    s = signal(kind="DILUTION", severity=severity, key_polluter=kp, repeat_violator=rv)
    d = decide(POLICY, s, [], [], [], NOW)
    assert isinstance(d, CreateTask)
    assert d.priority is expected


def test_grouping_window_attaches_within_two_hours() -> None:
    inside = open_task("A0", Route.JOINT_INSPECTION, timedelta(hours=1, minutes=59))
    d = decide(POLICY, signal("A1"), [inside], [], [], NOW)
    assert isinstance(d, AttachToTask)
    assert d.task_id == inside.task_id


def test_grouping_window_creates_after_two_hours() -> None:
    outside = open_task("A0", Route.JOINT_INSPECTION, timedelta(hours=2, minutes=1))
    assert isinstance(decide(POLICY, signal("A1"), [outside], [], [], NOW), CreateTask)


def test_grouping_needs_same_enterprise_and_route_and_open_task() -> None:
    other_enterprise = open_task("A0", Route.JOINT_INSPECTION, timedelta(minutes=10), "E2")
    other_route = open_task("A2", Route.OPERATIONS, timedelta(minutes=10))
    done = open_task("A3", Route.JOINT_INSPECTION, timedelta(minutes=10))
    done.state = TaskState.CANCELLED
    d = decide(POLICY, signal("A1"), [other_enterprise, other_route, done], [], [], NOW)
    assert isinstance(d, CreateTask)


def test_configured_grouping_window() -> None:
    policy = policy_from_dict({"version": "v3", "grouping_window_minutes": 30})
    t = open_task("A0", Route.JOINT_INSPECTION, timedelta(minutes=31))
    assert isinstance(decide(policy, signal("A1"), [t], [], [], NOW), CreateTask)


def test_device_fault_inhibits_exceedance_on_same_outlet() -> None:
    fault = ActiveFault("F1", "O1", "DEVICE_FAULT", NOW - timedelta(minutes=20))
    d = decide(POLICY, signal(outlet_id="O1"), [], [fault], [], NOW)
    assert isinstance(d, Inhibited)
    assert d.by_alert_id == "F1"
    assert "F1" in d.reason and "O1" in d.reason


def test_device_fault_elsewhere_or_tampering_kind_is_not_inhibited() -> None:
    fault = ActiveFault("F1", "O2", "DEVICE_FAULT", NOW)
    assert isinstance(decide(POLICY, signal(outlet_id="O1"), [], [fault], [], NOW), CreateTask)
    same_outlet = ActiveFault("F1", "O1", "DEVICE_FAULT", NOW)
    d = decide(POLICY, signal(kind="DILUTION", outlet_id="O1"), [], [same_outlet], [], NOW)
    assert isinstance(d, CreateTask)


def mark(start_ago: timedelta, end_in: timedelta, **kw: object) -> DataMark:
    base = dict(mark_id="M1", outlet_id="O1", category="maintenance")
    base.update(kw)
    return DataMark(start=NOW - start_ago, end=NOW + end_in, **base)  # type: ignore[arg-type]


def test_approved_mark_suppresses() -> None:
    m = mark(timedelta(hours=1), timedelta(hours=1))
    d = decide(POLICY, signal(), [], [], [m], NOW)
    assert isinstance(d, Suppressed)
    assert d.mark_id == "M1"
    assert "maintenance" in d.reason


@pytest.mark.parametrize(
    "m",
    [
        mark(timedelta(hours=2), -timedelta(hours=1)),  # ended an hour ago
        mark(timedelta(hours=1), timedelta(hours=1), approved=False),
        mark(timedelta(hours=1), timedelta(hours=1), factor="a21002"),  # other factor
        mark(timedelta(hours=1), timedelta(hours=1), outlet_id="O2"),
    ],
)
def test_marks_that_do_not_suppress(m: DataMark) -> None:
    assert isinstance(decide(POLICY, signal(factor="a21026"), [], [], [m], NOW), CreateTask)


def test_mark_never_hides_dilution() -> None:
    m = mark(timedelta(hours=1), timedelta(hours=1))
    assert isinstance(decide(POLICY, signal(kind="DILUTION"), [], [], [m], NOW), CreateTask)


def test_update_of_alert_on_task_attaches_and_clear_notes_or_closes() -> None:
    t = open_task("A1", Route.JOINT_INSPECTION, timedelta(minutes=5))
    up = decide(POLICY, signal("A1", change=AlertChange.ESCALATED), [t], [], [], NOW)
    assert isinstance(up, AttachToTask) and up.task_id == t.task_id
    cleared = decide(POLICY, signal("A1", change=AlertChange.CLEARED), [t], [], [], NOW)
    assert cleared == CloseOrNote(t.task_id, False, cleared.reason, "2026.1")

    ops = open_task("F1", Route.OPERATIONS, timedelta(minutes=5))
    d = decide(
        POLICY, signal("F1", kind="DEVICE_FAULT", change=AlertChange.CLEARED), [ops], [], [], NOW
    )
    assert isinstance(d, CloseOrNote) and d.close

    lone = decide(POLICY, signal("A7", change=AlertChange.CLEARED), [], [], [], NOW)
    assert isinstance(lone, Ignored)


def test_policy_from_dict_requires_version_and_reads_sections() -> None:
    with pytest.raises(ValueError):
        policy_from_dict({})
    p = policy_from_dict(
        {
            "version": "2026.2",
            "routing": [{"kinds": ["PREWARNING"], "route": "IGNORE"}],
            "severity_priority": {"HIGH": "P1"},
            "assignment": {"teams": {"JOINT_INSPECTION": [{"role": "enforcement", "count": 3}]}},
            "acceptance": {"timeout_minutes": {"P1": 3}},
            "sla": {"targets": {"P1": {"accept_minutes": 10}}},
            "geofence_m": 300,
        }
    )
    assert isinstance(decide(p, signal(kind="PREWARNING"), [], [], [], NOW), Ignored)
    d = decide(p, signal(kind="EXCEEDANCE", severity=Severity.HIGH), [], [], [], NOW)
    assert isinstance(d, CreateTask) and d.priority is Priority.P1
    assert d.route is Route.DESK_REVIEW  # routing replaced, default route applies
    assert p.assignment.teams[Route.JOINT_INSPECTION].slots[0].count == 3
    assert p.acceptance.timeout_for(Priority.P1) == timedelta(minutes=3)
    assert p.acceptance.timeout_for(Priority.P2) == timedelta(minutes=5)
    assert p.sla.targets[Priority.P1].accept == timedelta(minutes=10)
    assert p.sla.targets[Priority.P1].finish == timedelta(hours=24)
    assert p.geofence_m == 300


def test_the_shipped_policy_file_spells_out_the_built_in_defaults() -> None:
    import yaml

    from liandong.settings import ROOT

    doc = yaml.safe_load((ROOT / "deploy" / "dispatch" / "policy.yaml").read_text("utf-8"))
    shipped = policy_from_dict(doc)
    assert shipped == DispatchPolicy(version=shipped.version)
