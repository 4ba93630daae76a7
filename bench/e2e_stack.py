"""Benchmark: the whole chain as it runs, loggers over TCP -> gateway -> Kafka -> alerts ->
alerts.events -> dispatch -> casefile, every part a real process on this machine.

Setup. A broker of the bench's own (deploy/kafka/kafka.sh on ports 19292/19293, state in
.state/bench-kafka-19292, stopped at the end; `LIANDONG_BENCH_E2E_BROKER=shared` uses the shared
127.0.0.1:19092 instead, whose CPU then includes everyone's work). Per configuration a fresh
stack as `make up` starts it (liandong.stack.Stack: casefile, dispatch, alerts, gateway, each
`python -m liandong.cli run <service>`) on its own topic prefix, with a synthetic registry
(gateway.simulator.station.synthetic_registry) plus a roster so alarms become cases.

Load. Simulated loggers in a separate process, one TCP connection each, every frame waiting for
its 9014 (re-sent after 10 s, 3 times), as loggers do. Per simulated minute a logger sends three
real-time frames (2011, every 20 s), one minute frame (2051) and at each full hour an hourly
frame (2061), values from the simulator's scenarios: a few percent of the gas outlets run the
`exceedance` scenario (first limited factor at 1.6x its limit: PREWARNING on real-time data,
hourly EXCEEDANCE when the hour closes, a joint inspection and a case). Simulated time starts
at the previous full hour (one to two hours back) and runs faster than the clock, so no frame
is in the future and none is two hours late (no backfill or timestamp anomalies); each
configuration's loggers start afresh on a fresh prefix.

Measured (configuration 1 gateway + 1 alerts worker, then 2 + 1 and 2 + 2; 3 partitions):
* sustained rate: loggers send as fast as the acks come for LIANDONG_BENCH_E2E_SECONDS (120);
  over the window, frames acked by the gateway per second and records judged by alerts per
  second (its committed offsets on monitoring.records, committed only after the batch's
  alerts are acked and its state written); the sustained rate is the smaller of the two, with
  the consumer lag sampled every 2 s (max and end of window) and the time the lag took to
  drain after the load stopped;
* at half that rate (first configuration, paced, other loggers, on a fresh stack of the same
  configuration, so the main phase's outlets, all silent at once, do not close their hours in
  it): latency from a frame's send to the alert event it caused (causation id = the record's
  event id; Kafka timestamp of the event), p50/p99, and alarm -> case: Kafka timestamp of
  dispatch's CASE_OPENED minus that of the alert that created the task;
* CPU per frame per stage: /proc/<pid>/stat user + system of each gateway, alerts, dispatch,
  casefile, broker and loader process over the window, divided by the frames acked;
* each process's peak RSS (VmHWM).
Ceilings in the same run, on the same broker, with records of the mean size the gateway wrote:
Kafka's ProducerPerformance and ConsumerPerformance (acks=all, idempotence) and a plain aiokafka
produce-then-consume loop of the gateway's own records; the sustained rate is given as a ratio
to each.

`LIANDONG_BENCH_SHORT=1` runs a short version (20 s windows, fewer loggers) for development;
`make bench` runs the full one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ceilings import (  # noqa: E402
    GroupProgress,
    aiokafka_loop,
    cpu_seconds,
    kafka_consumer_perf,
    kafka_producer_perf,
    peak_rss_mib,
)
from gateway.entrypoints.timers import AckDeadlines  # noqa: E402
from liandong.registry.document import RegistryDocument  # noqa: E402
from liandong.registry.topics_io import publish  # noqa: E402
from liandong.settings import Settings  # noqa: E402
from liandong.stack import Stack, delete_prefixed_topics, free_port, group_stable  # noqa: E402
from liandong.topics import (  # noqa: E402
    ALERTS_EVENTS,
    DISPATCH_EVENTS,
    MONITORING_RECORDS,
    ensure_topics,
)

SHORT = os.environ.get("LIANDONG_BENCH_SHORT") == "1"
WINDOW_S = float(os.environ.get("LIANDONG_BENCH_E2E_SECONDS", "20" if SHORT else "120"))
LATENCY_S = float(os.environ.get("LIANDONG_BENCH_E2E_LATENCY_SECONDS", "20" if SHORT else "60"))
LOGGERS = int(os.environ.get("LIANDONG_BENCH_E2E_LOGGERS", "600" if SHORT else "3000"))
# Closed loop: at most this many frames awaiting their 9014 at once (connections stay open).
# Without a cap, 3,000 loggers on a stack acking 400/s (a busy machine) wait 7.5 s per frame,
# a third of the frames pass the loggers' 10 s and are re-sent, and the run measures its own
# re-sends. 1,000 in flight still allows 10,000/s at a 0.1 s round trip.
IN_FLIGHT = int(os.environ.get("LIANDONG_BENCH_E2E_IN_FLIGHT", "1000"))
ACK_WAIT_S = 10.0  # a logger re-sends a frame whose 9014 has not come in this long
OVER_SHARE = 0.03  # share of the loggers over a limit
CONFIGS = [(1, 1), (2, 1), (2, 2)]  # (gateway processes, alerts workers)
if os.environ.get("LIANDONG_BENCH_E2E_CONFIGS"):
    CONFIGS = [
        (int(a), int(b))
        for a, b in (c.split("x") for c in os.environ["LIANDONG_BENCH_E2E_CONFIGS"].split(","))
    ]
BROKER_PORT, CONTROLLER_PORT = 19292, 19293  # outside the ephemeral range, not the shared one
TARGET_RATE = 5000
STATION_UTC_OFFSET = timedelta(hours=8)


# -- the loggers (their own process) -----------------------------------------------------------


def _frames(logger: Any, scenario: str, start: datetime) -> Iterator[tuple[str, bytes]]:
    """A logger's uploads from `start` (naive station time, a full hour) on, minute by minute:
    three 2011 real-time frames, the 2051, and the 2061 of the hour after its minute 59; it
    stops before a minute that has not ended yet (a logger never sends the future)."""
    from gateway.simulator.hourly import summarise_hour
    from gateway.simulator.station import data_frame, minute_record, period_frame

    hour: list[Any] = []
    minute = 0
    while True:
        at = start + timedelta(minutes=minute)
        if at + timedelta(minutes=1) > datetime.utcnow() + STATION_UTC_OFFSET:
            return
        values = scenario_values_cached(logger, scenario, minute)
        for second in (0, 20, 40):
            yield data_frame(logger, "2011", at + timedelta(seconds=second), values)
        record = minute_record(values)
        yield period_frame(logger, "2051", at, record)
        hour.append(record)
        if at.minute == 59:
            summary = summarise_hour(hour, logger.medium)
            yield period_frame(logger, "2061", at.replace(minute=0), summary)
            hour = []
        minute += 1


def scenario_values_cached(logger: Any, scenario: str, minute: int) -> dict[str, float]:
    from gateway.simulator.station import scenario_values

    return scenario_values(logger, scenario, minute)


@dataclass
class LoadResult:
    acked: int = 0
    sent: int = 0
    unacked: int = 0
    resent: int = 0
    exhausted: int = 0  # loggers that reached the present before the phase ended
    sent_at: dict[str, float] = field(default_factory=dict)  # record event id -> send time


class LoggerConnection(asyncio.Protocol):
    """A logger's socket: writes a frame, wakes the sender when the 9014 with its QN is read
    (only the QN is looked at: the loader must cost little next to the stack)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.waiting: tuple[bytes, asyncio.Future[None]] | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            if b"CN=9014" not in line or self.waiting is None:
                continue
            qn, done = self.waiting
            if b"QN=" + qn in line and not done.done():
                done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.waiting is not None and not self.waiting[1].done():
            self.waiting[1].set_exception(ConnectionError("closed"))


