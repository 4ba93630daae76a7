"""The dispatch façade: alerts in, tasks, teams, offers, clocks and escalations out.

All state lives in `DispatchState` (plain dataclasses) so an adapter can persist it; every
method takes `now` and returns the effects to carry out. Applying the same alert event twice
yields no new effects, and a task's id is derived from its first alert, so replays are safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from dispatch.domain.acceptance import AcceptanceState
from dispatch.domain.alerts import AlertChange, AlertSignal, parse_kind
from dispatch.domain.assignment import Assigner, SlotRequest, TeamRequest
from dispatch.domain.decision import AttachToTask, CloseOrNote, CreateTask
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
    SlaAtRisk,
    SlaBreach,
    TeamProposed,
)
from dispatch.domain.marks import DataMark
from dispatch.domain.policy import ActiveFault, DispatchPolicy, decide
from dispatch.domain.presence import OFFICERS_FOR_ARRIVAL, CheckIn
from dispatch.domain.roster import Role, Roster
from dispatch.domain.routes import SITE_ROUTES, Route
from dispatch.domain.sla import SlaClocks
from dispatch.domain.status_rights import check_status_right
from dispatch.domain.tasks import (
    TRANSITIONS,
    IllegalTransition,
    OutsideGeofence,
    Task,
    TaskError,
    TaskState,
    new_task,
    task_id_for,
)

# where a team member may check in: on the way, or joining colleagues already on site
CHECK_IN_STATES = frozenset({TaskState.EN_ROUTE, TaskState.ON_SITE, TaskState.SAMPLING})


class UnknownTask(TaskError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task {task_id}")
        self.task_id = task_id


class TooFewOfficersPresent(TaskError):
    """A joint inspection completed before two officers' check-ins: its case would have no
    arrival (casefile needs two officers present), so it could not stand as evidence."""

    def __init__(self, task_id: str, officers: tuple[str, ...]) -> None:
        present = ", ".join(officers) or "none"
        super().__init__(
            f"task {task_id}: a joint inspection is completed after {OFFICERS_FOR_ARRIVAL} "
            f"enforcement officers have checked in on site (checked in: {present}); "
            "the others check in, or the duty manager cancels the task with the reason"
        )
        self.task_id = task_id
        self.officers = officers


class NotOnTeam(TaskError):
    def __init__(self, task_id: str, person_id: str) -> None:
        super().__init__(f"task {task_id}: {person_id} is not on the accepted team")
        self.task_id = task_id
        self.person_id = person_id


@dataclass
class DispatchState:
    tasks: dict[str, Task] = field(default_factory=dict)
    acceptance: dict[str, AcceptanceState] = field(default_factory=dict)
    clocks: dict[str, SlaClocks] = field(default_factory=dict)
    seen_events: set[str] = field(default_factory=set)
    active_faults: dict[str, ActiveFault] = field(default_factory=dict)  # by alert id
    marks: dict[str, list[DataMark]] = field(default_factory=dict)  # by outlet id
    loads: dict[str, int] = field(default_factory=dict)  # tasks offered/held per person


class Dispatcher:
    def __init__(
        self, policy: DispatchPolicy, roster: Roster, state: DispatchState | None = None
    ) -> None:
        self.policy = policy
        self.roster = roster
        self.state = state if state is not None else DispatchState()

    # ---- reference data -------------------------------------------------------------
    def set_roster(self, roster: Roster) -> None:
        self.roster = roster

    def set_marks(self, marks: Iterable[DataMark]) -> None:
        by_outlet: dict[str, list[DataMark]] = {}
        for m in marks:
            by_outlet.setdefault(m.outlet_id, []).append(m)
        self.state.marks = by_outlet

    # ---- alerts ---------------------------------------------------------------------
    def on_alert(self, signal: AlertSignal, now: datetime) -> list[Effect]:
        return self.on_alerts([signal], now)

    def on_alerts(self, signals: Iterable[AlertSignal], now: datetime) -> list[Effect]:
        """Simultaneous alerts share one assigner, so loads grow across the batch."""
        assigner = self._assigner(now)
        effects: list[Effect] = []
        for s in signals:
            effects += self._on_alert(s, now, assigner)
        return effects

    def _assigner(self, now: datetime) -> Assigner:
        loads = {p.id: p.load + self.state.loads.get(p.id, 0) for p in self.roster.people}
        return Assigner(self.roster, self.policy.assignment, now, loads)

    def _track_fault(self, s: AlertSignal) -> None:
        if parse_kind(s.kind) not in self.policy.inhibiting_kinds:
            return
        if s.change is AlertChange.CLEARED:
            self.state.active_faults.pop(s.alert_id, None)
        elif s.alert_id not in self.state.active_faults:
            self.state.active_faults[s.alert_id] = ActiveFault(
                s.alert_id, s.outlet_id, s.kind, s.event_time
            )

    def _on_alert(self, s: AlertSignal, now: datetime, assigner: Assigner) -> list[Effect]:
        st = self.state
        if s.event_id in st.seen_events:
            return []
        st.seen_events.add(s.event_id)
        self._track_fault(s)
        open_tasks = [t for t in st.tasks.values() if t.open]
        faults = [f for f in st.active_faults.values() if f.outlet_id == s.outlet_id]
        decision = decide(self.policy, s, open_tasks, faults, st.marks.get(s.outlet_id, ()), now)
        effects: list[Effect] = [DecisionRecorded(s.event_id, s.alert_id, decision)]
        if isinstance(decision, CreateTask):
            if task_id_for(s.alert_id) in st.tasks:
                return effects  # the alert already opened a task that has since closed
            effects += self._create(s, decision, now, assigner)
        elif isinstance(decision, AttachToTask):
            task = st.tasks[decision.task_id]
            if s.alert_id not in task.alert_ids:
                task.alert_ids.append(s.alert_id)
            if decision.priority.more_urgent_than(task.priority):
                task.priority = decision.priority
                st.clocks[task.task_id].retarget(
                    self.policy.sla, task.priority, task.key_polluter, task.route in SITE_ROUTES
                )
            task.key_polluter = task.key_polluter or s.key_polluter
            effects.append(AlertAttached(task.task_id, s.alert_id, task.priority))
        elif isinstance(decision, CloseOrNote) and decision.close:
            task = st.tasks[decision.task_id]
            effects += self._finish(
                task, TaskState.CANCELLED, "dispatch", now, None, decision.reason
            )
        return effects

    def _create(
        self, s: AlertSignal, d: CreateTask, now: datetime, assigner: Assigner
    ) -> list[Effect]:
        st = self.state
        task, created = new_task(
            s.alert_id, d.route, d.priority, s.enterprise_id, s.outlet_id, s.county_code,
            s.lat, s.lon, now, key_polluter=s.key_polluter, note=d.reason,
        )  # fmt: skip
        st.tasks[task.task_id] = task
        effects: list[Effect] = [created]
        effects.append(task.transition(TaskState.ASSIGNING, "dispatch", now))
        st.clocks[task.task_id] = SlaClocks.start(
            task.task_id, self.policy.sla, d.priority, s.key_polluter, d.route in SITE_ROUTES, now
        )
        slots = self.policy.assignment.team_for(d.route, d.priority).slot_requests()
        manager = self.roster.duty_manager_for(s.county_code, now)
        acc = AcceptanceState.open(
            task.task_id, slots, d.priority, self.policy.acceptance,
            manager.id if manager else None, now,
        )  # fmt: skip
        st.acceptance[task.task_id] = acc
        if d.route is Route.JOINT_INSPECTION:
            effects.append(
                OpenCaseRequest(
                    task.task_id, s.enterprise_id, s.outlet_id, (s.alert_id,), d.priority
                )
            )
        effects += self._fill(task, acc, slots, frozenset(), now, assigner)
        return effects

    def _fill(
        self,
        task: Task,
        acc: AcceptanceState,
        slots: tuple[SlotRequest, ...],
        exclude: frozenset[str],
        now: datetime,
        assigner: Assigner,
    ) -> list[Effect]:
        result = assigner.assign(
            TeamRequest(task.task_id, task.county_code, task.lat, task.lon, slots, exclude)
        )
        effects: list[Effect] = [TeamProposed(task.task_id, result)]
        for pick in result.picks:
            self.state.loads[pick.person_id] = self.state.loads.get(pick.person_id, 0) + 1
            effects += acc.offer(pick.slot_id, pick.person_id, now)
        for slot in result.unfilled:
            why = ", ".join(f"{k}: {v}" for k, v in result.passed_over.items()) or "nobody"
            effects += acc.unfilled(slot.slot_id, f"no eligible {slot.role.value} ({why})", now)
        return effects

    def _release(self, person_id: str) -> None:
        n = self.state.loads.get(person_id, 0)
        if n <= 1:
            self.state.loads.pop(person_id, None)
        else:
            self.state.loads[person_id] = n - 1

    def _follow_up(self, task: Task, effects: list[Effect], now: datetime) -> list[Effect]:
        """Carry out the reassignments the acceptance state asked for; whoever gave up a slot
        (declined, or said nothing in time) no longer carries it in their load."""
        out: list[Effect] = []
        assigner: Assigner | None = None
        acc = self.state.acceptance[task.task_id]
        for e in effects:
            out.append(e)
            if isinstance(e, Reassign):
                if e.vacated_by is not None:
                    self._release(e.vacated_by)
                assigner = assigner or self._assigner(now)
                slot = SlotRequest(e.slot_id, e.role, e.certificate)
                out += self._fill(task, acc, (slot,), acc.exclusions(), now, assigner)
        return out

    # ---- phones ---------------------------------------------------------------------
    def _task(self, task_id: str) -> Task:
        task = self.state.tasks.get(task_id)
        if task is None:
            raise UnknownTask(task_id)
        return task

    def on_accept(self, task_id: str, person_id: str, now: datetime) -> list[Effect]:
        task = self._task(task_id)
        acc = self.state.acceptance[task_id]
        effects = acc.on_accept(person_id, now)
        if acc.all_accepted and task.state is TaskState.ASSIGNING:
            started = task.transition(TaskState.ASSIGNED, person_id, now, note="team accepted")
            effects.append(started)
            effects += self.state.clocks[task_id].on_state(TaskState.ASSIGNED, now)
        return effects

    def on_decline(self, task_id: str, person_id: str, reason: str, now: datetime) -> list[Effect]:
        task = self._task(task_id)
        acc = self.state.acceptance[task_id]
        effects = acc.on_decline(person_id, reason, now)
        return self._follow_up(task, effects, now)

    def on_status(
        self,
        task_id: str,
        person_id: str,
        status: TaskState,
        position: tuple[float, float] | None,
        now: datetime,
        note: str = "",
    ) -> list[Effect]:
        """A team member who accepted moves the task on; the duty manager cancels it with
        the reason (domain/status_rights)."""
        task = self._task(task_id)
        acc = self.state.acceptance[task_id]
        check_status_right(task, acc, person_id, status, note)
        if (
            status is TaskState.COMPLETED
            and task.route is Route.JOINT_INSPECTION
            and (task.state, status) in TRANSITIONS[task.route]  # else the transition's error
            and not task.arrival_asked()
        ):
            raise TooFewOfficersPresent(task_id, task.presence.officers())
        if status in (TaskState.COMPLETED, TaskState.CANCELLED):
            return self._finish(task, status, person_id, now, position, note)
        if status is TaskState.ON_SITE:
            return self.check_in(task_id, person_id, position, now, note)
        event = task.transition(status, person_id, now, position, note, self.policy.geofence_m)
        return [event, *self.state.clocks[task_id].on_state(status, now)]

    def check_in(
        self,
        task_id: str,
        person_id: str,
        position: tuple[float, float] | None,
        now: datetime,
        note: str = "",
    ) -> list[Effect]:
        """A team member's own geofenced check-in, recorded once (a repeat changes nothing).

        The task is ON_SITE from the first check-in that may start it: any member's on an
        operations task, an enforcement officer's on a joint inspection (monitoring staff
        arriving first are recorded as present, and the ARRIVE clock runs on). A joint
        inspection's case gets its arrival when two officers have checked in."""
        task = self._task(task_id)
        acc = self.state.acceptance[task_id]
        if person_id not in acc.members():
            raise NotOnTeam(task_id, person_id)
        presence = task.presence
        if presence.of(person_id) is not None:
            return []  # the phone sent it again: same answer, nothing recorded twice
        if task.state not in CHECK_IN_STATES:
            raise IllegalTransition(task_id, task.state, TaskState.ON_SITE)
        distance = task.distance_m(position)
        if position is None or distance is None or distance > self.policy.geofence_m:
            raise OutsideGeofence(task_id, distance, self.policy.geofence_m)
        roles = acc.roles_of(person_id)
        role = Role.ENFORCEMENT if Role.ENFORCEMENT in roles else min(roles)
        joint = task.route is Route.JOINT_INSPECTION
        if task.arrived_before_presence():
            presence.arrival_covers = 0  # the older version sent the arrival already
        visit = CheckIn(person_id, role, now, position, distance, note)
        presence.record(visit)
        effects: list[Effect] = []
        if task.state is TaskState.EN_ROUTE and (not joint or role is Role.ENFORCEMENT):
            event = task.transition(
                TaskState.ON_SITE, person_id, now, position, note, self.policy.geofence_m
            )
            effects += [event, *self.state.clocks[task_id].on_state(TaskState.ON_SITE, now)]
        effects.append(CheckedIn(task_id, visit, to_case=joint and presence.arrival_asked))
        if joint and presence.arrival_due():
            presence.arrival_covers = len(presence.check_ins)
            effects.append(
                ArrivalDue(
                    task_id, now, presence.officers(), position, person_id,
                    tuple(presence.check_ins), task.seq,
                )
            )  # fmt: skip
        return effects

    def _finish(
        self,
        task: Task,
        status: TaskState,
        actor: str,
        now: datetime,
        position: tuple[float, float] | None,
        note: str,
    ) -> list[Effect]:
        event = task.transition(status, actor, now, position, note, self.policy.geofence_m)
        effects: list[Effect] = [event, *self.state.clocks[task.task_id].on_state(status, now)]
        for member in self.state.acceptance[task.task_id].members():
            self._release(member)
            if status is TaskState.CANCELLED:
                effects.append(Notify(task.task_id, member, "cancelled"))
        return effects

    # ---- time -----------------------------------------------------------------------
    def on_tick(self, now: datetime) -> list[Effect]:
        effects: list[Effect] = []
        for task_id in sorted(self.state.tasks):
            task = self.state.tasks[task_id]
            if not task.open:
                continue
            acc = self.state.acceptance[task_id]
            if task.state is TaskState.ASSIGNING:
                effects += self._follow_up(task, acc.on_tick(now), now)
            for e in self.state.clocks[task_id].on_tick(now):
                effects.append(e)
                if isinstance(e, SlaAtRisk | SlaBreach):
                    kind = "at risk" if isinstance(e, SlaAtRisk) else "breached"
                    effects.append(
                        Escalate(task_id, acc.manager_id, f"SLA {e.clock} {kind}, due {e.due_at}")
                    )
        return effects
