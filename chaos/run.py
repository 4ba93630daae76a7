"""The chaos run (`make chaos`, issue 13 item 11): the stack on three brokers with two replicas
of every service, loggers sending with exceedances, then faults with no manual step:

* SIGKILL of every service twice (replica 1 of each in round 1, replica 2 in round 2), each
  restarted at once by the runner as a supervisor would;
* one broker SIGKILLed and restarted (between the rounds);
* PostgreSQL stopped and started again (between the rounds).

Each fault is timed from the outside, one after the other so each time belongs to one fault:
from the restart until the replica's health answers AND it makes progress (gateway: a probe
frame sent to that replica is acked; alerts and dispatch: the group is back to two members and
every partition's committed offset moved or is at the end; casefile: gRPC health SERVING and a
ListCases through that replica; broker: every partition back to three in-sync copies and both
groups moving; PostgreSQL: both casefile replicas answer ListCases and dispatch moves).

At the end: frames acked (counted at the loggers) against the distinct record ids on
monitoring.records, duplicates beyond re-sends, episodes / tasks / cases opened twice,
`liandong casefile verify`, consumer lag. Written to chaos/results.json and chaos/results.md.

Everything runs on ports of its own outside the ephemeral range (brokers 23092/23102/23112,
controllers +1, PostgreSQL 25432; services on liandong.ports.free_port()), never the shared
broker (19092) or PostgreSQL (55432), with state under .state/chaos.

Dispatch runs two replicas on one PostgreSQL database sharing one upload spool folder: the
replicas serialise their steps with an advisory lock (deploy/k8s/README.md), and on one machine
the spool folder is shared, which is what the README asks of a volume before raising the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.e2e_stack import LoggerConnection
from chaos import verdict
from chaos.loggers import ACK_TIMEOUT_S, loader_main, station_now
from liandong.ports import free_port
from liandong.settings import ROOT, Settings
from liandong.stack import Stack
from liandong.topics import ALERTS_EVENTS, DISPATCH_EVENTS, MONITORING_RECORDS

STATE = ROOT / ".state" / "chaos"
KAFKA_PORT = int(os.environ.get("LIANDONG_CHAOS_KAFKA_PORT", "23092"))  # nodes +10, +20
PG_PORT = int(os.environ.get("LIANDONG_CHAOS_PG_PORT", "25432"))
SERVICES = ("gateway", "alerts", "dispatch", "casefile")
START_ORDER = ("casefile", "dispatch", "alerts", "gateway")
GAP_S = 5.0  # between one fault's recovery and the next fault


def _log(console: Any, text: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")


# -- infrastructure: three brokers and PostgreSQL, through the repository's scripts ------------


def kafka_env() -> dict[str, str]:
    return os.environ | {
        "KAFKA_NODES": "3",
        "LIANDONG_KAFKA_PORT": str(KAFKA_PORT),
        "LIANDONG_KAFKA_CONTROLLER_PORT": str(KAFKA_PORT + 1),
        "LIANDONG_KAFKA_STATE": str(STATE / "kafka"),
    }


def pg_env() -> dict[str, str]:
    return os.environ | {"LIANDONG_PG_PORT": str(PG_PORT), "LIANDONG_PG_STATE": str(STATE / "pg")}


def kafka(*args: str) -> None:
    subprocess.run(
        ["bash", str(ROOT / "deploy/kafka/kafka.sh"), *args],
        env=kafka_env(),
        check=True,
        timeout=240,
    )


def postgres(*args: str) -> None:
    subprocess.run(
        ["bash", str(ROOT / "deploy/postgres/postgres.sh"), *args],
        env=pg_env(),
        check=True,
        timeout=180,
    )


def bootstrap() -> str:
    return ",".join(f"127.0.0.1:{KAFKA_PORT + 10 * i}" for i in range(3))


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/{database}"


def create_databases(names: list[str]) -> None:
    import psycopg

    with psycopg.connect(
        f"host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres", autocommit=True
    ) as conn:
        for name in names:
            conn.execute(f"CREATE DATABASE {name}")


# -- the replicas ------------------------------------------------------------------------------


@dataclass
class Replica:
    service: str
    n: int
    env: dict[str, str]
    log: Path
    port: int  # gateway TCP, alerts web, dispatch HTTP, casefile gRPC
    proc: subprocess.Popen[bytes] | None = None
    killed: bool = False  # by us: an exit that follows is planned

    @property
    def name(self) -> str:
        return f"{self.service}-{self.n}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "liandong.cli", "run", self.service],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: a SIGKILL reaches its children too
            )
        self.killed = False

    def kill(self) -> None:
        assert self.proc is not None
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def make_replicas(
    state: Path, settings: Settings, count: int = 2, static_alerts: bool = True
) -> dict[str, Replica]:
    base = Stack(state, settings, traces_file=None, own_files=True).environment()
    ports = {(s, n): free_port() for s in SERVICES for n in range(1, count + 1)}
    casefiles = ",".join(f"127.0.0.1:{ports[('casefile', n)]}" for n in range(1, count + 1))
    out: dict[str, Replica] = {}
    for service in SERVICES:
        for n in range(1, count + 1):
            port = ports[(service, n)]
            env = dict(base)
            if service == "gateway":
                env |= {
                    "LIANDONG_GATEWAY_PORT": str(port),
                    "LIANDONG_GATEWAY_REPLICA": f"chaos-gw-{n}",
                }
            elif service == "alerts":
                env |= {
                    "LIANDONG_ALERTS_WEB_PORT": str(port),
                    "LIANDONG_ALERTS_DATA": str(state / f"alerts-{n}"),
                }
                if static_alerts:
                    # Static membership (faust reads CONSUMER_GROUP_INSTANCE_ID; a StatefulSet
                    # pod name in Kubernetes): a restarted worker takes its own place back at
                    # once instead of waiting out the dead member's 60 s session. A worker that
                    # stays dead still holds its partitions for that session, as without it.
                    env["CONSUMER_GROUP_INSTANCE_ID"] = f"{settings.topic_prefix}alerts-{n}"
            elif service == "dispatch":
                # both casefile replicas behind one gRPC target, as a Service would put them:
                # the channel moves to the other address when its replica is gone
                env |= {
                    "LIANDONG_DISPATCH_PORT": str(port),
                    "LIANDONG_CASEFILE_GRPC": f"ipv4:{casefiles}",
                }
                if static_alerts:  # the same static membership for dispatch's consumer
                    env["LIANDONG_DISPATCH_GROUP_INSTANCE_ID"] = (
                        f"{settings.topic_prefix}dispatch-{n}"
                    )
            else:
                env |= {"LIANDONG_CASEFILE_GRPC": f"127.0.0.1:{port}"}
            replica = Replica(service, n, env, state / f"{service}-{n}.log", port)
            out[replica.name] = replica
    return out


# -- probes from the outside -------------------------------------------------------------------


async def tcp_open(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def http_ok(port: int) -> bool:
    import httpx

    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def casefile_answers(port: int) -> bool:
    """Health SERVING and a ListCases (a read of PostgreSQL) through this very replica."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from liandong.tokens.operator import operator_metadata
    from liandong.v1 import casefile_pb2, casefile_pb2_grpc

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                return False
            await casefile_pb2_grpc.CaseFileStub(channel).ListCases(
                casefile_pb2.ListCasesRequest(page_size=1), timeout=3, metadata=operator_metadata()
            )
            return True
    except grpc.RpcError:
        return False


