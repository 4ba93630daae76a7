"""How fast alarms were answered, from dispatch's own task state.

The stages are those of `liandong response-times` (liandong.response_times.STAGES), and the
aggregation (nearest-rank p50/p90, max, grouping) is that module's `summarise`: a task's
history becomes a `TaskTimeline` whose milestones are the first time each state was reached,
plus `raised`, the event time of the alert that opened the task (TaskMeta.alert_time, stamped
as `alert_time` on every dispatch event). Dispatch does not keep the alert's processing time,
which the CLI starts from, so here the dispatch stage also holds the alerts service's delay.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from dispatch.domain.sla import ClockName, SlaClocks
from dispatch.domain.tasks import Task, TaskEvent
from liandong.response_times import STAGES, TaskTimeline, group_of, summarise

GROUPINGS = ("county", "priority", "route", "all")
RAISED = "raised"


def timeline(task: Task, raised: datetime) -> TaskTimeline:
    """The task's milestones: `raised` and the first time each state was reached."""
    milestones = {RAISED: raised}
    for step in task.history:
        milestones.setdefault(step.to_state.value, step.at)
    return TaskTimeline(
        task.task_id,
        county=task.county_code,
        priority=task.priority.value,
        route=task.route.value,
        milestones=milestones,
    )


def stages_completed(task: Task, raised: datetime, step: TaskEvent) -> list[tuple[str, float]]:
    """The stages `step` completes, with their durations in seconds: those ending in the
    state it reached, if this is the first time the task reached it (else none)."""
    state = step.to_state.value
    first = next((h for h in task.history if h.to_state is step.to_state), None)
    if first is None or first.seq != step.seq:
        return []
    line = timeline(task, raised)
    done: list[tuple[str, float]] = []
    for stage, start, end in STAGES:
        seconds = line.duration(start, end) if end == state else None
        if seconds is not None:
            done.append((stage, seconds))
    return done


def breached(clocks: SlaClocks, now: datetime) -> list[ClockName]:
    """Clocks that breached: reported as such, or running past their due time (the tick that
    will report it may not have run yet)."""
    return [
        c.name
        for c in clocks.clocks.values()
        if c.breach_emitted or (c.stopped_at is None and now > c.due_at)
    ]


@dataclass(frozen=True)
class TaskFacts:
    """What the report needs of one task."""

    task: Task
    raised: datetime
    clocks: SlaClocks


@dataclass(frozen=True)
class StageStats:
    stage: str
    count: int
    p50_s: float | None
    p90_s: float | None
    max_s: float | None


@dataclass(frozen=True)
class GroupReport:
    group: str
    tasks: int
    open_tasks: int
    stages: tuple[StageStats, ...]  # every stage of STAGES, in order (count 0: no values)
    sla_breaches: dict[str, int]  # per clock (ACCEPT, ARRIVE, FINISH), zeros included


@dataclass(frozen=True)
class OpenTask:
    task_id: str
    county: str
    priority: str
    route: str
    state: str
    raised_at: datetime
    age_s: float  # from raised to now


@dataclass(frozen=True)
class ResponseReport:
    by: str
    since: datetime
    until: datetime
    generated_at: datetime
    groups: tuple[GroupReport, ...]
    slowest_open: tuple[OpenTask, ...]  # oldest first, across every group


def report(
    facts: Iterable[TaskFacts],
    by: str,
    since: datetime,
    until: datetime,
    now: datetime,
    slowest: int = 10,
) -> ResponseReport:
    """Tasks whose alarm was raised in [since, until), grouped `by` county, priority, route
    or all: task and open-task counts, each stage's count and p50/p90/max (seconds), SLA
    breaches per clock; and the `slowest` open tasks by age."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    chosen = [f for f in facts if since <= f.raised < until]
    lines = {f.task.task_id: timeline(f.task, f.raised) for f in chosen}
    members: dict[str, list[TaskFacts]] = {}
    for f in chosen:
        members.setdefault(group_of(lines[f.task.task_id], by), []).append(f)
    stats = {(s.group, s.stage): s for s in summarise(lines.values(), by)}
    groups = []
    for group in sorted(members):
        tasks = members[group]
        counted = Counter(name.value for f in tasks for name in breached(f.clocks, now))
        stages = []
        for stage, _, _ in STAGES:
            s = stats.get((group, stage))
            stages.append(
                StageStats(stage, s.count, s.p50_s, s.p90_s, s.max_s)
                if s is not None
                else StageStats(stage, 0, None, None, None)
            )
        groups.append(
            GroupReport(
                group,
                tasks=len(tasks),
                open_tasks=sum(1 for f in tasks if f.task.open),
                stages=tuple(stages),
                sla_breaches={c.value: counted.get(c.value, 0) for c in ClockName},
            )
        )
    waiting = sorted((f for f in chosen if f.task.open), key=lambda f: (f.raised, f.task.task_id))[
        :slowest
    ]
    return ResponseReport(
        by,
        since,
        until,
        now,
        tuple(groups),
        tuple(
            OpenTask(
                f.task.task_id,
                f.task.county_code,
                f.task.priority.value,
                f.task.route.value,
                f.task.state.value,
                f.raised,
                (now - f.raised).total_seconds(),
            )
            for f in waiting
        ),
    )
