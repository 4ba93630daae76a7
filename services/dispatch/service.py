"""The dispatch application service: runs the domain Dispatcher against the outside world.

Each step (an alert, a phone action, a tick) runs under one asyncio lock: the dispatcher
decides, the effects are translated into dispatch events and notifications, and all of it is
committed in one transaction before anyone is told (push, Kafka, casefile). If the commit
fails the in-memory state is reloaded from the database, so memory never runs ahead of what
was stored. Casefile and Kafka calls happen after the commit and are retried from the stored
state (`case_pending`, unpublished outbox rows) on every tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from dispatch.adapters.alert_events import UnusableAlert, evidence_of, signal_from_event
from dispatch.adapters.dispatch_events import AlertOrigin, EventBuilder
from dispatch.adapters.push import PushHub
from dispatch.adapters.registry import Reference
from dispatch.adapters.store import Changes, DispatchStore, OutgoingEvent, TaskMeta
from dispatch.domain.acceptance import AcceptanceState, SlotStatus
from dispatch.domain.alerts import AlertSignal
from dispatch.domain.dispatcher import Dispatcher, UnknownTask
from dispatch.domain.effects import DecisionRecorded, Effect, OpenCaseRequest
from dispatch.domain.policy import DispatchPolicy
from dispatch.domain.tasks import Task, TaskError, TaskState
from liandong.v1 import alerts_pb2

log = logging.getLogger(__name__)


class CaseOpener(Protocol):
    async def open_case(
        self,
        *,
        task_id: str,
        alert_ids: list[str],
        enterprise_id: str,
        outlet_id: str,
        county: str,
        team: list[dict[str, str]],
        discovered_at: datetime,
        summary: str,
    ) -> Any: ...


class EventSink(Protocol):
    async def send(self, events: Sequence[OutgoingEvent]) -> None: ...


class NotAnswerable(TaskError):
    """Accept/decline on a task that is no longer waiting for its team's answers."""

    def __init__(self, task_id: str, state: TaskState) -> None:
        super().__init__(f"task {task_id} is {state.value}, not waiting for answers")
        self.task_id = task_id
        self.state = state


@dataclass(frozen=True)
class StepResult:
    effects: list[Effect]
    changes: Changes


def utcnow() -> datetime:
    return datetime.now(UTC)


