"""A broker outage: nothing is acked while Kafka is away, nothing acked is lost, and the loggers'
re-sends are all acked once it is back.

The outage is real: a private single-node Kafka (free ports, its own state directory) started
and stopped by deploy/kafka/kafka.sh, never the shared broker the other tests use.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from pathlib import Path

from gateway.simulator.station import (
    LoggerConnection,
    SimLogger,
    SimReport,
    data_frame,
    write_synthetic_registry,
)
from liandong.events import deterministic_id
from liandong.settings import Settings
from liandong.topics import MONITORING_RECORDS, ensure_topics
from tests.integration.gateway.conftest import load_registry, read_topic, records, start_gateway
from tests.integration.gateway.test_sockets import T0
from tests.integration.private_kafka import PrivateKafka


def _event_id(logger: SimLogger, frame: bytes) -> str:
    """The record id the gateway derives (hash of MN and frame), recomputed independently."""
    return deterministic_id("record", logger.mn, hashlib.sha256(frame).hexdigest())


async def test_outage_nothing_acked_then_every_resend_acked_and_nothing_lost(
    private_kafka: PrivateKafka, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap=private_kafka.bootstrap, topic_prefix="outage.")
    await asyncio.to_thread(ensure_topics, settings)
    fleet = await load_registry(settings, write_synthetic_registry(tmp_path / "reg.yaml", 3))
    running = await start_gateway(settings, kafka_timeout=3.0)
    port = running.gateway.port or 0
    report = SimReport()
    # A logger gives up on a frame after 5 s without 9014, as in HJ 212 Table 1 (10 s there).
    stations = [LoggerConnection(lg, "127.0.0.1", port, report, timeout=5.0) for lg in fleet]
    frames = {
        lg.mn: [
            data_frame(lg, "2051", T0 + timedelta(minutes=m), {"w01018": 10.0 + m})
            for m in range(6)
        ]
        for lg in fleet
    }
    try:
        for station in stations:
            await station.open()

        async def send(station: LoggerConnection, part: slice, retries: int) -> list[bool]:
            station.retries = retries
            return [await station.send(qn, f) for qn, f in frames[station.logger.mn][part]]

        # Before: acked as usual.
        before = await asyncio.gather(*(send(s, slice(0, 2), 3) for s in stations))
        assert all(all(ok) for ok in before)

        await private_kafka.down()
        replies_before_outage = [len(s.received) for s in stations]
        during = await asyncio.gather(*(send(s, slice(2, 4), 0) for s in stations))
        assert during == [[False, False]] * len(stations)
        outage_qns = {qn for frames_ in frames.values() for qn, _ in frames_[2:4]}
        assert not outage_qns & {qn for _, qn in report.acked_frames}
        assert [len(s.received) for s in stations] == replies_before_outage  # no reply at all

        await private_kafka.up()
        # The loggers re-send what was not acked (same bytes), then carry on with new data.
        after = await asyncio.gather(*(send(s, slice(2, 6), 5) for s in stations))
        assert all(all(ok) for ok in after)
    finally:
        for station in stations:
            await station.close()
        await running.stop()

    every_frame = {_event_id(lg, f): (lg.mn, qn) for lg in fleet for qn, f in frames[lg.mn]}
    assert report.acked_frames == set(every_frame.values())
    messages = await read_topic(settings, MONITORING_RECORDS, 10_000, timeout=15)
    published = records(messages)
    # Each acked frame is there (re-sends may repeat a record, always under its one event id).
    assert {r.meta.event_id for r in published} == set(every_frame)
    for record in published:
        mn, qn = every_frame[record.meta.event_id]
        assert (record.mn, record.qn) == (mn, qn)
    assert len(published) >= len(every_frame)
