"""The versioned dispatch policy and the pure decision it makes for one alert signal.

Order of judgement (first that applies wins):
1. CLEARED / AMENDED / UPDATED / ESCALATED of an alert already on an open task: close or note
   (CLEARED, AMENDED) or attach (UPDATED, ESCALATED).
2. Routing table: the first rule matching kind, minimum severity and source class gives the
   route; a rule with route IGNORE, or no rule and no default route, ignores the alert.
3. Suppression: an approved data mark covering the outlet (and factor) at event time.
4. Inhibition: an open device-fault alert on the same outlet holds back exceedance dispatch.
5. Grouping: an open task for the same enterprise and route created within the window
   (default 2 h) takes the alert instead of a new task.
6. Otherwise a new task with a priority from severity, raised for key polluters and repeat
   violators.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dispatch.domain.acceptance import AcceptancePolicy, acceptance_policy_from_dict
from dispatch.domain.alerts import AlertChange, AlertKind, AlertSignal, Severity, parse_kind
from dispatch.domain.assignment import AssignmentPolicy, assignment_policy_from_dict
from dispatch.domain.decision import (
    AttachToTask,
    CloseOrNote,
    CreateTask,
    Decision,
    Ignored,
    Inhibited,
    Suppressed,
)
from dispatch.domain.marks import DataMark
from dispatch.domain.routes import Priority, Route
from dispatch.domain.sla import SlaPolicy, sla_policy_from_dict
from dispatch.domain.tasks import Task, TaskState

K = AlertKind


@dataclass(frozen=True, slots=True)
class RouteRule:
    route: Route | None  # None = ignore
    kinds: frozenset[str] | None = None  # None = any kind
    min_severity: Severity | None = None
    sources: frozenset[str] | None = None  # source classes, e.g. online_monitoring, complaint

    def matches(self, s: AlertSignal) -> bool:
        return (
            (self.kinds is None or parse_kind(s.kind) in self.kinds)
            and (self.min_severity is None or s.severity >= self.min_severity)
            and (self.sources is None or s.source in self.sources)
        )


DEFAULT_RULES: tuple[RouteRule, ...] = (
    # suspected falsification is always looked at on site (peers §4 idea 3)
    RouteRule(
        Route.JOINT_INSPECTION,
        frozenset({K.CONSTANT_VALUE, K.ZERO_VALUE, K.DILUTION, K.TAMPERING_SUSPECTED}),
    ),
    # an instrument parameter changed outside approved calibration/maintenance (HIGH); a
    # change under such a mark (MEDIUM) falls through to the desk review default
    RouteRule(Route.JOINT_INSPECTION, frozenset({K.PARAMETER_CHANGED}), Severity.HIGH),
    RouteRule(Route.JOINT_INSPECTION, frozenset({K.EXCEEDANCE}), Severity.MEDIUM),
    RouteRule(Route.DESK_REVIEW, frozenset({K.EXCEEDANCE})),
    RouteRule(Route.DESK_REVIEW, frozenset({K.PREWARNING})),
    RouteRule(Route.OPERATIONS, frozenset({K.DEVICE_FAULT, K.OFFLINE, K.OVER_RANGE})),
)

DEFAULT_SEVERITY_PRIORITY: Mapping[Severity, Priority] = {
    Severity.CRITICAL: Priority.P1,
    Severity.HIGH: Priority.P2,
    Severity.MEDIUM: Priority.P3,
    Severity.LOW: Priority.P4,
}


@dataclass(frozen=True, slots=True)
class ActiveFault:
    """An open device-fault style alert on an outlet (inhibition source)."""

    alert_id: str
    outlet_id: str
    kind: str
    since: datetime


@dataclass(frozen=True)
class DispatchPolicy:
    version: str
    rules: tuple[RouteRule, ...] = DEFAULT_RULES
    default_route: Route | None = Route.DESK_REVIEW  # unknown kinds: a person looks at them
    grouping_window: timedelta = timedelta(hours=2)
    inhibiting_kinds: frozenset[str] = frozenset({K.DEVICE_FAULT, K.OFFLINE})
    inhibited_kinds: frozenset[str] = frozenset({K.EXCEEDANCE, K.PREWARNING})
    # tampering-style kinds are never suppressed: a mark must not hide falsification
    suppressible_kinds: frozenset[str] = frozenset(
        {K.EXCEEDANCE, K.PREWARNING, K.CONSTANT_VALUE, K.ZERO_VALUE, K.DEVICE_FAULT, K.OFFLINE}
    )
    severity_priority: Mapping[Severity, Priority] = field(
        default_factory=lambda: dict(DEFAULT_SEVERITY_PRIORITY)
    )
    key_polluter_raise: int = 1
    repeat_violator_raise: int = 1
    close_on_clear: frozenset[Route] = frozenset({Route.OPERATIONS})
    geofence_m: float = 500.0
    assignment: AssignmentPolicy = field(default_factory=AssignmentPolicy)
    acceptance: AcceptancePolicy = field(default_factory=AcceptancePolicy)
    sla: SlaPolicy = field(default_factory=SlaPolicy)

    def route_for(self, s: AlertSignal) -> tuple[Route | None, str]:
        for i, rule in enumerate(self.rules):
            if rule.matches(s):
                return rule.route, f"rule {i + 1} ({_describe(rule)})"
        return self.default_route, "no rule matched; default route"

    def priority_for(self, s: AlertSignal) -> tuple[Priority, str]:
        base = self.severity_priority[s.severity]
        steps, why = 0, [f"{s.severity.name} -> {base.value}"]
        if s.key_polluter and self.key_polluter_raise:
            steps += self.key_polluter_raise
            why.append(f"key polluter +{self.key_polluter_raise}")
        if s.repeat_violator and self.repeat_violator_raise:
            steps += self.repeat_violator_raise
            why.append(f"repeat violator +{self.repeat_violator_raise}")
        return base.raised(steps), ", ".join(why)


def _describe(rule: RouteRule) -> str:
    parts = [("kind in " + "/".join(sorted(rule.kinds))) if rule.kinds else "any kind"]
    if rule.min_severity is not None:
        parts.append(f"severity >= {rule.min_severity.name}")
    if rule.sources:
        parts.append("source in " + "/".join(sorted(rule.sources)))
    return ", ".join(parts) + f" -> {rule.route.value if rule.route else 'IGNORE'}"


def _task_holding(alert_id: str, tasks: Iterable[Task]) -> Task | None:
    for t in tasks:
        if t.open and alert_id in t.alert_ids:
            return t
    return None


def decide(
    policy: DispatchPolicy,
    signal: AlertSignal,
    open_tasks: Collection[Task],
    active_faults: Collection[ActiveFault],
    marks: Collection[DataMark],
    now: datetime,
) -> Decision:
    v = policy.version
    kind = parse_kind(signal.kind)
    holder = _task_holding(signal.alert_id, open_tasks)
    prio, prio_why = policy.priority_for(signal)

    if signal.change is AlertChange.CLEARED:
        if holder is None:
            return Ignored("alert cleared and no open task holds it", v)
        close = (
            holder.route in policy.close_on_clear
            and set(holder.alert_ids) == {signal.alert_id}
            and holder.state in (TaskState.CREATED, TaskState.ASSIGNING, TaskState.ASSIGNED)
        )
        why = (
            "condition cleared before anyone left" if close else "condition cleared; task continues"
        )
        return CloseOrNote(holder.task_id, close, why, v)
    if holder is not None:
        if signal.change is AlertChange.AMENDED:
            return CloseOrNote(holder.task_id, False, "alert data amended", v)
        return AttachToTask(
            holder.task_id, prio, f"{signal.change.value} of an alert on this task", v
        )

    route, route_why = policy.route_for(signal)
    if route is None:
        return Ignored(f"{route_why}: {kind} is not dispatched", v)

    if kind in policy.suppressible_kinds:
        for m in sorted(marks, key=lambda m: m.mark_id):
            if m.covers(signal.outlet_id, signal.factor, signal.event_time):
                return Suppressed(
                    m.mark_id,
                    f"approved {m.category} mark {m.mark_id} covers outlet {signal.outlet_id} "
                    f"from {m.start.isoformat()} to {m.end.isoformat()}",
                    v,
                )

    if kind in policy.inhibited_kinds:
        for f in sorted(active_faults, key=lambda f: (f.since, f.alert_id)):
            if (
                f.outlet_id == signal.outlet_id
                and parse_kind(f.kind) in policy.inhibiting_kinds
                and f.alert_id != signal.alert_id
            ):
                return Inhibited(
                    f.alert_id,
                    f"open {f.kind} alert {f.alert_id} on outlet {f.outlet_id} since "
                    f"{f.since.isoformat()} holds back {kind} dispatch",
                    v,
                )

    window_start = now - policy.grouping_window
    group = [
        t
        for t in open_tasks
        if t.open
        and t.enterprise_id == signal.enterprise_id
        and t.route is route
        and window_start <= t.created_at <= now
    ]
    if group:
        target = max(group, key=lambda t: (t.created_at, t.task_id))
        return AttachToTask(
            target.task_id,
            prio,
            f"enterprise {signal.enterprise_id} has open {route.value} task within "
            f"{policy.grouping_window}",
            v,
        )
    return CreateTask(prio, route, f"{route_why}; priority {prio_why}", v)


def _kinds(raw: Iterable[str]) -> frozenset[str]:
    return frozenset(parse_kind(str(k)) for k in raw)


def _route_or_ignore(raw: str | None) -> Route | None:
    if raw is None or str(raw).upper() == "IGNORE":
        return None
    return Route(str(raw).upper())


def policy_from_dict(raw: Mapping[str, Any]) -> DispatchPolicy:
    """Parse a policy document; `version` is required, every other key has the default above.

    Shape: `{version, routing: [{route, kinds?, min_severity?, sources?}], default_route,
    grouping_window_minutes, inhibiting_kinds, inhibited_kinds, suppressible_kinds,
    severity_priority: {CRITICAL: P1, ...}, key_polluter_raise, repeat_violator_raise,
    close_on_clear: [OPERATIONS], geofence_m, assignment: {...}, acceptance: {...}, sla: {...}}`.
    """
    if not raw.get("version"):
        raise ValueError("a dispatch policy needs a version")
    base = DispatchPolicy(version=str(raw["version"]))
    rules = base.rules
    if "routing" in raw:
        rules = tuple(
            RouteRule(
                route=_route_or_ignore(r.get("route")),
                kinds=_kinds(r["kinds"]) if r.get("kinds") else None,
                min_severity=Severity[str(r["min_severity"]).upper()]
                if r.get("min_severity")
                else None,
                sources=frozenset(str(x) for x in r["sources"]) if r.get("sources") else None,
            )
            for r in raw["routing"]
        )
    severity_priority = dict(base.severity_priority)
    for sev, prio in (raw.get("severity_priority") or {}).items():
        severity_priority[Severity[str(sev).upper()]] = Priority(str(prio).upper())
    return DispatchPolicy(
        version=base.version,
        rules=rules,
        default_route=_route_or_ignore(raw["default_route"])
        if "default_route" in raw
        else base.default_route,
        grouping_window=timedelta(minutes=float(raw["grouping_window_minutes"]))
        if "grouping_window_minutes" in raw
        else base.grouping_window,
        inhibiting_kinds=_kinds(raw.get("inhibiting_kinds", base.inhibiting_kinds)),
        inhibited_kinds=_kinds(raw.get("inhibited_kinds", base.inhibited_kinds)),
        suppressible_kinds=_kinds(raw.get("suppressible_kinds", base.suppressible_kinds)),
        severity_priority=severity_priority,
        key_polluter_raise=int(raw.get("key_polluter_raise", base.key_polluter_raise)),
        repeat_violator_raise=int(raw.get("repeat_violator_raise", base.repeat_violator_raise)),
        close_on_clear=frozenset(
            Route(str(r).upper()) for r in raw.get("close_on_clear", base.close_on_clear)
        ),
        geofence_m=float(raw.get("geofence_m", base.geofence_m)),
        assignment=assignment_policy_from_dict(raw.get("assignment") or {}),
        acceptance=acceptance_policy_from_dict(raw.get("acceptance") or {}),
        sla=sla_policy_from_dict(raw.get("sla") or {}),
    )