class DispatchService:
    def __init__(
        self,
        policy: DispatchPolicy,
        store: DispatchStore,
        reference: Reference,
        *,
        hub: PushHub | None = None,
        sink: EventSink | None = None,
        casefile: CaseOpener | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.reference = reference
        self.hub = hub or PushHub()
        self.sink = sink
        self.casefile = casefile
        self.clock = clock
        self.lock = asyncio.Lock()
        self._publish_lock = asyncio.Lock()
        state, self.metas = store.load()
        self.dispatcher = Dispatcher(policy, reference.roster(), state)
        self.dispatcher.set_marks(reference.marks())
        self._reference_version = reference.version

    @property
    def policy(self) -> DispatchPolicy:
        return self.dispatcher.policy

    # ---- the step ---------------------------------------------------------------------
    def _sync_reference(self) -> None:
        if self.reference.version != self._reference_version:
            self.dispatcher.set_roster(self.reference.roster())
            self.dispatcher.set_marks(self.reference.marks())
            self._reference_version = self.reference.version

    def _reload(self) -> None:
        state, self.metas = self.store.load()
        state.marks = self.dispatcher.state.marks
        self.dispatcher.state = state

    async def _step(
        self,
        run: Callable[[datetime], list[Effect]],
        origin: AlertOrigin | None = None,
        touched: Iterable[str] = (),
        extra: Callable[[EventBuilder, datetime], list[OutgoingEvent]] | None = None,
    ) -> StepResult:
        async with self.lock:
            self._sync_reference()
            now = self.clock()
            effects = run(now)
            builder = EventBuilder(self.dispatcher.state, self.metas, self.dispatcher.roster)
            first = extra(builder, now) if extra is not None else []
            changes = builder.translate(effects, now, origin)
            changes.events[:0] = first
            changes.tasks.update(touched)
            if changes:
                try:
                    await asyncio.to_thread(
                        self.store.commit, self.dispatcher.state, self.metas, changes, now
                    )
                except Exception:
                    self._reload()
                    raise
        self.hub.wake(n.person_id for n in changes.notifications)
        return StepResult(effects, changes)

    # ---- alerts ---------------------------------------------------------------------------
    async def on_alert_event(self, alert: alerts_pb2.AlertEvent) -> StepResult | None:
        """One `alerts.events` record, end to end: decide, store, push, open the case,
        publish. A record seen before returns None and does nothing."""
        try:
            signal = signal_from_event(alert, self.reference.outlet(alert.outlet_id))
        except UnusableAlert as e:
            log.warning("alert event %s skipped: %s", alert.meta.event_id, e)
            return None
        if signal.event_id in self.dispatcher.state.seen_events:
            return None
        origin = AlertOrigin(signal.event_id, signal.event_time, evidence_of(alert))
        result = await self._step(lambda now: self.dispatcher.on_alert(signal, now), origin)
        await self.open_cases(e.task_id for e in result.effects if isinstance(e, OpenCaseRequest))
        await self.flush()
        return result

    async def on_signals(
        self, signals: Sequence[AlertSignal], evidence: dict[str, dict[str, Any]] | None = None
    ) -> StepResult:
        """Simultaneous alerts in one step and one transaction (they share one assigner, so
        the load spreads); used for bursts and by the benchmark. Cases and Kafka follow
        from the stored state on the next tick or flush."""
        fresh = [s for s in signals if s.event_id not in self.dispatcher.state.seen_events]
        async with self.lock:
            self._sync_reference()
            now = self.clock()
            builder = EventBuilder(self.dispatcher.state, self.metas, self.dispatcher.roster)
            assigner_effects: list[Effect] = []
            changes = Changes()
            effects_all = self.dispatcher.on_alerts(fresh, now)
            by_event = _split_by_signal(effects_all, fresh)
            for s, effects in by_event:  # each signal's effects carry its own origin
                ev = (evidence or {}).get(s.alert_id, {"alert_id": s.alert_id, "kind": s.kind})
                part = builder.translate(effects, now, AlertOrigin(s.event_id, s.event_time, ev))
                changes.tasks |= part.tasks
                changes.processed += part.processed
                changes.events += part.events
                changes.notifications += part.notifications
                assigner_effects += effects
            if changes:
                try:
                    await asyncio.to_thread(
                        self.store.commit, self.dispatcher.state, self.metas, changes, now
                    )
                except Exception:
                    self._reload()
                    raise
        self.hub.wake(n.person_id for n in changes.notifications)
        return StepResult(assigner_effects, changes)

    # ---- casefile ---------------------------------------------------------------------------
    def _team(self, acc: AcceptanceState) -> list[dict[str, str]]:
        roster = self.dispatcher.roster
        team = []
        for s in acc.slots:
            if s.person_id is None:
                continue
            p = roster.get(s.person_id)
            team.append(
                {"person_id": s.person_id, "name": p.name if p else "", "role": s.role.value}
            )
        return team

    async def open_cases(self, task_ids: Iterable[str]) -> None:
        for task_id in task_ids:
            await self.open_case(task_id)

    async def open_case(self, task_id: str) -> str | None:
        """Opens the task's case in casefile (idempotent there by request id) and records
        CASE_OPENED; on failure the task stays `case_pending` for the next tick."""
        meta = self.metas.get(task_id)
        if self.casefile is None or meta is None or not meta.case_pending:
            return meta.case_id if meta else None
        task = self.dispatcher.state.tasks[task_id]
        team = self._team(self.dispatcher.state.acceptance[task_id])
        if not team:
            return None  # casefile needs the team; retried once someone is offered the task
        try:
            case = await self.casefile.open_case(
                task_id=task_id,
                alert_ids=list(task.alert_ids),
                enterprise_id=task.enterprise_id,
                outlet_id=task.outlet_id,
                county=task.county_code,
                team=team,
                discovered_at=meta.alert_time,
                summary=str(meta.evidence.get("explanation", "")),
            )
        except Exception:
            log.exception("opening the case of task %s failed; retried on the next tick", task_id)
            return None
        case_id = str(case.case_id)

        def record(b: EventBuilder, now: datetime) -> list[OutgoingEvent]:
            meta.case_id, meta.case_pending = case_id, False
            return [b.task_event(task_id, "CASE_OPENED", now, note=f"case {case_id}")]

        await self._step(lambda now: [], touched=[task_id], extra=record)
        return case_id

    # ---- Kafka ----------------------------------------------------------------------------
    async def flush(self) -> int:
        """Publishes unpublished outbox rows in order; returns how many were sent."""
        if self.sink is None:
            return 0
        sent = 0
        async with self._publish_lock:
            while True:
                rows = await asyncio.to_thread(self.store.unpublished)
                if not rows:
                    return sent
                try:
                    await self.sink.send([e for _, e in rows])
                except Exception:
                    log.exception("publishing %d dispatch events failed; retried", len(rows))
                    return sent
                await asyncio.to_thread(self.store.mark_published, [i for i, _ in rows])
                sent += len(rows)

    # ---- time -----------------------------------------------------------------------------
    async def tick(self) -> StepResult:
        result = await self._step(self.dispatcher.on_tick)
        await self.open_cases([t for t, m in self.metas.items() if m.case_pending])
        await self.flush()
        return result

    async def run_ticks(self, stop: asyncio.Event, every_s: float) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    # ---- phones ---------------------------------------------------------------------------
    def task(self, task_id: str) -> Task:
        task = self.dispatcher.state.tasks.get(task_id)
        if task is None:
            raise UnknownTask(task_id)
        return task

    def acceptance(self, task_id: str) -> AcceptanceState:
        self.task(task_id)
        return self.dispatcher.state.acceptance[task_id]

    def meta(self, task_id: str) -> TaskMeta:
        self.task(task_id)
        return self.metas[task_id]

    async def _published(
        self,
        run: Callable[[datetime], list[Effect]],
        touched: Iterable[str] = (),
        extra: Callable[[EventBuilder, datetime], list[OutgoingEvent]] | None = None,
    ) -> StepResult:
        """A phone step: committed, pushed, then published on dispatch.events."""
        result = await self._step(run, touched=touched, extra=extra)
        await self.flush()
        return result

    async def accept(self, task_id: str, person_id: str) -> StepResult:
        def run(now: datetime) -> list[Effect]:
            task = self.task(task_id)
            if task.state is not TaskState.ASSIGNING:
                raise NotAnswerable(task_id, task.state)
            return self.dispatcher.on_accept(task_id, person_id, now)

        accepted_before = self._accepted(task_id)
        return await self._published(
            run,
            touched=[task_id],
            extra=lambda b, now: (
                []
                if person_id in accepted_before
                else [b.task_event(task_id, "ACCEPTED", now, actor=person_id)]
            ),
        )

    def _accepted(self, task_id: str) -> set[str]:
        acc = self.dispatcher.state.acceptance.get(task_id)
        if acc is None:
            return set()
        return {s.person_id for s in acc.slots if s.status is SlotStatus.ACCEPTED and s.person_id}

    async def decline(self, task_id: str, person_id: str, reason: str) -> StepResult:
        def run(now: datetime) -> list[Effect]:
            task = self.task(task_id)
            if task.state is not TaskState.ASSIGNING:
                raise NotAnswerable(task_id, task.state)
            return self.dispatcher.on_decline(task_id, person_id, reason, now)

        return await self._published(
            run,
            touched=[task_id],
            extra=lambda b, now: [
                b.task_event(task_id, "DECLINED", now, actor=person_id, note=reason)
            ],
        )

    async def update_status(
        self,
        task_id: str,
        person_id: str,
        status: TaskState,
        position: tuple[float, float] | None,
        note: str = "",
    ) -> StepResult:
        return await self._published(
            lambda now: self.dispatcher.on_status(task_id, person_id, status, position, now, note),
            touched=[task_id],
        )


def _split_by_signal(
    effects: list[Effect], signals: Sequence[AlertSignal]
) -> list[tuple[AlertSignal, list[Effect]]]:
    """Effects of `Dispatcher.on_alerts` start with one DecisionRecorded per signal, in order."""
    out: list[tuple[AlertSignal, list[Effect]]] = []
    pending = iter(signals)
    for e in effects:
        if isinstance(e, DecisionRecorded):
            out.append((next(pending), [e]))
        elif out:
            out[-1][1].append(e)
    return out
