"""Dispatch's response-time report over hand-built tasks with known timestamps.

Expected values are worked out by hand in the comments (nearest-rank percentiles: the
ceil(q/100 * n)-th smallest value)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.domain.response_times import TaskFacts, report, stages_completed, timeline
from dispatch.domain.routes import Priority, Route
from dispatch.domain.sla import SlaClocks, SlaPolicy
from dispatch.domain.tasks import Task, TaskState, new_task

T = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
SITE = (32.0, 118.8)
S = TaskState


def minutes(m: float) -> datetime:
    return T + timedelta(minutes=m)


def build(
    alert: str,
    route: Route,
    priority: Priority,
    county: str,
    raised: float,
    steps: list[tuple[TaskState, float]],
) -> TaskFacts:
    """A task created at the first step's minute, moved through `steps`, with its clocks."""
    created = minutes(steps[0][1])
    task, _ = new_task(alert, route, priority, "E", "O", county, *SITE, created)
    clocks = SlaClocks.start(task.task_id, SlaPolicy(), priority, False, True, created)
    for state, m in steps[1:]:
        task.transition(state, "x", minutes(m), position=SITE)
        clocks.on_state(state, minutes(m))
    return TaskFacts(task, minutes(raised), clocks)


def done() -> TaskFacts:
    """Raised 10 min before its creation, team in 20 min, on site 50 min later, done 2 h on."""
    return build(
        "A", Route.JOINT_INSPECTION, Priority.P2, "320106", -10,
        [(S.CREATED, 0), (S.ASSIGNING, 0), (S.ASSIGNED, 20), (S.EN_ROUTE, 30),
         (S.ON_SITE, 70), (S.SAMPLING, 80), (S.COMPLETED, 190)],
    )  # fmt: skip


def late() -> TaskFacts:
    """P1, still on its way: accepted in 30 min (ACCEPT allows 15), ARRIVE (4 h) runs past due."""
    return build(
        "B", Route.OPERATIONS, Priority.P1, "320115", 0,
        [(S.CREATED, 2), (S.ASSIGNING, 2), (S.ASSIGNED, 32), (S.EN_ROUTE, 40)],
    )  # fmt: skip


def cancelled() -> TaskFacts:
    return build(
        "C", Route.JOINT_INSPECTION, Priority.P2, "320106", 60,
        [(S.CREATED, 61), (S.ASSIGNING, 61), (S.CANCELLED, 100)],
    )  # fmt: skip


def outside(raised: float) -> TaskFacts:
    return build(
        f"X{raised}", Route.DESK_REVIEW, Priority.P4, "320106", raised,
        [(S.CREATED, raised), (S.ASSIGNING, raised)],
    )  # fmt: skip


NOW = minutes(360)
SINCE, UNTIL = minutes(-24 * 60), minutes(24 * 60)


def stages(group) -> dict[str, tuple[int, float | None, float | None, float | None]]:
    return {s.stage: (s.count, s.p50_s, s.p90_s, s.max_s) for s in group.stages}


def test_report_over_a_done_an_open_and_a_cancelled_task() -> None:
    facts = [done(), late(), cancelled(), outside(-2 * 24 * 60), outside(24 * 60)]
    r = report(facts, "all", SINCE, UNTIL, NOW)
    (g,) = r.groups
    # the task raised two days ago and the one raised exactly at `until` are left out
    assert (g.group, g.tasks, g.open_tasks) == ("all", 3, 1)
    assert stages(g) == {
        # 600 s, 120 s, 60 s: sorted 60, 120, 600; p50 is the 2nd, p90 the 3rd
        "dispatch": (3, 120.0, 600.0, 600.0),
        # 1200 s and 1800 s; the cancelled task never had its team
        "acceptance": (2, 1200.0, 1800.0, 1800.0),
        "travel": (1, 3000.0, 3000.0, 3000.0),  # ASSIGNED +20 -> ON_SITE +70
        "response": (1, 4800.0, 4800.0, 4800.0),  # raised -10 -> ON_SITE +70
        "on site to done": (1, 7200.0, 7200.0, 7200.0),
        "total": (1, 12000.0, 12000.0, 12000.0),  # raised -10 -> COMPLETED +190
    }
    # B: ACCEPT stopped 15 min late; ARRIVE due at +242, running at +360
    assert g.sla_breaches == {"ACCEPT": 1, "ARRIVE": 1, "FINISH": 0}
    (slow,) = r.slowest_open
    assert (slow.county, slow.priority, slow.route, slow.state) == (
        "320115",
        "P1",
        "OPERATIONS",
        "EN_ROUTE",
    )
    assert (slow.raised_at, slow.age_s) == (T, 6 * 3600.0)
    assert (r.by, r.since, r.until, r.generated_at) == ("all", SINCE, UNTIL, NOW)


