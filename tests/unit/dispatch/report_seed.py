"""Three weeks of tasks in two counties, with stage durations worked out by hand, for the
managers' console tests (API, exports, browser).

Every task is a P2 joint inspection raised at `raised` (CST); then, in minutes: created after
`d`, the whole team accepted `a` later, checked in on site `t` after that, sampling `o` after
the check-in, completed `s` after sampling began (None: the task stopped before). The rows are
stored through DispatchStore.commit, as a dispatcher step would.

  task  county  raised (CST)      d   a   t   o   s   response  total
  G1    320106  03-03 09:00       2  10  30  15  45      42      102
  G2    320106  03-10 14:00       1  20  40  10  30      61      101
  G3    320106  03-17 08:30       3   5  25  20  40      33       93
  G4    320106  03-20 08:00       2  15   -   -   -    (open, ASSIGNED)
  J1    320115  03-04 10:00       5  30  60  20  60      95      175
  J2    320115  03-12 16:00       4  25  50  10  50      79      139
  J3    320115  03-18 11:00       6  40  70  15  45     116      176
  J4    320115  03-20 09:00       5   -   -   -   -    (open, ASSIGNING)

Now is Friday 20 March 2026, 10:00 CST. Nearest-rank over the three completed tasks:
  320106 response p50 42 min (2520 s), p90 = max 61 min (3660 s); total p50 101 min (6060 s)
  320115 response p50 95 min (5700 s), p90 = max 116 min (6960 s); total p50 175 min (10500 s)
  320115 ACCEPT clock (30 min for P2): J3 accepted after 40 min, J4 unaccepted after 55 min:
  2 breaches; 320106 none. Ranking (fastest median response first): 320106, then 320115.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dispatch.adapters.report_store import Alarm
from dispatch.adapters.store import Changes, TaskMeta
from dispatch.domain.acceptance import AcceptanceState
from dispatch.domain.report_facts import CST
from dispatch.domain.routes import Priority, Route
from dispatch.domain.sla import SlaClocks, SlaPolicy
from dispatch.domain.tasks import TaskState, new_task
from dispatch.entrypoints.dispatch_service import DispatchService
from tests.unit.dispatch import harness
from tests.unit.dispatch.harness import Harness, build

NOW = datetime(2026, 3, 20, 10, 0, tzinfo=CST)
# duty managers on the roster: the province, and one per county
MANAGERS = (("boss", "省厅值班", "32"), ("gl", "鼓楼值班", "320106"), ("jn", "江宁值班", "320115"))
GULOU, JIANGNING = "320106", "320115"
OUTLETS = {
    GULOU: ("O1", "E1", 32.0, 118.8),  # the harness's outlet
    JIANGNING: ("OJ", "EJ", 31.9331, 118.842),
}


@dataclass(frozen=True)
class Seeded:
    name: str
    county: str
    raised: datetime
    minutes: tuple[int | None, ...]  # d, a, t, o, s
    kind: str = "EXCEEDANCE"


def at(month_day: str, hh_mm: str) -> datetime:
    m, d = (int(x) for x in month_day.split("-"))
    h, mi = (int(x) for x in hh_mm.split(":"))
    return datetime(2026, m, d, h, mi, tzinfo=CST)


TASKS = (
    Seeded("G1", GULOU, at("03-03", "09:00"), (2, 10, 30, 15, 45)),
    Seeded("G2", GULOU, at("03-10", "14:00"), (1, 20, 40, 10, 30), "ZERO_VALUE"),
    Seeded("G3", GULOU, at("03-17", "08:30"), (3, 5, 25, 20, 40)),
    Seeded("G4", GULOU, at("03-20", "08:00"), (2, 15, None, None, None)),
    Seeded("J1", JIANGNING, at("03-04", "10:00"), (5, 30, 60, 20, 60)),
    Seeded("J2", JIANGNING, at("03-12", "16:00"), (4, 25, 50, 10, 50)),
    Seeded("J3", JIANGNING, at("03-18", "11:00"), (6, 40, 70, 15, 45), "OFFLINE"),
    Seeded("J4", JIANGNING, at("03-20", "09:00"), (5, None, None, None, None)),
)


def entities() -> dict[str, dict[str, dict[str, Any]]]:
    """The harness registry plus a Jiangning enterprise and outlet."""
    e = harness.entities()
    e["enterprise"]["EJ"] = {"id": "EJ", "name": "江宁热电", "county": JIANGNING}
    e["outlet"]["OJ"] = {"id": "OJ", "enterprise": "EJ", "name": "1# 锅炉烟囱", "lat": 31.9331,
                         "lon": 118.842}  # fmt: skip
    for pid, name, county in MANAGERS:
        e["person"][pid] = harness.person(pid, "manager", 0.0, county=county, name=name)
    e["enterprise"]["E1"]["name"] = "鼓楼电厂"
    e["outlet"]["O1"]["name"] = "2# 排口"
    return e


def seeded_harness(tmp_path: Path, db_url: str | None = None) -> tuple[Harness, dict[str, str]]:
    """A dispatch harness whose registry has both counties and the managers (the roster is
    built when the service starts), holding TASKS; the clock stands at NOW."""
    first = build(tmp_path, db_url=db_url)
    first.reference.entities.update(entities())
    first.reference.changed()
    h = first.restart()
    h.clock.now = NOW
    return h, seed(h.service)


def seed(service: DispatchService, tasks: tuple[Seeded, ...] = TASKS) -> dict[str, str]:
    """Stores the tasks in the service (memory and database); returns name -> task id."""
    state = service.dispatcher.state
    ids: dict[str, str] = {}
    for spec in tasks:
        outlet, enterprise, lat, lon = OUTLETS[spec.county]
        d, a, t, o, s = spec.minutes
        created = spec.raised + timedelta(minutes=d or 0)
        task, _ = new_task(
            f"alert-{spec.name}", Route.JOINT_INSPECTION, Priority.P2, enterprise, outlet,
            spec.county, lat, lon, created,
        )  # fmt: skip
        clocks = SlaClocks.start(task.task_id, SlaPolicy(), Priority.P2, False, True, created)
        moment = created
        steps: list[tuple[TaskState, int | None]] = [(TaskState.ASSIGNING, 0)]
        steps += [(TaskState.ASSIGNED, a), (TaskState.EN_ROUTE, 0 if t is not None else None)]
        steps += [(TaskState.ON_SITE, t), (TaskState.SAMPLING, o), (TaskState.COMPLETED, s)]
        for to, minutes in steps:
            if minutes is None:
                break
            moment += timedelta(minutes=minutes)
            actor = "dispatch" if to in (TaskState.ASSIGNING, TaskState.ASSIGNED) else "e1"
            position = (lat, lon) if to is TaskState.ON_SITE else None
            task.transition(to, actor, moment, position)
            clocks.on_state(to, moment)
        clocks.on_tick(NOW)
        state.tasks[task.task_id] = task
        state.clocks[task.task_id] = clocks
        state.acceptance[task.task_id] = AcceptanceState(
            task.task_id, None, timedelta(minutes=10), timedelta(minutes=5),
            timedelta(minutes=10), [],
        )  # fmt: skip
        service.metas[task.task_id] = TaskMeta(
            alert_time=spec.raised,
            evidence={
                "alert_id": f"alert-{spec.name}",
                "kind": spec.kind,
                "explanation": f"{spec.name}: a21026 120 mg/m3 above limit 35",
            },
        )
        alarm = Alarm(f"alert-{spec.name}", spec.kind, "MAJOR", spec.county, outlet, spec.raised)
        service.store.commit(
            state, service.metas, Changes(tasks={task.task_id}, alarms=[alarm]), NOW
        )
        ids[spec.name] = task.task_id
    return ids
