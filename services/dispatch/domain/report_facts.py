"""One flat row of facts per task, kept beside its snapshot, so managers' reports are indexed
SQL over small columns instead of loading and replaying every task on each request.

Stage durations are the milestones of `response_times.timeline` (first time each state was
reached, `raised` = the opening alert's event time); the report's stages are those of
`liandong.response_times.STAGES` plus the two parts of the time on site a joint inspection
has (on site until sampling starts, sampling until completion). Time buckets (day, ISO week,
month) are local China Standard Time days, the days managers report in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dispatch.domain.response_times import timeline
from dispatch.domain.sla import ClockName, SlaClocks
from dispatch.domain.tasks import Task
from liandong.response_times import STAGES

CST = timezone(timedelta(hours=8), "CST")

# (stage, from milestone, to milestone, column): the order the report and the console use
REPORT_STAGES: tuple[tuple[str, str, str, str], ...] = (
    ("dispatch", *STAGES[0][1:], "dispatch_s"),
    ("acceptance", *STAGES[1][1:], "acceptance_s"),
    ("travel", *STAGES[2][1:], "travel_s"),
    ("response", *STAGES[3][1:], "response_s"),
    ("on site", "ON_SITE", "SAMPLING", "on_site_s"),
    ("sampling", "SAMPLING", "COMPLETED", "sampling_s"),
    ("on site to done", *STAGES[4][1:], "on_site_to_done_s"),
    ("total", *STAGES[5][1:], "total_s"),
)
BUCKETS = ("day", "week", "month")


def buckets(moment: datetime) -> dict[str, str]:
    """The day, ISO week (its Monday) and month a moment falls in, in China Standard Time."""
    local = moment.astimezone(CST)
    monday = local.date() - timedelta(days=local.weekday())
    return {
        "day": local.date().isoformat(),
        "week": monday.isoformat(),
        "month": f"{local.year:04d}-{local.month:02d}",
    }


def local_midnight(moment: datetime, days_back: int = 0) -> datetime:
    """Midnight (CST) of the day `moment` falls in, `days_back` days earlier."""
    local = moment.astimezone(CST)
    return datetime(local.year, local.month, local.day, tzinfo=CST) - timedelta(days=days_back)


@dataclass(frozen=True)
class TaskFact:
    task_id: str
    county: str
    priority: str
    route: str
    state: str
    is_open: bool
    alert_kind: str
    enterprise_id: str
    outlet_id: str
    case_id: str
    raised_at: datetime
    day: str
    week: str
    month: str
    durations: dict[str, float | None]  # column -> seconds
    clock_due: dict[str, datetime | None]  # ACCEPT/ARRIVE/FINISH -> due while running
    clock_breached: dict[str, bool]  # reported breached


def task_fact(
    task: Task, raised: datetime, clocks: SlaClocks, alert_kind: str, case_id: str
) -> TaskFact:
    line = timeline(task, raised)
    due: dict[str, datetime | None] = {}
    breached: dict[str, bool] = {}
    for name in ClockName:
        c = clocks.clocks.get(name)
        due[name.value] = c.due_at if c is not None and c.stopped_at is None else None
        breached[name.value] = bool(c is not None and c.breach_emitted)
    return TaskFact(
        task_id=task.task_id,
        county=task.county_code,
        priority=task.priority.value,
        route=task.route.value,
        state=task.state.value,
        is_open=task.open,
        alert_kind=alert_kind,
        enterprise_id=task.enterprise_id,
        outlet_id=task.outlet_id,
        case_id=case_id,
        raised_at=raised,
        durations={col: line.duration(a, b) for _, a, b, col in REPORT_STAGES},
        clock_due=due,
        clock_breached=breached,
        **buckets(raised),
    )
