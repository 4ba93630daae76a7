"""What dispatch owes casefile, on SQLite and PostgreSQL with a fake casefile: OpenCase and
RecordArrival are queued with the step that asks for them, retried with backoff by their own
loop (not only the tick), dead-lettered when casefile refuses them, and made once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from dispatch.domain.casefile_calls import Backoff, CallStatus
from dispatch.domain.tasks import TaskState, task_id_for
from liandong.events import deterministic_id
from tests.unit.dispatch.harness import OUTLET, T0, Harness, alert_event

TID = task_id_for("A1")
CASE = f"case-for-{TID[:8]}"
Build = Callable[..., Harness]


async def on_site(h: Harness) -> None:
    """The whole team accepts, sets off and checks in at the outlet (ON_SITE is seq 10:
    4 events of the alert, 3 ACCEPTED, ASSIGNED, EN_ROUTE)."""
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    await h.service.update_status(TID, "e1", TaskState.EN_ROUTE, None)
    h.clock.advance(minutes=20)
    await h.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET, "gate 2")


async def test_open_case_is_retried_with_doubling_backoff(harness: Build) -> None:
    h = harness()
    h.casefile.fail = True
    await h.service.on_alert_event(alert_event("A1"))  # attempt 1 at T0 fails
    (call,) = h.store.calls_for(TID)
    assert (call.attempts, call.next_attempt_at) == (1, T0 + timedelta(seconds=1))
    h.clock.advance(seconds=0.5)
    assert await h.service.call_casefile() == 0  # not due yet
    h.clock.advance(seconds=0.5)
    assert await h.service.call_casefile() == 1  # attempt 2 at T0+1 s fails: wait 2 s
    h.clock.advance(seconds=1.9)
    await h.service.tick()  # the tick respects the backoff as well
    assert h.casefile.attempts == 2
    h.clock.advance(seconds=0.1)
    assert await h.service.call_casefile() == 1  # attempt 3 at T0+3 s fails: wait 4 s
    (call,) = h.store.calls_for(TID)
    assert (call.attempts, call.next_attempt_at) == (3, T0 + timedelta(seconds=7))
    assert call.status is CallStatus.PENDING and "casefile unavailable" in call.last_error
    h.casefile.fail = False
    h.clock.advance(seconds=4)
    assert await h.service.call_casefile() == 1
    assert h.service.metas[TID].case_id == CASE
    assert h.store.calls_for(TID)[0].status is CallStatus.DONE
    assert h.sink.kinds(TID).count("CASE_OPENED") == 1


def test_backoff_is_capped() -> None:
    b = Backoff()
    assert [b.delay(n).total_seconds() for n in (1, 2, 3, 9, 10, 1000)] == [
        1, 2, 4, 256, 300, 300
    ]  # fmt: skip


async def test_the_retry_loop_opens_the_case_without_any_tick(harness: Build) -> None:
    h = harness()
    h.service.clock = lambda: datetime.now(UTC)
    h.service.backoff = Backoff(first=timedelta(milliseconds=20))
    h.casefile.fail_times = 3  # the inline attempt and two retries fail
    await h.service.on_alert_event(alert_event("A1"))
    assert h.service.metas[TID].case_pending
    stop = asyncio.Event()
    loop = asyncio.create_task(h.service.run_casefile_calls(stop))
    try:
        for _ in range(500):  # a guard against hanging, not a timing assertion
            if h.service.metas[TID].case_id:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 10)
    assert h.service.metas[TID].case_id == CASE
    assert h.casefile.attempts == 4
    assert h.sink.kinds(TID).count("CASE_OPENED") == 1


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT]
)
async def test_a_refused_open_case_is_dead_lettered_not_retried(
    harness: Build, code: grpc.StatusCode
) -> None:
    h = harness()
    h.casefile.refuse = {"OpenCase": code}
    await h.service.on_alert_event(alert_event("A1"))
    (call,) = h.store.calls_for(TID)
    assert call.status is CallStatus.DEAD and call.attempts == 1
    rejected = [e for e in h.sink.decoded() if e.kind == "CASEFILE_REJECTED"]
    assert [(e.task_id, e.note) for e in rejected] == [
        (TID, f"OpenCase open:{TID}: {code.name}: OpenCase refused")
    ]
    assert not h.service.metas[TID].case_pending
    h.clock.advance(hours=1)
    await h.service.tick()
    h2 = h.restart()
    await h2.service.tick()
    assert await h2.service.call_casefile() == 0
    assert h.casefile.attempts == 1


async def test_check_in_records_the_arrival_in_the_case(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    await on_site(h)
    assert h.casefile.arrivals == []  # made by the retry loop, woken by the step
    # the arrival and the check-in's note; the accepted team is the case's: no UpdateTeam
    assert await h.service.call_casefile() == 2
    assert h.casefile.teams == []
    on_site_event = deterministic_id("dispatch-event", TID, "10")
    assert h.casefile.arrivals == [
        {
            "request_id": f"arrival:{on_site_event}",
            "case_id": CASE,
            "arrived_at": T0 + timedelta(minutes=20),
            "officers_present": ["e1", "e2"],
            "position": OUTLET,
            "on_behalf_of": "e1",
            "role": "ENFORCEMENT",
        }
    ]
    check_in = h.service.task(TID).history[-1]
    assert h.casefile.notes == [
        {
            "request_id": f"note:{check_in.event_id}",
            "case_id": CASE,
            "at": T0 + timedelta(minutes=20),
            "text": "gate 2",
            "by": "e1",
            "role": "ENFORCEMENT",
            "position": OUTLET,
        }
    ]
    events = h.sink.decoded()
    assert events[-3].meta.event_id == on_site_event and events[-3].status == "ON_SITE"
    assert (events[-2].kind, events[-2].note) == (
        "CASE_RECORDED",
        f"RecordArrival arrival:{on_site_event}: case {CASE} is ON_SITE",
    )
    assert events[-1].kind == "CASE_RECORDED" and "RecordSiteNote note:" in events[-1].note
    assert await h.service.call_casefile() == 0  # made once


async def test_arrival_survives_an_outage_and_a_restart_with_the_same_request_id(
    harness: Build,
) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    h.casefile.fail = True
    await on_site(h)
    await h.service.call_casefile()
    h2 = h.restart()
    h.casefile.fail = False
    h.clock.advance(seconds=1)
    await h2.service.tick()
    (arrival,) = h.casefile.arrivals
    assert arrival["request_id"] == f"arrival:{deterministic_id('dispatch-event', TID, '10')}"
    # open, team (unchanged: not sent), arrival, note
    assert [c.status for c in h2.store.calls_for(TID)] == [CallStatus.DONE] * 4
    assert len(h.casefile.notes) == 1


async def test_arrival_waits_for_the_case_and_is_dead_lettered_if_it_never_opens(
    harness: Build,
) -> None:
    h = harness()
    h.casefile.fail = True
    await h.service.on_alert_event(alert_event("A1"))
    h.casefile.fail = False
    h.casefile.refuse = {"OpenCase": grpc.StatusCode.INVALID_ARGUMENT}
    await on_site(h)  # 20 minutes later: the open is due again, and refused now
    await h.service.call_casefile()
    assert h.casefile.arrivals == []
    notes = [e.note for e in h.sink.decoded() if e.kind == "CASEFILE_REJECTED"]
    assert [n.split(":")[0] for n in notes] == [
        "OpenCase open",
        "UpdateTeam team",
        "RecordArrival arrival",
        "RecordSiteNote note",
    ]
    assert all(n.endswith("the task's case was never opened") for n in notes[1:])


async def test_a_refused_arrival_is_dead_lettered_with_casefiles_reason(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    h.casefile.refuse = {"RecordArrival": grpc.StatusCode.PERMISSION_DENIED}
    await on_site(h)
    await h.service.call_casefile()
    (rejected,) = [e for e in h.sink.decoded() if e.kind == "CASEFILE_REJECTED"]
    assert rejected.note.endswith("PERMISSION_DENIED: RecordArrival refused")
    h.clock.advance(hours=1)
    await h.service.tick()
    # the open, one arrival attempt and the note (this fake takes it; casefile would refuse it
    # too, the case not being ON_SITE, and it would be dead-lettered the same way)
    assert h.casefile.attempts == 3


async def test_the_arrival_call_joins_the_trace_of_the_check_in(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    await h.service.update_status(TID, "e1", TaskState.EN_ROUTE, None)
    phone = SpanContext(0xABC0DE, 0x1F2E3D, is_remote=False, trace_flags=TraceFlags(1))
    with trace.use_span(NonRecordingSpan(phone)):  # the phone request's span
        await h.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET)
    await h.service.call_casefile()  # later, from the retry loop, outside that span
    assert h.casefile.trace_ids[-1] == 0xABC0DE


async def test_a_pending_case_stored_before_the_call_queue_existed_is_queued_at_start(
    harness: Build,
) -> None:
    from sqlmodel import Session, delete

    from dispatch.adapters.store import CasefileCallRow

    h = harness()
    h.casefile.fail = True
    await h.service.on_alert_event(alert_event("A1"))
    with Session(h.store.engine) as s:  # as an older version left it: only `case_pending`
        s.exec(delete(CasefileCallRow))  # type: ignore[call-overload]
        s.commit()
    h2 = h.restart()
    h.casefile.fail = False
    assert await h2.service.call_casefile() == 1
    assert h2.service.metas[TID].case_id == CASE


async def test_a_pass_under_way_is_not_waited_for(harness: Build) -> None:
    h = harness()
    h.casefile.fail = True
    async with h.service._casefile_lock:  # the call loop is in the middle of a pass
        await h.service.on_alert_event(alert_event("A1"))  # the consumer does not wait
        assert await h.service.call_casefile() == 0  # nor does the tick
    assert h.casefile.attempts == 0
    assert await h.service.call_casefile() == 1


async def test_while_casefile_is_down_new_alerts_leave_their_call_to_the_loop(
    harness: Build,
) -> None:
    h = harness()
    h.reference.entities["enterprise"]["E2"] = {"id": "E2", "name": "B", "county": "320106"}
    h.reference.entities["outlet"]["O2"] = {
        "id": "O2",
        "enterprise": "E2",
        "lat": 32.0,
        "lon": 118.8,
    }
    h.reference.changed()
    h.casefile.fail = True
    await h.service.on_alert_event(alert_event("A1"))  # tried at once, fails
    second = alert_event("A2")
    second.enterprise_id, second.outlet_id = "E2", "O2"
    await h.service.on_alert_event(second)  # casefile is known down: not tried inline
    assert h.casefile.attempts == 1
    assert [c.attempts for c in h.store.calls_for(task_id_for("A2"))] == [0]
    h.clock.advance(seconds=1)
    assert await h.service.call_casefile() == 1  # one probe per backoff period, not one per call
    assert [c.attempts for c in h.store.calls_for(task_id_for("A2"))] == [0]
    h.casefile.fail = False
    h.clock.advance(seconds=2)
    assert await h.service.call_casefile() == 2  # the loop's pass opens both
    assert h.service.metas[task_id_for("A2")].case_id == f"case-for-{task_id_for('A2')[:8]}"
