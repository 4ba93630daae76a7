"""Service tokens under a service's own ES256 key, through a real grpc.aio casefile server on
a real port (SQLite and PostgreSQL): dispatch's key opens cases and passes on an officer's
field record; the shared HS256 key, another EC key, an `act` naming a manager or an
operator, a service claiming another role, or an expired token are UNAUTHENTICATED; a legal
act passed on for an officer is PERMISSION_DENIED and audited, as before."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from casefile.adapters.codec import timestamp
from liandong.tokens.issuing import issue, issue_service
from liandong.tokens.keys import new_private_key
from liandong.tokens.verifying import AuthConfig
from liandong.v1 import casefile_pb2
from tests.integration.casefile.conftest import KEY, Server, bearer, running_server
from tests.integration.casefile.walk import CASE, open_request
from tests.unit.casefile.scenario import utc

DISPATCH = new_private_key()
ARRIVED = utc(2026, 3, 2, 3)


@pytest.fixture()
async def keyed(db_url: str) -> AsyncIterator[Server]:
    """casefile with tokens required, people under the HS256 key, dispatch under its own."""
    auth = AuthConfig(required=True, hs_key=KEY, service_keys={"dispatch": DISPATCH.public_key()})
    async with running_server(db_url, auth) as running:
        yield running


@pytest.fixture()
async def channel(keyed: Server) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(keyed.address) as ch:
        yield ch


def header(token: str) -> Any:
    return (("authorization", f"Bearer {token}"),)


def dispatch(act: dict[str, Any] | None = None, **extra: Any) -> Any:
    return header(issue_service(DISPATCH, service="dispatch", act=act, **extra))


def arrival(request_id: str) -> casefile_pb2.RecordArrivalRequest:
    return casefile_pb2.RecordArrivalRequest(
        request_id=request_id,
        case_id=CASE,
        arrived_at=timestamp(ARRIVED),
        officers_present=["o1", "o2"],
        position=casefile_pb2.SitePosition(lat=31.3, lon=120.6),
    )


async def code_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), err.value.details() or ""


async def test_dispatch_key_opens_the_case_and_acts_for_an_officer(
    keyed: Server, channel: grpc.aio.Channel
) -> None:
    stub = keyed.stub(channel)
    keyed.clock.at = utc(2026, 3, 2, 2)
    case = await stub.OpenCase(open_request(), metadata=dispatch())
    assert (case.case_id, case.state, case.opened_by) == (CASE, "OPENED", "dispatch")
    keyed.clock.at = utc(2026, 3, 2, 3, 1)
    act = {"sub": "o1", "roles": ["officer"]}
    case = await stub.RecordArrival(arrival("a1"), metadata=dispatch(act))
    assert case.state == "ON_SITE"
    (entry,) = [e for e in keyed.store.audit_entries(CASE) if e.kind == "RecordArrival"]
    assert entry.actor == "o1"
    via = json.loads(entry.payload_json)["via"]
    assert (via["service"], via["on_behalf_of"]) == ("dispatch", "o1")
    # people's own tokens still work under the HS256 key
    mgr = bearer("mgr", "manager", jurisdictions=["3205"])
    read = await stub.GetCase(casefile_pb2.GetCaseRequest(case_id=CASE), metadata=mgr)
    assert read.state == "ON_SITE"


async def test_tokens_beyond_what_dispatchs_key_may_say_are_unauthenticated(
    keyed: Server, channel: grpc.aio.Channel
) -> None:
    stub = keyed.stub(channel)
    keyed.clock.at = utc(2026, 3, 2, 2)
    await stub.OpenCase(open_request(), metadata=dispatch())
    keyed.clock.at = utc(2026, 3, 2, 3, 1)
    officer = {"sub": "o1", "roles": ["officer"]}
    old = datetime.now(UTC) - timedelta(hours=1)
    refused = {
        "shared HS256 key": header(
            issue(KEY, sub="dispatch", roles=["service"], act=officer, now=datetime.now(UTC))
        ),
        "another EC key": header(issue_service(new_private_key(), service="dispatch", act=officer)),
        "act as admin": dispatch({"sub": "o1", "roles": ["admin"]}),
        "act as manager": dispatch({"sub": "o1", "roles": ["officer", "manager"]}),
        "service as admin": dispatch(roles=["admin"]),
        "service and admin": dispatch(roles=["service", "admin"]),
        "expired": dispatch(officer, now=old),
    }
    for why, metadata in refused.items():
        code, detail = await code_of(stub.RecordArrival(arrival(why), metadata=metadata))
        assert code is grpc.StatusCode.UNAUTHENTICATED, (why, detail)
    # an admin-claiming dispatch token cannot do what an operator may (list every case)
    code, _ = await code_of(
        stub.ListCases(casefile_pb2.ListCasesRequest(), metadata=dispatch(roles=["admin"]))
    )
    assert code is grpc.StatusCode.UNAUTHENTICATED
    # nothing was recorded, and no refused token reached authorisation
    case = await stub.GetCase(casefile_pb2.GetCaseRequest(case_id=CASE), metadata=dispatch())
    assert case.state == "OPENED"
    assert [e.kind for e in keyed.store.audit_entries(CASE)] == ["OpenCase"]


async def test_a_legal_act_passed_on_for_an_officer_is_permission_denied(
    keyed: Server, channel: grpc.aio.Channel
) -> None:
    stub = keyed.stub(channel)
    keyed.clock.at = utc(2026, 3, 2, 2)
    await stub.OpenCase(open_request(), metadata=dispatch())
    code, detail = await code_of(
        stub.FileCase(
            casefile_pb2.FileCaseRequest(request_id="f1", case_id=CASE, filing_no="x"),
            metadata=dispatch({"sub": "o1", "roles": ["officer"]}),
        )
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "FileCase is not a field record passed on for them" in detail
    code, _ = await code_of(stub.RecordArrival(arrival("a9"), metadata=dispatch({"sub": "o9"})))
    assert code is grpc.StatusCode.PERMISSION_DENIED  # o9 is not on the team
    denials = [e.actor for e in keyed.store.audit_entries(CASE) if e.kind == "AccessDenied"]
    assert denials == ["o1", "o9"]