@dataclass
class Probe:
    """A logger of the registry kept out of the load: sends one real-time frame to one gateway
    replica and waits for its 9014 (the replica writes to Kafka and acks: it processes)."""

    logger: Any
    acked_ids: list[str] = field(default_factory=list)

    async def acked_by(self, port: int) -> bool:
        from gateway.simulator.station import data_frame, scenario_values
        from liandong.hj212.records import record_event_id

        at = station_now().replace(microsecond=0)
        qn, frame = data_frame(self.logger, "2011", at, scenario_values(self.logger, "normal", 0))
        loop = asyncio.get_running_loop()
        try:
            transport, conn = await asyncio.wait_for(
                loop.create_connection(LoggerConnection, "127.0.0.1", port), 2
            )
        except (OSError, TimeoutError):
            return False
        done: asyncio.Future[None] = loop.create_future()
        conn.waiting = (qn.encode(), done)
        transport.write(frame)
        try:
            await asyncio.wait_for(done, 3)
        except (TimeoutError, ConnectionError):
            return False
        finally:
            transport.close()
        self.acked_ids.append(record_event_id(self.logger.mn, frame))
        return True


Offsets = dict[int, tuple[int, int]]  # partition -> (committed, end)


class Groups:
    """Committed offsets per partition against the end offsets, and group membership."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.admin: Any = None
        self.consumer: Any = None

    async def __aenter__(self) -> Groups:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap)
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def offsets(self, group: str, topic: str) -> Offsets | None:
        from aiokafka import TopicPartition
        from aiokafka.errors import KafkaError

        parts = [TopicPartition(topic, p) for p in range(self.settings.partitions)]
        try:
            async with asyncio.timeout(10):
                committed = await self.admin.list_consumer_group_offsets(group)
                ends = await self.consumer.end_offsets(parts)
        except (KafkaError, TimeoutError):
            return None  # coordinator moving, a broker down: ask again
        return {
            tp.partition: (max(committed[tp].offset, 0) if tp in committed else 0, ends[tp])
            for tp in parts
        }

    async def lag(self, group: str, topic: str) -> int | None:
        offsets = await self.offsets(group, topic)
        return None if offsets is None else sum(e - c for c, e in offsets.values())

    def members(self, group: str) -> tuple[str, int]:
        from kafka import KafkaAdminClient

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.settings.kafka_bootstrap, client_id="liandong-chaos"
            )
        except Exception:
            return "unknown", 0
        try:
            info = admin.describe_groups([group]).get(group) or {}
        except Exception:
            return "unknown", 0
        finally:
            admin.close()
        return str(info.get("group_state")), len(info.get("members") or [])


def moved(before: Offsets, now: Offsets) -> bool:
    """Every partition's committed offset advanced, or there is nothing left to read."""
    return all(now[p][0] > before[p][0] or now[p][0] >= now[p][1] for p in now)


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Run:
    console: Any
    settings: Settings
    replicas: dict[str, Replica]
    probes: dict[int, Probe]
    groups: Groups
    static_alerts: bool
    t0: float = field(default_factory=time.monotonic)
    faults: list[dict[str, Any]] = field(default_factory=list)
    unplanned: list[dict[str, Any]] = field(default_factory=list)

    def group_of(self, service: str) -> tuple[str, str]:
        s = self.settings
        if service == "alerts":
            return f"{s.topic_prefix}liandong-alerts", s.topic(MONITORING_RECORDS)
        return f"{s.topic_prefix}liandong-dispatch", s.topic(ALERTS_EVENTS)

    async def supervise(self) -> None:
        """Restarts a replica that exited without being killed by the run, and counts it: in
        production an orchestrator restarts it too, but here it is a failure to look at."""
        while True:
            await asyncio.sleep(1)
            for r in self.replicas.values():
                if r.proc is not None and r.proc.poll() is not None and not r.killed:
                    tail = r.log.read_text(errors="replace")[-1500:]
                    self.unplanned.append(
                        {
                            "replica": r.name,
                            "rc": r.proc.returncode,
                            "at_s": round(time.monotonic() - self.t0, 1),
                            "log_tail": tail,
                        }
                    )
                    _log(
                        self.console,
                        f"[red]{r.name} exited on its own ({r.proc.returncode}); restarting[/red]",
                    )
                    r.start()

    async def ready(self, r: Replica) -> bool:
        if r.proc is None or r.proc.poll() is not None:
            return False
        if r.service == "gateway":
            return await tcp_open(r.port)
        if r.service == "alerts":
            return await tcp_open(r.port)
        if r.service == "dispatch":
            return await http_ok(r.port)
        return await casefile_answers(r.port)

    async def group_back(self, service: str, before: Offsets | None) -> tuple[bool, Offsets | None]:
        group, topic = self.group_of(service)
        state, members = await asyncio.to_thread(self.groups.members, group)
        now = await self.groups.offsets(group, topic)
        if now is None:
            return False, before
        if before is None:
            return False, now
        return state == "Stable" and members >= 2 and moved(before, now), before

    async def processing(self, r: Replica, before: Offsets | None) -> tuple[bool, Offsets | None]:
        if r.service == "gateway":
            return await self.probes[r.n].acked_by(r.port), before
        if r.service == "casefile":
            return True, before  # casefile_answers read the database through it already
        return await self.group_back(r.service, before)

    async def wait_until(
        self, check: Callable[[], Awaitable[bool]], limit: float, step: float = 0.5
    ) -> float | None:
        started = time.monotonic()
        while time.monotonic() - started < limit:
            if await check():
                return time.monotonic() - started
            await asyncio.sleep(step)
        return None

    async def kill_and_restart(self, r: Replica) -> dict[str, Any]:
        limit = verdict.recovery_limit(r.service, self.static_alerts)
        killed_at = time.monotonic() - self.t0
        r.kill()
        r.start()  # at once, as a supervisor restarts a crashed pod's container
        restarted = time.monotonic()
        state: dict[str, Any] = {"ready_s": None, "before": None}
        if r.service in ("alerts", "dispatch"):
            group, topic = self.group_of(r.service)
            state["before"] = await self.groups.offsets(group, topic)

        async def back() -> bool:
            if state["ready_s"] is None:
                if not await self.ready(r):
                    return False
                state["ready_s"] = time.monotonic() - restarted
            ok, state["before"] = await self.processing(r, state["before"])
            return ok

        # both times from the restart (the offsets read above took a moment already)
        waited = await self.wait_until(back, limit + 30)
        recovered = None if waited is None else time.monotonic() - restarted
        return {
            "name": f"SIGKILL {r.name}",
            "service": r.service,
            "killed_at_s": round(killed_at, 1),
            "ready_s": _round(state["ready_s"]),
            "recovered_s": _round(recovered),
        }

    async def consumers_moving(self) -> bool:
        for service in ("alerts", "dispatch"):
            group, topic = self.group_of(service)
            before = await self.groups.offsets(group, topic)
            if before is None:
                return False
            await asyncio.sleep(1.0)
            ok, _ = await self.group_back(service, before)
            if not ok:
                return False
        return True

    async def broker_fault(self, node: int = 2) -> dict[str, Any]:
        killed_at = time.monotonic() - self.t0
        await asyncio.to_thread(kafka, "kill", str(node))
        await asyncio.sleep(5)  # traffic runs on two brokers (min.insync.replicas 2) meanwhile
        restarted = time.monotonic()
        await asyncio.to_thread(kafka, "start", str(node))
        ready = time.monotonic() - restarted

        async def back() -> bool:
            return await asyncio.to_thread(self.in_sync) and await self.consumers_moving()

        rest = await self.wait_until(back, verdict.INFRA_LIMIT_S["broker"], 2.0)
        return {
            "name": f"SIGKILL broker {node}, restart after 5 s",
            "service": "broker",
            "killed_at_s": round(killed_at, 1),
            "ready_s": _round(ready),
            "recovered_s": None if rest is None else _round(ready + rest),
        }

    def in_sync(self) -> bool:
        """Every partition of the run's topics has its three copies in sync again."""
        from kafka import KafkaAdminClient

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.settings.kafka_bootstrap, client_id="liandong-chaos"
            )
            try:
                ours = [t for t in admin.list_topics() if t.startswith(self.settings.topic_prefix)]
                described = admin.describe_topics(ours)
            finally:
                admin.close()
        except Exception:
            return False
        # kafka-python names the in-sync set "isr_nodes" (beside "replica_nodes")
        return all(len(p["isr_nodes"]) >= 3 for t in described for p in t["partitions"])

    async def postgres_fault(self) -> dict[str, Any]:
        killed_at = time.monotonic() - self.t0
        await asyncio.to_thread(postgres, "down")
        restarted = time.monotonic()
        await asyncio.to_thread(postgres, "up")
        ready = time.monotonic() - restarted

        async def back() -> bool:
            for r in self.replicas.values():
                if r.service == "casefile" and not await casefile_answers(r.port):
                    return False
                if r.service == "dispatch" and not await http_ok(r.port):
                    return False
            return await self.consumers_moving()

        rest = await self.wait_until(back, verdict.INFRA_LIMIT_S["postgres"], 1.0)
        return {
            "name": "PostgreSQL stopped (fast) and started",
            "service": "postgres",
            "killed_at_s": round(killed_at, 1),
            "ready_s": _round(ready),
            "recovered_s": None if rest is None else _round(ready + rest),
        }

    async def faults_script(self) -> None:
        for round_n in (1, 2):
            for service in SERVICES:
                r = self.replicas[f"{service}-{round_n}"]
                _log(self.console, f"SIGKILL {r.name}")
                fault = await self.kill_and_restart(r)
                self._report(fault)
                await asyncio.sleep(GAP_S)
            if round_n == 1:
                _log(self.console, "SIGKILL broker 2")
                self._report(await self.broker_fault(2))
                await asyncio.sleep(GAP_S)
                _log(self.console, "restart PostgreSQL")
                self._report(await self.postgres_fault())
                await asyncio.sleep(GAP_S)

    def _report(self, fault: dict[str, Any]) -> None:
        self.faults.append(fault)
        ok = verdict.recovery_ok(fault, self.static_alerts)
        colour = "green" if ok else "red"
        _log(
            self.console,
            f"[{colour}]{fault['name']}: ready {fault['ready_s']} s, "
            f"back to processing {fault['recovered_s']} s[/{colour}]",
        )


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