async def _one_logger(
    logger: Any,
    scenario: str,
    start: datetime,
    port: int,
    stop_at: float,
    interval: float | None,
    result: LoadResult,
    progress: Any,
    record: bool,
    in_flight: asyncio.Semaphore | None,
    deadlines: AckDeadlines,
) -> None:
    from liandong.hj212.records import record_event_id

    loop = asyncio.get_running_loop()
    conn_holder: list[LoggerConnection | None] = [None]
    with contextlib.suppress(OSError):  # every logger connected from the start, as a fleet is
        conn_holder[0] = (await loop.create_connection(LoggerConnection, "127.0.0.1", port))[1]
    next_at = time.monotonic() + (random.random() * interval if interval else 0.0)
    for qn, frame in _frames(logger, scenario, start):
        if interval is not None:
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at += interval
        if time.monotonic() >= stop_at:
            break
        if in_flight is not None:
            await in_flight.acquire()
        try:
            acked = await _send(conn_holder, loop, port, qn, frame, result, deadlines)
        finally:
            if in_flight is not None:
                in_flight.release()
        if acked is None:
            result.unacked += 1
            continue
        result.acked += 1
        progress.value += 1
        if record:
            result.sent_at.setdefault(record_event_id(logger.mn, frame), acked)
    else:
        result.exhausted += 1
    if conn_holder[0] is not None and conn_holder[0].transport is not None:
        conn_holder[0].transport.close()


