"""The inspection task lifecycle: a state machine with time, actor and position on every step.

CREATED -> ASSIGNING -> ASSIGNED -> EN_ROUTE -> ON_SITE -> SAMPLING -> COMPLETED for a joint
inspection; operations tasks skip SAMPLING and desk reviews go from ASSIGNED to COMPLETED.
Any non-terminal state may go to CANCELLED. Check-in (ON_SITE) needs a position inside the
geofence around the outlet, so arrival is detected, not merely claimed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from dispatch.domain.geo import haversine_km
from dispatch.domain.presence import Presence
from dispatch.domain.routes import Priority, Route

TASK_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:liandong:dispatch:task")


class TaskState(StrEnum):
    CREATED = "CREATED"
    ASSIGNING = "ASSIGNING"
    ASSIGNED = "ASSIGNED"
    EN_ROUTE = "EN_ROUTE"
    ON_SITE = "ON_SITE"
    SAMPLING = "SAMPLING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({TaskState.COMPLETED, TaskState.CANCELLED})

_S = TaskState
_COMMON = {(_S.CREATED, _S.ASSIGNING), (_S.ASSIGNING, _S.ASSIGNED)}
TRANSITIONS: dict[Route, frozenset[tuple[TaskState, TaskState]]] = {
    Route.JOINT_INSPECTION: frozenset(
        _COMMON
        | {
            (_S.ASSIGNED, _S.EN_ROUTE),
            (_S.EN_ROUTE, _S.ON_SITE),
            (_S.ON_SITE, _S.SAMPLING),
            (_S.SAMPLING, _S.COMPLETED),
        }
    ),
    Route.OPERATIONS: frozenset(
        _COMMON
        | {(_S.ASSIGNED, _S.EN_ROUTE), (_S.EN_ROUTE, _S.ON_SITE), (_S.ON_SITE, _S.COMPLETED)}
    ),
    Route.DESK_REVIEW: frozenset(_COMMON | {(_S.ASSIGNED, _S.COMPLETED)}),
}


class TaskError(Exception):
    pass


class IllegalTransition(TaskError):
    def __init__(self, task_id: str, state: TaskState, attempted: TaskState) -> None:
        super().__init__(f"task {task_id}: cannot go from {state.value} to {attempted.value}")
        self.task_id = task_id
        self.state = state
        self.attempted = attempted


class OutsideGeofence(TaskError):
    def __init__(self, task_id: str, distance_m: float | None, radius_m: float) -> None:
        where = "no position given" if distance_m is None else f"{distance_m:.0f} m from the outlet"
        super().__init__(f"task {task_id}: check-in refused, {where} (geofence {radius_m:.0f} m)")
        self.task_id = task_id
        self.distance_m = distance_m
        self.radius_m = radius_m


def task_id_for(first_alert_id: str) -> str:
    """Deterministic: replaying the alert that opened a task names the same task."""
    return str(uuid.uuid5(TASK_NAMESPACE, first_alert_id))


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One lifecycle step; published on `dispatch.events` keyed by `task_id`."""

    task_id: str
    seq: int
    from_state: TaskState | None
    to_state: TaskState
    actor: str
    at: datetime
    position: tuple[float, float] | None = None
    note: str = ""

    @property
    def event_id(self) -> str:
        return str(uuid.uuid5(TASK_NAMESPACE, f"{self.task_id}/{self.seq}"))


@dataclass
class Task:
    task_id: str
    route: Route
    priority: Priority
    enterprise_id: str
    outlet_id: str
    county_code: str
    lat: float | None
    lon: float | None
    created_at: datetime
    key_polluter: bool = False
    alert_ids: list[str] = field(default_factory=list)
    state: TaskState = TaskState.CREATED
    seq: int = 0
    history: list[TaskEvent] = field(default_factory=list)
    presence: Presence = field(default_factory=Presence)  # who checked in on site

    @property
    def open(self) -> bool:
        return self.state not in TERMINAL

    def arrived_before_presence(self) -> bool:
        """Reached the site under a version that kept no per-person check-ins (every check-in
        is recorded now): that version sent the case's arrival at the first check-in."""
        return not self.presence.check_ins and any(
            h.to_state is TaskState.ON_SITE for h in self.history
        )

    def arrival_asked(self) -> bool:
        """Whether the case's arrival has been asked for: notes go to the case from then on."""
        return self.presence.arrival_asked or self.arrived_before_presence()

    def transition(
        self,
        to: TaskState,
        actor: str,
        at: datetime,
        position: tuple[float, float] | None = None,
        note: str = "",
        geofence_m: float = 500.0,
    ) -> TaskEvent:
        legal = to is TaskState.CANCELLED and self.open
        legal = legal or (self.state, to) in TRANSITIONS[self.route]
        if not legal:
            raise IllegalTransition(self.task_id, self.state, to)
        if to is TaskState.ON_SITE:
            distance = self.distance_m(position)
            if distance is None or distance > geofence_m:
                raise OutsideGeofence(self.task_id, distance, geofence_m)
        self.seq += 1
        event = TaskEvent(self.task_id, self.seq, self.state, to, actor, at, position, note)
        self.state = to
        self.history.append(event)
        return event

    def distance_m(self, position: tuple[float, float] | None) -> float | None:
        if position is None or self.lat is None or self.lon is None:
            return None
        return haversine_km(self.lat, self.lon, position[0], position[1]) * 1000.0


def new_task(
    first_alert_id: str,
    route: Route,
    priority: Priority,
    enterprise_id: str,
    outlet_id: str,
    county_code: str,
    lat: float | None,
    lon: float | None,
    at: datetime,
    actor: str = "dispatch",
    key_polluter: bool = False,
    note: str = "",
) -> tuple[Task, TaskEvent]:
    """A new task in CREATED, with its creation event (seq 0, from nothing)."""
    task = Task(
        task_id=task_id_for(first_alert_id),
        route=route,
        priority=priority,
        enterprise_id=enterprise_id,
        outlet_id=outlet_id,
        county_code=county_code,
        lat=lat,
        lon=lon,
        created_at=at,
        key_polluter=key_polluter,
        alert_ids=[first_alert_id],
    )
    event = TaskEvent(task.task_id, 0, None, TaskState.CREATED, actor, at, None, note)
    task.history.append(event)
    return task, event
