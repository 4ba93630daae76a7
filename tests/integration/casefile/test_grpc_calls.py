"""Every call of the CaseFile API against a real grpc.aio server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from casefile.domain.audit import verify_case_chain, verify_chain
from liandong.v1 import casefile_pb2
from tests.integration.casefile.conftest import Server, bearer
from tests.integration.casefile.walk import (
    CASE,
    STATES,
    auth,
    open_request,
    request_for,
    step,
    walk,
)
from tests.unit.casefile.scenario import ARRIVE, MAIN_PATH, utc

MGR = bearer("mgr", "manager", jurisdictions=["3205"])


async def code_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), err.value.details() or ""


async def test_main_path_every_write_call(server: Server, channel: grpc.aio.Channel) -> None:
    stub = server.stub(channel)
    cases = await walk(server, stub)
    assert [c.state for c in cases] == STATES
    assert [c.version for c in cases] == list(range(1, 17))
    final = cases[-1]
    assert final.closure.disposition == "PENALTY_ENFORCED"
    assert final.decision.penalties[0].amount == "150000"
    assert final.samples[0].custody[0].to_holder == "lab-A"
    assert final.samples[0].results[0].confirmed_by == "m1"
    assert final.findings[0].statute.article == 83
    entries = server.store.audit_entries()
    assert len(entries) == 16 and verify_chain(entries).ok
    assert verify_case_chain(entries, CASE).ok
    assert [e.kind for e in entries][:3] == ["OpenCase", "RecordArrival", "AddEvidence"]


async def test_clocks_on_the_case(server: Server, channel: grpc.aio.Channel) -> None:
    stub = server.stub(channel)
    filed = (await walk(server, stub, upto=10))[-1]  # FileCase on 2026-03-05 (CST)
    clocks = {c.name: c for c in filed.clocks}
    assert clocks["FILING"].state == "MET"
    decision = clocks["DECISION"]
    # 90 days after 5 March: 3 June is the last day; due at its end in CST (16:00 UTC)
    assert decision.due_date == "2026-06-03"
    assert decision.due_at.ToDatetime() == utc(2026, 6, 3, 16).replace(tzinfo=None)
    assert decision.state == "RUNNING"
    # the sample (COD, 5 days from 2 March 03:30 UTC) was analysed in time
    assert clocks["SAMPLE_HOLDING:S1"].state == "MET"


async def test_idempotent_retry_returns_first_result(
    server: Server, channel: grpc.aio.Channel
) -> None:
    stub = server.stub(channel)
    await walk(server, stub, upto=1)
    first = await stub.OpenCase(open_request(), metadata=auth("dispatch"))
    server.clock.at = MAIN_PATH[1][2]
    request = request_for(ARRIVE, CASE, "arrive-1")
    a = await stub.RecordArrival(request, metadata=auth("o1"))
    server.clock.at += timedelta(minutes=5)
    b = await stub.RecordArrival(request, metadata=auth("o1"))
    assert a == b and a.version == 2
    assert len(server.store.audit_entries()) == 2
    assert first.version == 1
    # the same task opened again under another request id: the same case, nothing written
    again = await stub.OpenCase(open_request(request_id="open-2"), metadata=auth("dispatch"))
    assert again.case_id == CASE and len(server.store.audit_entries()) == 2
    # the same request id with another payload
    other = request_for(ARRIVE, CASE, "arrive-1")
    other.officers_present.append("o3")
    code, detail = await code_of(stub.RecordArrival(other, metadata=auth("o1")))
    assert code is grpc.StatusCode.ALREADY_EXISTS and "different payload" in detail


async def test_status_codes(server: Server, channel: grpc.aio.Channel) -> None:
    stub = server.stub(channel)
    await walk(server, stub, upto=1)
    arrive = request_for(ARRIVE, CASE, "x1")
    server.clock.at = MAIN_PATH[1][2]
    code, _ = await code_of(stub.RecordArrival(arrive))
    assert code is grpc.StatusCode.UNAUTHENTICATED
    bad = (("authorization", "Bearer not-a-jwt"),)
    code, _ = await code_of(stub.GetCase(casefile_pb2.GetCaseRequest(case_id=CASE), metadata=bad))
    assert code is grpc.StatusCode.UNAUTHENTICATED
    code, _ = await code_of(stub.GetCase(casefile_pb2.GetCaseRequest(case_id="nope"), metadata=MGR))
    assert code is grpc.StatusCode.NOT_FOUND
    missing = request_for(ARRIVE, "nope", "x2")
    code, _ = await code_of(stub.RecordArrival(missing, metadata=auth("o1")))
    assert code is grpc.StatusCode.NOT_FOUND
    file_now = casefile_pb2.FileCaseRequest(request_id="f1", case_id=CASE, filing_no="立-1")
    code, detail = await code_of(stub.FileCase(file_now, metadata=MGR))
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert detail.startswith("case is OPENED; cannot FileCase; requires recorded findings")
    alone = request_for(ARRIVE, CASE, "x3")
    del alone.officers_present[1:]
    code, detail = await code_of(stub.RecordArrival(alone, metadata=auth("o1")))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "two enforcement officers" in detail
    no_id = request_for(ARRIVE, CASE, "")
    code, _ = await code_of(stub.RecordArrival(no_id, metadata=auth("o1")))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    bad_enum = casefile_pb2.CloseCaseRequest(
        request_id="c1", case_id=CASE, disposition="FORGIVEN", reason="x"
    )
    code, detail = await code_of(stub.CloseCase(bad_enum, metadata=MGR))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "disposition must be one of" in detail
    code, _ = await code_of(
        stub.ListCases(casefile_pb2.ListCasesRequest(page_size=501), metadata=MGR)
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("who", "why"),
    [
        (("m1", "monitoring"), "monitoring staff handle samples and results only"),
        (("o3", "officer"), "o3 is not an enforcement officer on case"),
        (("admin", "admin"), "platform operators perform no legal acts"),
        (("mgr2", "manager"), "outside mgr2's jurisdiction"),
    ],
)
async def test_permission_denied_is_audited(
    server: Server, channel: grpc.aio.Channel, who: tuple[str, str], why: str
) -> None:
    stub = server.stub(channel)
    await walk(server, stub, upto=1)
    server.clock.at = MAIN_PATH[1][2]
    metadata = bearer(*who, jurisdictions=["3301"])
    code, detail = await code_of(
        stub.RecordArrival(request_for(ARRIVE, CASE, "d1"), metadata=metadata)
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED and why in detail
    denied = [e for e in server.store.audit_entries(CASE) if e.kind == "AccessDenied"]
    assert len(denied) == 1 and denied[0].actor == who[0]
    assert denied[0].payload["method"] == "RecordArrival"
    assert verify_chain(server.store.audit_entries()).ok
    case = await stub.GetCase(casefile_pb2.GetCaseRequest(case_id=CASE), metadata=MGR)
    assert case.state == "OPENED" and case.version == 1


async def test_reads_by_role(server: Server, channel: grpc.aio.Channel) -> None:
    stub = server.stub(channel)
    await walk(server, stub, upto=9)  # findings recorded
    get = casefile_pb2.GetCaseRequest(case_id=CASE)
    staff = await stub.GetCase(get, metadata=auth("m1"))
    assert staff.view == "SAMPLES_AND_RESULTS"
    assert len(staff.samples) == 1 and not staff.evidence and not staff.findings
    assert [c.name for c in staff.clocks] == ["SAMPLE_HOLDING:S1"]
    officer = await stub.GetCase(get, metadata=auth("o2"))
    assert officer.view == "FULL" and officer.evidence[0].evidence_id == "E1"
    code, _ = await code_of(stub.GetCase(get, metadata=bearer("o9", "officer")))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    code, _ = await code_of(
        stub.WatchCase(casefile_pb2.WatchCaseRequest(case_id=CASE), metadata=auth("m1")).read()
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED


async def test_list_filters_scopes_and_pages(server: Server, channel: grpc.aio.Channel) -> None:
    stub = server.stub(channel)
    counties = {"t1": "320583", "t2": "320585", "t3": "330102"}
    for task, county in counties.items():
        await stub.OpenCase(
            open_request(task=task, county=county, request_id=task), metadata=auth("dispatch")
        )
    other = open_request(task="t4", county="320583", request_id="t4")
    other.team[0].person_id = "o7"
    await stub.OpenCase(other, metadata=auth("dispatch"))

    async def listed(metadata: object, **filters: object) -> list[str]:
        out, token = [], ""
        while True:
            page = await stub.ListCases(
                casefile_pb2.ListCasesRequest(page_size=2, page_token=token, **filters),
                metadata=metadata,
            )
            out += [c.task_id for c in page.cases]
            token = page.next_page_token
            if not token:
                return sorted(out)

    assert await listed(MGR) == ["t1", "t2", "t4"]
    assert await listed(bearer("boss", "admin")) == ["t1", "t2", "t3", "t4"]
    assert await listed(auth("o1")) == ["t1", "t2", "t3"]
    assert await listed(bearer("o7", "officer")) == ["t4"]
    assert await listed(MGR, county="320585") == ["t2"]
    assert await listed(bearer("boss", "admin"), state="ON_SITE") == []


async def test_watch_resumes_and_follows_live(server: Server, channel: grpc.aio.Channel) -> None:
    stub = server.stub(channel)
    await walk(server, stub, upto=3)
    request = casefile_pb2.WatchCaseRequest(case_id=CASE, after_sequence=1)
    stream = stub.WatchCase(request, metadata=auth("o1"))
    first = await stream.read()
    second = await stream.read()
    assert (first.sequence, first.kind, second.kind) == (2, "ARRIVAL_RECORDED", "EVIDENCE_ADDED")
    assert first.meta.key == CASE and first.version == 2
    await step(server, stub, 3)  # the sample, written while the stream waits
    live = await asyncio.wait_for(stream.read(), 10)
    assert (live.kind, live.sequence, live.details["sample_id"]) == ("SAMPLE_RECORDED", 4, "S1")
    stream.cancel()
    by_version = stub.WatchCase(
        casefile_pb2.WatchCaseRequest(case_id=CASE, after_version=3), metadata=auth("o1")
    )
    assert (await by_version.read()).kind == "SAMPLE_RECORDED"
    by_version.cancel()


async def test_clock_breach_is_announced_once(server: Server, channel: grpc.aio.Channel) -> None:
    stub = server.stub(channel)
    await walk(server, stub, upto=2)  # on site, never filed
    # discovered Monday 2 March 09:00 CST: filing due by the end of 17 March (CST)
    assert server.store.check_clocks(utc(2026, 3, 17, 15, 59)) == []
    found = server.store.check_clocks(utc(2026, 3, 17, 16))
    assert [(c, k.name) for c, k in found] == [(CASE, "FILING")]
    assert server.store.check_clocks(utc(2026, 3, 18)) == []
    events = [casefile_pb2.CaseEvent.FromString(b) for _, b in server.store.events_after(CASE)]
    breaches = [e for e in events if e.kind == "CLOCK_BREACHED"]
    assert len(breaches) == 1 and breaches[0].details["clock"] == "FILING"
    assert verify_chain(server.store.audit_entries()).ok
    server.clock.at = utc(2026, 3, 18)
    case = await stub.GetCase(casefile_pb2.GetCaseRequest(case_id=CASE), metadata=MGR)
    assert {c.name: c.state for c in case.clocks}["FILING"] == "BREACHED"


async def test_health_and_reflection(server: Server, channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="liandong.v1.CaseFile"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask() -> object:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for answer in reflect.ServerReflectionInfo(ask()):
        names = {s.name for s in answer.list_services_response.service}
        assert "liandong.v1.CaseFile" in names
        assert "grpc.reflection.v1.ServerReflection" in names
        break


async def test_reflection_v1(server: Server, channel: grpc.aio.Channel) -> None:
    """grpcurl asks grpc.reflection.v1 first (issue 12, item 14); its messages are field for
    field v1alpha's, so v1alpha's classes serve as the client here."""
    from grpc_reflection.v1alpha import reflection_pb2

    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )

    async def ask() -> object:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        yield reflection_pb2.ServerReflectionRequest(file_containing_symbol="liandong.v1.CaseFile")

    answers = [a async for a in call(ask())]
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"liandong.v1.CaseFile", "grpc.reflection.v1.ServerReflection"} <= names
    assert answers[1].file_descriptor_response.file_descriptor_proto  # describes the service


async def test_breach_checker_reads_only_cases_with_a_clock_due(
    server: Server, channel: grpc.aio.Channel
) -> None:
    stub = server.stub(channel)
    await walk(server, stub, upto=2)  # discovered 2 March: FILING due end of 17 March CST
    later_open = open_request("t-later", request_id="open-later")
    later_open.discovered_at.FromDatetime(utc(2026, 3, 9, 1))  # FILING due end of 24 March
    server.clock.at = utc(2026, 3, 9, 2)
    await stub.OpenCase(later_open, metadata=auth("dispatch"))
    assert server.store.check_clocks(utc(2026, 3, 10)) == []
    assert server.store.checked_last == 0  # no clock due yet: no case read
    found = server.store.check_clocks(utc(2026, 3, 17, 16))
    assert [(c, k.name) for c, k in found] == [(CASE, "FILING")]
    assert server.store.checked_last == 1  # only the case whose clock fell due
    assert server.store.check_clocks(utc(2026, 3, 20)) == []
    assert server.store.checked_last == 0  # its next due instant moved past the breach
    found = server.store.check_clocks(utc(2026, 3, 24, 16))
    assert [k.name for _, k in found] == ["FILING"] and server.store.checked_last == 1
    assert verify_chain(server.store.audit_entries()).ok
