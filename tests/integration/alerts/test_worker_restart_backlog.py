"""A restarted alerts worker that is behind on its partitions closes no hour on the wall clock
before it has caught up (issue 13, item 4, with a real restart).

Why: hours long past their wall-clock timeout, from loggers quiet for more than a minute (the
records were stamped on arrival while the worker was down), are closed by the timer as soon as
it runs. A worker judging a backlog has the rest of such an hour still on the topic; closing it
then opened HOUR_INCOMPLETE / HOUR_MISSING for minutes that are there. The backlog gate
(alerts/entrypoints/backlog.py) holds the timer's hour closing until the worker has judged its
partitions to the ends it read recently.

The backlog starts with eight hours of other outlets, so the rest of the partial hour is still
unread at the new worker's first ticks: with the gate off (`caught_up` always true) this test
fails with HOUR_INCOMPLETE for that hour. Before, the partial hour's minutes were first in the
backlog and usually judged before the first tick, so the test passed with the gate off too.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.domain.periods import CST
from liandong.settings import Settings

from .stations import alert_events, gas_minutes, produce, publish_registry, registry_doc
from .stations import start_worker as start
from .test_worker_kafka import stop, wait_ready
from .test_worker_offsets import wait_committed_to_end

OUTLETS = 30  # with the partial hour in the state the first worker leaves
BUSY = range(OUTLETS, 2 * OUTLETS)  # outlets whose hours fill the front of the backlog
HOURS = 8  # of complete minute data per outlet in the backlog: 30,420 records in all
HOUR_KINDS = {"HOUR_INCOMPLETE", "HOUR_MISSING"}


def minutes(start: datetime, rng: range, outlets: range = range(OUTLETS)) -> list:
    per_outlet = [
        gas_minutes(
            start,
            rng,
            30.0,  # under the limit: only hour findings could come out of these hours
            outlet_id=f"out-{i}" if i else "out-gas",
            mn=f"{i:022d}G1" if i else "3201150000000000000000G1",
        )
        for i in outlets
    ]
    records = [r for m in range(len(rng)) for r in (o[m] for o in per_outlet)]
    now = datetime.now(UTC)
    for r in records:
        r.received_at.FromDatetime(now)  # arrived now: a back-fill, as after an outage
    return records


async def test_a_restarted_worker_behind_its_backlog_closes_no_hour_early(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    await publish_registry(settings, registry_doc(2 * OUTLETS))
    log = tmp_path / "alerts.log"
    # Long past: every hour's wall-clock timeout has passed when it is judged.
    start_hour = datetime.now(CST).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    proc = start(settings, log, tick_s=1)
    try:
        await wait_ready(settings, proc, log)
        # The first worker judges the first hour and the minutes that close it by watermark.
        await produce(settings, minutes(start_hour, range(66)))
        await wait_committed_to_end(settings, proc, log)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # While it is down: complete hours of other outlets, then the following hours, complete,
        # minute by minute, of the first outlets.
        await produce(settings, minutes(start_hour, range(60 * (HOURS + 1)), BUSY))
        await produce(settings, minutes(start_hour, range(66, 60 * (HOURS + 1))))
        proc = start(settings, log, tick_s=1)
        offsets = await wait_committed_to_end(settings, proc, log)
        assert all(c == e for c, e in offsets.values()), offsets
    finally:
        stop(proc)
    events = await alert_events(settings)
    backlog_end = (start_hour + timedelta(hours=HOURS + 1)).astimezone(UTC)
    early = [
        (e.outlet_id, e.kind, e.window_start.ToDatetime(tzinfo=UTC).isoformat())
        for e in events
        if e.kind in HOUR_KINDS and e.window_start.ToDatetime(tzinfo=UTC) < backlog_end
    ]
    # Every hour in the backlog is complete on the topic: none may be judged incomplete or
    # missing (hours after the data, where the loggers fell silent, may be).
    assert not early, early[:10]
    assert "hours not closed: behind on partitions" in log.read_text()
