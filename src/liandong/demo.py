"""`make demo`: one exceedance from a data logger to a case file, stage by stage, with timings."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from rich.console import Console
from rich.table import Table

from liandong.events import from_timestamp
from liandong.registry.document import RegistryDocument
from liandong.registry.topics_io import publish
from liandong.settings import ROOT, Settings
from liandong.stack import Stack, delete_prefixed_topics
from liandong.topics import ALERTS_EVENTS, DISPATCH_EVENTS, MONITORING_RECORDS, ensure_topics
from liandong.v1 import alerts_pb2, casefile_pb2, casefile_pb2_grpc, dispatch_pb2, records_pb2

console = Console()
REGISTRY = ROOT / "deploy" / "registry" / "demo.yaml"


@dataclass
class Observed:
    records: dict[str, records_pb2.MonitoringRecord]
    alerts: list[alerts_pb2.AlertEvent]
    dispatch: list[dispatch_pb2.DispatchEvent]
    cases: list[casefile_pb2.Case]


async def read_topic(settings: Settings, topic: str) -> list[bytes]:
    """Every value currently in a topic (group-less read to the end offsets)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(topic, p) for p in cluster.partitions_for_topic(topic) or ()]
        if not parts:
            return []
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        values: list[bytes] = []
        while any([await consumer.position(tp) < ends[tp] for tp in parts]):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                values.extend(r.value for r in records if r.value is not None)
        return values
    finally:
        await consumer.stop()


async def list_cases(settings: Settings) -> list[casefile_pb2.Case]:
    import grpc

    from liandong.tokens.operator import operator_metadata

    async with grpc.aio.insecure_channel(settings.casefile_grpc) as channel:
        reply = await casefile_pb2_grpc.CaseFileStub(channel).ListCases(
            casefile_pb2.ListCasesRequest(page_size=100), timeout=5, metadata=operator_metadata()
        )
        return list(reply.cases)


async def observe(settings: Settings) -> Observed:
    records = {
        r.meta.event_id: r
        for r in map(
            records_pb2.MonitoringRecord.FromString,
            await read_topic(settings, settings.topic(MONITORING_RECORDS)),
        )
    }
    alerts = [
        alerts_pb2.AlertEvent.FromString(v)
        for v in await read_topic(settings, settings.topic(ALERTS_EVENTS))
    ]
    dispatch = [
        dispatch_pb2.DispatchEvent.FromString(v)
        for v in await read_topic(settings, settings.topic(DISPATCH_EVENTS))
    ]
    return Observed(records, alerts, dispatch, await list_cases(settings))


async def wait_for_case(settings: Settings, stack: Stack, timeout: float = 90.0) -> Observed:
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        seen = await observe(settings)
        if seen.cases and any(e.kind == "CASE_OPENED" for e in seen.dispatch):
            return seen
        if time.monotonic() > deadline:
            return seen
        await asyncio.sleep(1)


