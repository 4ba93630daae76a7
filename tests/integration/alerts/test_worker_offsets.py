"""The alerts worker's committed offsets follow its processing after SIGKILLs (issue 13, item 3).

A real worker process on the real broker: it catches up, is SIGKILLed, a backlog is produced
while it is down, and a new worker starts on it; each time the group's committed offsets
must reach the partitions' ends. Before the fix a restarted worker lost records of its first
fetch between faust's consumer and the agent, faust never saw them acked, and the committed
offset of the partition stayed where it was (or crept one offset per commit) for the life of
the worker (docs/alerts.md, "Committed offsets after a restart").
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from alerts.domain.periods import CST
from liandong.settings import Settings
from liandong.topics import MONITORING_RECORDS

from .stations import gas_minutes, produce, publish_registry, registry_doc, start_worker
from .test_worker_kafka import stop, wait_ready

OUTLETS = 30
MINUTES_PER_LOAD = 1000  # 30,000 records a load (the size that froze 2 of 4 runs), spread by MN
KILLS = 2
# A restarted worker waits for the killed member's session to expire (faust: 60 s) before it
# is given the partitions; then it judges the backlog, and a lost record is read again after
# HOLE_REPAIR_S (30 s). Generous: the machine is shared.
CATCH_UP_S = 360


def committed_and_ends(settings: Settings) -> dict[int, tuple[int | None, int]]:
    """partition -> (the group's committed offset, the high-water mark)."""
    topic = settings.topic(MONITORING_RECORDS)
    group = f"{settings.topic_prefix}liandong-alerts"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    return {
        tp.partition: (committed[tp].offset if tp in committed else None, ends[tp]) for tp in tps
    }


async def wait_committed_to_end(
    settings: Settings, proc: subprocess.Popen[bytes], log: Path
) -> dict[int, tuple[int | None, int]]:
    offsets: dict[int, tuple[int | None, int]] = {}
    for _ in range(CATCH_UP_S // 2):
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        offsets = await asyncio.to_thread(committed_and_ends, settings)
        if all(committed == end for committed, end in offsets.values()):
            return offsets
        await asyncio.sleep(2)
    return offsets


def load(start: datetime) -> list:
    per_outlet = [
        gas_minutes(
            start,
            range(MINUTES_PER_LOAD),
            80.0,
            outlet_id=f"out-{i}" if i else "out-gas",
            mn=f"{i:022d}G1" if i else "3201150000000000000000G1",
        )
        for i in range(OUTLETS)
    ]
    # Minute-major, as a fleet of loggers sends; all "arrive" now (a back-fill).
    records = [per_outlet[i][m] for m in range(MINUTES_PER_LOAD) for i in range(OUTLETS)]
    now = datetime.now(UTC)
    for r in records:
        r.received_at.FromDatetime(now)
    return records


async def test_committed_offsets_reach_the_end_after_each_sigkill_and_restart(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    await publish_registry(settings, registry_doc(OUTLETS))
    log = tmp_path / "alerts.log"
    first = datetime.now(CST).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    loads = [load(first + timedelta(minutes=MINUTES_PER_LOAD * k)) for k in range(KILLS + 1)]
    proc = start_worker(settings, log, tick_s=2)
    try:
        await wait_ready(settings, proc, log)
        await produce(settings, loads[0])
        offsets = await wait_committed_to_end(settings, proc, log)
        assert all(c == e for c, e in offsets.values()), offsets
        for k in range(1, KILLS + 1):
            os.killpg(proc.pid, signal.SIGKILL)  # no shutdown, no commit, no flush
            proc.wait(10)
            # Restarted at once (as Kubernetes does), and the load goes on: the new worker
            # is given the partitions once the killed member's session has expired, with
            # this backlog to judge.
            proc = start_worker(settings, log, tick_s=2)
            await produce(settings, loads[k])
            offsets = await wait_committed_to_end(settings, proc, log)
            assert all(c == e for c, e in offsets.values()), (k, offsets)
    finally:
        stop(proc)
