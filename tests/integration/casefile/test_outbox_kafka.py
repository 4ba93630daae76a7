"""The transactional outbox on the real broker: committed changes are published once with
deterministic ids; a failed write publishes nothing; a re-publish after a crash repeats ids."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text

from casefile.adapters.outbox import OutboxRelay
from casefile.entrypoints.grpc_server import serve
from liandong.settings import Settings
from liandong.tokens.verifying import AuthConfig
from liandong.topics import CASEFILE_EVENTS
from liandong.v1 import casefile_pb2, casefile_pb2_grpc
from tests.integration.casefile.conftest import KEY, Clock, Server, build_store
from tests.integration.casefile.walk import CASE, auth, open_request, walk


async def _read_all(settings: Settings, expected: int) -> list[casefile_pb2.CaseEvent]:
    consumer = AIOKafkaConsumer(
        settings.topic(CASEFILE_EVENTS),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[casefile_pb2.CaseEvent] = []
    try:
        async with asyncio.timeout(30):
            while len(out) < expected:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for r in records:
                        assert r.key == CASE.encode()
                        out.append(casefile_pb2.CaseEvent.FromString(r.value))
        extra = await consumer.getmany(timeout_ms=1000)  # nothing beyond what was expected
        out += [casefile_pb2.CaseEvent.FromString(r.value) for rs in extra.values() for r in rs]
    finally:
        await consumer.stop()
    return out


async def test_outbox_publishes_committed_changes_once(isolated_settings: Settings) -> None:
    settings = isolated_settings
    store = build_store(settings.casefile_db)
    relay = OutboxRelay(store, settings.kafka_bootstrap, settings.topic(CASEFILE_EVENTS))
    clock, stop = Clock(), asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(
            store,
            "127.0.0.1:0",
            stop,
            auth=AuthConfig(required=True, hs_key=KEY),
            relay=relay,
            now=clock,
            ready=port.set_result,
        )
    )
    address = f"127.0.0.1:{await port}"
    async with grpc.aio.insecure_channel(address) as channel:
        stub = casefile_pb2_grpc.CaseFileStub(channel)
        server = Server(address, store, clock, settings.casefile_db)
        await walk(server, stub, upto=3)
        illegal = casefile_pb2.CloseCaseRequest(
            request_id="z", case_id=CASE, disposition="NO_VIOLATION", reason="x"
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.CloseCase(illegal, metadata=auth("o1"))
    events = await _read_all(settings, 3)
    stop.set()
    await task
    assert [e.kind for e in events] == ["CASE_OPENED", "ARRIVAL_RECORDED", "EVIDENCE_ADDED"]
    assert [e.sequence for e in events] == [1, 2, 3]
    assert all(e.meta.producer == "casefile" and e.meta.key == CASE for e in events)
    assert store.unpublished() == []

    # a crash after publishing, before marking: the same events again, with the same ids
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE case_events SET published_at = NULL"))
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        assert await relay.publish_pending(producer) == 3
    finally:
        await producer.stop()
    again = await _read_all(settings, 6)
    assert len(again) == 6
    assert [e.meta.event_id for e in again[3:]] == [e.meta.event_id for e in events]
    assert again[3:] == events  # byte-identical: the stored event, not a rebuilt one
    store.engine.dispose()


async def test_a_relay_cancelled_at_shutdown_closes_its_producer(
    isolated_settings: Settings,
) -> None:
    settings = isolated_settings
    store = build_store(settings.casefile_db)
    relay = OutboxRelay(store, settings.kafka_bootstrap, settings.topic(CASEFILE_EVENTS))
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop, poll_s=60.0))  # waits long between polls
    async with asyncio.timeout(30):
        while relay.producer is None:
            await asyncio.sleep(0.05)
    producer = relay.producer
    running.cancel()  # what serve() does to it at shutdown
    with pytest.raises(asyncio.CancelledError):
        await running
    assert relay.producer is None
    # stopped, not left with open connections (aiokafka has no public "closed" flag)
    assert producer is not None and producer._closed
    store.engine.dispose()


async def test_outbox_records_carry_the_request_traceparent(isolated_settings: Settings) -> None:
    """casefile.events records carry the trace context of the call that made the change, as
    the other topics do (issue 12, item 14)."""
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer

    settings = isolated_settings
    store = build_store(settings.casefile_db)
    relay = OutboxRelay(store, settings.kafka_bootstrap, settings.topic(CASEFILE_EVENTS))
    instrumentor = GrpcAioInstrumentorServer()
    instrumentor.instrument()  # what setup_telemetry does in every casefile process
    try:
        clock, stop = Clock(), asyncio.Event()
        port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            serve(
                store,
                "127.0.0.1:0",
                stop,
                auth=AuthConfig(required=True, hs_key=KEY),
                relay=relay,
                now=clock,
                ready=port.set_result,
            )
        )
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        sent = f"00-{trace_id}-00f067aa0ba902b7-01"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{await port}") as channel:
            stub = casefile_pb2_grpc.CaseFileStub(channel)
            await stub.OpenCase(open_request(), metadata=(*auth("dispatch"), ("traceparent", sent)))
        consumer = AIOKafkaConsumer(
            settings.topic(CASEFILE_EVENTS),
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            async with asyncio.timeout(30):
                record = await consumer.getone()
        finally:
            await consumer.stop()
        stop.set()
        await task
    finally:
        instrumentor.uninstrument()
    headers = dict(record.headers)
    assert "traceparent" in headers, headers
    assert headers["traceparent"].decode().split("-")[1] == trace_id


async def test_a_rewritten_tail_is_found_against_casefile_events(
    isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewrite of the chain's whole tail, head row included and every hash recomputed,
    verifies against the database alone; casefile.events (which the database's owner cannot
    rewrite) carries each entry's seq and hash, and `verify --events` finds the rewrite
    (issue 12, item 6)."""
    import dataclasses

    from typer.testing import CliRunner

    from casefile.adapters.store import to_entry
    from casefile.domain.audit import ChainProblem, entry_hash
    from casefile.entrypoints.cli import casefile_app, read_published, verify_database

    settings = isolated_settings
    store = build_store(settings.casefile_db)
    relay = OutboxRelay(store, settings.kafka_bootstrap, settings.topic(CASEFILE_EVENTS))
    clock, stop = Clock(), asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(
            store,
            "127.0.0.1:0",
            stop,
            auth=AuthConfig(required=True, hs_key=KEY),
            relay=relay,
            now=clock,
            ready=port.set_result,
        )
    )
    address = f"127.0.0.1:{await port}"
    async with grpc.aio.insecure_channel(address) as channel:
        await walk(
            Server(address, store, clock, settings.casefile_db),
            casefile_pb2_grpc.CaseFileStub(channel),
            upto=4,
        )
    await _read_all(settings, 4)  # all four published
    stop.set()
    await task
    # the owner of the database rewrites entry 3's actor and re-chains 3..4 and the head row
    entries = [to_entry(r) for r in store_rows(store)]
    rewritten = []
    prev, case_prev = entries[1].hash, entries[1].hash
    for e in entries[2:]:
        changed = dataclasses.replace(
            e, actor="o2" if e.seq == 3 else e.actor, prev_hash=prev, case_prev_hash=case_prev
        )
        changed = dataclasses.replace(changed, hash=entry_hash(changed))
        rewritten.append(changed)
        prev = case_prev = changed.hash
    with store.engine.begin() as conn:
        for e in rewritten:
            conn.execute(
                text(
                    "UPDATE audit_entries SET actor = :a, prev_hash = :p, case_prev_hash = :c, "
                    "hash = :h WHERE seq = :s"
                ),
                {"a": e.actor, "p": e.prev_hash, "c": e.case_prev_hash, "h": e.hash, "s": e.seq},
            )
        conn.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})
    alone, problems = verify_database(settings.casefile_db)
    assert alone.ok and problems == []  # undetectable from the database alone
    published = await read_published(settings.kafka_bootstrap, settings.topic(CASEFILE_EVENTS))
    assert sorted(published) == [1, 2, 3, 4]
    report, _ = verify_database(settings.casefile_db, published=published)
    assert not report.ok and (report.first_bad_seq, report.problem) == (3, ChainProblem.EDITED)
    # the tail cut off (entries 3, 4 and the head row rolled back to 2): published 4 is missing
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries WHERE seq >= 3"))
        conn.execute(
            text("UPDATE audit_head SET seq = 2, hash = :h WHERE id = 1"), {"h": entries[1].hash}
        )
    cut, _ = verify_database(settings.casefile_db, published=published)
    assert not cut.ok and cut.problem is ChainProblem.TRUNCATED
    monkeypatch.setenv("LIANDONG_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("LIANDONG_TOPIC_PREFIX", settings.topic_prefix)
    result = await asyncio.to_thread(
        CliRunner().invoke, casefile_app, ["verify", "--events", "--db", settings.casefile_db]
    )
    assert result.exit_code == 1 and "TAMPERED" in result.output, result.output


def store_rows(store: object) -> list[object]:
    from sqlmodel import Session, select

    from casefile.adapters.store import AuditRow

    with Session(store.engine) as s:  # type: ignore[attr-defined]
        return list(s.exec(select(AuditRow).order_by(AuditRow.seq)).all())  # type: ignore[arg-type]
