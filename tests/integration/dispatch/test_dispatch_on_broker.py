"""Dispatch on the real broker with a real casefile gRPC server and the real phone API:
alert event -> task, team, case and a live push; SSE resume; replays create no second task."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from casefile.bootstrap import build_store
from casefile.entrypoints.grpc_server import serve as serve_casefile
from dispatch.adapters.store import DispatchStore, make_engine
from dispatch.bootstrap import serve as serve_dispatch
from dispatch.config import DispatchConfig
from dispatch.domain.tasks import task_id_for
from liandong.events import new_meta
from liandong.registry.document import RegistryDocument
from liandong.registry.topics_io import publish
from liandong.settings import Settings
from liandong.stack import free_port, group_stable
from liandong.tokens.issuing import issue as casefile_token
from liandong.tokens.keys import load_public_key, write_key_pair
from liandong.tokens.phone import issue
from liandong.tokens.verifying import AuthConfig
from liandong.topics import ALERTS_EVENTS, DISPATCH_EVENTS
from liandong.v1 import alerts_pb2, casefile_pb2, casefile_pb2_grpc, dispatch_pb2

pytestmark = pytest.mark.integration

REGISTRY = Path(__file__).resolve().parents[3] / "deploy" / "registry" / "demo.yaml"
KEY = "integration-key-at-least-32-bytes-long"


def alert(alert_id: str, outlet: str, enterprise: str, at: datetime) -> alerts_pb2.AlertEvent:
    return alerts_pb2.AlertEvent(
        meta=new_meta(key=outlet, event_time=at, producer="alerts", event_id=f"ev-{alert_id}"),
        alert_id=alert_id,
        change=alerts_pb2.ALERT_CHANGE_OPENED,
        kind="EXCEEDANCE",
        severity="MAJOR",
        outlet_id=outlet,
        enterprise_id=enterprise,
        factor="a21002",
        county="320115",
        value=80.0,
        limit=50.0,
        unit="mg/m3",
        explanation="a21002 80 mg/m3 above limit 50",
        key_polluter=True,
    )


class Dispatch:
    """The dispatch service in this process, as bootstrap.run would wire it."""

    def __init__(self, settings: Settings, group: str | None = None) -> None:
        self.settings = settings
        self.config = DispatchConfig(jwt_key=KEY, tick_seconds=1.0, consumer_group=group)
        self.stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Dispatch:
        self.task = asyncio.create_task(
            serve_dispatch(self.settings, self.config, self.stop, self.ready)
        )
        done, _ = await asyncio.wait(
            [self.task, asyncio.create_task(self.ready.wait())],
            timeout=60,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if self.task in done:
            self.task.result()
        group = self.config.consumer_group or f"{self.settings.topic_prefix}liandong-dispatch"
        for _ in range(120):
            if await asyncio.to_thread(group_stable, self.settings, group):
                return self
            await asyncio.sleep(0.5)
        raise TimeoutError("dispatch consumer group not stable")

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)


@contextlib.asynccontextmanager
async def casefile(settings: Settings) -> AsyncIterator[None]:
    """casefile with tokens required; dispatch signs with its own key
    (LIANDONG_DISPATCH_CASEFILE_KEY), whose public half is casefile's only key for it."""
    stop = asyncio.Event()
    public = load_public_key(Path(os.environ["LIANDONG_DISPATCH_CASEFILE_KEY"]).with_suffix(".pub"))
    auth = AuthConfig(required=True, hs_key=KEY, service_keys={"dispatch": public})
    task = asyncio.create_task(
        serve_casefile(build_store(settings), settings.casefile_grpc, stop, auth=auth)
    )
    await asyncio.sleep(0.5)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def produce(settings: Settings, *events: alerts_pb2.AlertEvent) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(
                settings.topic(ALERTS_EVENTS), e.SerializeToString(), key=e.outlet_id.encode()
            )
    finally:
        await producer.stop()


