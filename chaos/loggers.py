"""The simulated loggers of a chaos run, in a process of their own (the runner's event loop
must stay free to time recoveries).

Each logger keeps one TCP connection to its home gateway replica (loggers are split over the
two replicas, as a load balancer with sticky connections would) and, when that replica is
gone, re-connects to the other one. A frame waits for its 9014 and is re-sent, same bytes,
after ACK_TIMEOUT_S or a dropped connection, until it is acked or the run ends: a real logger
keeps re-sending what was not acked. Counted per logger at the logger: frames acked, the
record id of every acked frame, and how many times each frame was sent.

Frames per simulated minute: one real-time 2011 and the 2051, and the 2061 after minute 59
(the hourly judgement opens the exceedance episodes that become tasks and cases). Simulated
time starts at the full hour one to two hours back (never two hours late: no backfill
anomaly) and runs faster than the clock at a per-logger pace; a logger that reaches the
present waits for each minute to end, as a real one does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.e2e_stack import LoggerConnection  # the e2e bench's logger socket, waits for its 9014

ACK_TIMEOUT_S = 5.0
STATION_UTC_OFFSET = timedelta(hours=8)


def station_now() -> datetime:
    """Naive station time (UTC+8), as the loggers print DataTime."""
    return datetime.utcnow() + STATION_UTC_OFFSET


@dataclass
class Tally:
    acked: dict[str, int] = field(default_factory=dict)  # MN -> frames acked
    acked_ids: list[str] = field(default_factory=list)
    sends: dict[str, int] = field(default_factory=dict)  # record id -> sends, when > 1
    resent: int = 0
    unacked: int = 0
    failovers: int = 0


async def _frames(logger: Any, scenario: str, start: datetime, stop: asyncio.Event) -> Any:
    """(qn, frame) from `start` on, minute by minute, never ahead of the clock (the wait for
    a minute to end gives way to `stop`, so the loggers end when the run does)."""
    from gateway.simulator.hourly import summarise_hour
    from gateway.simulator.station import data_frame, minute_record, period_frame, scenario_values

    hour: list[Any] = []
    minute = 0
    while True:
        at = start + timedelta(minutes=minute)
        wait = (at + timedelta(minutes=1) - station_now()).total_seconds()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait + random.random()):
                    await stop.wait()
            if stop.is_set():
                return
        values = scenario_values(logger, scenario, minute)
        yield data_frame(logger, "2011", at, values)
        record = minute_record(values)
        yield period_frame(logger, "2051", at, record)
        hour.append(record)
        if at.minute == 59:
            yield period_frame(
                logger, "2061", at.replace(minute=0), summarise_hour(hour, logger.medium)
            )
            hour = []
        minute += 1


class _Logger:
    def __init__(self, spec: dict[str, Any], ports: list[int], tally: Tally) -> None:
        from gateway.simulator.station import SimLogger

        self.logger = SimLogger(**spec["logger"])
        self.scenario = spec["scenario"]
        self.interval = float(spec["interval"])
        self.ports = ports
        self.port_index = int(spec["home"])
        self.tally = tally
        self.conn: LoggerConnection | None = None

    async def _connect(self) -> LoggerConnection | None:
        loop = asyncio.get_running_loop()
        for _ in range(len(self.ports)):
            port = self.ports[self.port_index]
            try:
                _, conn = await loop.create_connection(LoggerConnection, "127.0.0.1", port)
                return conn
            except OSError:
                # the replica is down: the other one, as a load balancer would send us there
                self.port_index = (self.port_index + 1) % len(self.ports)
                self.tally.failovers += 1
        return None

    async def send(
        self, qn: str, frame: bytes, stop: asyncio.Event, grace_until: list[float]
    ) -> tuple[bool, int]:
        """(acked, times sent)."""
        loop = asyncio.get_running_loop()
        attempts = 0
        while not (stop.is_set() and time.monotonic() > grace_until[0]):
            if self.conn is None or self.conn.closed.done():
                self.conn = await self._connect()
                if self.conn is None:
                    await asyncio.sleep(0.5)
                    continue
            done: asyncio.Future[None] = loop.create_future()
            self.conn.waiting = (qn.encode(), done)
            assert self.conn.transport is not None
            self.conn.transport.write(frame)
            attempts += 1
            try:
                async with asyncio.timeout(ACK_TIMEOUT_S):
                    await done
            except (TimeoutError, ConnectionError):
                continue
            finally:
                if self.conn is not None:
                    self.conn.waiting = None
            return True, attempts
        return False, attempts

    async def run(
        self, start: datetime, stop: asyncio.Event, grace_until: list[float], progress: Any
    ) -> None:
        from liandong.hj212.records import record_event_id

        next_at = time.monotonic() + random.random() * self.interval
        async for qn, frame in _frames(self.logger, self.scenario, start, stop):
            delay = next_at - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()
            next_at = max(next_at + self.interval, time.monotonic())
            if stop.is_set():
                break
            record_id = record_event_id(self.logger.mn, frame)
            acked, sends = await self.send(qn, frame, stop, grace_until)
            self.tally.resent += max(sends - 1, 0)
            if acked:
                self.tally.acked[self.logger.mn] = self.tally.acked.get(self.logger.mn, 0) + 1
                self.tally.acked_ids.append(record_id)
                progress.value += 1
            else:
                self.tally.unacked += 1
            if sends > 1:
                self.tally.sends[record_id] = self.tally.sends.get(record_id, 0) + sends
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()


async def _main(spec: dict[str, Any], progress: Any, stop_flag: Any) -> Tally:
    tally = Tally()
    stop = asyncio.Event()
    grace_until = [float("inf")]
    start = datetime.fromisoformat(spec["start"])
    loggers = [_Logger(s, spec["ports"], tally) for s in spec["loggers"]]
    tasks = [asyncio.create_task(lg.run(start, stop, grace_until, progress)) for lg in loggers]
    while not stop_flag.is_set():
        await asyncio.sleep(0.2)
    # frames in flight get a last chance for their ack; no new frame starts
    grace_until[0] = time.monotonic() + ACK_TIMEOUT_S * 2
    stop.set()
    await asyncio.gather(*tasks)
    return tally


def loader_main(spec: dict[str, Any], progress: Any, stop_flag: Any, out: str) -> None:
    """Entry of the loader process: runs until `stop_flag` is set, writes its tally to `out`."""
    tally = asyncio.run(_main(spec, progress, stop_flag))
    Path(out).write_text(json.dumps(tally.__dict__))
