"""What the dispatch policy decided for one alert signal, with the policy version and why."""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.domain.routes import Priority, Route


@dataclass(frozen=True, slots=True)
class CreateTask:
    priority: Priority
    route: Route
    reason: str
    policy_version: str


@dataclass(frozen=True, slots=True)
class AttachToTask:
    task_id: str
    priority: Priority  # the signal's own priority; the task is raised to it if more urgent
    reason: str
    policy_version: str


@dataclass(frozen=True, slots=True)
class Inhibited:
    by_alert_id: str
    reason: str
    policy_version: str


@dataclass(frozen=True, slots=True)
class Suppressed:
    mark_id: str
    reason: str
    policy_version: str


@dataclass(frozen=True, slots=True)
class CloseOrNote:
    task_id: str
    close: bool  # True: cancel the task; False: only note the change on it
    reason: str
    policy_version: str


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str
    policy_version: str


Decision = CreateTask | AttachToTask | Inhibited | Suppressed | CloseOrNote | Ignored
