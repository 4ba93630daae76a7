"""HJ 212-shaped monitoring records for the alerts integration tests and benchmarks: frames
built with the gateway's codec, decoded and translated as the gateway does, then produced to
monitoring.records directly (no TCP), keyed by MN as the gateway keys them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from alerts.domain.periods import CST
from liandong.hj212.decoding import decode
from liandong.hj212.records import to_record
from liandong.registry.document import RegistryDocument
from liandong.registry.topics_io import publish
from liandong.settings import Settings
from liandong.topics import ALERTS_EVENTS, MONITORING_RECORDS
from liandong.v1 import alerts_pb2, records_pb2
from tests.unit.alerts.hj212 import upload_frame

NOX = "a21002"
O2 = "a19001"
GAS_MN = "3201150000000000000000G1"


def registry_doc(outlets: int = 1) -> dict[str, Any]:
    return {
        "version": 1,
        "enterprises": [{"id": "ent-1", "name": "Power", "county": "320115", "key_polluter": True}],
        "outlets": [
            {
                "id": f"out-{i}" if i else "out-gas",
                "enterprise": "ent-1",
                "name": "stack",
                "mn": f"{i:022d}G1" if i else GAS_MN,
                "password": "123456",
                "medium": "gas",
                "sector": "thermal-power",
                "standard": "GB 13223-2011",
                "reference_o2": 6.0,
                "averaging": "hourly",
                "lat": 31.93,
                "lon": 118.84,
                "limits": [
                    {
                        "factor": NOX,
                        "value": 50,
                        "unit": "mg/m3",
                        "kind": "ultra_low",
                        "clause": "NOx 50",
                        "effective_from": "2020-01-01",
                    }
                ],
            }
            for i in range(outlets)
        ],
        "marks": [],
        "roster": [],
    }


async def publish_registry(settings: Settings, doc: dict[str, Any]) -> None:
    raw = yaml.safe_dump(doc).encode()
    await publish(settings, RegistryDocument.model_validate(doc), raw)


def minute_frame(mn: str, at: datetime, values: dict[str, float], flag: str = "N") -> bytes:
    pairs: list[tuple[str, str]] = []
    for code, value in values.items():
        pairs += [(f"{code}-Avg", f"{value:.2f}"), (f"{code}-Flag", flag)]
    return upload_frame("2051", at, pairs, mn)


def field_info_frame(mn: str, at: datetime, pol_id: str, values: dict[str, str]) -> bytes:
    """A 3020 field-information upload: parameters (`i13xxx-Info`) of the factor `pol_id`."""
    pairs = [("PolId", pol_id), *((f"{code}-Info", value) for code, value in values.items())]
    return upload_frame("3020", at, pairs, mn)


def record_from_frame(
    frame: bytes, outlet_id: str, received: datetime
) -> records_pb2.MonitoringRecord:
    return to_record(
        decode(frame, lenient=True),
        frame,
        peer="test",
        received_at=received,
        station_tz=CST,
        outlet_id=outlet_id,
    )


def gas_minutes(
    start: datetime,
    minutes: Iterable[int],
    nox: float,
    o2: float = 7.5,
    outlet_id: str = "out-gas",
    mn: str = GAS_MN,
) -> list[records_pb2.MonitoringRecord]:
    """Minute records; NOx varies by +-0.3 so no constant-value run forms."""
    out = []
    for m in minutes:
        at = start + timedelta(minutes=m)
        values = {O2: o2 + (m % 3) * 0.1, NOX: nox + (m % 7) * 0.1}
        out.append(
            record_from_frame(minute_frame(mn, at, values), outlet_id, at + timedelta(seconds=60))
        )
    return out


async def produce(settings: Settings, records: Iterable[records_pb2.MonitoringRecord]) -> int:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    n = 0
    try:
        batch = []
        for r in records:
            batch.append(
                await producer.send(
                    settings.topic(MONITORING_RECORDS),
                    key=r.mn.encode(),
                    value=r.SerializeToString(),
                )
            )
            n += 1
        for fut in batch:
            await fut
    finally:
        await producer.stop()
    return n


async def produce_raw(settings: Settings, values: Iterable[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(settings.topic(MONITORING_RECORDS), key=key, value=value)
    finally:
        await producer.stop()


async def alert_events(settings: Settings) -> list[alerts_pb2.AlertEvent]:
    from liandong.demo import read_topic

    return [
        alerts_pb2.AlertEvent.FromString(v)
        for v in await read_topic(settings, settings.topic(ALERTS_EVENTS))
    ]


def worker_env(settings: Settings, tick_s: float = 1.0) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LIANDONG_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "LIANDONG_TOPIC_PREFIX": settings.topic_prefix,
            "LIANDONG_PARTITIONS": str(settings.partitions),
            "LIANDONG_ALERTS_WEB_PORT": str(settings.alerts_web_port),
            "LIANDONG_ALERTS_DATA": settings.alerts_data_dir,
            "LIANDONG_ALERTS_TICK_S": str(tick_s),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_worker(settings: Settings, log: Path, tick_s: float = 1.0) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, "-m", "liandong.cli", "run", "alerts"],
        env=worker_env(settings, tick_s),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