async def dispatch_events(
    settings: Settings, until: int, seconds: float = 30, kind: str = "CASE_OPENED"
) -> list[dispatch_pb2.DispatchEvent]:
    """Reads dispatch.events from the start until `until` events of `kind` were seen."""
    consumer = AIOKafkaConsumer(
        settings.topic(DISPATCH_EVENTS),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen: list[dispatch_pb2.DispatchEvent] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                seen += [dispatch_pb2.DispatchEvent.FromString(r.value) for r in records]
            if sum(e.kind == kind for e in seen) >= until:
                break
    finally:
        await consumer.stop()
    return seen


async def sse(port: int, token: str, last_id: str | None, count: int) -> list[dict[str, str]]:
    """Reads `count` events from the live stream, then disconnects."""
    headers = {"Authorization": f"Bearer {token}"} | ({"Last-Event-ID": last_id} if last_id else {})
    events: list[dict[str, str]] = []
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30, read=60)) as client,
        client.stream("GET", f"http://127.0.0.1:{port}/v1/events", headers=headers) as r,
    ):
        assert r.status_code == 200
        current: dict[str, str] = {}
        async for line in r.aiter_lines():
            if not line:
                if current:
                    events.append(current)
                    current = {}
                if len(events) == count:
                    break
            elif not line.startswith(":"):
                k, _, v = line.partition(": ")
                current[k] = v
    return events


