"""Group commit: concurrent writes share transactions, and each still gets its own answer.

Through the real server (SQLite and PostgreSQL): many writes at once, valid ones mixed with
retries, reused request ids, illegal transitions, refused callers and unknown cases. Then on
the store itself: a write that fails after it has written makes its batch roll back and run
again one write at a time, so the others are stored and the failed one leaves no trace.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import grpc

from casefile.adapters.codec import from_message
from casefile.adapters.store import CaseStore, WriteJob, make_engine
from casefile.adapters.write_tx import WriteTx
from casefile.domain import commands
from casefile.domain.audit import verify_case_chain, verify_chain
from casefile.entrypoints.grpc_server import case_id_for_task
from liandong.tokens.claims import Principal, Role
from liandong.v1 import casefile_pb2
from tests.integration.casefile.conftest import Server, bearer
from tests.integration.casefile.walk import auth, open_request, request_for
from tests.unit.casefile.scenario import MAIN_PATH, utc

TASKS = [f"task-g{i}" for i in range(4)]
CASES = [case_id_for_task(t) for t in TASKS]


def evidence(case_id: str, request_id: str, evidence_id: str, text: str = "outlet") -> Any:
    request = casefile_pb2.AddEvidenceRequest(
        request_id=request_id,
        case_id=case_id,
        evidence_id=evidence_id,
        kind="PHOTO",
        sha256="a" * 64,
        captured_by="o1",
        description=text,
        media_type="image/jpeg",
    )
    request.captured_at.FromDatetime(utc(2026, 3, 2, 3, 30))
    return request


async def outcome(call: Any) -> tuple[str, Any]:
    try:
        return "OK", await call
    except grpc.aio.AioRpcError as err:
        return err.code().name, err.details()


async def open_cases(server: Server, stub: Any) -> None:
    server.clock.at = utc(2026, 3, 2, 4)
    for i, task in enumerate(TASKS):
        await stub.OpenCase(open_request(task, request_id=f"open-{i}"), metadata=auth("dispatch"))


async def test_concurrent_writes_each_get_their_own_answer(
    server: Server, channel: grpc.aio.Channel
) -> None:
    stub = server.stub(channel)
    await open_cases(server, stub)
    officer, outsider = auth("o1"), bearer("o9", "officer")
    calls: list[tuple[str, Any, Any, Any]] = []  # (kind, method, request, metadata)
    for n, case_id in enumerate(CASES):
        for k in range(10):
            calls.append(
                ("ok", stub.AddEvidence, evidence(case_id, f"e-{n}-{k}", f"E{k}"), officer)
            )
        # the same request sent again while the first may still be in the same batch
        calls.append(("retry", stub.AddEvidence, evidence(case_id, f"e-{n}-0", "E0"), officer))
        # the same request id with another payload
        calls.append(("reuse", stub.AddEvidence, evidence(case_id, f"e-{n}-1", "E1", "x"), officer))
        # an evidence id already taken, under a new request id
        calls.append(("dup", stub.AddEvidence, evidence(case_id, f"d-{n}", "E2"), officer))
        # not on the team: refused, and the refusal is audited
        calls.append(("out", stub.AddEvidence, evidence(case_id, f"o-{n}", "E99"), outsider))
        # a legal act the case is not ready for
        serve, actor, _ = MAIN_PATH[12]
        assert type(serve).__name__ == "ServeDecision"
        early = request_for(serve, case_id, f"s-{n}")
        calls.append(("early", stub.ServeDecision, early, auth(actor)))
    calls.append(("missing", stub.AddEvidence, evidence("case-nope", "m-1", "E1"), officer))
    kinds = [kind for kind, *_ in calls]
    results = await asyncio.gather(
        *(outcome(method(request, metadata=metadata)) for _, method, request, metadata in calls)
    )
    by_kind: dict[str, Counter[str]] = {}
    for kind, (code, _) in zip(kinds, results, strict=True):
        by_kind.setdefault(kind, Counter())[code] += 1
    # "dup" races its own "ok" E2 write: whichever commits second is the duplicate
    assert by_kind["ok"]["OK"] + by_kind["dup"]["OK"] == 40
    assert by_kind["ok"]["ALREADY_EXISTS"] + by_kind["dup"]["ALREADY_EXISTS"] == 4
    assert by_kind["retry"] == Counter({"OK": 4})
    assert sum(by_kind["reuse"].values()) == 4
    assert by_kind["out"] == Counter({"PERMISSION_DENIED": 4})
    assert by_kind["early"] == Counter({"FAILED_PRECONDITION": 4})
    assert by_kind["missing"] == Counter({"NOT_FOUND": 1})
    # a retry answers with the first result of its request, byte for byte
    for n in range(len(CASES)):
        first, retry = results[n * 15], results[n * 15 + 10]
        assert (kinds[n * 15], kinds[n * 15 + 10]) == ("ok", "retry")
        assert retry[1].SerializeToString() == first[1].SerializeToString()
    entries = server.store.audit_entries()
    assert verify_chain(entries).ok
    counts = Counter((e.case_id, e.kind) for e in entries)
    for case_id in CASES:
        assert verify_case_chain([e for e in entries if e.case_id == case_id], case_id).ok
        final = await stub.GetCase(
            casefile_pb2.GetCaseRequest(case_id=case_id), metadata=auth("o1")
        )
        stored = {e.evidence_id for e in final.evidence}
        # ten evidence ids, each stored once; E99 (refused) and the reused id's payload never
        assert stored == {f"E{k}" for k in range(10)}
        assert counts[(case_id, "AddEvidence")] == 10
        assert counts[(case_id, "AccessDenied")] == 1
        events = server.store.events_after(case_id)
        assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
        assert final.version == 11


async def test_a_write_failing_after_it_wrote_leaves_no_trace(
    server: Server, channel: grpc.aio.Channel
) -> None:
    stub = server.stub(channel)
    await open_cases(server, stub)
    store = server.store
    before = len(store.audit_entries())

    def breaks_after_writing(tx: WriteTx) -> None:
        tx.append(CASES[0], "Bogus", {"n": 1}, "test", utc(2026, 3, 2, 5))
        raise RuntimeError("failed after writing")

    def writes(tx: WriteTx, case_id: str) -> str:
        tx.append(case_id, "Note", {"n": 2}, "test", utc(2026, 3, 2, 5))
        return case_id

    jobs = [
        WriteJob(lambda tx: writes(tx, CASES[1])),
        WriteJob(breaks_after_writing),
        WriteJob(lambda tx: writes(tx, CASES[2])),
    ]
    outcomes = store.run_batch(jobs)
    assert outcomes[0] == (True, CASES[1]) and outcomes[2] == (True, CASES[2])
    assert outcomes[1][0] is False and str(outcomes[1][1]) == "failed after writing"
    entries = store.audit_entries()
    assert [e.kind for e in entries[before:]] == ["Note", "Note"]
    assert verify_chain(entries).ok
    # the store goes on from the committed head, not from the rolled-back entry
    await stub.AddEvidence(evidence(CASES[0], "after", "E1"), metadata=auth("o1"))
    entries = store.audit_entries()
    assert entries[-1].kind == "AddEvidence" and verify_chain(entries).ok
    assert verify_case_chain([e for e in entries if e.case_id == CASES[0]], CASES[0]).ok


async def test_two_writers_on_one_database_keep_one_chain(
    server: Server, channel: grpc.aio.Channel
) -> None:
    """Another process writing to the same database moves the chain head: the cached case
    rows and case heads are then read again, so both writers extend one valid chain."""
    stub = server.stub(channel)
    await open_cases(server, stub)
    other = CaseStore(make_engine(server.url))
    service = Principal("o1", frozenset({Role.ENFORCEMENT_OFFICER}))
    now = utc(2026, 3, 2, 5)

    def add_via_other(k: int) -> None:
        command = from_message(commands.AddEvidence, evidence(CASES[0], f"x-{k}", f"X{k}"))
        other.apply_command(
            principal=service,
            request_id=f"x-{k}",
            fingerprint=f"fp-{k}",
            case_id=CASES[0],
            command=command,
            now=now,
            respond=lambda sc, scope, legal: b"",
        )

    try:
        for k in range(3):
            # this server, then the other writer, on the same case, in turn
            await stub.AddEvidence(evidence(CASES[0], f"s-{k}", f"S{k}"), metadata=auth("o1"))
            await asyncio.to_thread(add_via_other, k)
        await stub.AddEvidence(evidence(CASES[0], "s-last", "S-last"), metadata=auth("o1"))
    finally:
        other.engine.dispose()
    final = await stub.GetCase(casefile_pb2.GetCaseRequest(case_id=CASES[0]), metadata=auth("o1"))
    assert [e.evidence_id for e in final.evidence] == [
        "S0", "X0", "S1", "X1", "S2", "X2", "S-last"
    ]  # fmt: skip
    entries = server.store.audit_entries()
    assert verify_chain(entries).ok
    assert verify_case_chain([e for e in entries if e.case_id == CASES[0]], CASES[0]).ok
