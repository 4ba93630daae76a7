"""The dispatch application service: runs the domain Dispatcher against the outside world.

Each step (an alert, a phone action, a tick) runs under one asyncio lock: the dispatcher
decides, the effects are translated into dispatch events and notifications, and all of it is
committed in one transaction before anyone is told (push, Kafka, casefile). If the commit
fails the in-memory state is reloaded from the database, so memory never runs ahead of what
was stored. Casefile and Kafka calls happen after the commit, from what was stored with the
step: unpublished outbox rows (retried on every tick) and the casefile call queue (made by
`run_casefile_calls` as soon as they are due, with backoff after a failure, and by the tick).
Replicas on one PostgreSQL database take turns step by step (`_in_turn`: an advisory lock held
until the commit, and a reload when another replica stored a step since), so every replica
may tick: the second tick finds the first one's reminders and escalations already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import grpc
from opentelemetry import propagate, trace

from dispatch.adapters.alert_events import UnusableAlert, evidence_of, signal_from_event
from dispatch.adapters.dispatch_events import AlertOrigin, EventBuilder, open_case_call
from dispatch.adapters.outbox_relay import EventSink, OutboxRelay
from dispatch.adapters.push import PushHub
from dispatch.adapters.registry import Reference
from dispatch.adapters.report_store import Alarm
from dispatch.adapters.response_metrics import ResponseMetrics
from dispatch.adapters.store import Changes, DispatchStore, OutgoingEvent, TaskMeta
from dispatch.domain.acceptance import AcceptanceState, SlotStatus
from dispatch.domain.alerts import AlertChange, AlertSignal
from dispatch.domain.casefile_calls import (
    Backoff,
    CallMethod,
    CallStatus,
    CasefileCall,
    Outcome,
    outcome_of_status,
    same_team,
)
from dispatch.domain.dispatcher import Dispatcher, DispatchState, UnknownTask
from dispatch.domain.effects import DecisionRecorded, Effect
from dispatch.domain.policy import DispatchPolicy
from dispatch.domain.tasks import Task, TaskError, TaskState
from liandong.v1 import alerts_pb2

log = logging.getLogger(__name__)
# the push hub key the managers' live overviews listen on (no person id starts with a space)
REPORTS_LISTENER = " reports"
tracer = trace.get_tracer("liandong.dispatch")


class CaseFile(Protocol):
    """What dispatch calls in casefile (adapters.casefile_client.CaseFileClient)."""

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

    async def record_arrival(
        self,
        *,
        request_id: str,
        case_id: str,
        arrived_at: datetime,
        officers_present: Sequence[str],
        position: tuple[float, float] | None,
        on_behalf_of: str,
        role: str = "ENFORCEMENT",
    ) -> Any: ...

    async def update_team(
        self, *, request_id: str, case_id: str, team: list[dict[str, str]], reason: str
    ) -> Any: ...

    async def record_site_note(
        self,
        *,
        request_id: str,
        case_id: str,
        at: datetime,
        text: str,
        by: str,
        role: str,
        position: tuple[float, float] | None,
    ) -> Any: ...

    async def record_task_cancelled(
        self,
        *,
        request_id: str,
        case_id: str,
        task_id: str,
        cancelled_at: datetime,
        reason: str,
        manager_id: str,
        jurisdiction: Sequence[str],
    ) -> Any: ...


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
        casefile: CaseFile | None = None,
        clock: Callable[[], datetime] = utcnow,
        backoff: Backoff | None = None,
        response_metrics: ResponseMetrics | None = None,
    ) -> None:
        self.store = store
        self.response_metrics = response_metrics or ResponseMetrics()
        self.reference = reference
        self.hub = hub or PushHub()
        self.sink = sink
        self.casefile = casefile
        self.clock = clock
        self.lock = asyncio.Lock()
        self.relay = None if sink is None else OutboxRelay(store, sink, clock)
        # read before the state: a step stored in between makes the first step reload
        self._version = store.version() if store.shared else 0
        self._stale = False  # memory ahead of the store after a failed commit (ensure_loaded)
        state, self.metas = store.load()
        self.dispatcher = Dispatcher(policy, reference.roster(), state)
        self.dispatcher.set_marks(reference.marks())
        self._reference_version = reference.version
        self.backoff = backoff or Backoff()
        self._casefile_lock = asyncio.Lock()
        self._casefile_wake = asyncio.Event()
        # after a failed attempt, until its retry: new calls wait for the retry loop rather
        # than hold up the step that asked for them
        self._casefile_down_until: datetime | None = None
        self._sent_team: dict[str, list[dict[str, str]]] = {}  # OpenCase request id -> team
        self._queue_unrecorded_opens()

    def _queue_unrecorded_opens(self) -> None:
        """Tasks stored as `case_pending` by a version that kept no call queue get their
        OpenCase call queued now."""
        queued = {c.request_id for c in self.store.pending_calls(limit=1_000_000)}
        now = self.clock()
        missing = [
            open_case_call(t, now)
            for t, m in sorted(self.metas.items())
            if m.case_pending and f"open:{t}" not in queued and not self.store.calls_for(t)
        ]
        if missing:
            self.store.commit(self.dispatcher.state, self.metas, Changes(calls=missing), now)

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
        self._install(*self.store.load())

    def _install(self, state: DispatchState, metas: dict[str, TaskMeta]) -> None:
        self.metas = metas
        state.marks = self.dispatcher.state.marks
        self.dispatcher.state = state

    async def ensure_loaded(self) -> None:
        """After a commit that failed and a reload that failed too, load the stored state
        before anything reads or changes it (raises while the database is unreachable)."""
        if not self._stale:
            return
        async with self.lock:
            if self._stale:
                self._install(*await asyncio.to_thread(self.store.load))
                self._stale = False
                log.info("state reloaded from the database")

    async def refresh(self) -> None:
        """Reads (phone and console requests) see what the other replicas stored: one
        version query, and a reload when it moved (no-op on a SQLite file)."""
        await self.ensure_loaded()
        if not self.store.shared:
            return
        version = await asyncio.to_thread(self.store.version)
        if version == self._version:
            return
        async with self.lock:  # never swap the state under a running step
            if version != self._version:
                self._install(*await asyncio.to_thread(self.store.load))
                # the state read is at least this version: a later one reloads again
                self._version = max(self._version, version) if self._version >= 0 else version

    @contextlib.asynccontextmanager
    async def _in_turn(self) -> AsyncIterator[int | None]:
        """Replicas on one PostgreSQL database take turns (store.lock_step) and each step
        starts from the state the last one stored, so no timer, reminder or escalation fires
        twice and no decision is made on another replica's stale copy. Yields the version
        the step commits (None: a SQLite file, one process)."""
        if not self.store.shared:
            yield None
            return
        taking = asyncio.ensure_future(asyncio.to_thread(self.store.lock_step))
        try:
            lock = await asyncio.shield(taking)
        except asyncio.CancelledError:  # the thread still takes it: let it go once taken
            taking.add_done_callback(
                lambda t: (
                    None if t.cancelled() or t.exception() else self.store.unlock_step(t.result())
                )
            )
            raise
        try:
            if lock.version != self._version:
                self._install(*await asyncio.to_thread(self.store.load))
                self._version = lock.version
            yield lock.version + 1
        finally:
            await asyncio.to_thread(self.store.unlock_step, lock)

    async def _step(
        self,
        run: Callable[[datetime], list[Effect]],
        origin: AlertOrigin | None = None,
        touched: Iterable[str] = (),
        extra: Callable[[EventBuilder, datetime], list[OutgoingEvent]] | None = None,
        calls: Sequence[CasefileCall] = (),
        alarms: Sequence[Alarm] = (),
    ) -> StepResult:
        await self.ensure_loaded()
        async with self.lock, self._in_turn() as version:
            self._sync_reference()
            now = self.clock()
            effects = run(now)
            builder = EventBuilder(self.dispatcher.state, self.metas, self.dispatcher.roster)
            first = extra(builder, now) if extra is not None else []
            changes = builder.translate(effects, now, origin)
            changes.events[:0] = first
            changes.tasks.update(touched)
            changes.calls[:0] = calls
            changes.alarms.extend(alarms)
            await self._commit(changes, now, version)
            # after the commit only: a step that was not stored is not counted
            self.response_metrics.record(effects, self.dispatcher.state, self.metas)
        self.hub.wake(_woken(changes))
        if any(c.status is CallStatus.PENDING and c.attempts == 0 for c in changes.calls):
            self._casefile_wake.set()  # new calls: the call loop makes them at once
        return StepResult(effects, changes)

    async def _commit(self, changes: Changes, now: datetime, version: int | None) -> None:
        if not changes:
            return
        try:
            await asyncio.to_thread(
                self.store.commit,
                self.dispatcher.state,
                self.metas,
                changes,
                now,
                version,
                _woken(changes),
            )
        except Exception:
            self._version = -1  # unknown: the next step reloads under the lock
            try:
                self._reload()
            except Exception:
                # The database is unreachable (the commit's failure, most likely): the
                # memory holds this step's uncommitted effects, the alert among the events
                # seen. Nothing may be decided on it until it is loaded again.
                self._stale = True
                log.warning("state not reloaded after a failed commit; reloading before use")
            else:
                self._stale = False
            raise
        if version is not None:
            self._version = version

    # ---- alerts ---------------------------------------------------------------------------
    async def on_alert_event(self, alert: alerts_pb2.AlertEvent) -> StepResult | None:
        """One `alerts.events` record, end to end: decide, store, push, open the case,
        publish. A record seen before returns None and does nothing."""
        try:
            signal = signal_from_event(alert, self.reference.outlet(alert.outlet_id))
        except UnusableAlert as e:
            log.warning("alert event %s skipped: %s", alert.meta.event_id, e)
            return None
        await self.ensure_loaded()  # "seen" must come from stored state
        if signal.event_id in self.dispatcher.state.seen_events:
            return None
        origin = AlertOrigin(signal.event_id, signal.event_time, evidence_of(alert))
        opened = [
            Alarm(
                alert.alert_id,
                signal.kind,
                signal.severity.name,
                signal.county_code,
                signal.outlet_id,
                signal.event_time,
            )
        ]
        result = await self._step(
            lambda now: self.dispatcher.on_alert(signal, now),
            origin,
            alarms=opened if alert.change == alerts_pb2.ALERT_CHANGE_OPENED else (),
        )
        await self.call_casefile(c.request_id for c in result.changes.calls)
        await self.flush()
        return result

    async def on_signals(
        self, signals: Sequence[AlertSignal], evidence: dict[str, dict[str, Any]] | None = None
    ) -> StepResult:
        """Simultaneous alerts in one step and one transaction (they share one assigner, so
        the load spreads); used for bursts and by the benchmark. Cases and Kafka follow
        from the stored state on the next tick or flush."""
        async with self.lock, self._in_turn() as version:
            fresh = [s for s in signals if s.event_id not in self.dispatcher.state.seen_events]
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
                if s.change is AlertChange.OPENED:
                    changes.alarms.append(
                        Alarm(
                            s.alert_id,
                            s.kind,
                            s.severity.name,
                            s.county_code,
                            s.outlet_id,
                            s.event_time,
                        )
                    )
                assigner_effects += effects
            await self._commit(changes, now, version)
            self.response_metrics.record(effects_all, self.dispatcher.state, self.metas)
        self.hub.wake(_woken(changes))
        if changes.calls:
            self._casefile_wake.set()
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

    def _casefile_down(self, now: datetime) -> bool:
        return self._casefile_down_until is not None and now < self._casefile_down_until

    async def call_casefile(
        self, request_ids: Iterable[str] | None = None, *, wait: bool = False
    ) -> int:
        """Makes the casefile calls that are due (all, or only `request_ids`), oldest first;
        returns how many were attempted. Each outcome is committed: done (OpenCase records
        CASE_OPENED), retry later with backoff, or dead-lettered as CASEFILE_REJECTED.

        While casefile is failing, a pass stops at the first failure and the next one starts
        with a single probe after the backoff, so an outage costs one timeout per backoff
        period, not one per pending call. Unless `wait`, a pass already under way (the call
        loop's) is not waited for: the alert consumer and the tick are never held up by it."""
        if self.casefile is None or (self._casefile_lock.locked() and not wait):
            return 0
        wanted = set(request_ids) if request_ids is not None else None
        attempted = 0
        async with self._casefile_lock:
            pending = await asyncio.to_thread(self.store.pending_calls)
            refused_opens: set[str] = set()
            # task -> its oldest call still pending: a case's records go in the order asked for
            # (an arrival never overtakes the team change that lets its officers in)
            ahead: dict[str, CasefileCall] = {}
            for call in pending:
                now = self.clock()
                first = ahead.setdefault(call.task_id, call)
                if (wanted is not None and call.request_id not in wanted) or not call.due(now):
                    continue
                if self._casefile_down(now):
                    break  # the rest waits for the next pass after the backoff
                if first is not call and call.method is not CallMethod.OPEN_CASE:
                    holding = f"waiting for {first.method.value} {first.request_id}"
                    await self._settle(call, Outcome.RETRY, holding, None)
                    continue
                attempted += 1
                with tracer.start_as_current_span(
                    f"dispatch casefile {call.method.value}",
                    context=propagate.extract(call.trace),
                    attributes={
                        "liandong.task_id": call.task_id,
                        "rpc.request_id": call.request_id,
                    },
                ):
                    outcome, error, case = await self._attempt(call, refused_opens)
                if outcome is Outcome.DONE and case is None:
                    attempted -= 1  # nothing was sent (the case already had this team)
                await self._settle(call, outcome, error, case)
                if outcome is not Outcome.RETRY and ahead[call.task_id] is call:
                    del ahead[call.task_id]  # the next call of the task may go in this pass
                if outcome is Outcome.REFUSED and call.method is CallMethod.OPEN_CASE:
                    refused_opens.add(call.task_id)
        if attempted:
            await self.flush()
        return attempted

    async def _attempt(
        self, call: CasefileCall, refused_opens: set[str]
    ) -> tuple[Outcome, str, Any]:
        assert self.casefile is not None
        meta = self.metas.get(call.task_id)
        task = self.dispatcher.state.tasks.get(call.task_id)
        if meta is None or task is None:
            return Outcome.REFUSED, "no such task in dispatch", None
        try:
            if call.method is CallMethod.OPEN_CASE:
                team = self._team(self.dispatcher.state.acceptance[call.task_id])
                if not team:  # casefile needs the team; retried once someone is offered
                    return Outcome.RETRY, "waiting for a team", None
                self._sent_team[call.request_id] = team
                case = await self.casefile.open_case(
                    task_id=call.task_id,
                    alert_ids=list(task.alert_ids),
                    enterprise_id=task.enterprise_id,
                    outlet_id=task.outlet_id,
                    county=task.county_code,
                    team=team,
                    discovered_at=meta.alert_time,
                    summary=str(meta.evidence.get("explanation", "")),
                )
                return Outcome.DONE, "", case
            if not meta.case_id:
                if call.task_id in refused_opens or self._open_refused(call.task_id):
                    return Outcome.REFUSED, "the task's case was never opened", None
                return Outcome.RETRY, "waiting for the case to be opened", None
            body = call.body
            position = body.get("position")
            where = (float(position[0]), float(position[1])) if position else None
            if call.method is CallMethod.UPDATE_TEAM:
                if same_team(body["team"], self._case_team(call.task_id)):
                    return Outcome.DONE, "", None  # the case has this team: nothing to send
                case = await self.casefile.update_team(
                    request_id=call.request_id,
                    case_id=meta.case_id,
                    team=list(body["team"]),
                    reason=str(body.get("reason", "")),
                )
                return Outcome.DONE, "", case
            if call.method is CallMethod.RECORD_TASK_CANCELLED:
                case = await self.casefile.record_task_cancelled(
                    request_id=call.request_id,
                    case_id=meta.case_id,
                    task_id=call.task_id,
                    cancelled_at=datetime.fromisoformat(body["cancelled_at"]),
                    reason=str(body["reason"]),
                    manager_id=str(body["by"]),
                    jurisdiction=[str(code) for code in body.get("jurisdiction", [])],
                )
                return Outcome.DONE, "", case
            if call.method is CallMethod.RECORD_SITE_NOTE:
                case = await self.casefile.record_site_note(
                    request_id=call.request_id,
                    case_id=meta.case_id,
                    at=datetime.fromisoformat(body["at"]),
                    text=str(body["text"]),
                    by=str(body["by"]),
                    role=str(body.get("role", "")),
                    position=where,
                )
                return Outcome.DONE, "", case
            case = await self.casefile.record_arrival(
                request_id=call.request_id,
                case_id=meta.case_id,
                arrived_at=datetime.fromisoformat(body["arrived_at"]),
                officers_present=list(body.get("officers_present", [])),
                position=where,
                on_behalf_of=str(body.get("checked_in_by", "")),
                role=str(body.get("role") or "ENFORCEMENT"),
            )
            return Outcome.DONE, "", case
        except grpc.aio.AioRpcError as err:
            outcome = outcome_of_status(err.code().name)
            reason = f"{err.code().name}: {err.details()}"
        except Exception as err:  # unreachable, reset, timed out: all worth another try
            outcome, reason = Outcome.RETRY, f"{type(err).__name__}: {err}"
        if outcome is Outcome.RETRY:  # casefile itself failed (not merely "waiting for ...")
            self._casefile_down_until = self.clock() + self.backoff.delay(call.attempts + 1)
        log.warning(
            "casefile %s %s (task %s): %s; %s",
            call.method.value,
            call.request_id,
            call.task_id,
            reason,
            "dead-lettered" if outcome is Outcome.REFUSED else "retried with backoff",
        )
        return outcome, reason, None

    def _case_team(self, task_id: str) -> list[dict[str, str]]:
        """The team casefile last answered with for this task's case (OpenCase, UpdateTeam)."""
        team: list[dict[str, str]] = []
        for c in self.store.calls_for(task_id):
            if c.status is CallStatus.DONE and "case_team" in c.body:
                team = c.body["case_team"]
        return team

    def _open_refused(self, task_id: str) -> bool:
        return any(
            c.method is CallMethod.OPEN_CASE and c.status is CallStatus.DEAD
            for c in self.store.calls_for(task_id)
        )

    async def _settle(self, call: CasefileCall, outcome: Outcome, error: str, case: Any) -> None:
        """Commits the attempt's outcome with the dispatch event it produces."""
        now = self.clock()
        settled = call.after(outcome, now, self.backoff, error)
        if outcome is not Outcome.RETRY:  # casefile answered: it is up
            self._casefile_down_until = None
        task_id, method = call.task_id, call.method
        if outcome is Outcome.DONE and method in (CallMethod.OPEN_CASE, CallMethod.UPDATE_TEAM):
            # what the case's team now is, to tell whether the accepted team must be sent
            sent = call.body.get("team") or self._sent_team.pop(call.request_id, [])
            answered = [
                {"person_id": p.person_id, "name": p.name, "role": p.role}
                for p in getattr(case, "team", ())
            ]
            settled = replace(settled, body={**call.body, "case_team": answered or sent})
        released: list[CasefileCall] = []
        if outcome is not Outcome.RETRY:  # calls of the task that waited for this one go now
            released = [
                replace(c, next_attempt_at=None)
                for c in await asyncio.to_thread(self.store.calls_for, task_id)
                if c.status is CallStatus.PENDING
                and c.request_id != call.request_id
                and c.last_error.startswith("waiting for ")
            ]

        def record(b: EventBuilder, now: datetime) -> list[OutgoingEvent]:
            meta = self.metas.get(task_id)
            if meta is None:
                return []
            if outcome is Outcome.DONE and method is CallMethod.OPEN_CASE:
                meta.case_id, meta.case_pending = str(case.case_id), False
                return [b.task_event(task_id, "CASE_OPENED", now, note=f"case {case.case_id}")]
            if outcome is Outcome.DONE and case is None:
                return []  # nothing had to be sent (the case already has this team)
            if outcome is Outcome.DONE:
                note = f"{method.value} {call.request_id}: case {meta.case_id} is {case.state}"
                return [b.task_event(task_id, "CASE_RECORDED", now, note=note)]
            if outcome is Outcome.REFUSED:
                if method is CallMethod.OPEN_CASE:
                    meta.case_pending = False
                note = f"{method.value} {call.request_id}: {error}"
                return [b.task_event(task_id, "CASEFILE_REJECTED", now, note=note)]
            return []

        known = task_id in self.metas
        await self._step(
            lambda now: [],
            touched=[task_id] if known and outcome is not Outcome.RETRY else [],
            extra=record,
            calls=[settled, *released],
        )

    async def run_casefile_calls(self, stop: asyncio.Event, max_wait_s: float = 30) -> None:
        """The retry loop: makes each pending call when it is due (new calls at once, failed
        ones after their backoff), independently of the tick."""
        if self.casefile is None:
            return
        while not stop.is_set():
            self._casefile_wake.clear()
            try:
                await self.call_casefile(wait=True)
                wait = await self._until_next_call(max_wait_s)
            except Exception:
                log.exception("casefile calls failed")
                wait = max_wait_s
            waiters = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._casefile_wake.wait()),
            ]
            await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    async def _until_next_call(self, max_wait_s: float) -> float:
        pending = await asyncio.to_thread(self.store.pending_calls)
        if not pending:
            return max_wait_s
        now = self.clock()
        soonest = min(c.next_attempt_at or now for c in pending)
        if self._casefile_down_until is not None:
            soonest = max(soonest, self._casefile_down_until)
        return min(max((soonest - now).total_seconds(), 0.0), max_wait_s)

    # ---- Kafka ----------------------------------------------------------------------------
    async def flush(self) -> int:
        """Publishes unpublished outbox rows in order; returns how many were sent."""
        return 0 if self.relay is None else await self.relay.flush()

    # ---- time -----------------------------------------------------------------------------
    async def tick(self) -> StepResult:
        result = await self._step(self.dispatcher.on_tick)
        await self.call_casefile()
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


def _woken(changes: Changes) -> list[str]:
    """Whom a step's commit wakes: the people notified, and the managers' live overviews
    when tasks or alarms changed."""
    woken = [n.person_id for n in changes.notifications]
    if changes.tasks or changes.alarms:
        woken.append(REPORTS_LISTENER)
    return woken


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
