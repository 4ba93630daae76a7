"""Benchmark: valid loggers' ack latency while hostile peers flood the gateway with '#'
(issue 12, item 8; ``make bench``).

One gateway process (real Kafka). Four flooders each write 64 KiB/s of '#' (4 KiB every
1/16 s), reconnecting whenever the gateway drops them past its garbage budget. Meanwhile 50
valid loggers each send a minute frame, wait for its 9014, pause 0.2 s and repeat. The figure
is the p99 of the time from a frame's send to its ack; target 100 ms."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.gateway_load import _free_port, _wait_port
from liandong.registry.document import RegistryDocument
from liandong.registry.topics_io import publish
from liandong.settings import Settings
from liandong.stack import delete_prefixed_topics
from liandong.topics import ensure_topics

LOGGERS = 50
FLOODERS = 4
FLOOD_BYTES_PER_S = 64 * 1024
SECONDS = float(os.environ.get("LIANDONG_BENCH_FLOOD_SECONDS", "15"))
TARGET_MS = 100.0


async def _flood(port: int, stop: asyncio.Event, sent: list[int]) -> None:
    chunk = b"#" * 4096
    every = len(chunk) / FLOOD_BYTES_PER_S
    while not stop.is_set():
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        try:
            while not stop.is_set():
                writer.write(chunk)
                await writer.drain()
                sent[0] += len(chunk)
                await asyncio.sleep(every)
        except (ConnectionError, OSError):
            pass  # dropped past the garbage budget: come back
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def _measure(registry: Path, port: int) -> dict[str, Any]:
    from gateway.simulator.station import (
        LoggerConnection,
        SimReport,
        data_frame,
        loggers_from_registry,
        scenario_values,
    )

    fleet = loggers_from_registry(registry)[:LOGGERS]
    report = SimReport()
    connections = [LoggerConnection(lg, "127.0.0.1", port, report, timeout=15) for lg in fleet]
    await asyncio.gather(*(c.open() for c in connections))
    stop = asyncio.Event()
    flooded = [0]
    flooders = [asyncio.create_task(_flood(port, stop, flooded)) for _ in range(FLOODERS)]
    await asyncio.sleep(1.0)  # the floods are under way before the first measured frame
    latencies: list[float] = []
    start = datetime(2024, 5, 1, 8, 0)

    async def one(n: int, connection: LoggerConnection) -> None:
        logger = fleet[n]
        deadline = time.monotonic() + SECONDS
        minute = 0
        while time.monotonic() < deadline:
            at = start + timedelta(minutes=minute)
            qn, frame = data_frame(logger, "2051", at, scenario_values(logger, "normal", minute))
            began = time.perf_counter()
            await connection.send(qn, frame)
            latencies.append(time.perf_counter() - began)
            minute += 1
            await asyncio.sleep(0.2)

    began = time.perf_counter()
    await asyncio.gather(*(one(n, c) for n, c in enumerate(connections)))
    elapsed = time.perf_counter() - began
    stop.set()
    for task in flooders:
        task.cancel()
    await asyncio.gather(*flooders, return_exceptions=True)
    await asyncio.gather(*(c.close() for c in connections))
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "frames": len(latencies),
        "unacked": len(report.unacked),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "flood_bytes_per_s": round(flooded[0] / elapsed),
    }


def bench_gateway_flood() -> list[dict[str, Any]]:
    from gateway.simulator.station import write_synthetic_registry

    settings = Settings(topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
    ensure_topics(settings)
    port = _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-flood-"))
    registry = write_synthetic_registry(tmp / "registry.yaml", LOGGERS)
    raw = registry.read_bytes()
    asyncio.run(publish(settings, RegistryDocument.model_validate(yaml.safe_load(raw)), raw))
    env = os.environ | {
        "LIANDONG_TOPIC_PREFIX": settings.topic_prefix,
        "LIANDONG_GATEWAY_PORT": str(port),
        "LIANDONG_GATEWAY_REPLICA": "bench-flood",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from gateway.bootstrap import run; from liandong.settings import load; run(load())",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "gateway.log", "w"),  # noqa: SIM115
    )
    try:
        asyncio.run(_wait_port(port))
        time.sleep(1.0)
        result = asyncio.run(_measure(registry, port))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        delete_prefixed_topics(settings)
    return [
        {
            "name": f"gateway ack p99, {LOGGERS} loggers during {FLOODERS} x 64 KiB/s '#' floods",
            "value": result["p99_ms"],
            "unit": "ms",
            "target": TARGET_MS,
            "command": "make bench (python -m bench.run gateway_flood)",
            "detail": result,
        }
    ]


def run() -> list[dict[str, Any]]:
    return bench_gateway_flood()