def scenario_start() -> datetime:
    """The hour boundary two hours ago, on the stations' clock (Asia/Shanghai)."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def _ms(later: datetime, earlier: datetime) -> str:
    return f"+{(later - earlier).total_seconds() * 1000:,.0f} ms"


def stage_table(seen: Observed) -> Table:
    table = Table(title="Exceedances, stage by stage", show_lines=False)
    for col in ("stage", "what happened", "at (UTC)", "stage took"):
        table.add_column(col)
    for case in seen.cases:
        task_id = next((e.task_id for e in seen.dispatch if e.case_id == case.case_id), None)
        task_events = [e for e in seen.dispatch if e.task_id == task_id]
        created = min(task_events, key=lambda e: e.seq) if task_events else None
        alert = next((a for a in seen.alerts if created and a.alert_id in created.alert_ids), None)
        record = seen.records.get(alert.meta.causation_id) if alert else None
        if not (created and alert and record):
            continue
        received = from_timestamp(record.received_at)
        judged = from_timestamp(alert.meta.processing_time)
        opened = from_timestamp(case.opened_at)
        published = max(from_timestamp(e.meta.processing_time) for e in task_events)
        table.add_row(
            "1 record",
            f"gateway decoded CN={record.cn} from MN {record.mn}, acked 9014 after Kafka ack",
            received.strftime("%H:%M:%S.%f")[:-3],
            "",
        )
        table.add_row(
            "2 alert",
            f"{alert.kind} {alert.factor} {alert.value:.1f} > {alert.limit:g} {alert.unit} "
            f"({alert.clause})",
            judged.strftime("%H:%M:%S.%f")[:-3],
            _ms(judged, received),
        )
        team = ", ".join(f"{m.name} ({m.role.lower()})" for m in created.team)
        table.add_row(
            "3 case",
            f"team chosen, {case.case_id} {case.state} for {case.enterprise_id}: {team}",
            opened.strftime("%H:%M:%S.%f")[:-3],
            _ms(opened, judged),
        )
        table.add_row(
            "4 task",
            f"{created.task_id} {created.priority}: "
            + ", ".join(e.kind for e in sorted(task_events, key=lambda e: e.seq)),
            published.strftime("%H:%M:%S.%f")[:-3],
            _ms(published, opened),
        )
        table.add_row("", "[b]record to case[/b]", "", _ms(opened, received))
        table.add_section()
    return table


def trace_summary(traces_file: Path) -> list[str]:
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if traces_file.exists():
        for line in traces_file.read_text(encoding="utf-8").splitlines():
            span = json.loads(line)
            by_trace[span["trace_id"]].append(span)
    out = []
    for trace_id, spans in by_trace.items():
        services = {s["service"] for s in spans}
        if {"gateway", "alerts", "dispatch", "casefile"} <= services:
            spans.sort(key=lambda s: s["start_ns"])
            chain = " -> ".join(dict.fromkeys(f"{s['service']}" for s in spans))
            out.append(f"trace {trace_id}: {len(spans)} spans across {chain}")
    return out


async def demo_async(stack: Stack) -> int:
    settings = stack.settings
    console.rule("[b]Liandong demo[/b]: an HJ 212 exceedance becomes a joint inspection and a case")
    console.print(f"topics ensured under prefix [cyan]{settings.topic_prefix}[/cyan]")
    ensure_topics(settings)
    raw = REGISTRY.read_bytes()
    report = await publish(settings, RegistryDocument.model_validate(yaml.safe_load(raw)), raw)
    console.print(f"registry published from {REGISTRY.relative_to(ROOT)}: {dict(report.published)}")
    stack.start()
    started = time.monotonic()
    with console.status("starting gateway, alerts (faust), dispatch, casefile ..."):
        await stack.wait_ready()
    console.print(
        f"services ready in {time.monotonic() - started:.1f} s: "
        f"ports gateway {settings.gateway_port}, "
        f"casefile gRPC {settings.casefile_grpc}"
    )
    from gateway.simulator.station import run_scenario

    with console.status(
        "simulator: a flue-gas and a wastewater logger send 70 minutes of minute data "
        "(CN=2051), both over a limit"
    ):
        # Judgement is hourly: a full hour (from the hour boundary two hours ago) plus the
        # minutes whose watermark closes it.
        sim = await run_scenario(
            REGISTRY,
            settings.gateway_host,
            settings.gateway_port,
            "exceedance",
            minutes=70,
            start=scenario_start(),
        )
    console.print(f"simulator: {sim.__rich__()}")
    with console.status("waiting for alert -> task -> case ..."):
        seen = await wait_for_case(settings, stack)
    console.print(
        f"observed {len(seen.records)} record(s), {len(seen.alerts)} alert event(s), "
        f"{len(seen.dispatch)} dispatch event(s), {len(seen.cases)} case(s)"
    )
    if not seen.cases:
        console.print("[red]no case was opened[/red]; logs are in " + str(stack.state_dir))
        return 1
    console.print(stage_table(seen))
    from liandong.response_times import summarise, timelines

    for row in summarise(timelines(seen.alerts, seen.dispatch), by="all"):
        console.print(
            f"response time, {row.stage}: {row.count} task(s), p50 {row.p50_s * 1000:,.0f} ms "
            "(what `liandong response-times` reports to managers)"
        )
    for line in trace_summary(stack.traces_file or Path("/nonexistent"))[:3]:
        console.print(line)
    console.print(
        "[green]done[/green]: `liandong cases list` shows cases of a running stack (make up)."
    )
    return 0


def run_demo(keep_running: bool = False) -> int:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    settings = Settings()
    stack = Stack.isolated(
        ROOT / ".state" / "demo" / stamp, f"demo-{stamp}.", settings.kafka_bootstrap
    )

    def _terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    code = 1
    try:
        code = asyncio.run(demo_async(stack))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        code = 130
    finally:
        with console.status("stopping services ..."):
            stack.stop()
        try:
            delete_prefixed_topics(stack.settings)
        except Exception as err:  # the broker may already be gone on Ctrl-C
            console.print(f"could not delete demo topics: {err}")
        console.print(f"services stopped; logs and traces in {stack.state_dir.relative_to(ROOT)}")
    return code