async def _send(
    conn_holder: list[LoggerConnection | None],
    loop: asyncio.AbstractEventLoop,
    port: int,
    qn: str,
    frame: bytes,
    result: LoadResult,
    deadlines: AckDeadlines,
) -> float | None:
    """Sends a frame and waits for its 9014, re-sending up to 3 times after 10 s each (or a
    dropped connection); the send time of the attempt that was acked, None if none was."""
    for attempt in range(4):
        conn = conn_holder[0]
        if conn is None or conn.closed.done():
            try:
                _, conn = await loop.create_connection(LoggerConnection, "127.0.0.1", port)
            except OSError:
                conn_holder[0] = None
                await asyncio.sleep(1)
                continue
            conn_holder[0] = conn
        done: asyncio.Future[None] = loop.create_future()
        conn.waiting = (qn.encode(), done)
        assert conn.transport is not None
        conn.transport.write(frame)
        sent_at = time.time()
        result.sent += 1
        result.resent += 1 if attempt else 0
        try:
            # the gateway's shared deadline timer, not a timer per frame: the loader's CPU
            # shares the machine with the stack
            await deadlines.wait(cast("asyncio.Future[object]", done), loop.time() + ACK_WAIT_S)
            done.result()  # ConnectionError if the connection dropped meanwhile
        except (TimeoutError, ConnectionError):
            continue
        return sent_at
    return None


async def _load(spec: dict[str, Any], progress: Any, connected: Any) -> LoadResult:
    from gateway.simulator.station import SimLogger

    loggers = [SimLogger(**lg) for lg in spec["loggers"]]
    over = set(spec["over"])
    result = LoadResult()
    interval = len(loggers) / spec["rate"] if spec["rate"] else None
    in_flight = None if interval else asyncio.Semaphore(IN_FLIGHT)
    stop_at = time.monotonic() + spec["seconds"]
    deadlines = AckDeadlines()
    connected.value = 1
    await asyncio.gather(
        *(
            _one_logger(
                lg,
                "exceedance" if lg.mn in over else "normal",
                spec["start"],
                spec["port"],
                stop_at,
                interval,
                result,
                progress,
                spec["record"] and lg.mn in over,
                in_flight,
                deadlines,
            )
            for lg in loggers
        )
    )
    return result


def _loader_main(spec: dict[str, Any], progress: Any, connected: Any, out: Any) -> None:
    from liandong.heap import settle_heap

    settle_heap()  # as the services do: the loader's collector took ~12 % of its CPU
    result = asyncio.run(_load(spec, progress, connected))
    out.put(result.__dict__)


# -- the stack ---------------------------------------------------------------------------------


