"""Calls dispatch owes casefile (open the case, update its team, record the arrival, the
team's site notes and the duty manager's cancellation of the task): a durable queue entry per
call, retried with capped exponential backoff while casefile is unreachable, and dead-lettered
when casefile refuses the call itself, because repeating a refused call can never succeed.

Each call has a request id that is stable across retries and restarts (casefile is idempotent
on it), so a retry after an unknown outcome writes nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class CallMethod(StrEnum):
    OPEN_CASE = "OpenCase"
    RECORD_ARRIVAL = "RecordArrival"
    UPDATE_TEAM = "UpdateTeam"
    RECORD_SITE_NOTE = "RecordSiteNote"
    RECORD_TASK_CANCELLED = "RecordTaskCancelled"


class CallStatus(StrEnum):
    PENDING = "PENDING"
    DONE = "DONE"
    DEAD = "DEAD"  # refused by casefile; published as a CASEFILE_REJECTED dispatch event


class Outcome(StrEnum):
    DONE = "DONE"
    RETRY = "RETRY"  # casefile unreachable, overloaded, timed out, or not yet ready
    REFUSED = "REFUSED"  # the call itself is wrong for casefile (bad request, wrong state)


# gRPC status names that say the request can never succeed as it is. UNAUTHENTICATED is not
# among them: a key or clock mistake is fixed by operators, and the call then goes through.
REFUSING_STATUSES = frozenset(
    {
        "INVALID_ARGUMENT",
        "ALREADY_EXISTS",
        "FAILED_PRECONDITION",
        "PERMISSION_DENIED",
        "NOT_FOUND",
        "OUT_OF_RANGE",
    }
)


def outcome_of_status(status_name: str) -> Outcome:
    """`status_name` is a gRPC status code name, e.g. "UNAVAILABLE"."""
    if status_name == "OK":
        return Outcome.DONE
    return Outcome.REFUSED if status_name in REFUSING_STATUSES else Outcome.RETRY


@dataclass(frozen=True)
class Backoff:
    """Defaults: retry after 1 s, doubling, at most every 5 minutes: an outage of any length
    is ridden out without hammering casefile when it comes back."""

    first: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    cap: timedelta = timedelta(minutes=5)

    def delay(self, failures: int) -> timedelta:
        """The wait after the `failures`-th failed attempt (1 for the first)."""
        if failures < 1:
            return timedelta(0)
        # in float seconds, with the exponent bounded: a call failing for weeks cannot overflow
        seconds = self.first.total_seconds() * self.factor ** min(failures - 1, 64)
        return min(timedelta(seconds=seconds), self.cap) if seconds < 1e9 else self.cap


@dataclass(frozen=True)
class CasefileCall:
    request_id: str
    task_id: str
    method: CallMethod
    created_at: datetime
    body: dict[str, Any] = field(default_factory=dict)  # the call's arguments (JSON values)
    trace: dict[str, str] = field(default_factory=dict)  # W3C trace context at enqueue time
    status: CallStatus = CallStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None  # None: at once
    last_error: str = ""

    def due(self, now: datetime) -> bool:
        return self.status is CallStatus.PENDING and (
            self.next_attempt_at is None or self.next_attempt_at <= now
        )

    def after(
        self, outcome: Outcome, now: datetime, backoff: Backoff, error: str = ""
    ) -> CasefileCall:
        """The call after one attempt ended with `outcome` (a call that could not be made yet,
        e.g. an arrival whose case is not open, counts as RETRY)."""
        attempts = self.attempts + 1
        if outcome is Outcome.DONE:
            return replace(self, status=CallStatus.DONE, attempts=attempts, last_error="")
        if outcome is Outcome.REFUSED:
            return replace(self, status=CallStatus.DEAD, attempts=attempts, last_error=error)
        return replace(
            self,
            attempts=attempts,
            next_attempt_at=now + backoff.delay(attempts),
            last_error=error,
        )


def same_team(a: list[dict[str, str]], b: list[dict[str, str]]) -> bool:
    """Whether two teams ({person_id, role, ...} each) have the same people in the same roles."""

    def members(team: list[dict[str, str]]) -> set[tuple[str, str]]:
        return {(p.get("person_id", ""), p.get("role", "").upper()) for p in team}

    return members(a) == members(b)
