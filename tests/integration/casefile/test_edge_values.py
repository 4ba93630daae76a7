"""Edge values get INVALID_ARGUMENT, never a silent wrong answer (issue 12, item 10)."""

from __future__ import annotations

import grpc
import pytest

from liandong.v1 import casefile_pb2
from tests.integration.casefile.conftest import Server
from tests.integration.casefile.test_grpc_calls import MGR, code_of
from tests.integration.casefile.walk import CASE, auth, request_for, walk
from tests.unit.casefile.scenario import ARRIVE, MAIN_PATH

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("lat", "lon", "why"),
    [
        (None, None, "required"),  # position: {} arrives as 0, 0
        (91.0, 118.8, "out of range"),
        (32.0, -181.0, "out of range"),
        (float("nan"), 118.8, "numbers"),
    ],
)
async def test_arrival_position_is_range_checked(
    server: Server, channel: grpc.aio.Channel, lat: float | None, lon: float | None, why: str
) -> None:
    stub = server.stub(channel)
    await walk(server, stub, upto=1)
    server.clock.at = MAIN_PATH[1][2]
    request = request_for(ARRIVE, CASE, "arrive-edge")
    request.position.Clear()
    if lat is not None and lon is not None:
        request.position.lat, request.position.lon = lat, lon
    else:
        request.position.SetInParent()  # `position: {}`
    code, detail = await code_of(stub.RecordArrival(request, metadata=auth("o1")))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and why in detail
    assert len(server.store.audit_entries()) == 1  # nothing written


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [("state", "BOGUS", "not a case state"), ("county", "abc", "not a division code")],
)
async def test_list_filters_are_validated(
    server: Server, channel: grpc.aio.Channel, field: str, value: str, why: str
) -> None:
    stub = server.stub(channel)
    await walk(server, stub, upto=1)
    request = casefile_pb2.ListCasesRequest(**{field: value})
    code, detail = await code_of(stub.ListCases(request, metadata=MGR))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and why in detail
    fine = await stub.ListCases(
        casefile_pb2.ListCasesRequest(state="OPENED", county="3205"), metadata=MGR
    )
    assert [c.case_id for c in fine.cases] == [CASE]
