from datetime import timedelta

from dispatch.domain.effects import SlaAtRisk, SlaBreach
from dispatch.domain.routes import Priority
from dispatch.domain.sla import ClockName, SlaClocks, SlaPolicy, sla_policy_from_dict
from dispatch.domain.tasks import TaskState
from tests.unit.dispatch.factories import NOW

POLICY = SlaPolicy()
MIN = timedelta(minutes=1)


def test_p2_accept_clock_at_risk_then_breach_once_each() -> None:
    c = SlaClocks.start("T", POLICY, Priority.P2, False, True, NOW)
    # P2 accept: 30 min; at risk at 80 % = 24 min
    assert [e for e in c.on_tick(NOW + 23 * MIN) if e.clock == "ACCEPT"] == []
    risk = c.on_tick(NOW + 24 * MIN)
    assert risk == [SlaAtRisk("T", "ACCEPT", NOW + 30 * MIN, NOW + 24 * MIN)]
    assert c.on_tick(NOW + 25 * MIN) == []
    breach = c.on_tick(NOW + 31 * MIN)
    assert breach == [SlaBreach("T", "ACCEPT", NOW + 30 * MIN, NOW + 31 * MIN)]
    assert c.on_tick(NOW + 40 * MIN) == []


def test_key_polluter_p1_arrive_two_hours() -> None:
    c = SlaClocks.start("T", POLICY, Priority.P1, True, True, NOW)
    assert c.clocks[ClockName.ARRIVE].due_at == NOW + timedelta(hours=2)
    assert c.clocks[ClockName.ACCEPT].due_at == NOW + 15 * MIN
    assert c.clocks[ClockName.FINISH].due_at == NOW + timedelta(hours=24)
    plain = SlaClocks.start("T", POLICY, Priority.P1, False, True, NOW)
    assert plain.clocks[ClockName.ARRIVE].due_at == NOW + timedelta(hours=4)


def test_no_arrive_clock_without_site_visit() -> None:
    c = SlaClocks.start("T", POLICY, Priority.P3, False, False, NOW)
    assert set(c.clocks) == {ClockName.ACCEPT, ClockName.FINISH}


def test_stop_in_time_never_breaches_and_late_stop_reports_once() -> None:
    c = SlaClocks.start("T", POLICY, Priority.P1, False, True, NOW)
    assert c.on_state(TaskState.ASSIGNED, NOW + 10 * MIN) == []
    assert all(e.clock != "ACCEPT" for e in c.on_tick(NOW + timedelta(hours=30)))
    late = SlaClocks.start("T", POLICY, Priority.P1, False, True, NOW)
    assert late.on_state(TaskState.ASSIGNED, NOW + 20 * MIN) == [
        SlaBreach("T", "ACCEPT", NOW + 15 * MIN, NOW + 20 * MIN)
    ]


def test_cancel_stops_all_clocks_silently() -> None:
    c = SlaClocks.start("T", POLICY, Priority.P1, False, True, NOW)
    assert c.on_state(TaskState.CANCELLED, NOW + timedelta(days=3)) == []
    assert c.on_tick(NOW + timedelta(days=4)) == []


def test_retarget_tightens_running_clock() -> None:
    c = SlaClocks.start("T", POLICY, Priority.P3, False, True, NOW)
    c.retarget(POLICY, Priority.P1, False, True)
    assert c.clocks[ClockName.ACCEPT].due_at == NOW + 15 * MIN
    assert c.clocks[ClockName.ACCEPT].at_risk_at == NOW + 12 * MIN


def test_configured_targets_and_fraction() -> None:
    p = sla_policy_from_dict({"targets": {"P2": {"accept_minutes": 10}}, "at_risk_fraction": 0.5})
    c = SlaClocks.start("T", p, Priority.P2, False, True, NOW)
    assert c.on_tick(NOW + 5 * MIN) == [SlaAtRisk("T", "ACCEPT", NOW + 10 * MIN, NOW + 5 * MIN)]
