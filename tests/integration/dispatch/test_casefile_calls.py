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
from tests.unit.dispatch.harness import OUTLET, T0, Harness, alert_event

TID = task_id_for("A1")
CASE = f"case-for-{TID[:8]}"
Build = Callable[..., Harness]


async def on_site(h: Harness) -> None:
    """The whole team accepts and sets off; e1 checks in at the outlet 20 minutes later
    (ON_SITE is seq 10: 4 events of the alert, 3 ACCEPTED, ASSIGNED, EN_ROUTE; then e1's
    CHECKED_IN), e2 two minutes after: with two officers present the case's arrival is due."""
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    await h.service.update_status(TID, "e1", TaskState.EN_ROUTE, None)
    h.clock.advance(minutes=20)
    await h.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET, "gate 2")
    h.clock.advance(minutes=2)
    await h.service.update_status(TID, "e2", TaskState.ON_SITE, NEAR)


# 0.001 degree north of the outlet: 111.195 m
NEAR = (OUTLET[0] + 0.001, OUTLET[1])


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
    "code",
    [
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,  # a request id casefile holds with another payload
    ],
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
    # the arrival and each officer's check-in note; the accepted team is the case's: no
    # UpdateTeam
    assert await h.service.call_casefile() == 3
    assert h.casefile.teams == []
    assert h.casefile.arrivals == [
        {
            "request_id": f"arrival:{TID}",
            "case_id": CASE,
            "arrived_at": T0 + timedelta(minutes=22),  # when the second officer checked in
            "officers_present": ["e1", "e2"],
            "position": NEAR,
            "on_behalf_of": "e2",
            "role": "ENFORCEMENT",
        }
    ]
    assert h.casefile.notes == [
        {
            "request_id": f"checkin:{TID}:e1",
            "case_id": CASE,
            "at": T0 + timedelta(minutes=20),
            "text": "checked in on site: e1 (ENFORCEMENT) at 2026-03-02T02:20:00+00:00, "
            "32.000000,118.800000, 0 m from the outlet; gate 2",
            "by": "e1",
            "role": "ENFORCEMENT",
            "position": OUTLET,
        },
        {
            "request_id": f"checkin:{TID}:e2",
            "case_id": CASE,
            "at": T0 + timedelta(minutes=22),
            "text": "checked in on site: e2 (ENFORCEMENT) at 2026-03-02T02:22:00+00:00, "
            "32.001000,118.800000, 111 m from the outlet",
            "by": "e2",
            "role": "ENFORCEMENT",
            "position": NEAR,
        },
    ]
    recorded = [e.note for e in h.sink.decoded() if e.kind == "CASE_RECORDED"]
    assert recorded == [
        f"RecordArrival arrival:{TID}: case {CASE} is ON_SITE",
        f"RecordSiteNote checkin:{TID}:e1: case {CASE} is ON_SITE",
        f"RecordSiteNote checkin:{TID}:e2: case {CASE} is ON_SITE",
    ]
    assert await h.service.call_casefile() == 0  # made once
    # a repeated check-in from a phone asks for nothing more
    await h.service.update_status(TID, "e2", TaskState.ON_SITE, NEAR)
    assert await h.service.call_casefile() == 0


async def test_monitoring_staff_first_then_officers_then_a_late_note(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    await h.service.update_status(TID, "m1", TaskState.EN_ROUTE, None, "left the lab")
    h.clock.advance(minutes=15)
    await h.service.update_status(TID, "m1", TaskState.ON_SITE, NEAR)
    assert h.service.task(TID).state is TaskState.EN_ROUTE
    h.clock.advance(minutes=5)
    await h.service.update_status(TID, "e2", TaskState.ON_SITE, OUTLET)
    assert h.service.task(TID).state is TaskState.ON_SITE
    # one officer: nothing can go to the case yet (it takes notes from the arrival on)
    assert [c.method.value for c in h.store.calls_for(TID)] == ["OpenCase", "UpdateTeam"]
    h.clock.advance(minutes=1)
    await h.service.update_status(TID, "m1", TaskState.SAMPLING, NEAR, "bottle 1")
    h.clock.advance(minutes=4)
    await h.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET)
    await h.service.call_casefile()
    (arrival,) = h.casefile.arrivals
    assert (arrival["arrived_at"], arrival["officers_present"], arrival["on_behalf_of"]) == (
        T0 + timedelta(minutes=25), ["e2", "e1"], "e1"
    )  # fmt: skip
    # after the arrival, the notes that waited for it, in the order they were taken
    assert [(n["by"], n["at"] - T0, n["text"].split(":")[0]) for n in h.casefile.notes] == [
        ("m1", timedelta(0), "left the lab"),
        ("m1", timedelta(minutes=15), "checked in on site"),
        ("e2", timedelta(minutes=20), "checked in on site"),
        ("m1", timedelta(minutes=21), "bottle 1"),
        ("e1", timedelta(minutes=25), "checked in on site"),
    ]
    assert [n["role"] for n in h.casefile.notes] == [
        "MONITORING", "MONITORING", "ENFORCEMENT", "MONITORING", "ENFORCEMENT"
    ]  # fmt: skip
    h.clock.advance(minutes=30)
    await h.service.update_status(TID, "e1", TaskState.COMPLETED, None, "no violation")
    await h.service.call_casefile()
    assert h.casefile.notes[-1]["text"] == "inspection completed on site: no violation"
    assert len(h.casefile.arrivals) == 1


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
    assert arrival["request_id"] == f"arrival:{TID}"
    # open, team (unchanged: not sent), arrival, the two officers' check-in notes
    assert [c.status for c in h2.store.calls_for(TID)] == [CallStatus.DONE] * 5
    assert [n["request_id"] for n in h.casefile.notes] == [
        f"checkin:{TID}:e1",
        f"checkin:{TID}:e2",
    ]


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
        "RecordSiteNote checkin",
        "RecordSiteNote checkin",
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
    # the open, one arrival attempt and the two check-in notes (this fake takes them;
    # casefile would refuse them too, the case not being ON_SITE, and they would be
    # dead-lettered the same way)
    assert h.casefile.attempts == 4


async def test_the_arrival_call_joins_the_trace_of_the_check_in(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    await h.service.update_status(TID, "e1", TaskState.EN_ROUTE, None)
    await h.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET)
    phone = SpanContext(0xABC0DE, 0x1F2E3D, is_remote=False, trace_flags=TraceFlags(1))
    with trace.use_span(NonRecordingSpan(phone)):  # the phone request's span
        await h.service.update_status(TID, "e2", TaskState.ON_SITE, OUTLET)
    await h.service.call_casefile()  # later, from the retry loop, outside that span
    # the arrival and both check-in notes were asked for by e2's check-in
    assert h.casefile.trace_ids[-3:] == [0xABC0DE] * 3


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
