"""Dispatch against a real casefile gRPC server in this process, with tokens required: the
case is opened under the service identity, the geofenced check-in is recorded as the case's
arrival on behalf of the officer who checked in, and what casefile refuses is dead-lettered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from casefile import migrations
from casefile.adapters.store import CaseStore
from casefile.adapters.store import make_engine as casefile_engine
from casefile.adapters.tokens import AuthConfig, issue
from casefile.entrypoints.grpc_server import serve
from dispatch.adapters.casefile_client import CaseFileClient, CasefileTokens
from dispatch.domain.casefile_calls import CallStatus
from dispatch.domain.tasks import TaskState, task_id_for
from liandong.events import deterministic_id
from liandong.v1 import casefile_pb2, casefile_pb2_grpc
from tests.unit.dispatch.harness import OUTLET, T0, Harness, alert_event

KEY = "dispatch-casefile-integration-key-0123456789"
TID = task_id_for("A1")
Build = Callable[..., Harness]


@pytest.fixture
async def casefile_address(tmp_path: Path) -> AsyncIterator[str]:
    engine = casefile_engine(f"sqlite:///{tmp_path / 'casefile.db'}")
    migrations.upgrade(engine)
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve(
            CaseStore(engine),
            "127.0.0.1:0",
            stop,
            auth=AuthConfig(required=True, hs_key=KEY),
            ready=port.set_result,
        )
    )
    yield f"127.0.0.1:{await asyncio.wait_for(port, 10)}"
    stop.set()
    await server
    engine.dispose()


@pytest.fixture
async def dispatch(harness: Build, casefile_address: str) -> AsyncIterator[Harness]:
    h = harness()
    client = CaseFileClient(casefile_address, CasefileTokens(KEY), timeout_s=5)
    h.service.casefile = client
    yield h
    await client.close()


async def get_case(address: str, case_id: str) -> casefile_pb2.Case:
    token = issue(KEY, sub="ops", roles=["admin"])
    async with grpc.aio.insecure_channel(address) as channel:
        return await casefile_pb2_grpc.CaseFileStub(channel).GetCase(
            casefile_pb2.GetCaseRequest(case_id=case_id),
            metadata=(("authorization", f"Bearer {token}"),),
        )


async def test_case_opened_and_check_in_recorded_as_the_arrival(
    dispatch: Harness, casefile_address: str
) -> None:
    h = dispatch
    await h.service.on_alert_event(alert_event("A1"))
    case_id = h.service.metas[TID].case_id
    assert case_id.startswith("case-")
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    await h.service.update_status(TID, "e1", TaskState.EN_ROUTE, None)
    h.clock.advance(minutes=20)
    await h.service.update_status(TID, "e2", TaskState.ON_SITE, (OUTLET[0] + 0.001, OUTLET[1]))
    assert await h.service.call_casefile() == 1

    case = await get_case(casefile_address, case_id)
    assert (case.state, case.task_id, case.opened_by) == ("ON_SITE", TID, "dispatch")
    assert list(case.officers) == ["e1", "e2"] and list(case.monitoring_staff) == ["m1"]
    assert list(case.arrival.officers_present) == ["e1", "e2"]
    assert case.arrival.arrived_at.ToDatetime().isoformat() == "2026-03-02T02:20:00"
    assert (case.arrival.position.lat, case.arrival.position.lon) == (32.001, 118.8)
    arrival_id = f"arrival:{deterministic_id('dispatch-event', TID, '10')}"
    assert [(c.request_id, c.status) for c in h.store.calls_for(TID)] == [
        (f"open:{TID}", CallStatus.DONE),
        (arrival_id, CallStatus.DONE),
    ]
    assert h.sink.kinds(TID)[-1] == "CASE_RECORDED"
    version = case.version

    # an unknown outcome (say the answer was lost) is retried with the same request id:
    # casefile answers from its idempotency record and writes nothing twice
    arrival = h.store.calls_for(TID)[1]
    again = await h.service.casefile.record_arrival(  # type: ignore[union-attr]
        request_id=arrival.request_id,
        case_id=case_id,
        arrived_at=T0 + timedelta(minutes=20),
        officers_present=["e1", "e2"],
        position=(OUTLET[0] + 0.001, OUTLET[1]),
        on_behalf_of="e2",
    )
    assert again.version == version
    assert (await get_case(casefile_address, case_id)).version == version


async def test_arrival_with_a_replacement_not_on_the_case_team_is_dead_lettered(
    dispatch: Harness, casefile_address: str
) -> None:
    # the case was opened with the first proposed team (e1, e2, m1); e2 declines and e3 takes
    # the slot, but casefile has no call to change a case's team: it refuses the arrival
    h = dispatch
    await h.service.on_alert_event(alert_event("A1"))
    await h.service.decline(TID, "e2", "in court")
    for pid in ("e1", "e3", "m1"):
        await h.service.accept(TID, pid)
    await h.service.update_status(TID, "e1", TaskState.EN_ROUTE, None)
    await h.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET)
    await h.service.call_casefile()
    (rejected,) = [e for e in h.sink.decoded() if e.kind == "CASEFILE_REJECTED"]
    assert "RecordArrival" in rejected.note and "INVALID_ARGUMENT" in rejected.note
    assert "e3" in rejected.note
    assert [c.status for c in h.store.calls_for(TID)] == [CallStatus.DONE, CallStatus.DEAD]
    case = await get_case(casefile_address, h.service.metas[TID].case_id)
    assert case.state == "OPENED"


async def test_without_a_token_casefile_refuses_and_dispatch_keeps_retrying(
    harness: Build, casefile_address: str
) -> None:
    # UNAUTHENTICATED is an operator's mistake (key not shared), not the call's: retried
    h = harness()
    client = CaseFileClient(casefile_address, None, timeout_s=5)
    h.service.casefile = client
    try:
        await h.service.on_alert_event(alert_event("A1"))
        (call,) = h.store.calls_for(TID)
        assert call.status is CallStatus.PENDING and call.attempts == 1
        assert call.last_error.startswith("UNAUTHENTICATED")
        h.service.casefile = CaseFileClient(casefile_address, CasefileTokens(KEY), timeout_s=5)
        h.clock.advance(seconds=1)
        await h.service.tick()
        assert h.service.metas[TID].case_id.startswith("case-")
        await h.service.casefile.close()  # type: ignore[union-attr]
    finally:
        await client.close()
