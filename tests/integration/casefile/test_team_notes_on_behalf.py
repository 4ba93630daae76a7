"""UpdateTeam, RecordSiteNote and service tokens acting for a person (claim `act`), against a
real grpc.aio server on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import grpc
import pytest

from casefile.adapters.codec import timestamp
from casefile.domain.audit import verify_case_chain, verify_chain
from liandong.tokens.issuing import issue
from liandong.v1 import casefile_pb2
from tests.integration.casefile.conftest import KEY, Server, bearer
from tests.integration.casefile.walk import CASE, open_request
from tests.unit.casefile.scenario import utc

SERVICE = bearer("dispatch", "service")
MGR = bearer("mgr", "manager", jurisdictions=["3205"])
ARRIVED = utc(2026, 3, 2, 3)


def acting_for(person: str, *roles: str, sub: str = "dispatch", role: str = "service") -> Any:
    token = issue(
        KEY,
        sub=sub,
        roles=[role],
        act={"sub": person, "roles": list(roles)},
        now=datetime.now().astimezone(),
    )
    return (("authorization", f"Bearer {token}"),)


def team_request(request_id: str, *members: tuple[str, str]) -> casefile_pb2.UpdateTeamRequest:
    return casefile_pb2.UpdateTeamRequest(
        request_id=request_id,
        case_id=CASE,
        team=[casefile_pb2.Party(person_id=p, name=f"n-{p}", role=r) for p, r in members],
        reason="o2 declined: in court",
    )


def arrival(request_id: str, *present: str) -> casefile_pb2.RecordArrivalRequest:
    return casefile_pb2.RecordArrivalRequest(
        request_id=request_id,
        case_id=CASE,
        arrived_at=timestamp(ARRIVED),
        officers_present=list(present),
        position=casefile_pb2.SitePosition(lat=31.3, lon=120.6),
    )


def note(request_id: str, by: str, text: str, at: datetime) -> casefile_pb2.RecordSiteNoteRequest:
    return casefile_pb2.RecordSiteNoteRequest(
        request_id=request_id,
        case_id=CASE,
        at=timestamp(at),
        text=text,
        by=by,
        position=casefile_pb2.SitePosition(lat=31.3, lon=120.6),
    )


async def code_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), err.value.details() or ""


async def opened(server: Server, stub: Any) -> casefile_pb2.Case:
    server.clock.at = utc(2026, 3, 2, 2)
    return await stub.OpenCase(open_request(), metadata=SERVICE)


NEW_TEAM = (("o1", "ENFORCEMENT"), ("o3", "ENFORCEMENT"), ("m1", "MONITORING"))


async def test_update_team_then_the_replacement_arrives(
    server: Server, channel: grpc.aio.Channel
) -> None:
    stub = server.stub(channel)
    await opened(server, stub)
    server.clock.at = utc(2026, 3, 2, 2, 10)
    # before the change casefile refuses the replacement
    code, detail = await code_of(
        stub.RecordArrival(arrival("a0", "o1", "o3"), metadata=acting_for("o3", "officer"))
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED and "o3 is not on the team" in detail
    case = await stub.UpdateTeam(team_request("t1", *NEW_TEAM), metadata=SERVICE)
    assert (list(case.officers), list(case.monitoring_staff)) == (["o1", "o3"], ["m1"])
    assert [(p.person_id, p.name) for p in case.team] == [
        ("o1", "n-o1"),
        ("o3", "n-o3"),
        ("m1", "n-m1"),
    ]
    assert (case.state, case.version) == ("OPENED", 2)
    again = await stub.UpdateTeam(team_request("t1", *NEW_TEAM), metadata=SERVICE)
    assert again.version == 2  # idempotent on the request id

    server.clock.at = utc(2026, 3, 2, 3, 1)
    arrived = await stub.RecordArrival(
        arrival("a1", "o1", "o3"), metadata=acting_for("o3", "officer")
    )
    assert arrived.state == "ON_SITE" and list(arrived.arrival.officers_present) == ["o1", "o3"]

    # o3 now lists the case as their own; o2 no longer does
    o3 = await stub.ListCases(casefile_pb2.ListCasesRequest(), metadata=bearer("o3", "officer"))
    o2 = await stub.ListCases(casefile_pb2.ListCasesRequest(), metadata=bearer("o2", "officer"))
    assert [c.case_id for c in o3.cases] == [CASE] and list(o2.cases) == []

    entries = server.store.audit_entries(CASE)
    kinds = [(e.kind, e.actor) for e in entries]
    assert ("UpdateTeam", "dispatch") in kinds and kinds[-1] == ("RecordArrival", "o3")
    update = json.loads(next(e for e in entries if e.kind == "UpdateTeam").payload_json)
    assert update["previous_team"]["officers"] == ["o1", "o2"]
    # both identities of the on-behalf arrival are in the chain
    assert json.loads(entries[-1].payload_json)["via"] == {
        "service": "dispatch",
        "on_behalf_of": "o3",
        "person_roles": "ENFORCEMENT_OFFICER",
    }
    assert verify_chain(server.store.audit_entries()).ok and verify_case_chain(entries, CASE).ok


async def test_who_may_change_the_team(server: Server, channel: grpc.aio.Channel) -> None:
    stub = server.stub(channel)
    await opened(server, stub)
    for who in (
        bearer("o1", "officer"),
        bearer("ops", "admin"),
        bearer("mgr", "manager", jurisdictions=["1101"]),
    ):
        code, _ = await code_of(stub.UpdateTeam(team_request("t-x", *NEW_TEAM), metadata=who))
        assert code is grpc.StatusCode.PERMISSION_DENIED
    code, _ = await code_of(stub.UpdateTeam(team_request("t-y", *NEW_TEAM)))
    assert code is grpc.StatusCode.UNAUTHENTICATED
    case = await stub.UpdateTeam(team_request("t-m", *NEW_TEAM), metadata=MGR)
    assert list(case.officers) == ["o1", "o3"]
    code, detail = await code_of(
        stub.UpdateTeam(
            team_request("t-z", ("o1", "ENFORCEMENT"), ("m1", "MONITORING")), metadata=MGR
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "two distinct" in detail


async def test_service_acting_for_a_person_is_refused_unless_they_are_entitled(
    server: Server, channel: grpc.aio.Channel
) -> None:
    stub = server.stub(channel)
    await opened(server, stub)
    server.clock.at = utc(2026, 3, 2, 3, 1)
    refused = [
        acting_for("o9", "officer"),  # not on the case team
        acting_for("m1", "officer"),  # on the team, but not as an officer
        acting_for("o1"),  # no role named for them
        acting_for("o1", "officer", sub="mallory"),  # not a trusted service
        acting_for("o1", "officer", role="admin"),  # an operator cannot act for anyone
    ]
    for i, metadata in enumerate(refused):
        code, detail = await code_of(
            stub.RecordArrival(arrival(f"a{i}", "o1", "o2"), metadata=metadata)
        )
        assert code is grpc.StatusCode.PERMISSION_DENIED, detail
    # a legal act is never passed on for someone
    code, detail = await code_of(
        stub.FileCase(
            casefile_pb2.FileCaseRequest(request_id="f1", case_id=CASE, filing_no="x"),
            metadata=acting_for("o1", "officer"),
        )
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "FileCase is not a field record passed on for them" in detail
    denials = [e for e in server.store.audit_entries(CASE) if e.kind == "AccessDenied"]
    assert [e.actor for e in denials] == ["o9", "m1", "o1", "o1", "o1", "o1"]
    first = json.loads(denials[0].payload_json)
    assert first["via"]["service"] == "dispatch" and first["via"]["on_behalf_of"] == "o9"
    assert json.loads(denials[3].payload_json)["via"]["service"] == "mallory"

    case = await stub.RecordArrival(arrival("ok", "o1", "o2"), metadata=acting_for("o2", "officer"))
    assert case.state == "ON_SITE"


async def test_site_notes_from_arrival_on(server: Server, channel: grpc.aio.Channel) -> None:
    stub = server.stub(channel)
    await opened(server, stub)
    server.clock.at = utc(2026, 3, 2, 2, 50)
    early = note("n1", "o1", "gate locked, waiting", utc(2026, 3, 2, 2, 45))
    code, detail = await code_of(stub.RecordSiteNote(early, metadata=acting_for("o1", "officer")))
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "RecordSiteNote" in detail
    server.clock.at = utc(2026, 3, 2, 3, 1)
    await stub.RecordArrival(arrival("a1", "o1", "o2"), metadata=acting_for("o1", "officer"))
    case = await stub.RecordSiteNote(early, metadata=acting_for("o1", "officer"))
    staff = note("n2", "m1", "inspection completed on site", utc(2026, 3, 2, 3))
    case = await stub.RecordSiteNote(staff, metadata=acting_for("m1", "monitoring"))
    # monitoring staff are answered with their view (samples and results)
    assert (case.view, case.state, case.version) == ("SAMPLES_AND_RESULTS", "ON_SITE", 4)
    case = await stub.GetCase(casefile_pb2.GetCaseRequest(case_id=CASE), metadata=SERVICE)
    assert [(n.by, n.text, n.recorded_by) for n in case.site_notes] == [
        ("o1", "gate locked, waiting", "o1"),
        ("m1", "inspection completed on site", "m1"),
    ]
    assert case.site_notes[0].at.ToDatetime() == datetime(2026, 3, 2, 2, 45)
    assert (case.site_notes[1].position.lat, case.site_notes[1].position.lon) == (31.3, 120.6)
    # the officer's own token works too; a manager was not on site
    own = await stub.RecordSiteNote(
        note("n3", "o2", "photos taken", utc(2026, 3, 2, 3)), metadata=bearer("o2", "officer")
    )
    assert len(own.site_notes) == 3
    code, _ = await code_of(
        stub.RecordSiteNote(note("n4", "o2", "x", utc(2026, 3, 2, 3)), metadata=MGR)
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    events = [e for e in server.store.audit_entries(CASE) if e.kind == "RecordSiteNote"]
    assert [e.actor for e in events] == ["o1", "m1", "o2"]
    watched = []
    async for event in stub.WatchCase(
        casefile_pb2.WatchCaseRequest(case_id=CASE), metadata=bearer("ops", "admin")
    ):
        watched.append(event.kind)
        if len(watched) == 5:
            break
    assert watched == [
        "CASE_OPENED",
        "ARRIVAL_RECORDED",
        "SITE_NOTE_RECORDED",
        "SITE_NOTE_RECORDED",
        "SITE_NOTE_RECORDED",
    ]