def test_report_per_county_priority_and_route() -> None:
    facts = [done(), late(), cancelled()]
    by_county = {g.group: g for g in report(facts, "county", SINCE, UNTIL, NOW).groups}
    assert list(by_county) == ["320106", "320115"]
    nanjing = by_county["320106"]
    assert (nanjing.tasks, nanjing.open_tasks) == (2, 0)
    # 600 s and 60 s: p50 is the 1st, p90 the 2nd
    assert stages(nanjing)["dispatch"] == (2, 60.0, 600.0, 600.0)
    assert stages(nanjing)["travel"] == (1, 3000.0, 3000.0, 3000.0)
    assert nanjing.sla_breaches == {"ACCEPT": 0, "ARRIVE": 0, "FINISH": 0}
    county = by_county["320115"]
    assert stages(county)["travel"] == (0, None, None, None)
    assert stages(county)["acceptance"] == (1, 1800.0, 1800.0, 1800.0)
    by_priority = report(facts, "priority", SINCE, UNTIL, NOW).groups
    assert [(g.group, g.tasks) for g in by_priority] == [("P1", 1), ("P2", 2)]
    by_route = report(facts, "route", SINCE, UNTIL, NOW).groups
    assert [(g.group, g.tasks, g.open_tasks) for g in by_route] == [
        ("JOINT_INSPECTION", 2, 0),
        ("OPERATIONS", 1, 1),
    ]


def test_a_breach_the_tick_already_reported_counts_once() -> None:
    b = late()
    b.clocks.on_tick(NOW)  # reports the ARRIVE breach
    assert report([b], "all", SINCE, UNTIL, NOW).groups[0].sla_breaches["ARRIVE"] == 1
    # before ARRIVE was due nothing is counted for it
    early = report([late()], "all", SINCE, UNTIL, minutes(200)).groups[0]
    assert early.sla_breaches == {"ACCEPT": 1, "ARRIVE": 0, "FINISH": 0}


def test_the_ten_open_tasks_raised_longest_ago_oldest_first() -> None:
    facts = [outside(m) for m in range(12)]
    r = report(facts, "all", SINCE, UNTIL, NOW)
    assert [t.age_s for t in r.slowest_open] == [(360 - m) * 60.0 for m in range(10)]
    assert r.groups[0].open_tasks == 12


def test_empty_and_unknown_grouping() -> None:
    assert report([], "county", SINCE, UNTIL, NOW).groups == ()
    with pytest.raises(ValueError, match="by must be one of"):
        report([], "team", SINCE, UNTIL, NOW)


def test_stages_completed_by_each_step() -> None:
    f = done()
    completed = {h.to_state.value: stages_completed(f.task, f.raised, h) for h in f.task.history}
    assert completed == {
        "CREATED": [("dispatch", 600.0)],
        "ASSIGNING": [],
        "ASSIGNED": [("acceptance", 1200.0)],
        "EN_ROUTE": [],
        "ON_SITE": [("travel", 3000.0), ("response", 4800.0)],
        "SAMPLING": [],
        "COMPLETED": [("on site to done", 7200.0), ("total", 12000.0)],
    }


def test_timeline_keeps_the_first_time_a_state_was_reached() -> None:
    task: Task = done().task
    line = timeline(task, minutes(-10))
    assert line.milestones["raised"] == minutes(-10)
    assert line.milestones["ON_SITE"] == minutes(70)
    assert (line.county, line.priority, line.route) == ("320106", "P2", "JOINT_INSPECTION")
