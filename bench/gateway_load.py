"""Benchmark: the gateway under 500 concurrent simulated loggers (``make bench``).

The gateway runs in a subprocess (as in production); the loggers run here, each sending minute
frames (2051, Flag=5) and waiting for the 9014 before the next, re-sending what is not acked.
Throughput is acked frames per second of wall time; afterwards every record is read back from
Kafka and matched to the acked QNs (zero loss = every acked QN is in the topic).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer

from liandong.registry.document import RegistryDocument
from liandong.registry.topics_io import publish
from liandong.settings import Settings
from liandong.stack import delete_prefixed_topics
from liandong.topics import MONITORING_RECORDS, ensure_topics
from liandong.v1 import records_pb2

LOGGERS = int(os.environ.get("LIANDONG_BENCH_LOGGERS", "500"))
FRAMES_PER_LOGGER = int(os.environ.get("LIANDONG_BENCH_FRAMES", "30"))
GATEWAYS = int(os.environ.get("LIANDONG_BENCH_GATEWAYS", "2"))
"""Gateway processes sharing the port (SO_REUSEPORT), as one would run one per core."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.3)
    raise RuntimeError("gateway did not start")


async def _count_records(settings: Settings, want: int, timeout: float = 60) -> set[str]:
    consumer = AIOKafkaConsumer(
        settings.topic(MONITORING_RECORDS),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    qns: set[str] = set()
    try:
        deadline = time.monotonic() + timeout
        while len(qns) < want and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for message in messages:
                    qns.add(records_pb2.MonitoringRecord.FromString(message.value).qn)
    finally:
        await consumer.stop()
    return qns


async def _load(settings: Settings, registry: Path, port: int) -> dict[str, Any]:
    from gateway.simulator.station import (
        LoggerConnection,
        SimReport,
        data_frame,
        loggers_from_registry,
        scenario_values,
    )

    fleet = loggers_from_registry(registry)
    report = SimReport()
    start = datetime(2024, 5, 1, 8, 0)
    plans = [
        [
            data_frame(
                logger, "2051", start + timedelta(minutes=m), scenario_values(logger, "normal", m)
            )
            for m in range(FRAMES_PER_LOGGER)
        ]
        for logger in fleet
    ]
    connections = [LoggerConnection(lg, "127.0.0.1", port, report, timeout=15) for lg in fleet]
    await asyncio.gather(*(c.open() for c in connections))

    async def one(connection: LoggerConnection, frames: list[tuple[str, bytes]]) -> None:
        for qn, frame in frames:
            await connection.send(qn, frame)

    began = time.perf_counter()
    await asyncio.gather(*(one(c, f) for c, f in zip(connections, plans, strict=True)))
    elapsed = time.perf_counter() - began
    await asyncio.gather(*(c.close() for c in connections))
    acked = {qn for plan in plans for qn, _ in plan} - set(report.unacked)
    in_kafka = await _count_records(settings, len(acked))
    return {
        "elapsed": elapsed,
        "acked": report.acked,
        "sent": report.sent,
        "unacked": len(report.unacked),
        "lost": len(acked - in_kafka),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_gateway_load() -> list[dict[str, Any]]:
    settings = Settings(topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
    ensure_topics(settings)
    port = _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    from gateway.simulator.station import write_synthetic_registry

    registry = write_synthetic_registry(tmp / "registry.yaml", LOGGERS)
    raw = registry.read_bytes()
    asyncio.run(publish(settings, RegistryDocument.model_validate(yaml.safe_load(raw)), raw))
    procs = []
    for n in range(GATEWAYS):
        env = os.environ | {
            "LIANDONG_TOPIC_PREFIX": settings.topic_prefix,
            "LIANDONG_GATEWAY_PORT": str(port),
            "LIANDONG_GATEWAY_REPLICA": f"bench-{n}",
            "LIANDONG_GATEWAY_REUSE_PORT": "1",
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from gateway.bootstrap import run; from liandong.settings import load; "
                    "run(load())",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(tmp / f"gateway-{n}.log", "w"),  # noqa: SIM115
            )
        )
    try:
        asyncio.run(_wait_port(port))
        time.sleep(2.0)  # every process listening (the port answers once the first does)
        cpu_before = sum(_cpu_seconds(p.pid) for p in procs)
        result = asyncio.run(_load(settings, registry, port))
        # CPU of the gateway processes per acked frame: less sensitive than the rate to other
        # work on the machine.
        cpu = sum(_cpu_seconds(p.pid) for p in procs) - cpu_before
        result["gateway_cpu_us_per_frame"] = round(cpu / max(result["acked"], 1) * 1e6, 1)
        result["gateway_processes"] = GATEWAYS
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        delete_prefixed_topics(settings)
    rate = result["acked"] / result["elapsed"]
    command = "make bench (python -m bench.run gateway_load)"
    return [
        {
            "name": f"gateway_acked_frames_{LOGGERS}_loggers",
            "value": round(rate),
            "unit": "frames/s",
            "target": 5000,
            "command": command,
            "detail": result,
        },
        {
            "name": "gateway_frames_lost",
            "value": result["lost"] + result["unacked"],
            "unit": "frames",
            "target": 0,
            "lower_is_better": True,
            "command": command,
        },
    ]


def run() -> list[dict[str, Any]]:
    return bench_gateway_load()


if __name__ == "__main__":
    for record in run():
        print(json.dumps(record))