def _registry(count: int, over: set[int]) -> dict[str, Any]:
    from gateway.simulator.station import synthetic_registry

    doc = synthetic_registry(count)
    for i, (ent, outlet) in enumerate(zip(doc["enterprises"], doc["outlets"], strict=True)):
        ent.update(lat=31.93 + (i % 50) * 0.002, lon=118.84 + (i // 50 % 50) * 0.002)
        ent["key_polluter"] = i in over
        outlet.update(lat=ent["lat"], lon=ent["lon"])
    shifts = [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",
               "end": "23:59"}]  # fmt: skip
    roster = []
    for n in range(60):
        role = ("enforcement", "enforcement", "monitoring")[n % 3]
        roster.append(
            {
                "id": f"p-bench-{n:03d}",
                "name": f"officer {n}",
                "roles": [role],
                "certificates": [
                    {"kind": f"{role}_cert", "number": f"B-{n:04d}", "expires": "2035-12-31"}
                ],
                "jurisdiction": ["320115"],
                "shifts": shifts,
                "lat": 31.94 + n * 0.001,
                "lon": 118.84,
            }
        )
    roster.append(
        {
            "id": "p-bench-mgr",
            "name": "duty manager",
            "roles": ["duty_manager"],
            "jurisdiction": ["320115"],
            "shifts": shifts,
        }
    )
    doc["roster"] = roster
    return doc


@dataclass
class Running:
    stack: Stack
    extra: dict[str, subprocess.Popen[bytes]]  # "gateway-2", "alerts-2": the added processes

    def pids(self) -> dict[str, int]:
        out = {name: proc.pid for name, proc in self.stack.processes.items()}
        return out | {name: proc.pid for name, proc in self.extra.items()}


def _start(
    state: Path, bootstrap: str, registry: dict[str, Any], gateways: int, workers: int
) -> Running:
    prefix = f"e2e{uuid.uuid4().hex[:8]}."
    stack = Stack.isolated(state, prefix, bootstrap)
    stack.traces_file = None  # tracing to a file is a demo aid, not part of the measured path
    ensure_topics(stack.settings)
    raw = yaml.safe_dump(registry, allow_unicode=True).encode()
    asyncio.run(publish(stack.settings, RegistryDocument.model_validate(registry), raw))
    os.environ["LIANDONG_GATEWAY_REUSE_PORT"] = "1" if gateways > 1 else "0"
    stack.start()
    extra: dict[str, subprocess.Popen[bytes]] = {}
    env = stack.environment()
    for n in range(2, gateways + 1):
        env_n = env | {"LIANDONG_GATEWAY_REPLICA": f"bench-gw-{n}"}
        extra[f"gateway-{n}"] = _spawn(state, env_n, "gateway", n)
    for n in range(2, workers + 1):
        env_n = env | {
            "LIANDONG_ALERTS_WEB_PORT": str(free_port()),
            "LIANDONG_ALERTS_DATA": str(state / f"alerts-{n}"),
        }
        extra[f"alerts-{n}"] = _spawn(state, env_n, "alerts", n)
    running = Running(stack, extra)
    try:
        asyncio.run(stack.wait_ready(180))
        group = f"{prefix}liandong-alerts"
        deadline = time.monotonic() + 180
        while _group_members(stack.settings, group) < workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{workers} alerts workers did not join {group}")
            time.sleep(1)
        while not group_stable(stack.settings, group):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{group} not stable")
            time.sleep(1)
    except BaseException:
        _stop(running)
        raise
    return running


def _spawn(state: Path, env: dict[str, str], service: str, n: int) -> subprocess.Popen[bytes]:
    with open(state / f"{service}-{n}.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "liandong.cli", "run", service],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _group_members(settings: Settings, group: str) -> int:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="e2e-bench")
    try:
        info = admin.describe_groups([group]).get(group) or {}
    except Exception:
        return 0
    finally:
        admin.close()
    return len(info.get("members") or [])


def _stop(running: Running) -> None:
    for proc in running.extra.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
    running.stack.stop()
    for proc in running.extra.values():
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait(5)


def _offsets(settings: Settings, group: str) -> tuple[int, int]:
    """(records judged = the group's committed offsets, records in monitoring.records)."""

    async def read() -> tuple[int, int]:
        topic = settings.topic(MONITORING_RECORDS)
        async with GroupProgress(
            settings.kafka_bootstrap, topic, settings.partitions, group
        ) as progress:
            return await progress.read()

    return asyncio.run(read())


async def _read_all(settings: Settings, topic: str, limit: int | None = None) -> list[Any]:
    """(value, Kafka timestamp s) of every record in a topic, up to `limit`."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    out: list[tuple[bytes, float]] = []
    try:
        name = settings.topic(topic)
        parts = [TopicPartition(name, p) for p in range(settings.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        while any([await consumer.position(tp) < ends[tp] for tp in parts]):
            for msgs in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
                out.extend((m.value, m.timestamp / 1000) for m in msgs)
            if limit is not None and len(out) >= limit:
                break
    finally:
        await consumer.stop()
    return out


def _first_hour(closing: bool) -> datetime:
    """Where the loggers' data starts (naive, the stations' clock, UTC+8): the previous full
    hour, so no record is 2 h late (that would be a bulk back-fill). With `closing` (the
    latency phase, whose hourly exceedances open the cases it times), in an hour's first 6
    minutes it waits until the previous hour and the 5 minutes that close it are past: a
    phase started at 01:04 from 00:00 ran out of data before its first hour closed."""
    now = datetime.utcnow() + STATION_UTC_OFFSET
    if closing and now.minute < 6:
        wait = (6 - now.minute) * 60 - now.second
        print(f"e2e: waiting {wait} s for the previous hour's closing minutes to pass")
        time.sleep(wait)
        now = datetime.utcnow() + STATION_UTC_OFFSET
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            out[name] = cpu_seconds(pid)
    return out


def _phase(
    running: Running,
    loggers: list[dict[str, Any]],
    over: list[str],
    seconds: float,
    rate: float | None,
    broker_pid: int | None,
    record: bool,
) -> dict[str, Any]:
    """One load phase: returns rates, lag samples, CPU per frame per process, load result."""
    settings = running.stack.settings
    group = f"{settings.topic_prefix}liandong-alerts"
    ctx = multiprocessing.get_context("spawn")
    progress, connected, out = ctx.Value("q", 0, lock=False), ctx.Value("i", 0), ctx.Queue()
    spec = {
        "loggers": loggers,
        "over": over,
        "start": _first_hour(record),
        "port": settings.gateway_port,
        "seconds": seconds + 3,
        "rate": rate,
        "record": record,
    }
    loader = ctx.Process(target=_loader_main, args=(spec, progress, connected, out))
    loader.start()
    while not connected.value:
        time.sleep(0.1)
    time.sleep(3)  # connections opened, first frames under way: the window starts
    pids = running.pids() | {"loader": loader.pid or 0}
    if broker_pid:
        pids["broker"] = broker_pid
    cpu0, acked0 = _cpu(pids), progress.value
    judged0, _ = _offsets(settings, group)
    t0 = time.monotonic()
    lags: list[int] = []
    while time.monotonic() - t0 < seconds:
        time.sleep(2)
        judged, end = _offsets(settings, group)
        lags.append(end - judged)
        running.stack.check_alive()
    elapsed = time.monotonic() - t0
    cpu1, acked1 = _cpu(pids), progress.value
    judged1, end1 = _offsets(settings, group)
    result = out.get(timeout=120)
    loader.join(30)
    drain_started = time.monotonic()
    drained = None
    while time.monotonic() - drain_started < 120:
        judged, end = _offsets(settings, group)
        if judged >= end:
            drained = time.monotonic() - drain_started
            break
        time.sleep(1)
    frames = max(acked1 - acked0, 1)
    return {
        "acked_per_s": (acked1 - acked0) / elapsed,
        "judged_per_s": (judged1 - judged0) / elapsed,
        "lag_max": max(lags, default=0),
        "lag_end": end1 - judged1,
        "lag_samples": lags,
        "drain_s": drained,
        "cpu_us_per_frame": {
            name: round((cpu1[name] - cpu0[name]) / frames * 1e6, 1)
            for name in cpu1
            if name in cpu0
        },
        "cpu_share": {
            name: round((cpu1[name] - cpu0[name]) / elapsed, 2) for name in cpu1 if name in cpu0
        },
        "load": result,
        "window_s": round(elapsed, 1),
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _alert_latencies(settings: Settings, sent_at: dict[str, float], want: int) -> dict[str, Any]:
    """Frame send -> alert event, and alert -> CASE_OPENED, once the events are in."""
    from liandong.v1 import alerts_pb2, dispatch_pb2

    deadline = time.monotonic() + 120
    while True:
        alerts = [
            (alerts_pb2.AlertEvent.FromString(v), ts)
            for v, ts in asyncio.run(_read_all(settings, ALERTS_EVENTS))
        ]
        exceedances = {a.alert_id for a, _ in alerts if a.kind == "EXCEEDANCE"}
        dispatch = [
            (dispatch_pb2.DispatchEvent.FromString(v), ts)
            for v, ts in asyncio.run(_read_all(settings, DISPATCH_EVENTS))
        ]
        opened = [e for e, _ in dispatch if e.kind == "CASE_OPENED"]
        if (len(exceedances) >= want and len(opened) >= len(exceedances)) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(3)
    frame_to_alert: dict[str, list[float]] = {}
    first_alert_ts: dict[str, float] = {}
    ids = [a.meta.event_id for a, _ in alerts]
    for a, ts in alerts:
        first_alert_ts.setdefault(a.alert_id, ts)
        cause = sent_at.get(a.meta.causation_id)
        if cause is not None:
            frame_to_alert.setdefault(a.kind, []).append(ts - cause)
    task_alerts: dict[str, list[str]] = {}
    for e, _ in dispatch:
        if e.alert_ids:
            task_alerts.setdefault(e.task_id, list(e.alert_ids))
    to_case = []
    for e, ts in dispatch:
        if e.kind == "CASE_OPENED":
            alert_ids = task_alerts.get(e.task_id, [])
            starts = [first_alert_ts[a] for a in alert_ids if a in first_alert_ts]
            if starts:
                to_case.append(ts - min(starts))
    all_latencies = [x for xs in frame_to_alert.values() for x in xs]
    return {
        "frame_to_alert": all_latencies,
        "by_kind": {
            k: {"n": len(v), "p50": _pct(v, 0.5), "p99": _pct(v, 0.99)}
            for k, v in frame_to_alert.items()
        },
        "alarm_to_case": to_case,
        "alert_events": len(alerts),
        "duplicate_alert_events": len(ids) - len(set(ids)),
        "exceedances": len(exceedances),
        "cases_opened": len(opened),
    }


# -- broker and ceilings -----------------------------------------------------------------------


def _broker_env() -> dict[str, str]:
    return os.environ | {
        "LIANDONG_KAFKA_PORT": str(BROKER_PORT),
        "LIANDONG_KAFKA_CONTROLLER_PORT": str(CONTROLLER_PORT),
        "LIANDONG_KAFKA_STATE": str(ROOT / ".state" / f"bench-kafka-{BROKER_PORT}"),
        "LIANDONG_KAFKA_HEAP": os.environ.get("LIANDONG_BENCH_E2E_HEAP", "512m"),
    }


def _broker_up() -> tuple[str, int | None, bool]:
    """(bootstrap, broker pid, started here)."""
    if os.environ.get("LIANDONG_BENCH_E2E_BROKER") == "shared":
        bootstrap = os.environ.get("LIANDONG_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
        pidfile = ROOT / ".state" / "kafka-19092" / "kafka.pid"
        pid = int(pidfile.read_text()) if pidfile.exists() else None
        return bootstrap, pid, False
    env = _broker_env()
    script = str(ROOT / "deploy/kafka/kafka.sh")
    if subprocess.run([script, "status"], env=env, capture_output=True).returncode == 0:
        # another run of this benchmark owns it: sharing would mix both runs' figures, and
        # whichever finished first would stop the broker under the other
        raise RuntimeError(f"the bench broker on {BROKER_PORT} is already running (another run?)")
    subprocess.run([script, "up"], env=env, check=True)
    pid = int((Path(env["LIANDONG_KAFKA_STATE"]) / "kafka.pid").read_text())
    return f"127.0.0.1:{BROKER_PORT}", pid, True


def _broker_down() -> None:
    subprocess.run([str(ROOT / "deploy/kafka/kafka.sh"), "down"], env=_broker_env(), check=False)


def _ceilings(bootstrap: str, payloads: list[bytes]) -> dict[str, Any]:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    size = round(statistics.mean(len(p) for p in payloads))
    n = 50_000 if SHORT else 300_000
    topic = f"e2e-ceiling-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="e2e-bench")
    admin.create_topics([NewTopic(topic, 3, 1), NewTopic(topic + "-py", 3, 1)])
    try:
        producer = kafka_producer_perf(bootstrap, topic, n, size)
        consumer = kafka_consumer_perf(bootstrap, topic, n)
        repeated = (payloads * (n // max(len(payloads), 1) + 1))[: n // 3]
        loop = asyncio.run(aiokafka_loop(bootstrap, topic + "-py", repeated))
    finally:
        admin.delete_topics([topic, topic + "-py"])
        admin.close()
    return {
        "record_bytes": size,
        "producer_perf_per_s": producer["records_per_s"],
        "producer_perf_p99_ms": producer["p99_ms"],
        "consumer_perf_per_s": consumer,
        "aiokafka": loop,
    }


# -- the run -----------------------------------------------------------------------------------


def _logger_specs(doc: dict[str, Any], lo: int, hi: int) -> list[dict[str, Any]]:
    from gateway.simulator.station import SimLogger

    out = []
    for outlet in doc["outlets"][lo:hi]:
        limits = {str(lim["factor"]): float(lim["value"]) for lim in outlet["limits"]}
        lg = SimLogger(outlet["mn"], outlet["password"], outlet["medium"], limits)
        out.append(lg.__dict__)
    return out


def bench() -> dict[str, Any]:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    state_root = ROOT / ".state" / "bench-e2e" / stamp
    latency_pool = 1500
    total = LOGGERS + latency_pool
    # gas outlets are the even ones (hourly judgement); a few percent of each set over a limit
    over_main = set(range(0, LOGGERS, 2)[: max(2, int(LOGGERS * OVER_SHARE))])
    over_lat = set(range(LOGGERS, total, 2)[: max(4, int(latency_pool * OVER_SHARE))])
    doc = _registry(total, over_main | over_lat)
    main_loggers = _logger_specs(doc, 0, LOGGERS)
    main_over = [doc["outlets"][i]["mn"] for i in sorted(over_main)]
    bootstrap, broker_pid, started = _broker_up()
    out: dict[str, Any] = {"configs": {}, "loggers": LOGGERS, "window_s": WINDOW_S}
    payloads: list[bytes] = []
    try:
        for gateways, workers in CONFIGS:
            key = f"{gateways}gw_{workers}alerts"
            running = _start(state_root / key, bootstrap, doc, gateways, workers)
            try:
                phase = _phase(running, main_loggers, main_over, WINDOW_S, None, broker_pid, False)
                settings = running.stack.settings
                if not payloads:
                    values = asyncio.run(_read_all(settings, MONITORING_RECORDS, 30_000))
                    payloads = [v for v, _ in values][:30_000]
                records_in_topic = (_offsets(settings, f"{settings.topic_prefix}x"))[1]
                phase["records_in_topic"] = records_in_topic
                phase["peak_rss_mib"] = {
                    name: peak_rss_mib(pid) for name, pid in running.pids().items()
                }
                if broker_pid:
                    phase["peak_rss_mib"]["broker"] = peak_rss_mib(broker_pid)
                out["configs"][key] = phase
                if (gateways, workers) == CONFIGS[0]:
                    sustained = min(phase["acked_per_s"], phase["judged_per_s"])
                    half = max(sustained / 2, 20.0)
                    # On a fresh stack: 60 s after the main phase's loggers all stop, the wall
                    # clock closes their open hours at once (one HOUR_INCOMPLETE per outlet and
                    # factor, a mass outage), which is not the steady load this phase measures.
                    _stop(running)
                    with contextlib.suppress(Exception):
                        delete_prefixed_topics(running.stack.settings)
                    running = _start(
                        state_root / f"{key}-latency", bootstrap, doc, gateways, workers
                    )
                    settings = running.stack.settings
                    # enough loggers that each closes its first hour within ~80 % of the phase
                    count = int(min(latency_pool, max(6, half * LATENCY_S * 0.8 / 265)))
                    lat_loggers = _logger_specs(doc, LOGGERS, LOGGERS + count)
                    lat_over = [
                        doc["outlets"][i]["mn"] for i in sorted(over_lat) if i < LOGGERS + count
                    ]
                    lat = _phase(running, lat_loggers, lat_over, LATENCY_S, half, broker_pid, True)
                    latencies = _alert_latencies(settings, lat["load"]["sent_at"], len(lat_over))
                    lat["load"]["sent_at"] = len(lat["load"]["sent_at"])
                    out["latency"] = {"rate": half, "loggers": count, "phase": lat, **latencies}
                # kept beside the services' logs, so a run that fails later still shows these
                (state_root / "result.json").write_text(json.dumps(out, indent=1, default=str))
            finally:
                _stop(running)
                with contextlib.suppress(Exception):
                    delete_prefixed_topics(running.stack.settings)
        out["ceilings"] = _ceilings(bootstrap, payloads)
    finally:
        if started:
            _broker_down()
    return out


def by_stage(per_process: dict[str, float]) -> dict[str, float]:
    """CPU us per frame of a stage: the sum over its processes ("gateway", "gateway-2")."""
    out: dict[str, float] = {}
    for name, us in per_process.items():
        stage = name.split("-")[0]
        out[stage] = round(out.get(stage, 0.0) + us, 1)
    return out


def _records(out: dict[str, Any]) -> list[dict[str, Any]]:
    command = "make bench (python -m bench.run e2e_stack)"
    ceilings = out["ceilings"]
    rows: list[dict[str, Any]] = []
    base_key = next(iter(out["configs"]))
    loop_rate = ceilings["aiokafka"]["loop_per_s"]
    tools = {
        "producer": {
            "name": f"Kafka ProducerPerformance, {ceilings['record_bytes']} B, acks=all, "
            "idempotent",
            "value": round(ceilings["producer_perf_per_s"]),
            "unit": "frames/s",
        },
        "consumer": {
            "name": "Kafka ConsumerPerformance, same records",
            "value": round(ceilings["consumer_perf_per_s"]),
            "unit": "frames/s",
        },
        "aiokafka": {
            "name": "plain aiokafka produce-then-consume loop, the gateway's records",
            "value": round(loop_rate),
            "unit": "frames/s",
        },
    }
    for key, phase in out["configs"].items():
        sustained = min(phase["acked_per_s"], phase["judged_per_s"])
        rows.append(
            {
                "name": f"e2e_sustained_frames_{key}",
                "value": round(sustained),
                "unit": "frames/s",
                "target": TARGET_RATE if key == base_key else None,
                "ceiling": tools["aiokafka"],
                "ratio_to_producer_perf": round(sustained / ceilings["producer_perf_per_s"], 4),
                "ratio_to_consumer_perf": round(sustained / ceilings["consumer_perf_per_s"], 4),
                "ratio_to_aiokafka_loop": round(sustained / loop_rate, 3),
                "detail": {k: v for k, v in phase.items() if k != "lag_samples"},
                "lag_samples": phase["lag_samples"],
                "command": command,
            }
        )
        for stage, us in sorted(by_stage(phase["cpu_us_per_frame"]).items()):
            rows.append(
                {
                    "name": f"e2e_cpu_per_frame_{key}_{stage}",
                    "value": us,
                    "unit": "us",
                    "target": None,
                    "lower_is_better": True,
                    "processes": {
                        name: v
                        for name, v in phase["cpu_us_per_frame"].items()
                        if name.split("-")[0] == stage
                    },
                    "command": command,
                }
            )
        for proc, rss in sorted(phase["peak_rss_mib"].items()):
            rows.append(
                {
                    "name": f"e2e_peak_rss_{key}_{proc}",
                    "value": round(rss, 1) if rss is not None else None,
                    "unit": "MiB",
                    "target": None,
                    "command": command,
                }
            )
    base = out["configs"][base_key]
    base_rate = min(base["acked_per_s"], base["judged_per_s"])
    for key, phase in out["configs"].items():
        if key != base_key:  # item 3: how the rate changes with more processes
            rows.append(
                {
                    "name": f"e2e_scale_{key}_over_{base_key}",
                    "value": round(min(phase["acked_per_s"], phase["judged_per_s"]) / base_rate, 2),
                    "unit": "ratio",
                    "target": None,
                    "ceiling": {"name": base_key, "value": 1.0, "unit": "ratio"},
                    "command": command,
                }
            )
    rows.append(
        {
            "name": "e2e_sustained_ratio_to_aiokafka_loop",
            "value": round(base_rate / loop_rate, 3),
            "unit": "ratio",
            "target": 0.3,
            "ceiling": {"name": "the loop itself", "value": 1.0, "unit": "ratio"},
            "command": command,
        }
    )
    for name, ceiling in tools.items():
        rows.append({**ceiling, "name": f"e2e_ceiling_{name}", "target": None,
                     "ceiling": ceiling, "command": command})  # fmt: skip
    lat = out.get("latency")
    if lat:
        f2a = lat["frame_to_alert"]
        rate_note = {"name": "the load: half the sustained rate",
                     "value": round(lat["rate"]), "unit": "frames/s"}  # fmt: skip
        if f2a:
            for q, target in (("p50", None), ("p99", 1.0)):
                rows.append(
                    {
                        "name": f"e2e_frame_to_alert_{q}_half_rate",
                        "value": round(_pct(f2a, 0.5 if q == "p50" else 0.99), 3),
                        "unit": "s",
                        "target": target,
                        "samples": len(f2a),
                        "by_kind": lat["by_kind"],
                        "ceiling": rate_note,
                        "command": command,
                    }
                )
        if lat["alarm_to_case"]:
            for q in ("p50", "p99"):
                rows.append(
                    {
                        "name": f"e2e_alarm_to_case_{q}",
                        "value": round(_pct(lat["alarm_to_case"], 0.5 if q == "p50" else 0.99), 3),
                        "unit": "s",
                        "target": None,
                        "samples": len(lat["alarm_to_case"]),
                        "ceiling": rate_note,
                        "command": command,
                    }
                )
        rows.append(
            {
                "name": "e2e_duplicate_alert_events",
                "value": lat["duplicate_alert_events"],
                "unit": "events",
                "target": 0,
                "lower_is_better": True,
                "detail": {k: lat[k] for k in ("alert_events", "exceedances", "cases_opened")},
                "command": command,
            }
        )
    return rows


def run() -> list[dict[str, Any]]:
    return _records(bench())


if __name__ == "__main__":
    result = bench()
    print(json.dumps(result, indent=1, default=str)[:20000])
    for row in _records(result):
        print(row["name"], row["value"], row["unit"])
