"""Dispatcher effects as `dispatch.events` records (DispatchEvent) and phone notifications.

Every DispatchEvent of a task gets the next per-task `seq` and the event id
deterministic_id("dispatch-event", task_id, seq), so re-publishing the outbox after a crash
repeats ids rather than inventing new ones. Decisions that create no task (inhibited,
suppressed, ignored) are published keyed by the alert id so managers can see why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispatch.adapters.store import Changes, Notification, OutgoingEvent, TaskMeta
from dispatch.domain.acceptance import SlotStatus
from dispatch.domain.assignment import TeamAssignment
from dispatch.domain.casefile_calls import CallMethod, CasefileCall
from dispatch.domain.decision import CloseOrNote, CreateTask, Ignored, Inhibited, Suppressed
from dispatch.domain.dispatcher import DispatchState
from dispatch.domain.effects import (
    AlertAttached,
    ArrivalDue,
    CheckedIn,
    DecisionRecorded,
    Effect,
    Escalate,
    Notify,
    OpenCaseRequest,
    Reassign,
    Remind,
    SlaAtRisk,
    SlaBreach,
    TeamProposed,
)
from dispatch.domain.presence import CheckIn
from dispatch.domain.roster import Roster
from dispatch.domain.routes import Route
from dispatch.domain.tasks import TaskEvent, TaskState
from liandong.events import deterministic_id, new_meta, to_timestamp
from liandong.telemetry import trace_headers
from liandong.v1 import dispatch_pb2

PRODUCER = "dispatch"
# status notes of a joint inspection taken before its arrival, sent right after it
_NOTED_BEFORE_ARRIVAL = frozenset({TaskState.EN_ROUTE, TaskState.SAMPLING})
_HELD = {Inhibited: "ALERT_INHIBITED", Suppressed: "ALERT_SUPPRESSED", Ignored: "ALERT_IGNORED"}


@dataclass(frozen=True)
class AlertOrigin:
    """The alert event a step came from: stamped on the task it creates."""

    event_id: str
    alert_time: datetime
    evidence: dict[str, Any]


def current_trace() -> dict[str, str]:
    """The current W3C trace context, kept with a casefile call so its retries join the trace
    of the step that asked for it."""
    return {k: v.decode() for k, v in trace_headers()}


def open_case_call(task_id: str, now: datetime) -> CasefileCall:
    # the request id casefile has always been sent for this task: a retry opens no second case
    return CasefileCall(
        f"open:{task_id}", task_id, CallMethod.OPEN_CASE, now, trace=current_trace()
    )


class EventBuilder:
    def __init__(self, state: DispatchState, metas: dict[str, TaskMeta], roster: Roster) -> None:
        self.state = state
        self.metas = metas
        self.roster = roster

    def _name(self, person_id: str) -> str:
        p = self.roster.get(person_id)
        return p.name if p is not None else ""

    def team(self, task_id: str) -> list[dispatch_pb2.TeamMember]:
        acc = self.state.acceptance.get(task_id)
        if acc is None:
            return []
        members = [
            dispatch_pb2.TeamMember(
                person_id=s.person_id,
                name=self._name(s.person_id),
                role=s.role.value,
                state="ACCEPTED" if s.status is SlotStatus.ACCEPTED else "PROPOSED",
            )
            for s in acc.slots
            if s.person_id is not None
        ]
        for pid, why in sorted(acc.refused.items()):
            state = "DECLINED" if why.startswith("declined") else "TIMED_OUT"
            members.append(
                dispatch_pb2.TeamMember(
                    person_id=pid, name=self._name(pid), state=state, reason=why
                )
            )
        return members

    def proposed_team(self, assignment: TeamAssignment) -> list[dispatch_pb2.TeamMember]:
        return [
            dispatch_pb2.TeamMember(
                person_id=p.person_id,
                name=self._name(p.person_id),
                role=p.role.value,
                reason=p.reason,
                state="PROPOSED",
            )
            for p in assignment.picks
        ]

    def task_event(
        self,
        task_id: str,
        kind: str,
        at: datetime,
        *,
        actor: str = PRODUCER,
        note: str = "",
        position: tuple[float, float] | None = None,
        team: list[dispatch_pb2.TeamMember] | None = None,
        causation_id: str = "",
        status: str | None = None,
    ) -> OutgoingEvent:
        task = self.state.tasks[task_id]
        meta = self.metas[task_id]
        meta.event_seq += 1
        seq = meta.event_seq
        event_id = deterministic_id("dispatch-event", task_id, str(seq))
        msg = dispatch_pb2.DispatchEvent(
            meta=new_meta(
                key=task_id,
                event_time=at,
                producer=PRODUCER,
                event_id=event_id,
                causation_id=causation_id,
            ),
            task_id=task_id,
            kind=kind,
            status=status or task.state.value,
            actor=actor,
            alert_ids=list(task.alert_ids),
            team=team if team is not None else self.team(task_id),
            case_id=meta.case_id,
            priority=task.priority.value,
            outlet_id=task.outlet_id,
            enterprise_id=task.enterprise_id,
            county=task.county_code,
            note=note,
            seq=seq,
            alert_time=to_timestamp(meta.alert_time),
            policy_version=meta.policy_version,
        )
        if position is not None:
            msg.position.CopyFrom(dispatch_pb2.Position(lat=position[0], lon=position[1]))
        return OutgoingEvent(event_id, task_id, kind, seq, msg.SerializeToString())

    def checked_in_event(self, e: CheckedIn) -> OutgoingEvent:
        c = e.check_in
        note = f"{c.role.value}, {c.distance_m:.0f} m from the outlet" + (
            f"; {c.note}" if c.note.strip() else ""
        )
        return self.task_event(
            e.task_id, "CHECKED_IN", c.at, actor=c.person_id, note=note, position=c.position
        )

    def checked_in_notifications(self, e: CheckedIn, now: datetime) -> list[Notification]:
        """The rest of the team learns who is on site."""
        c = e.check_in
        acc = self.state.acceptance[e.task_id]
        return [
            self.notification(
                e.task_id,
                member,
                "checked_in",
                now,
                checked_in_by=c.person_id,
                name=self._name(c.person_id),
                role=c.role.value,
                checked_in_at=c.at.isoformat(),
            )
            for member in acc.members()
            if member != c.person_id
        ]

    def held_alert(
        self, decision: DecisionRecorded, origin: AlertOrigin | None, at: datetime
    ) -> OutgoingEvent:
        d = decision.decision
        kind = _HELD[type(d)]
        event_id = deterministic_id("dispatch-decision", decision.event_id)
        msg = dispatch_pb2.DispatchEvent(
            meta=new_meta(
                key=decision.alert_id,
                event_time=at,
                producer=PRODUCER,
                event_id=event_id,
                causation_id=decision.event_id,
            ),
            kind=kind,
            actor=PRODUCER,
            alert_ids=[decision.alert_id],
            note=d.reason,
            policy_version=d.policy_version,
        )
        if origin is not None:
            msg.alert_time.CopyFrom(to_timestamp(origin.alert_time))
        return OutgoingEvent(event_id, decision.alert_id, kind, 0, msg.SerializeToString())

    def notification(
        self, task_id: str, person_id: str, kind: str, at: datetime, **extra: Any
    ) -> Notification:
        task = self.state.tasks[task_id]
        acc = self.state.acceptance.get(task_id)
        body: dict[str, Any] = {
            "task_id": task_id,
            "kind": kind,
            "at": at.isoformat(),
            "route": task.route.value,
            "priority": task.priority.value,
            "state": task.state.value,
            "enterprise_id": task.enterprise_id,
            "outlet_id": task.outlet_id,
            "county": task.county_code,
        }
        if kind in ("offer", "reminder") and acc is not None:
            body["answer_within_s"] = int(acc.timeout.total_seconds())
        return Notification(person_id, task_id, kind, body | extra)

    def arrival_call(self, e: ArrivalDue) -> CasefileCall:
        """The case's arrival: when the officers' own check-ins made two (or more) of them
        present, who they are, and where the one completing it stood; sent in that officer's
        name. One per task, so the request id is the task's."""
        body: dict[str, Any] = {
            "arrived_at": e.at.isoformat(),
            "checked_in_by": e.by,
            "role": self._role_of(e.task_id, e.by) or "",
            "officers_present": list(e.officers_present),
            "position": list(e.position),
        }
        return CasefileCall(
            f"arrival:{e.task_id}", e.task_id, CallMethod.RECORD_ARRIVAL, e.at, body,
            current_trace(),
        )  # fmt: skip

    def check_in_note(self, task_id: str, c: CheckIn) -> CasefileCall:
        """One person's check-in as a site note in their name: who, when, where, how far from
        the outlet. One per person per task, so the request id is theirs on this task."""
        text = (
            f"checked in on site: {c.person_id} ({c.role.value}) at {c.at.isoformat()}, "
            f"{c.position[0]:.6f},{c.position[1]:.6f}, {c.distance_m:.0f} m from the outlet"
        ) + (f"; {c.note}" if c.note.strip() else "")
        body: dict[str, Any] = {
            "at": c.at.isoformat(),
            "text": text,
            "by": c.person_id,
            "role": c.role.value,
            "status": TaskState.ON_SITE.value,
            "position": list(c.position),
        }
        return CasefileCall(
            f"checkin:{task_id}:{c.person_id}", task_id, CallMethod.RECORD_SITE_NOTE, c.at, body,
            current_trace(),
        )  # fmt: skip

    def arrival_calls(self, e: ArrivalDue) -> list[CasefileCall]:
        """The arrival, then the notes that waited for it (a case takes notes from its
        arrival on): the team's status notes and the check-ins so far, in time order."""
        task = self.state.tasks[e.task_id]
        waited = [
            (h.at, c)
            for h in task.history
            if h.seq <= e.held_through_seq and h.to_state in _NOTED_BEFORE_ARRIVAL
            for c in self.note_call(h, h.note)
        ]
        waited += [(c.at, self.check_in_note(e.task_id, c)) for c in e.held]
        waited.sort(key=lambda pair: pair[0])  # stable: a status note before a same-time check-in
        return [self.arrival_call(e), *(c for _, c in waited)]

    def _role_of(self, task_id: str, person_id: str) -> str | None:
        acc = self.state.acceptance[task_id]
        return next((s.role.value for s in acc.slots if s.person_id == person_id), None)

    def team_of(self, task_id: str) -> list[dict[str, str]]:
        """The people holding the task's slots, as casefile parties."""
        return [
            {"person_id": s.person_id, "name": self._name(s.person_id), "role": s.role.value}
            for s in self.state.acceptance[task_id].slots
            if s.person_id is not None
        ]

    def team_call(self, e: TaskEvent, event_id: str) -> CasefileCall:
        """When every role has accepted: the accepted team for the case. Sent only if it differs
        from the case's team (decided when it is due, against what casefile last answered)."""
        acc = self.state.acceptance[e.task_id]
        replaced = "; ".join(f"{pid} {why}" for pid, why in sorted(acc.refused.items()))
        body = {
            "team": self.team_of(e.task_id),
            "reason": "accepted team" + (f"; replaced: {replaced}" if replaced else ""),
        }
        return CasefileCall(
            f"team:{event_id}", e.task_id, CallMethod.UPDATE_TEAM, e.at, body, current_trace()
        )

    def note_call(self, e: TaskEvent, text: str) -> list[CasefileCall]:
        """A team member's status note for the case, sent in their name. The request id is the
        lifecycle event's own id, the same on every retry and after a restart."""
        role = self._role_of(e.task_id, e.actor)
        if role is None or not text.strip():
            return []  # only the team's notes belong in the case file
        body: dict[str, Any] = {
            "at": e.at.isoformat(),
            "text": text,
            "by": e.actor,
            "role": role,
            "status": e.to_state.value,
            "position": list(e.position) if e.position is not None else None,
        }
        return [
            CasefileCall(
                f"note:{e.event_id}", e.task_id, CallMethod.RECORD_SITE_NOTE, e.at, body,
                current_trace(),
            )
        ]  # fmt: skip

    def cancel_call(self, e: TaskEvent) -> list[CasefileCall]:
        """The duty manager's cancellation (status_rights: theirs alone, with the reason) for
        the case, sent in their name with their jurisdiction. The request id is the task's
        and the step's, the same on every retry, redelivery and restart."""
        acc = self.state.acceptance.get(e.task_id)
        if acc is None or acc.manager_id is None or e.actor != acc.manager_id:
            return []  # dispatch's own cancellations (alert cleared, policy) are not theirs
        manager = self.roster.get(e.actor)
        body: dict[str, Any] = {
            "cancelled_at": e.at.isoformat(),
            "reason": e.note,
            "by": e.actor,
            "jurisdiction": list(manager.jurisdiction) if manager is not None else [],
        }
        return [
            CasefileCall(
                f"cancel:{e.task_id}:{e.seq}", e.task_id, CallMethod.RECORD_TASK_CANCELLED,
                e.at, body, current_trace(),
            )
        ]  # fmt: skip

    def case_calls(self, e: TaskEvent, event_id: str) -> list[CasefileCall]:
        """What a lifecycle step of a joint inspection passes on to its case file."""
        task = self.state.tasks[e.task_id]
        if task.route is not Route.JOINT_INSPECTION:
            return []  # only joint inspections have a case
        if e.to_state is TaskState.CANCELLED:
            return self.cancel_call(e)  # whether or not the team had arrived
        if e.to_state is TaskState.ASSIGNED:
            return [self.team_call(e, event_id)]
        if e.to_state in (TaskState.EN_ROUTE, TaskState.ON_SITE):
            return []  # held for the arrival; an officer's check-in note is their check-in's
        if not task.arrival_asked():
            # a case takes notes from its arrival on; they wait for it (and are not sent if
            # the task ends without two officers having checked in)
            return []
        if e.to_state is TaskState.SAMPLING:
            return self.note_call(e, e.note)
        if e.to_state is TaskState.COMPLETED:
            done = "inspection completed on site" + (f": {e.note}" if e.note.strip() else "")
            return self.note_call(e, done)
        return []

    def translate(
        self, effects: Iterable[Effect], now: datetime, origin: AlertOrigin | None = None
    ) -> Changes:
        """Turns one step's effects into rows to commit; updates the per-task metas."""
        changes = Changes()
        if origin is not None:
            changes.processed.append(origin.event_id)
        cause = origin.event_id if origin is not None else ""
        policy_version = ""
        for e in effects:
            if isinstance(e, DecisionRecorded):
                d = e.decision
                policy_version = d.policy_version
                if isinstance(d, Inhibited | Suppressed | Ignored):
                    changes.events.append(self.held_alert(e, origin, now))
                elif isinstance(d, CloseOrNote) and not d.close:
                    changes.tasks.add(d.task_id)
                    changes.events.append(
                        self.task_event(
                            d.task_id, "ALERT_NOTED", now, note=d.reason, causation_id=cause
                        )
                    )
                elif isinstance(d, CreateTask):
                    policy_version = d.policy_version
                continue
            changes.tasks.add(e.task_id)
            if isinstance(e, TaskEvent):
                if e.seq == 0:
                    if origin is None:
                        raise ValueError("a task can only be created from an alert")
                    self.metas[e.task_id] = TaskMeta(
                        alert_time=origin.alert_time,
                        evidence=origin.evidence,
                        policy_version=policy_version,
                    )
                kind = "TASK_CREATED" if e.seq == 0 else "STATUS_CHANGED"
                # the state this step moved to, even if a later effect of the same step moved
                # the task on (CREATED is followed at once by ASSIGNING)
                event = self.task_event(
                    e.task_id, kind, e.at, actor=e.actor, note=e.note, position=e.position,
                    causation_id=cause, status=e.to_state.value,
                )  # fmt: skip
                changes.events.append(event)
                changes.calls += self.case_calls(e, event.event_id)
            elif isinstance(e, TeamProposed):
                a = e.assignment
                notes = [*a.widened]
                if a.unfilled:
                    notes.append("unfilled: " + ", ".join(s.slot_id for s in a.unfilled))
                changes.events.append(
                    self.task_event(
                        e.task_id, "TEAM_PROPOSED", now, note="; ".join(notes),
                        team=self.proposed_team(a), causation_id=cause,
                    )
                )  # fmt: skip
            elif isinstance(e, OpenCaseRequest):
                self.metas[e.task_id].case_pending = True
                changes.calls.append(open_case_call(e.task_id, now))
            elif isinstance(e, CheckedIn):
                changes.events.append(self.checked_in_event(e))
                changes.notifications += self.checked_in_notifications(e, now)
                if e.to_case:
                    changes.calls.append(self.check_in_note(e.task_id, e.check_in))
            elif isinstance(e, ArrivalDue):
                changes.calls += self.arrival_calls(e)
            elif isinstance(e, AlertAttached):
                changes.events.append(
                    self.task_event(
                        e.task_id, "ALERT_ATTACHED", now, note=e.alert_id, causation_id=cause
                    )
                )
            elif isinstance(e, Notify):
                changes.notifications.append(self.notification(e.task_id, e.person_id, e.kind, now))
            elif isinstance(e, Remind):
                changes.notifications.append(
                    self.notification(e.task_id, e.person_id, "reminder", now, reminder=e.count)
                )
            elif isinstance(e, Reassign) and e.vacated_by is not None:
                # a retry of a slot that was already empty vacates nothing
                changes.events.append(
                    self.task_event(e.task_id, "SLOT_VACATED", now, note=f"{e.slot_id}: {e.reason}")
                )
            elif isinstance(e, Escalate):
                changes.events.append(self.task_event(e.task_id, "ESCALATED", now, note=e.reason))
                if e.manager_id is not None:
                    changes.notifications.append(
                        self.notification(
                            e.task_id, e.manager_id, "escalation", now, reason=e.reason
                        )
                    )
            elif isinstance(e, SlaAtRisk | SlaBreach):
                kind = "SLA_AT_RISK" if isinstance(e, SlaAtRisk) else "SLA_BREACHED"
                changes.events.append(
                    self.task_event(
                        e.task_id, kind, e.at, note=f"{e.clock} due {e.due_at.isoformat()}"
                    )
                )
        return changes
