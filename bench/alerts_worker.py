"""Benchmark of the alerts faust worker on the real broker (`make bench` calls run()).

1. Throughput: N HJ 212-shaped minute records (gas outlets, NOx + O2) are produced to an
   isolated topic prefix first; then one worker process starts and the time from its first
   committed offset to the group's committed offsets reaching the end gives records/s
   (offsets are committed only after the batch's state and alerts are written).
2. Latency: records produced at half the target rate to a running worker; each hour that
   closes opens an exceedance. Latency = Kafka timestamp of the alert event minus that of
   the record that completed the condition (its causation id); p99 reported.
3. State: encoded table size (what the changelog and the store hold) for 10,000 outlets after
   an hour of minute data, and the worker's peak RSS after the throughput run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerts.domain.periods import CST  # noqa: E402
from alerts.entrypoints.judging import encode_state  # noqa: E402
from liandong.settings import Settings  # noqa: E402
from liandong.stack import delete_prefixed_topics, free_port, group_stable  # noqa: E402
from liandong.topics import ALERTS_EVENTS, MONITORING_RECORDS, ensure_topics  # noqa: E402
from tests.integration.alerts.stations import (  # noqa: E402
    gas_minutes,
    publish_registry,
    registry_doc,
    start_worker,
)

TARGET_RATE = 5000


def _settings() -> Settings:
    tmp = tempfile.mkdtemp(prefix="alerts-bench-")
    return Settings(
        topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
        alerts_web_port=free_port(),
        alerts_data_dir=tmp,
    )


def _records(outlets: int, minutes: int, start: datetime) -> list[Any]:
    """Minute-major order, as a fleet of loggers sends: every outlet's minute m, then m + 1."""
    per_outlet = [
        gas_minutes(
            start,
            range(minutes),
            80.0,
            outlet_id=f"out-{i}" if i else "out-gas",
            mn=f"{i:022d}G1" if i else "3201150000000000000000G1",
        )
        for i in range(outlets)
    ]
    now = datetime.now(UTC)
    out = []
    for m in range(minutes):
        for recs in per_outlet:
            r = recs[m]
            r.received_at.FromDatetime(now)
            out.append(r)
    return out


