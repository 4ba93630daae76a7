"""Per-role acceptance (multi-ack): the task starts only when every role slot has accepted.

A decline, or no answer within the timeout, vacates the slot and asks for a reassignment
excluding everyone who already refused; a slot nobody can fill escalates to the duty manager
once and is retried periodically (people come on shift). Reminders go out at a fixed interval
while an offer is open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from dispatch.domain.assignment import SlotRequest
from dispatch.domain.effects import Effect, Escalate, Notify, Reassign, Remind
from dispatch.domain.roster import Role
from dispatch.domain.routes import Priority


class SlotStatus(StrEnum):
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    VACANT = "VACANT"  # waiting for a reassignment
    UNFILLED = "UNFILLED"  # nobody left; escalated


class AcceptanceError(Exception):
    pass


class NotOffered(AcceptanceError):
    def __init__(self, task_id: str, person_id: str) -> None:
        super().__init__(f"task {task_id}: {person_id} holds no offer or slot on this task")
        self.task_id = task_id
        self.person_id = person_id


@dataclass(frozen=True)
class AcceptancePolicy:
    """Defaults: 5 min to answer at every priority, a reminder every 2 min while an offer is
    open, and unfilled slots retried every 10 min."""

    timeout: Mapping[Priority, timedelta] = field(
        default_factory=lambda: {p: timedelta(minutes=5) for p in Priority}
    )
    remind_every: timedelta = timedelta(minutes=2)
    retry_unfilled_every: timedelta = timedelta(minutes=10)

    def timeout_for(self, priority: Priority) -> timedelta:
        return self.timeout.get(priority, timedelta(minutes=5))


def acceptance_policy_from_dict(raw: Mapping[str, Any]) -> AcceptancePolicy:
    """`{timeout_minutes: 5 | {P1: 3, P2: 5}, remind_every_minutes: 2,
    retry_unfilled_minutes: 10}`; absent keys keep the defaults."""
    base = AcceptancePolicy()
    timeout = dict(base.timeout)
    raw_timeout = raw.get("timeout_minutes")
    if isinstance(raw_timeout, Mapping):
        for k, v in raw_timeout.items():
            timeout[Priority(str(k).upper())] = timedelta(minutes=float(v))
    elif raw_timeout is not None:
        timeout = {p: timedelta(minutes=float(raw_timeout)) for p in Priority}
    return AcceptancePolicy(
        timeout=timeout,
        remind_every=timedelta(minutes=float(raw.get("remind_every_minutes", 2))),
        retry_unfilled_every=timedelta(minutes=float(raw.get("retry_unfilled_minutes", 10))),
    )


@dataclass
class SlotState:
    slot_id: str
    role: Role
    certificate: str | None
    status: SlotStatus = SlotStatus.VACANT
    person_id: str | None = None
    offered_at: datetime | None = None
    last_notice_at: datetime | None = None
    reminders: int = 0
    since: datetime | None = None  # when it became VACANT/UNFILLED (retry clock)
    escalated: bool = False


@dataclass
class AcceptanceState:
    task_id: str
    manager_id: str | None
    timeout: timedelta
    remind_every: timedelta
    retry_unfilled_every: timedelta
    slots: list[SlotState]
    refused: dict[str, str] = field(default_factory=dict)  # person -> why (decline reason/timeout)

    @classmethod
    def open(
        cls,
        task_id: str,
        slots: tuple[SlotRequest, ...],
        priority: Priority,
        policy: AcceptancePolicy,
        manager_id: str | None,
        now: datetime,
    ) -> AcceptanceState:
        return cls(
            task_id=task_id,
            manager_id=manager_id,
            timeout=policy.timeout_for(priority),
            remind_every=policy.remind_every,
            retry_unfilled_every=policy.retry_unfilled_every,
            slots=[SlotState(s.slot_id, s.role, s.certificate, since=now) for s in slots],
        )

    @property
    def all_accepted(self) -> bool:
        return all(s.status is SlotStatus.ACCEPTED for s in self.slots)

    def members(self) -> tuple[str, ...]:
        return tuple(s.person_id for s in self.slots if s.person_id is not None)

    def roles_of(self, person_id: str) -> frozenset[Role]:
        """The roles of the slots `person_id` holds on this task."""
        return frozenset(s.role for s in self.slots if s.person_id == person_id)

    def exclusions(self) -> frozenset[str]:
        """Nobody who refused, and nobody already holding another slot."""
        return frozenset(self.refused) | frozenset(self.members())

    def slot(self, slot_id: str) -> SlotState:
        for s in self.slots:
            if s.slot_id == slot_id:
                return s
        raise KeyError(slot_id)

    def _held_by(self, person_id: str) -> SlotState:
        for s in self.slots:
            if s.person_id == person_id:
                return s
        raise NotOffered(self.task_id, person_id)

    def offer(self, slot_id: str, person_id: str, now: datetime) -> list[Effect]:
        s = self.slot(slot_id)
        s.status, s.person_id = SlotStatus.OFFERED, person_id
        s.offered_at = s.last_notice_at = now
        s.reminders = 0
        s.since = None
        return [Notify(self.task_id, person_id, "offer")]

    def unfilled(self, slot_id: str, reason: str, now: datetime) -> list[Effect]:
        s = self.slot(slot_id)
        s.status, s.person_id, s.since = SlotStatus.UNFILLED, None, now
        if s.escalated:
            return []
        s.escalated = True
        return [Escalate(self.task_id, self.manager_id, f"slot {slot_id} unfilled: {reason}")]

    def on_accept(self, person_id: str, now: datetime) -> list[Effect]:
        s = self._held_by(person_id)
        if s.status is SlotStatus.ACCEPTED:
            return []  # a repeated tap on the phone
        s.status = SlotStatus.ACCEPTED
        if self.all_accepted:
            return [Notify(self.task_id, m, "team_confirmed") for m in self.members()]
        return []

    def on_decline(self, person_id: str, reason: str, now: datetime) -> list[Effect]:
        s = self._held_by(person_id)
        self.refused[person_id] = f"declined: {reason}" if reason else "declined"
        return self._vacate(s, f"{person_id} declined", now)

    def _vacate(self, s: SlotState, why: str, now: datetime) -> list[Effect]:
        holder = s.person_id
        s.status, s.person_id, s.offered_at, s.since = SlotStatus.VACANT, None, None, now
        return [
            Reassign(self.task_id, s.slot_id, s.role, s.certificate, self.exclusions(), why, holder)
        ]

    def on_tick(self, now: datetime) -> list[Effect]:
        effects: list[Effect] = []
        for s in self.slots:
            if s.status is SlotStatus.OFFERED:
                assert s.offered_at is not None and s.person_id is not None
                if now >= s.offered_at + self.timeout:
                    pid = s.person_id
                    self.refused[pid] = f"no answer within {self.timeout}"
                    effects += self._vacate(s, f"{pid} did not answer in time", now)
                elif s.last_notice_at is not None and now >= s.last_notice_at + self.remind_every:
                    s.reminders += 1
                    s.last_notice_at = now
                    effects.append(Remind(self.task_id, s.person_id, s.slot_id, s.reminders))
            elif s.status is SlotStatus.VACANT:
                # the reassignment was not answered by offer()/unfilled(); ask again
                effects.append(
                    Reassign(
                        self.task_id, s.slot_id, s.role, s.certificate, self.exclusions(), "pending"
                    )
                )
            elif s.status is SlotStatus.UNFILLED:
                assert s.since is not None
                if now >= s.since + self.retry_unfilled_every:
                    s.since = now
                    effects.append(
                        Reassign(
                            self.task_id,
                            s.slot_id,
                            s.role,
                            s.certificate,
                            self.exclusions(),
                            "retry",
                        )
                    )
        return effects