@pytest.fixture
def settings(
    isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Settings:
    monkeypatch.setenv("LIANDONG_JWT_KEY", KEY)
    private, _ = write_key_pair(tmp_path / "keys", "dispatch")
    monkeypatch.setenv("LIANDONG_DISPATCH_CASEFILE_KEY", str(private))
    return dataclasses.replace(
        isolated_settings, casefile_grpc=f"127.0.0.1:{free_port()}", dispatch_http_port=free_port()
    )


async def test_alert_to_task_team_case_and_push_then_replays_change_nothing(
    settings: Settings,
) -> None:
    raw = REGISTRY.read_bytes()
    await publish(settings, RegistryDocument.model_validate(yaml.safe_load(raw)), raw)
    at = datetime.now(UTC) - timedelta(minutes=5)
    first = alert("al-power-1", "out-jn-power-1", "ent-jn-power", at)
    tid = task_id_for("al-power-1")
    port = settings.dispatch_http_port
    officer = issue("p-enf-01", "ENFORCEMENT", ["320115"], key=KEY)

    async with casefile(settings), Dispatch(settings):
        listening = asyncio.create_task(sse(port, officer, None, 1))
        await asyncio.sleep(0.5)  # the stream is open before the alert arrives: a live push
        await produce(settings, first)
        (offer,) = await asyncio.wait_for(listening, 30)
        assert offer["event"] == "offer" and json.loads(offer["data"])["task_id"] == tid

        events = await dispatch_events(settings, until=1)
        mine = [e for e in events if e.task_id == tid]
        assert [e.kind for e in mine] == [
            "TASK_CREATED",
            "STATUS_CHANGED",
            "TEAM_PROPOSED",
            "CASE_OPENED",
        ]
        assert [e.seq for e in mine] == [1, 2, 3, 4]
        assert all(
            e.alert_time.ToDatetime(tzinfo=UTC) == at.replace(microsecond=at.microsecond)
            for e in mine
        )
        # key polluter + MAJOR (HIGH -> P2) raised one step: P1; two officers and a sampler.
        # The alert has no position, so the outlet's (31.9331, 118.8420) is used: p-enf-02 is
        # about 1.1 km away, p-enf-01 about 2.2 km, p-enf-03 (city level) 14 km.
        assert mine[0].priority == "P1"
        team = [(m.person_id, m.role) for m in mine[2].team]
        assert team == [
            ("p-enf-02", "ENFORCEMENT"),
            ("p-enf-01", "ENFORCEMENT"),
            ("p-mon-01", "MONITORING"),
        ]
        case_id = mine[3].case_id
        admin = casefile_token(KEY, sub="ops", roles=["admin"])
        async with grpc.aio.insecure_channel(settings.casefile_grpc) as channel:
            case = await casefile_pb2_grpc.CaseFileStub(channel).GetCase(
                casefile_pb2.GetCaseRequest(case_id=case_id),
                metadata=(("authorization", f"Bearer {admin}"),),
            )
        assert case.task_id == tid and [p.person_id for p in case.team] == [
            "p-enf-02",
            "p-enf-01",
            "p-mon-01",
        ]

        # all three accept over HTTP; the officer reconnects with Last-Event-ID and gets
        # exactly what came after the offer
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for pid, role in (
                ("p-enf-01", "ENFORCEMENT"),
                ("p-enf-02", "ENFORCEMENT"),
                ("p-mon-01", "MONITORING"),
            ):
                token = issue(pid, role, ["320115"], key=KEY)
                r = await client.post(
                    f"/v1/tasks/{tid}/accept", headers={"Authorization": f"Bearer {token}"}
                )
                assert r.status_code == 200, r.text
        (confirmed,) = await asyncio.wait_for(sse(port, officer, offer["id"], 1), 30)
        assert confirmed["event"] == "team_confirmed" and int(confirmed["id"]) > int(offer["id"])

        # each officer checks in at the outlet from their own phone; with two present the
        # case file gets its arrival (made by the service's casefile call loop on behalf of
        # the officer whose check-in completed it), and each check-in as a site note
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            second = issue("p-enf-02", "ENFORCEMENT", ["320115"], key=KEY)
            here = {"status": "ON_SITE", "lat": 31.9331, "lon": 118.8420}
            for token, body in (
                (officer, {"status": "EN_ROUTE"}),
                (officer, here),
                (second, here),
            ):
                r = await client.post(
                    f"/v1/tasks/{tid}/status",
                    headers={"Authorization": f"Bearer {token}"},
                    json=body,
                )
                assert r.status_code == 200, r.text
        recorded = await dispatch_events(settings, until=3, kind="CASE_RECORDED")
        assert [e.note.split(":")[0] for e in recorded if e.kind == "CASE_RECORDED"] == [
            "RecordArrival arrival",
            "RecordSiteNote checkin",
            "RecordSiteNote checkin",
        ]
        async with grpc.aio.insecure_channel(settings.casefile_grpc) as channel:
            case = await casefile_pb2_grpc.CaseFileStub(channel).GetCase(
                casefile_pb2.GetCaseRequest(case_id=case_id),
                metadata=(("authorization", f"Bearer {admin}"),),
            )
        assert case.state == "ON_SITE"
        assert list(case.arrival.officers_present) == ["p-enf-01", "p-enf-02"]  # as they came
        assert [n.by for n in case.site_notes] == ["p-enf-01", "p-enf-02"]

        # the same alert event delivered again, then a new alert to see the consumer passed it
        await produce(settings, first, alert("al-wwtp-1", "out-jn-wwtp-1", "ent-jn-wwtp", at))
        events = await dispatch_events(settings, until=2)

    # a restart on a fresh consumer group replays alerts.events from the beginning; the new
    # alert (same enterprise, within the 2 h grouping window) joins the open WWTP task
    async with casefile(settings), Dispatch(settings, group=f"{settings.topic_prefix}replay"):
        await produce(
            settings, alert("al-wwtp-2", "out-jn-wwtp-1", "ent-jn-wwtp", at + timedelta(hours=3))
        )
        events = await dispatch_events(settings, until=3)

    created = [e.task_id for e in events if e.kind == "TASK_CREATED"]
    assert sorted(created) == sorted([tid, task_id_for("al-wwtp-1")])
    attached = [e for e in events if e.kind == "ALERT_ATTACHED"]
    assert [(e.task_id, e.note) for e in attached] == [(task_id_for("al-wwtp-1"), "al-wwtp-2")]
    assert sum(e.kind == "CASE_OPENED" for e in events) == 2
    store = DispatchStore(make_engine(settings.dispatch_db))
    assert store.count_tasks() == 2
    assert [e.kind for e in events if e.task_id == tid].count("ACCEPTED") == 3