async def start_all(run: Run, timeout: float = 240) -> None:
    """Casefile replica 1 first (it migrates the database), then every other replica; ready
    when each answers its health and both groups have two members."""
    first = run.replicas["casefile-1"]
    first.start()
    if await run.wait_until(lambda: run.ready(first), timeout, 1.0) is None:
        raise TimeoutError("casefile-1 did not come up:\n" + first.log.read_text()[-2000:])
    for service in START_ORDER:
        for r in run.replicas.values():
            if r.service == service and r.proc is None:
                r.start()

    async def all_ready() -> bool:
        for r in run.replicas.values():
            if r.proc is not None and r.proc.poll() is not None:
                raise RuntimeError(f"{r.name} exited:\n" + r.log.read_text()[-2000:])
            if not await run.ready(r):
                return False
        for service in ("alerts", "dispatch"):
            state, members = await asyncio.to_thread(run.groups.members, run.group_of(service)[0])
            if state != "Stable" or members < 2:
                return False
        return True

    if await run.wait_until(all_ready, timeout, 2.0) is None:
        raise TimeoutError("the replicas did not all come up")


async def read_topic(settings: Settings, topic: str) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    out: list[bytes] = []
    try:
        parts = [TopicPartition(settings.topic(topic), p) for p in range(settings.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        while any([await consumer.position(tp) < ends[tp] for tp in parts]):
            for msgs in (await consumer.getmany(timeout_ms=1000, max_records=20000)).values():
                out.extend(m.value for m in msgs if m.value is not None)
    finally:
        await consumer.stop()
    return out


def database_links(dispatch_url: str, casefile_url: str) -> dict[str, Any]:
    """Tasks in dispatch's database, cases in casefile's, and which alert each case is for."""
    from sqlalchemy import create_engine, text

    out: dict[str, Any] = {}
    engine = create_engine(dispatch_url)
    with engine.connect() as conn:
        out["tasks"] = conn.execute(text("SELECT count(*) FROM dispatch_tasks")).scalar_one()
        out["task_cases"] = [
            tuple(row)
            for row in conn.execute(
                text("SELECT task_id, case_id FROM dispatch_tasks WHERE case_id <> ''")
            )
        ]
    engine.dispose()
    engine = create_engine(casefile_url)
    with engine.connect() as conn:
        rows = list(conn.execute(text("SELECT case_id, task_id, alert_ids_json FROM case_files")))
    engine.dispose()
    out["cases"] = len(rows)
    out["case_alerts"] = [(a, str(case)) for case, _, alerts in rows for a in json.loads(alerts)]
    out["case_tasks"] = [(str(task), str(case)) for case, task, _ in rows]
    return out


def casefile_verify(url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "liandong.cli", "casefile", "verify"],
        env=os.environ | {"LIANDONG_CASEFILE_DB": url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return "OK" if done.returncode == 0 else f"FAILED ({done.returncode}): {done.stdout[-300:]}"


def registry(loggers: int, over: set[int]) -> dict[str, Any]:
    from bench.e2e_stack import _registry  # the benchmark's registry: outlets plus a roster

    return _registry(loggers, over)


def plan_loggers(
    doc: dict[str, Any],
    fast: int,
    steady: int,
    over: set[int],
    load_s: float,
    start_minutes_back: float,
) -> list[dict[str, Any]]:
    """Loggers 0..fast-1 run fast enough to close their first hour early in the run (their
    2061 opens the exceedance episodes, tasks and cases before round 2 of the faults); the
    others are paced to reach the present near the end of `load_s`, a steady load throughout."""
    from gateway.simulator.station import SimLogger

    frames_to_present = 2 * start_minutes_back + 1
    out = []
    for i, outlet in enumerate(doc["outlets"][: fast + steady]):
        limits = {str(lim["factor"]): float(lim["value"]) for lim in outlet["limits"]}
        lg = SimLogger(outlet["mn"], outlet["password"], outlet["medium"], limits)
        interval = 0.6 if i < fast else max(load_s / frames_to_present, 0.2)
        out.append(
            {
                "logger": lg.__dict__,
                "scenario": "exceedance" if i in over else "normal",
                "interval": interval,
                "home": i % 2,
            }
        )
    return out


def main(
    loggers: int = 150,
    fast: int = 24,
    over_share: float = 0.5,
    out_dir: Path | None = None,
    keep_state: bool = False,
    static_alerts: bool = True,
) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    out_dir = out_dir or ROOT / "chaos"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    started_infra = False
    replicas: dict[str, Replica] = {}
    result: dict[str, Any] = {
        "started": stamp,
        "loggers": loggers,
        "alerts_static_membership": static_alerts,
        "load_average_at_start": round(os.getloadavg()[0], 1),  # a shared 2-core machine
    }
    began = time.monotonic()
    try:
        _log(console, "clearing .state/chaos (brokers and database of an earlier run)")
        for action in (lambda: kafka("down"), lambda: postgres("down")):
            with contextlib.suppress(subprocess.CalledProcessError):
                action()
        shutil.rmtree(STATE, ignore_errors=True)
        STATE.mkdir(parents=True)
        started_infra = True
        _log(console, f"PostgreSQL on {PG_PORT}, three brokers on {bootstrap()}")
        postgres("up")
        kafka("up")
        create_databases(["chaos_dispatch", "chaos_casefile"])
        try:
            result.update(_run(console, loggers, fast, over_share, replicas, static_alerts))
        except Exception as err:  # reported as a failed run, with the logs kept
            console.print_exception()
            result["error"] = f"{type(err).__name__}: {err}"[:500]
    finally:
        for r in replicas.values():
            r.stop()
        if started_infra and not keep_state:
            for action in (lambda: kafka("down"), lambda: postgres("down")):
                with contextlib.suppress(subprocess.CalledProcessError):
                    action()
    result["duration_s"] = round(time.monotonic() - began)
    result["load_average_at_end"] = round(os.getloadavg()[0], 1)
    all_checks = verdict.checks(result)
    result["checks"] = [c.__dict__ for c in all_checks]
    result["pass"] = verdict.passed(all_checks)
    (out_dir / "results.json").write_text(json.dumps(result, indent=1, default=str))
    (out_dir / "results.md").write_text(verdict.markdown(result, all_checks))
    table = Table("check", "measured", "target", "")
    for c in all_checks:
        table.add_row(
            c.name, str(c.value), c.target, "[green]ok[/green]" if c.ok else "[red]FAIL[/red]"
        )
    console.print(table)
    console.print(
        ("[green]PASS[/green]" if result["pass"] else "[red]FAIL[/red]")
        + f"  (chaos/results.json, chaos/results.md; logs in {STATE})"
    )
    return 0 if result["pass"] else 1


def _run(
    console: Any,
    loggers: int,
    fast: int,
    over_share: float,
    replicas: dict[str, Replica],
    static_alerts: bool,
) -> dict[str, Any]:
    import yaml
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from liandong.registry.document import RegistryDocument
    from liandong.registry.topics_io import publish
    from liandong.topics import ensure_topics
    from liandong.v1 import alerts_pb2, dispatch_pb2, records_pb2

    settings = Settings(
        kafka_bootstrap=bootstrap(),
        topic_prefix=f"chaos{uuid.uuid4().hex[:6]}.",
        casefile_db=pg_url("chaos_casefile"),
        dispatch_db=pg_url("chaos_dispatch"),
        alerts_data_dir=str(STATE / "alerts"),
    )
    settings = replace(settings, partitions=3)
    ensure_topics(settings)
    # even outlets are gas (hourly judgement): half of the fast ones over a limit
    over = set(range(0, fast, 2)[: round(fast * over_share)])
    total = loggers + 2  # two probe loggers, one per gateway replica
    doc = registry(total, over)
    raw = yaml.safe_dump(doc, allow_unicode=True).encode()
    asyncio.run(publish(settings, RegistryDocument.model_validate(doc), raw))
    replicas.update(make_replicas(STATE, settings, static_alerts=static_alerts))
    from gateway.simulator.station import SimLogger

    def probe(i: int) -> Probe:
        outlet = doc["outlets"][i]
        limits = {str(lim["factor"]): float(lim["value"]) for lim in outlet["limits"]}
        return Probe(SimLogger(outlet["mn"], outlet["password"], outlet["medium"], limits))

    probes = {1: probe(loggers), 2: probe(loggers + 1)}
    now = station_now()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    minutes_back = (now - start).total_seconds() / 60
    load_s = 420.0
    specs = plan_loggers(doc, fast, loggers - fast, over, load_s, minutes_back)
    out: dict[str, Any] = {
        "prefix": settings.topic_prefix,
        "fast_loggers": fast,
        "over_limit_loggers": len(over),
    }

    async def script() -> dict[str, Any]:
        async with Groups(settings) as groups:
            run = Run(console, settings, replicas, probes, groups, static_alerts)
            _log(console, "starting two replicas of each service")
            await start_all(run)
            _log(console, f"ready in {time.monotonic() - run.t0:.0f} s; load starts")
            ports = [replicas["gateway-1"].port, replicas["gateway-2"].port]
            spec = {"loggers": specs, "ports": ports, "start": start.isoformat()}
            ctx = multiprocessing.get_context("spawn")
            progress, stop_flag = ctx.Value("q", 0, lock=False), ctx.Event()
            tally_file = STATE / "loggers.json"
            loader = ctx.Process(
                target=loader_main, args=(spec, progress, stop_flag, str(tally_file))
            )
            loader.start()
            supervisor = asyncio.create_task(run.supervise())
            try:
                run.t0 = time.monotonic()
                with Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    TimeElapsedColumn(),
                    console=console,
                    transient=True,
                ) as bar:
                    task = bar.add_task("frames acked: 0", total=None)

                    async def show() -> None:
                        while True:
                            bar.update(task, description=f"frames acked: {progress.value}")
                            await asyncio.sleep(1)

                    shower = asyncio.create_task(show())
                    await asyncio.sleep(20)  # warm-up: every logger connected and sending
                    await run.faults_script()
                    await asyncio.sleep(10)  # a last stretch of load on the recovered stack
                    shower.cancel()
                _log(console, "load ends")
            finally:
                # also when the script failed: the loader must not outlive the run
                load_ended = time.monotonic()  # no new frame from here; in-flight ones finish
                stop_flag.set()
                await asyncio.to_thread(loader.join, ACK_TIMEOUT_S * 4 + 30)
                if loader.is_alive():
                    loader.terminate()
                    loader.join(10)
            drained = None
            lag_end: int | None = None
            lag_samples: list[tuple[float, int | None, int | None]] = []
            while time.monotonic() - load_ended < 90:
                lags = [await groups.lag(*run.group_of(s)) for s in ("alerts", "dispatch")]
                lag_samples.append((round(time.monotonic() - load_ended, 1), lags[0], lags[1]))
                if None not in lags:
                    lag_end = sum(x for x in lags if x is not None)
                    if lag_end == 0:
                        drained = time.monotonic() - load_ended
                        break
                await asyncio.sleep(1)
            supervisor.cancel()
            _log(console, f"lag {lag_end} after the load (0 after {_round(drained)} s)")
            return {
                "faults": run.faults,
                "unplanned": run.unplanned,
                "unplanned_exits": len(run.unplanned),
                "lag_end": lag_end,
                "lag_drained_s": _round(drained),
                "lag_samples_after_load": lag_samples,  # (s, alerts lag, dispatch lag)
                "probe_ids": probes[1].acked_ids + probes[2].acked_ids,
                "tally_file": str(tally_file),
            }

    measured = asyncio.run(script())
    tally = json.loads(Path(measured.pop("tally_file")).read_text())
    probe_ids = measured.pop("probe_ids")
    out.update(measured)
    _log(console, "reading monitoring.records, alerts.events, dispatch.events and the databases")
    records = asyncio.run(read_topic(settings, MONITORING_RECORDS))
    topic_ids = [records_pb2.MonitoringRecord.FromString(v).meta.event_id for v in records]
    counts = verdict.count_ids(topic_ids)
    acked_ids = tally["acked_ids"] + probe_ids
    alerts = [
        alerts_pb2.AlertEvent.FromString(v)
        for v in asyncio.run(read_topic(settings, ALERTS_EVENTS))
    ]
    opened = [
        (a.alert_id, a.meta.event_id) for a in alerts if a.change == alerts_pb2.ALERT_CHANGE_OPENED
    ]
    steps = [
        dispatch_pb2.DispatchEvent.FromString(v)
        for v in asyncio.run(read_topic(settings, DISPATCH_EVENTS))
    ]
    created = [(e.task_id, e.meta.event_id) for e in steps if e.kind == "TASK_CREATED"]
    alert_tasks = [(a, e.task_id) for e in steps if e.kind == "TASK_CREATED" for a in e.alert_ids]
    case_events = [(e.task_id, e.case_id) for e in steps if e.kind == "CASE_OPENED"]
    db = database_links(settings.dispatch_db, settings.casefile_db)
    out.update(
        {
            "frames_acked": len(acked_ids),
            "frames_acked_per_logger": tally["acked"],
            "resent": tally["resent"],
            "unacked_at_end": tally["unacked"],
            "failovers": tally["failovers"],
            "records_total": len(topic_ids),
            "records_distinct": len(counts),
            "lost": verdict.lost_frames(acked_ids, counts),
            "duplicate_copies": sum(c - 1 for c in counts.values()),
            "excess_duplicates": verdict.excess_duplicates(counts, tally["sends"]),
            "episodes": len({a for a, _ in opened}),
            "episodes_by_kind": dict(
                sorted(
                    Counter(
                        a.kind for a in alerts if a.change == alerts_pb2.ALERT_CHANGE_OPENED
                    ).items()
                )
            ),
            "episodes_opened_twice": verdict.opened_more_than_once(opened),
            "tasks": len({t for t, _ in created}),
            "tasks_in_db": db["tasks"],
            "tasks_opened_twice": verdict.opened_more_than_once(created)
            + verdict.shared_by_several(alert_tasks),
            "cases": db["cases"],
            "cases_opened_twice": verdict.shared_by_several(
                case_events + db["task_cases"] + db["case_tasks"]
            )
            + verdict.shared_by_several(db["case_alerts"]),
            "casefile_verify": casefile_verify(settings.casefile_db),
        }
    )
    return out
