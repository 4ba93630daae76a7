"""Response times for managers: how fast every alarm was answered, stage by stage.

Built only from the event streams (alerts.events, dispatch.events), so it needs no access to
any service's database and can be recomputed at any time from the retained topics. Dispatch's
own report (GET /v1/reports/response-times) builds the same timelines from its task state and
aggregates them with `summarise`, so both answer with the same stages and percentiles.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from liandong.events import from_timestamp
from liandong.v1 import alerts_pb2, dispatch_pb2

# (name, from milestone, to milestone): the stages a manager reads.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("dispatch", "raised", "CREATED"),
    ("acceptance", "CREATED", "ASSIGNED"),
    ("travel", "ASSIGNED", "ON_SITE"),
    ("response", "raised", "ON_SITE"),
    ("on site to done", "ON_SITE", "COMPLETED"),
    ("total", "raised", "COMPLETED"),
)


@dataclass
class TaskTimeline:
    task_id: str
    county: str = ""
    priority: str = ""
    route: str = ""  # not on dispatch.events: only dispatch's own report fills it
    milestones: dict[str, datetime] = field(default_factory=dict)
    breaches: set[str] = field(default_factory=set)

    def duration(self, start: str, end: str) -> float | None:
        a, b = self.milestones.get(start), self.milestones.get(end)
        return (b - a).total_seconds() if a is not None and b is not None else None

    @property
    def open(self) -> bool:
        return "COMPLETED" not in self.milestones and "CANCELLED" not in self.milestones


def timelines(
    alerts: Iterable[alerts_pb2.AlertEvent], dispatch: Iterable[dispatch_pb2.DispatchEvent]
) -> list[TaskTimeline]:
    """One timeline per task; redelivered events (same event id) count once."""
    raised: dict[str, datetime] = {}
    for alert in alerts:
        if alert.change == alerts_pb2.ALERT_CHANGE_OPENED:
            at = from_timestamp(alert.meta.processing_time)
            raised[alert.alert_id] = min(at, raised.get(alert.alert_id, at))
    seen: set[str] = set()
    tasks: dict[str, TaskTimeline] = {}
    for event in dispatch:
        if not event.task_id or event.meta.event_id in seen:
            continue
        seen.add(event.meta.event_id)
        task = tasks.setdefault(event.task_id, TaskTimeline(event.task_id))
        task.county = event.county or task.county
        task.priority = event.priority or task.priority
        at = from_timestamp(event.meta.event_time)
        marks = [event.status] if event.status else []
        if event.kind == "TASK_CREATED":
            marks.append("CREATED")
        for mark in marks:
            if mark not in task.milestones or at < task.milestones[mark]:
                task.milestones[mark] = at
        if event.kind == "SLA_BREACHED":
            task.breaches.add(event.note or "sla")
        first_alert = next((raised[a] for a in event.alert_ids if a in raised), None)
        if first_alert is not None:
            current = task.milestones.get("raised")
            task.milestones["raised"] = min(first_alert, current) if current else first_alert
    return sorted(tasks.values(), key=lambda t: t.task_id)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class StageSummary:
    group: str
    stage: str
    count: int
    p50_s: float
    p90_s: float
    max_s: float


def group_of(task: TaskTimeline, by: str) -> str:
    """The task's group when grouping `by` county, priority or route; anything else: "all"."""
    return {"county": task.county, "priority": task.priority, "route": task.route}.get(by, "all")


def summarise(tasks: Iterable[TaskTimeline], by: str = "county") -> list[StageSummary]:
    """Per group (county, priority, route or all) and stage: count and p50/p90/max in seconds."""
    grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
    for task in tasks:
        group = group_of(task, by)
        for stage, start, end in STAGES:
            seconds = task.duration(start, end)
            if seconds is not None:
                grouped[(group, stage)].append(seconds)
    order = {name: i for i, (name, _, _) in enumerate(STAGES)}
    return [
        StageSummary(group, stage, len(v), percentile(v, 50), percentile(v, 90), max(v))
        for (group, stage), v in sorted(grouped.items(), key=lambda kv: (kv[0][0], order[kv[0][1]]))
    ]