async def _committed_and_end(settings: Settings, group: str) -> tuple[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    topic = settings.topic(MONITORING_RECORDS)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await consumer.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
        ends = await consumer.end_offsets(parts)
        committed = sum(
            offsets[tp].offset for tp in parts if tp in offsets and offsets[tp].offset > 0
        )
        return committed, sum(ends.values())
    finally:
        await consumer.stop()
        await admin.close()


async def _produce(settings: Settings, records: list[Any], rate: float | None) -> dict[str, float]:
    """Produce records (paced at `rate`/s if given); returns event id -> send time (epoch s)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sent: dict[str, float] = {}
    topic = settings.topic(MONITORING_RECORDS)
    try:
        begin = time.monotonic()
        futures = []
        for n, r in enumerate(records):
            if rate is not None and n % 50 == 0:
                ahead = n / rate - (time.monotonic() - begin)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            futures.append(
                await producer.send(topic, key=r.mn.encode(), value=r.SerializeToString())
            )
            sent[r.meta.event_id] = time.time()
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures = []
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _peak_rss_mib(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


async def _throughput(outlets: int = 500, minutes: int = 66) -> tuple[float, float | None]:
    settings = _settings()
    ensure_topics(settings)
    log = Path(settings.alerts_data_dir) / "worker.log"
    try:
        await publish_registry(settings, registry_doc(outlets))
        start = datetime.now(CST).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
        records = _records(outlets, minutes, start)
        await _produce(settings, records, None)
        group = f"{settings.topic_prefix}liandong-alerts"
        proc = start_worker(settings, log, tick_s=5)
        try:
            first: tuple[float, int] | None = None
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(log.read_text(errors="replace")[-3000:])
                committed, end = await _committed_and_end(settings, group)
                now = time.monotonic()
                if first is None and committed > 0:
                    first = (now, committed)
                if first is not None and committed >= end:
                    rss = _peak_rss_mib(proc.pid)
                    done = committed - first[1]
                    return done / max(now - first[0], 1e-9), rss
                await asyncio.sleep(0.1)
            raise TimeoutError("worker did not catch up")
        finally:
            _stop(proc)
    finally:
        delete_prefixed_topics(settings)


async def _latency(
    rate: float, outlets: int = 400, minutes: int = 66
) -> tuple[float, int, float, float]:
    """p99, samples, p50 and max of the condition-to-alert latency, in seconds."""
    from liandong.demo import read_topic
    from liandong.v1 import alerts_pb2

    settings = _settings()
    ensure_topics(settings)
    log = Path(settings.alerts_data_dir) / "worker.log"
    try:
        await publish_registry(settings, registry_doc(outlets))
        proc = start_worker(settings, log, tick_s=5)
        try:
            group = f"{settings.topic_prefix}liandong-alerts"
            for _ in range(240):
                if await asyncio.to_thread(group_stable, settings, group):
                    break
                await asyncio.sleep(0.5)
            start = datetime.now(CST).replace(minute=0, second=0, microsecond=0)
            records = _records(outlets, minutes, start - timedelta(hours=2))
            sent = await _produce(settings, records, rate)
            await asyncio.sleep(5)
            from aiokafka import AIOKafkaConsumer, TopicPartition

            consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
            await consumer.start()
            latencies: list[float] = []
            try:
                topic = settings.topic(ALERTS_EVENTS)
                parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
                consumer.assign(parts)
                await consumer.seek_to_beginning(*parts)
                ends = await consumer.end_offsets(parts)
                while any([await consumer.position(tp) < ends[tp] for tp in parts]):
                    batch = await consumer.getmany(timeout_ms=500)
                    for msgs in batch.values():
                        for msg in msgs:
                            ev = alerts_pb2.AlertEvent.FromString(msg.value)
                            cause = sent.get(ev.meta.causation_id)
                            if ev.kind == "EXCEEDANCE" and cause is not None:
                                latencies.append(msg.timestamp / 1000 - cause)
            finally:
                await consumer.stop()
            _ = read_topic
        finally:
            _stop(proc)
    finally:
        delete_prefixed_topics(settings)
    latencies.sort()
    if not latencies:
        raise RuntimeError("no exceedance observed")
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return p99, len(latencies), latencies[len(latencies) // 2], latencies[-1]


def _state_mib(outlets: int = 10_000) -> float:
    """Encoded (table/changelog) state of 10,000 outlets after 66 minutes of minute data."""
    sys.path.insert(0, str(ROOT / "bench"))
    from alerts_judge import _readings, _registry

    from alerts.domain.judge import Judge

    judge = Judge(_registry(outlets))
    for r in _readings(outlets, 66):
        judge.on_reading(r, r.received_at)
    total = sum(len(encode_state(0, st.to_dict())) for st in judge.states.values())
    return total / 2**20


def run() -> list[dict[str, Any]]:
    rate, rss = asyncio.run(_throughput())
    p99, n, p50, worst = asyncio.run(_latency(TARGET_RATE / 2))
    state = _state_mib()
    _ = resource
    return [
        {
            "name": "alerts_worker_minute_records",
            "value": round(rate),
            "unit": "records/s",
            "target": TARGET_RATE,
            "command": "make bench",
        },
        {
            "name": f"alerts_worker_p99_condition_to_alert_at_{TARGET_RATE // 2}_per_s",
            "value": round(p99, 3),
            "unit": "s",
            "target": 1.0,
            "command": "make bench",
            "samples": n,
            "p50": round(p50, 3),
            "max": round(worst, 3),
        },
        {
            "name": "alerts_worker_table_state_10k_outlets",
            "value": round(state, 1),
            "unit": "MiB",
            "target": None,
            "command": "make bench",
        },
        {
            "name": "alerts_worker_peak_rss_after_throughput_run",
            "value": round(rss, 1) if rss is not None else None,
            "unit": "MiB",
            "target": None,
            "command": "make bench",
        },
    ]


if __name__ == "__main__":
    for item in run():
        print(item)
