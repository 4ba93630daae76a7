"""SLA clocks per task: accept, arrive, finish. Each emits "at risk" and "breached" once.

All clocks start when the task is created (the response is measured from dispatch, as the
managers see it). ACCEPT stops when the whole team has accepted (ASSIGNED), ARRIVE at the
geofenced check-in (ON_SITE), FINISH at COMPLETED; CANCELLED stops everything silently.
A clock stopped after its due time still reports its breach once.

Default targets (local policy, not statute; domain.md §4.1 cites 4 h feedback for key
polluters in Suzhou practice):

    priority  accept   arrive   arrive (key polluter)  finish
    P1        15 min   4 h      2 h                    24 h
    P2        30 min   8 h      4 h                    48 h
    P3        2 h      24 h     12 h                   72 h
    P4        8 h      72 h     48 h                   7 d

"At risk" fires when 80 % of a clock's allowance has elapsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from dispatch.domain.effects import Effect, SlaAtRisk, SlaBreach
from dispatch.domain.routes import Priority
from dispatch.domain.tasks import TaskState


class ClockName(StrEnum):
    ACCEPT = "ACCEPT"
    ARRIVE = "ARRIVE"
    FINISH = "FINISH"


_STOPS = {
    TaskState.ASSIGNED: (ClockName.ACCEPT,),
    TaskState.ON_SITE: (ClockName.ARRIVE,),
    TaskState.COMPLETED: (ClockName.ACCEPT, ClockName.ARRIVE, ClockName.FINISH),
}


@dataclass(frozen=True, slots=True)
class SlaTargets:
    accept: timedelta
    arrive: timedelta
    finish: timedelta


def _h(hours: float) -> timedelta:
    return timedelta(hours=hours)


DEFAULT_TARGETS: Mapping[Priority, SlaTargets] = {
    Priority.P1: SlaTargets(timedelta(minutes=15), _h(4), _h(24)),
    Priority.P2: SlaTargets(timedelta(minutes=30), _h(8), _h(48)),
    Priority.P3: SlaTargets(_h(2), _h(24), _h(72)),
    Priority.P4: SlaTargets(_h(8), _h(72), _h(168)),
}
DEFAULT_KEY_POLLUTER_ARRIVE: Mapping[Priority, timedelta] = {
    Priority.P1: _h(2),
    Priority.P2: _h(4),
    Priority.P3: _h(12),
    Priority.P4: _h(48),
}


@dataclass(frozen=True)
class SlaPolicy:
    targets: Mapping[Priority, SlaTargets] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    key_polluter_arrive: Mapping[Priority, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_KEY_POLLUTER_ARRIVE)
    )
    at_risk_fraction: float = 0.8

    def allowances(
        self, priority: Priority, key_polluter: bool, site_visit: bool
    ) -> dict[ClockName, timedelta]:
        t = self.targets[priority]
        out = {ClockName.ACCEPT: t.accept, ClockName.FINISH: t.finish}
        if site_visit:
            kp = self.key_polluter_arrive.get(priority) if key_polluter else None
            out[ClockName.ARRIVE] = min(t.arrive, kp) if kp is not None else t.arrive
        return out


def sla_policy_from_dict(raw: Mapping[str, Any]) -> SlaPolicy:
    """`{targets: {P1: {accept_minutes, arrive_minutes, finish_minutes}},
    key_polluter_arrive_minutes: {P1: 120}, at_risk_fraction: 0.8}`; absent entries keep
    the defaults."""
    base = SlaPolicy()
    targets = dict(base.targets)
    for prio, spec in (raw.get("targets") or {}).items():
        p = Priority(str(prio).upper())
        cur = targets[p]
        targets[p] = replace(
            cur,
            **{
                name: timedelta(minutes=float(spec[f"{name}_minutes"]))
                for name in ("accept", "arrive", "finish")
                if f"{name}_minutes" in spec
            },
        )
    kp = dict(base.key_polluter_arrive)
    for prio, minutes in (raw.get("key_polluter_arrive_minutes") or {}).items():
        kp[Priority(str(prio).upper())] = timedelta(minutes=float(minutes))
    fraction = float(raw.get("at_risk_fraction", base.at_risk_fraction))
    if not 0 < fraction <= 1:
        raise ValueError("at_risk_fraction must be in (0, 1]")
    return SlaPolicy(targets=targets, key_polluter_arrive=kp, at_risk_fraction=fraction)


@dataclass
class SlaClock:
    name: ClockName
    started_at: datetime
    due_at: datetime
    at_risk_at: datetime
    stopped_at: datetime | None = None
    at_risk_emitted: bool = False
    breach_emitted: bool = False


@dataclass
class SlaClocks:
    task_id: str
    clocks: dict[ClockName, SlaClock]

    @classmethod
    def start(
        cls,
        task_id: str,
        policy: SlaPolicy,
        priority: Priority,
        key_polluter: bool,
        site_visit: bool,
        now: datetime,
    ) -> SlaClocks:
        clocks = {
            name: SlaClock(name, now, now + allowance, now + allowance * policy.at_risk_fraction)
            for name, allowance in policy.allowances(priority, key_polluter, site_visit).items()
        }
        return cls(task_id, clocks)

    def retarget(
        self, policy: SlaPolicy, priority: Priority, key_polluter: bool, site_visit: bool
    ) -> None:
        """A raised priority tightens running clocks, still measured from their start."""
        for name, allowance in policy.allowances(priority, key_polluter, site_visit).items():
            c = self.clocks.get(name)
            if c is not None and c.stopped_at is None:
                c.due_at = c.started_at + allowance
                c.at_risk_at = c.started_at + allowance * policy.at_risk_fraction

    def on_state(self, state: TaskState, at: datetime) -> list[Effect]:
        if state is TaskState.CANCELLED:
            for running in self.clocks.values():
                if running.stopped_at is None:
                    running.stopped_at = at
            return []
        effects: list[Effect] = []
        for name in _STOPS.get(state, ()):
            c = self.clocks.get(name)
            if c is None or c.stopped_at is not None:
                continue
            c.stopped_at = at
            if at > c.due_at and not c.breach_emitted:
                c.breach_emitted = True
                effects.append(SlaBreach(self.task_id, name.value, c.due_at, at))
        return effects

    def on_tick(self, now: datetime) -> list[Effect]:
        effects: list[Effect] = []
        for c in self.clocks.values():
            if c.stopped_at is not None:
                continue
            if now >= c.at_risk_at and not c.at_risk_emitted:
                c.at_risk_emitted = True
                effects.append(SlaAtRisk(self.task_id, c.name.value, c.due_at, now))
            if now > c.due_at and not c.breach_emitted:
                c.breach_emitted = True
                effects.append(SlaBreach(self.task_id, c.name.value, c.due_at, now))
        return effects
