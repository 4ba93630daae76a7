"""Dispatch against a real casefile gRPC server in this process, with tokens required: the
case is opened under the service identity, a replaced member reaches the case by UpdateTeam,
the geofenced check-in is recorded as the case's arrival and the team's status notes as site
notes, each sent by the service acting for the person who did it, and what casefile refuses
is dead-lettered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from casefile import migrations
from casefile.adapters.store import CaseStore
from casefile.adapters.store import make_engine as casefile_engine
from casefile.entrypoints.grpc_server import serve
from dispatch.adapters.casefile_client import CaseFileClient, CasefileTokens
from dispatch.domain.casefile_calls import CallStatus
from dispatch.domain.tasks import TaskError, TaskState, task_id_for
from liandong.events import deterministic_id
from liandong.tokens.issuing import issue
from liandong.tokens.keys import new_private_key
from liandong.tokens.verifying import AuthConfig
from liandong.v1 import casefile_pb2, casefile_pb2_grpc
from tests.unit.dispatch.harness import OUTLET, T0, Harness, alert_event

KEY = "dispatch-casefile-integration-key-0123456789"  # casefile's HS256 key (people)
DISPATCH_KEY = new_private_key()  # dispatch's own; casefile holds only the public half
TID = task_id_for("A1")
Build = Callable[..., Harness]


@pytest.fixture
def casefile_store(tmp_path: Path) -> Iterator[CaseStore]:
    engine = casefile_engine(f"sqlite:///{tmp_path / 'casefile.db'}")
    migrations.upgrade(engine)
    yield CaseStore(engine)
    engine.dispose()


@pytest.fixture
async def casefile_address(casefile_store: CaseStore) -> AsyncIterator[str]:
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve(
            casefile_store,
            "127.0.0.1:0",
            stop,
            auth=AuthConfig(
                required=True, hs_key=KEY, service_keys={"dispatch": DISPATCH_KEY.public_key()}
            ),
            ready=port.set_result,
        )
    )
    yield f"127.0.0.1:{await asyncio.wait_for(port, 10)}"
    stop.set()
    await server


@pytest.fixture
async def dispatch(harness: Build, casefile_address: str) -> AsyncIterator[Harness]:
    h = harness()
    client = CaseFileClient(casefile_address, CasefileTokens(DISPATCH_KEY), timeout_s=5)
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
    h.clock.advance(minutes=15)
    await h.service.update_status(TID, "m1", TaskState.ON_SITE, OUTLET)  # first: recorded
    h.clock.advance(minutes=5)
    await h.service.update_status(TID, "e2", TaskState.ON_SITE, (OUTLET[0] + 0.001, OUTLET[1]))
    # one officer on site: the case's arrival waits for a second (casefile needs two)
    assert await h.service.call_casefile() == 0
    assert (await get_case(casefile_address, case_id)).state == "OPENED"
    h.clock.advance(minutes=3)
    await h.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET)
    assert await h.service.call_casefile() == 4  # the arrival and three check-in notes

    case = await get_case(casefile_address, case_id)
    assert (case.state, case.task_id, case.opened_by) == ("ON_SITE", TID, "dispatch")
    assert list(case.officers) == ["e1", "e2"] and list(case.monitoring_staff) == ["m1"]
    assert list(case.arrival.officers_present) == ["e2", "e1"]  # in the order they came
    assert case.arrival.arrived_at.ToDatetime().isoformat() == "2026-03-02T02:23:00"
    assert (case.arrival.position.lat, case.arrival.position.lon) == OUTLET
    assert [(n.by, n.at.ToDatetime().isoformat()) for n in case.site_notes] == [
        ("m1", "2026-03-02T02:15:00"),
        ("e2", "2026-03-02T02:20:00"),
        ("e1", "2026-03-02T02:23:00"),
    ]
    assert case.site_notes[0].text.startswith("checked in on site: m1 (MONITORING)")
    team_id = f"team:{deterministic_id('dispatch-event', TID, '8')}"
    assert [(c.request_id, c.status) for c in h.store.calls_for(TID)] == [
        (f"open:{TID}", CallStatus.DONE),
        (team_id, CallStatus.DONE),  # the accepted team is the case's: nothing sent
        (f"arrival:{TID}", CallStatus.DONE),
        (f"checkin:{TID}:m1", CallStatus.DONE),
        (f"checkin:{TID}:e2", CallStatus.DONE),
        (f"checkin:{TID}:e1", CallStatus.DONE),
    ]
    assert h.sink.kinds(TID)[-1] == "CASE_RECORDED"
    version = case.version

    # an unknown outcome (say the answer was lost) is retried with the same request id:
    # casefile answers from its idempotency record and writes nothing twice
    arrival = h.store.calls_for(TID)[2]
    again = await h.service.casefile.record_arrival(  # type: ignore[union-attr]
        request_id=arrival.request_id,
        case_id=case_id,
        arrived_at=T0 + timedelta(minutes=23),
        officers_present=["e2", "e1"],
        position=OUTLET,
        on_behalf_of="e1",
    )
    # the answer the arrival got then (version 2: open, arrival; the notes came after)
    assert again.version == 2 and version == 5
    assert (await get_case(casefile_address, case_id)).version == version


async def audit(store: CaseStore, case_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (e.kind, e.actor, json.loads(e.payload_json))
        for e in await asyncio.to_thread(store.audit_entries, case_id)
    ]


async def test_a_replacement_reaches_the_case_and_their_arrival_is_accepted(
    dispatch: Harness, casefile_address: str, casefile_store: CaseStore
) -> None:
    # the case is opened with the first proposed team (e1, e2, m1); e2 declines and e3 takes
    # the slot; once everyone accepted, dispatch sends the accepted team (UpdateTeam) before
    # the arrival, which names e3
    h = dispatch
    await h.service.on_alert_event(alert_event("A1"))
    case_id = h.service.metas[TID].case_id
    await h.service.decline(TID, "e2", "in court")
    for pid in ("e1", "e3", "m1"):
        await h.service.accept(TID, pid)
    await h.service.update_status(TID, "e3", TaskState.EN_ROUTE, None)
    h.clock.advance(minutes=20)
    await h.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET)
    await h.service.update_status(TID, "e3", TaskState.ON_SITE, OUTLET)
    # UpdateTeam, then RecordArrival, then the two check-in notes
    assert await h.service.call_casefile() == 4

    case = await get_case(casefile_address, case_id)
    assert (case.state, list(case.officers), list(case.monitoring_staff)) == (
        "ON_SITE",
        ["e1", "e3"],
        ["m1"],
    )
    assert [(p.person_id, p.name, p.role) for p in case.team] == [
        ("e1", "name of e1", "ENFORCEMENT"),
        ("e3", "name of e3", "ENFORCEMENT"),
        ("m1", "name of m1", "MONITORING"),
    ]
    assert list(case.arrival.officers_present) == ["e1", "e3"]
    assert [c.status for c in h.store.calls_for(TID)] == [CallStatus.DONE] * 5
    assert "CASEFILE_REJECTED" not in h.sink.kinds(TID)
    # (the server runs on the wall clock, so a ClockBreached entry may come between)
    entries = [e for e in await audit(casefile_store, case_id) if e[0] != "ClockBreached"]
    kind, actor, payload = entries[1]
    assert (kind, actor) == ("UpdateTeam", "dispatch")
    assert payload["command"]["officers"] == ["e1", "e3"]
    assert payload["command"]["reason"] == "accepted team; replaced: e2 declined: in court"
    assert payload["previous_team"]["officers"] == ["e1", "e2"]
    kind, actor, payload = entries[2]
    assert (kind, actor) == ("RecordArrival", "e3")  # the person; the service beside them
    assert payload["via"] == {
        "service": "dispatch",
        "on_behalf_of": "e3",
        "person_roles": "ENFORCEMENT_OFFICER",
    }


async def test_status_notes_and_completion_become_site_notes(
    dispatch: Harness, casefile_address: str, casefile_store: CaseStore
) -> None:
    h = dispatch
    await h.service.on_alert_event(alert_event("A1"))
    case_id = h.service.metas[TID].case_id
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    near = (OUTLET[0] + 0.001, OUTLET[1])
    await h.service.update_status(TID, "e1", TaskState.EN_ROUTE, (32.05, 118.8), "traffic on G42")
    await h.service.call_casefile()  # the en-route note waits for the arrival
    assert (await get_case(casefile_address, case_id)).site_notes == []
    h.clock.advance(minutes=20)
    await h.service.update_status(TID, "e2", TaskState.ON_SITE, near, "gate 2 locked")
    h.clock.advance(minutes=30)
    await h.service.update_status(TID, "m1", TaskState.SAMPLING, near, "outfall sampled")
    h.clock.advance(minutes=5)
    await h.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET)  # the arrival
    h.clock.advance(minutes=35)
    await h.service.update_status(TID, "e1", TaskState.COMPLETED, near)
    await h.service.call_casefile()

    case = await get_case(casefile_address, case_id)
    assert case.state == "ON_SITE"  # notes change no state
    e2_in = "checked in on site: e2 (ENFORCEMENT) at 2026-03-02T02:20:00+00:00, "
    e1_in = "checked in on site: e1 (ENFORCEMENT) at 2026-03-02T02:55:00+00:00, "
    assert [
        (n.by, n.text, n.at.ToDatetime(), (n.position.lat, n.position.lon)) for n in case.site_notes
    ] == [
        ("e1", "traffic on G42", datetime(2026, 3, 2, 2, 0), (32.05, 118.8)),
        (
            "e2",
            e2_in + "32.001000,118.800000, 111 m from the outlet; gate 2 locked",
            datetime(2026, 3, 2, 2, 20),
            near,
        ),
        ("m1", "outfall sampled", datetime(2026, 3, 2, 2, 50), near),
        (
            "e1",
            e1_in + "32.000000,118.800000, 0 m from the outlet",
            datetime(2026, 3, 2, 2, 55),
            OUTLET,
        ),
        ("e1", "inspection completed on site", datetime(2026, 3, 2, 3, 30), near),
    ]
    notes = [e for e in await audit(casefile_store, case_id) if e[0] == "RecordSiteNote"]
    assert [(actor, p["via"]["person_roles"]) for _, actor, p in notes] == [
        ("e1", "ENFORCEMENT_OFFICER"),
        ("e2", "ENFORCEMENT_OFFICER"),
        ("m1", "MONITORING_STAFF"),
        ("e1", "ENFORCEMENT_OFFICER"),
        ("e1", "ENFORCEMENT_OFFICER"),
    ]
    statuses = [c.status for c in h.store.calls_for(TID)]
    assert statuses == [CallStatus.DONE] * 8  # open, team, arrival, 5 notes
    # a retry of a note with the same request id writes nothing twice
    note = h.store.calls_for(TID)[-1]
    again = await h.service.casefile.record_site_note(  # type: ignore[union-attr]
        request_id=note.request_id,
        case_id=case_id,
        at=datetime.fromisoformat(note.body["at"]),
        text=note.body["text"],
        by="e1",
        role="ENFORCEMENT",
        position=near,
    )
    assert again.version == case.version


async def test_a_note_for_someone_not_on_the_case_is_refused_and_dead_lettered(
    dispatch: Harness, casefile_address: str
) -> None:
    # casefile checks the person dispatch acts for: a member it does not know is refused
    h = dispatch
    await h.service.on_alert_event(alert_event("A1"))
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    await h.service.update_status(TID, "e1", TaskState.EN_ROUTE, None)
    await h.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET)
    await h.service.call_casefile()
    case_id = h.service.metas[TID].case_id
    client = h.service.casefile
    assert isinstance(client, CaseFileClient)
    code = None
    try:
        await client.record_site_note(
            request_id="note:stranger",
            case_id=case_id,
            at=T0,
            text="not mine to write",
            by="e9",
            role="ENFORCEMENT",
            position=None,
        )
    except grpc.aio.AioRpcError as err:
        code = err.code()
    assert code is grpc.StatusCode.PERMISSION_DENIED


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
        h.service.casefile = CaseFileClient(
            casefile_address, CasefileTokens(DISPATCH_KEY), timeout_s=5
        )
        h.clock.advance(seconds=1)
        await h.service.tick()
        assert h.service.metas[TID].case_id.startswith("case-")
        await h.service.casefile.close()  # type: ignore[union-attr]
    finally:
        await client.close()


class SharedKeyTokens(CasefileTokens):
    """The old way: dispatch's claims signed with casefile's own HS256 key."""

    def _token(self, act: dict[str, Any] | None = None) -> str:
        return issue(KEY, sub="dispatch", roles=["service"], act=act)


@pytest.mark.parametrize(
    "tokens",
    [
        CasefileTokens(new_private_key()),  # another EC key claiming kid=dispatch
        SharedKeyTokens(DISPATCH_KEY),  # casefile's HS256 key, for a service with its own key
    ],
    ids=["foreign-ec-key", "shared-hs256-key"],
)
async def test_tokens_not_signed_with_dispatchs_own_key_are_refused(
    harness: Build, casefile_address: str, tokens: CasefileTokens
) -> None:
    h = harness()
    client = CaseFileClient(casefile_address, tokens, timeout_s=5)
    h.service.casefile = client
    try:
        await h.service.on_alert_event(alert_event("A1"))
        (call,) = h.store.calls_for(TID)
        assert call.status is CallStatus.PENDING and call.attempts == 1
        assert call.last_error.startswith("UNAUTHENTICATED"), call.last_error
        assert h.service.metas[TID].case_id == ""
    finally:
        await client.close()


def test_dispatch_key_from_the_environment_or_the_embedded_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from casefile import config
    from liandong.tokens import keys
    from liandong.tokens.claims import Unauthenticated
    from liandong.tokens.keys import load_private_key, write_key_pair
    from liandong.tokens.verifying import TokenVerifier

    private, _ = write_key_pair(tmp_path / "keys", "dispatch")
    monkeypatch.setenv("LIANDONG_DISPATCH_CASEFILE_KEY", str(private))
    mine = CasefileTokens.from_env()
    assert mine.key.private_numbers() == load_private_key(private).private_numbers()

    # embedded default: dispatch creates the pair (or finds casefile's) and casefile's
    # default configuration trusts exactly its public half
    monkeypatch.delenv("LIANDONG_DISPATCH_CASEFILE_KEY")
    monkeypatch.delenv("LIANDONG_CASEFILE_SERVICE_KEYS", raising=False)
    monkeypatch.setattr(config, "ROOT", tmp_path)
    monkeypatch.setattr(keys, "ROOT", tmp_path)  # dispatch's side of the same checkout
    embedded = CasefileTokens.from_env()
    assert (tmp_path / ".state" / "dispatch-casefile.key").exists()
    verifier = TokenVerifier(config.auth_config())
    _, header = embedded.on_behalf("e1", "ENFORCEMENT")[0]
    person = verifier.verify(header.removeprefix("Bearer ")).on_behalf_of
    assert person is not None and person.subject == "e1"
    with pytest.raises(Unauthenticated, match="Signature verification failed"):
        verifier.verify(mine.service()[0][1].removeprefix("Bearer "))


async def test_a_duty_managers_cancellation_reaches_the_case_once(
    dispatch: Harness, casefile_address: str, casefile_store: CaseStore
) -> None:
    # issue 12 item 1: the case is told when (and why, and by whom) its task was cancelled
    h = dispatch
    await h.service.on_alert_event(alert_event("A1"))
    case_id = h.service.metas[TID].case_id
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    await h.service.call_casefile()
    h.clock.advance(minutes=10)
    await h.service.update_status(TID, "mgr", TaskState.CANCELLED, None, "enterprise sealed")
    cancelled = [c for c in h.store.calls_for(TID) if c.request_id.startswith("cancel:")]
    assert len(cancelled) == 1 and cancelled[0].request_id.startswith(f"cancel:{TID}:")
    assert await h.service.call_casefile() == 1

    case = await get_case(casefile_address, case_id)
    assert case.state == "OPENED"  # before the arrival; the case is not closed by it
    assert [
        (c.task_id, c.reason, c.cancelled_by, c.cancelled_at.ToDatetime())
        for c in case.task_cancellations
    ] == [(TID, "enterprise sealed", "mgr", datetime(2026, 3, 2, 2, 10))]
    entries = [e for e in await audit(casefile_store, case_id) if e[0] == "RecordTaskCancelled"]
    assert [(actor, p["via"]["service"]) for _, actor, p in entries] == [("mgr", "dispatch")]
    token = issue(KEY, sub="ops", roles=["admin"])
    async with grpc.aio.insecure_channel(casefile_address) as channel:
        verified = await casefile_pb2_grpc.CaseFileStub(channel).VerifyCase(
            casefile_pb2.GetCaseRequest(case_id=case_id),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    assert verified.ok, verified.detail

    # a second cancel is refused by dispatch (the task is over); a redelivered call (its
    # answer lost) goes out again with the same request id and writes nothing twice
    with pytest.raises(TaskError):
        await h.service.update_status(TID, "mgr", TaskState.CANCELLED, None, "again")
    call = h.store.calls_for(TID)[-1]
    client = h.service.casefile
    assert isinstance(client, CaseFileClient)
    again = await client.record_task_cancelled(
        request_id=call.request_id,
        case_id=case_id,
        task_id=TID,
        cancelled_at=datetime.fromisoformat(call.body["cancelled_at"]),
        reason="enterprise sealed",
        manager_id="mgr",
        jurisdiction=call.body["jurisdiction"],
    )
    assert again.version == case.version
    assert await h.service.call_casefile() == 0
    final = await get_case(casefile_address, case_id)
    assert final.version == case.version and len(final.task_cancellations) == 1
    assert [e[0] for e in await audit(casefile_store, case_id)].count("RecordTaskCancelled") == 1


async def test_only_the_duty_managers_cancellation_goes_to_the_case(
    dispatch: Harness, casefile_address: str
) -> None:
    # casefile takes the record only from dispatch acting for a manager of the county: not in
    # dispatch's own name, not for an officer, not for a manager of another county
    h = dispatch
    await h.service.on_alert_event(alert_event("A1"))
    case_id = h.service.metas[TID].case_id
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    await h.service.call_casefile()
    tokens = CasefileTokens(DISPATCH_KEY)
    request = casefile_pb2.RecordTaskCancelledRequest(
        request_id="forged", case_id=case_id, task_id=TID, reason="x"
    )
    request.cancelled_at.FromDatetime(T0)
    async with grpc.aio.insecure_channel(casefile_address) as channel:
        stub = casefile_pb2_grpc.CaseFileStub(channel)
        for metadata in (
            tokens.service(),
            tokens.on_behalf("e1", "ENFORCEMENT"),
            tokens.for_manager("mgr", ["1101"]),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.RecordTaskCancelled(request, metadata=metadata)
            assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert list((await get_case(casefile_address, case_id)).task_cancellations) == []
