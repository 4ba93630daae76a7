"""Consumes alerts.events: an opened alert becomes an inspection task with a joint team and a case.

At-least-once with idempotent effects: the case is opened with the task id as request id, the
dispatch events carry deterministic ids, and the alert event is marked processed only after
both, so a crash anywhere replays safely and a replay creates no second task.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry import trace

from liandong.events import deterministic_id, from_timestamp, new_meta, to_timestamp
from liandong.registry.topics_io import RegistryView
from liandong.settings import Settings
from liandong.telemetry import consumed_span
from liandong.topics import ALERTS_EVENTS, DISPATCH_EVENTS
from liandong.v1 import alerts_pb2, dispatch_pb2

from dispatch.adapters.casefile_client import CaseFileClient
from dispatch.adapters.store import DispatchStore, TaskRow

log = logging.getLogger(__name__)
tracer = trace.get_tracer("liandong.dispatch")


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(h))


def choose_team(alert: alerts_pb2.AlertEvent, roster: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """Two enforcement officers and one monitoring staff member from the alert's jurisdiction,
    nearest first, ties by id (deterministic)."""
    site = (alert.lat, alert.lon)

    def candidates(role: str) -> list[tuple[float, str, dict[str, Any]]]:
        out = []
        for pid, person in roster.items():
            if role not in person.get("roles", []) or not person.get("on_duty", True):
                continue
            if not any(alert.county.startswith(code) for code in person.get("jurisdiction", [])):
                continue
            where = (float(person.get("lat", 0.0)), float(person.get("lon", 0.0)))
            out.append((_distance_km(site, where), pid, person))
        return sorted(out, key=lambda c: (c[0], c[1]))

    team = []
    for role, count in (("enforcement", 2), ("monitoring", 1)):
        for km, pid, person in candidates(role)[:count]:
            team.append(
                {
                    "person_id": pid,
                    "name": str(person.get("name", "")),
                    "role": role.upper(),
                    "reason": f"{role}, in jurisdiction {alert.county}, {km:.1f} km from the outlet",
                }
            )
    return team


class AlertConsumer:
    def __init__(self, settings: Settings, store: DispatchStore, casefile: CaseFileClient, view: RegistryView) -> None:
        self.settings = settings
        self.store = store
        self.casefile = casefile
        self.view = view
        self.consumer = AIOKafkaConsumer(
            settings.topic(ALERTS_EVENTS),
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"{settings.topic_prefix}liandong-dispatch",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
        )

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.producer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await self.consumer.getmany(timeout_ms=500)
            for _tp, records in batch.items():
                for record in records:
                    with consumed_span(tracer, record.topic, record.headers):
                        await self.handle(record.value)
            if batch:
                await self.consumer.commit()

    async def handle(self, value: bytes) -> None:
        try:
            alert = alerts_pb2.AlertEvent.FromString(value)
        except Exception:
            log.exception("undecodable alert event skipped")
            return
        now = datetime.now(UTC)
        if await asyncio.to_thread(self.store.seen, alert.meta.event_id):
            return
        if alert.change != alerts_pb2.ALERT_CHANGE_OPENED:
            await asyncio.to_thread(self.store.record, alert.meta.event_id, now, None)
            return
        task_id = "task-" + deterministic_id("task", alert.alert_id)[:18]
        team = choose_team(alert, self.view.entities["person"])
        alert_time = from_timestamp(alert.meta.event_time)
        case = await self.casefile.open_case(
            task_id=task_id,
            alert_ids=[alert.alert_id],
            enterprise_id=alert.enterprise_id,
            outlet_id=alert.outlet_id,
            county=alert.county,
            team=[{k: m[k] for k in ("person_id", "name", "role")} for m in team],
            discovered_at=alert_time,
            summary=alert.explanation,
        )
        members = [dispatch_pb2.TeamMember(state="PROPOSED", **m) for m in team]
        steps = [("TASK_CREATED", "CREATED"), ("TEAM_PROPOSED", "ASSIGNING"), ("CASE_OPENED", "ASSIGNING")]
        for seq, (kind, status) in enumerate(steps, start=1):
            event = dispatch_pb2.DispatchEvent(
                meta=new_meta(
                    key=task_id,
                    event_time=now,
                    producer="dispatch",
                    event_id=deterministic_id("dispatch-event", task_id, str(seq)),
                    causation_id=alert.meta.event_id,
                ),
                task_id=task_id,
                kind=kind,
                status=status,
                actor="dispatch",
                alert_ids=[alert.alert_id],
                team=members,
                case_id=case.case_id,
                priority="P1" if alert.key_polluter else "P2",
                outlet_id=alert.outlet_id,
                enterprise_id=alert.enterprise_id,
                county=alert.county,
                seq=seq,
                alert_time=to_timestamp(alert_time),
            )
            await self.producer.send_and_wait(
                self.settings.topic(DISPATCH_EVENTS), value=event.SerializeToString(), key=task_id.encode()
            )
        task = TaskRow(
            task_id=task_id,
            first_alert_id=alert.alert_id,
            status="ASSIGNING",
            priority="P1" if alert.key_polluter else "P2",
            outlet_id=alert.outlet_id,
            enterprise_id=alert.enterprise_id,
            county=alert.county,
            team_json=json.dumps(team, ensure_ascii=False),
            case_id=case.case_id,
            alert_time=alert_time,
            created_at=now,
        )
        await asyncio.to_thread(self.store.record, alert.meta.event_id, now, task)
        log.info("task %s with team %s, case %s", task_id, [m["person_id"] for m in team], case.case_id)


async def main(settings: Settings) -> None:
    from dispatch.adapters.store import make_engine

    store = DispatchStore(make_engine(settings.dispatch_db))
    view = RegistryView(settings)
    await view.start(follow=True)
    casefile = CaseFileClient(settings.casefile_grpc)
    consumer = AlertConsumer(settings, store, casefile, view)
    await consumer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await consumer.run(stop)
    finally:
        await consumer.stop()
        await casefile.close()
        await view.stop()
