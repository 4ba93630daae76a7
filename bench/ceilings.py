"""Ceilings measured in the same run as a benchmark, and per-process measurements.

Not a benchmark module (bench/run.py skips it). A figure of Liandong means little on its own on
a machine of unknown speed or load; beside a ceiling measured minutes apart on the same machine
it says whether the machine or the program is slow:

* `python_reference()`: a fixed single-core Python loop (JSON round trip and SHA-256 of a
  minute-record-shaped dict), ops/s. bench/run.py measures it before every module.
* `aiokafka_loop()`: a plain aiokafka producer (acks=all, idempotent) sends N records of a given
  size, then a consumer reads them back: the Python-client ceiling on this broker.
* `kafka_producer_perf()` / `kafka_consumer_perf()`: Kafka's own
  org.apache.kafka.tools.ProducerPerformance / ConsumerPerformance (JVM clients) from the jars
  `make install` fetches (deploy/kafka/pom.xml lists kafka-tools).

And `cpu_seconds(pid)` / `peak_rss_mib(pid)` read /proc (user + system CPU, VmHWM).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KAFKA_LIB = ROOT / ".cache" / "kafka" / "lib"

_SAMPLE = {
    "mn": "3201150000000000000000A1",
    "cn": "2051",
    "data_time": "20240501100000",
    "factors": {
        code: {"min": 10.25 + i, "avg": 11.5 + i, "max": 12.75 + i, "flag": "N"}
        for i, code in enumerate(("a21026", "a21002", "a34013", "a19001", "a00000", "a01012"))
    },
}


def python_reference(seconds: float = 0.4) -> float:
    """Ops/s of a fixed pure-Python loop on one core (machine speed and load right now)."""
    done = 0
    end = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < end:
        for _ in range(200):
            text = json.dumps(_SAMPLE, sort_keys=True)
            hashlib.sha256(text.encode()).digest()
            json.loads(text)
        done += 200
    return done / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident set (VmHWM) of a live process, MiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def children(pid: int) -> list[int]:
    """Direct children of a process (a service started through a shell or `liandong run`)."""
    out: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
    return out


async def aiokafka_loop(bootstrap: str, topic: str, payloads: list[bytes]) -> dict[str, float]:
    """Produce every payload (acks=all, idempotent, keyed round-robin over 3 partitions'
    worth of keys), then consume them all back; rates in records/s."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        started = time.perf_counter()
        pending = []
        for n, value in enumerate(payloads):
            pending.append(await producer.send(topic, key=b"k%d" % (n % 1000), value=value))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        produced = time.perf_counter() - started
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        started = time.perf_counter()
        seen = 0
        deadline = time.monotonic() + 300
        while seen < len(payloads) and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
                seen += len(batch)
        consumed = time.perf_counter() - started
    finally:
        await consumer.stop()
    if seen < len(payloads):
        raise RuntimeError(f"aiokafka loop read back {seen} of {len(payloads)} records")
    n = len(payloads)
    return {
        "produce_per_s": n / produced,
        "consume_per_s": n / consumed,
        "loop_per_s": n / (produced + consumed),
    }


def _java(main: str, args: list[str], timeout: float) -> str:
    if not any(KAFKA_LIB.glob("kafka-tools-[0-9]*.jar")):
        raise RuntimeError(f"kafka-tools jar missing in {KAFKA_LIB}: run make install")
    done = subprocess.run(
        ["java", "-Xmx256m", "-cp", f"{KAFKA_LIB}/*", main, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{main} exited {done.returncode}: {done.stderr[-1500:]}")
    return done.stdout


def kafka_producer_perf(
    bootstrap: str, topic: str, records: int, size: int, timeout: float = 300
) -> dict[str, Any]:
    """ProducerPerformance at full speed, acks=all, idempotent: records/s and latencies."""
    out = _java(
        "org.apache.kafka.tools.ProducerPerformance",
        [
            "--topic", topic, "--num-records", str(records), "--record-size", str(size),
            "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}",
            "acks=all", "enable.idempotence=true", "linger.ms=5",
        ],
        timeout,
    )  # fmt: skip
    # last line: "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency,
    # p50 ms 50th, p95 ms 95th, p99 ms 99th, p999 ms 99.9th."
    last = [line for line in out.splitlines() if "records sent" in line][-1]
    numbers = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", last)]
    return {
        "records_per_s": numbers[1],
        "avg_latency_ms": numbers[3],
        "p50_ms": numbers[5],
        "p99_ms": numbers[7],
    }


def kafka_consumer_perf(bootstrap: str, topic: str, records: int, timeout: float = 300) -> float:
    """ConsumerPerformance reading `records` from the start: records/s (fetch time only)."""
    out = _java(
        "org.apache.kafka.tools.ConsumerPerformance",
        ["--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(records),
         "--timeout", "60000", "--hide-header"],
        timeout,
    )  # fmt: skip
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    row = [line for line in out.splitlines() if line.count(",") >= 9][-1].split(",")
    fetch_rate = float(row[9])
    return fetch_rate if fetch_rate > 0 else float(row[5])


class GroupProgress:
    """A consumer group's committed offsets against the end offsets of a topic, polled with
    one admin client and one consumer kept open (a new pair per poll is load of its own on a
    busy machine). A transient coordinator error (the group being loaded, the coordinator
    moving) is retried, not raised: a benchmark must not fail on what Kafka retries itself."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, group: str) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        self.group = group
        self.parts = [TopicPartition(topic, p) for p in range(partitions)]
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)

    async def __aenter__(self) -> GroupProgress:
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def read(self, attempts: int = 30) -> tuple[int, int]:
        """(sum of committed offsets, sum of end offsets)."""
        from aiokafka.errors import KafkaError

        for attempt in range(attempts):
            try:
                offsets = await self.admin.list_consumer_group_offsets(self.group)
                ends = await self.consumer.end_offsets(self.parts)
            except KafkaError:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(1)
                continue
            committed = sum(max(offsets[tp].offset, 0) for tp in self.parts if tp in offsets)
            return committed, sum(ends.values())
        raise AssertionError("unreachable")
