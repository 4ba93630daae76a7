"""The whole path on the real broker: HJ 212 over TCP -> gateway -> alerts (faust) -> dispatch
-> casefile (gRPC, SQLite), each service a real process; the case exists and one trace links
the casefile's OpenCase span back to the gateway's frame span through all four services."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from gateway.simulator.station import loggers_from_registry, scenario_values
from liandong.demo import observe
from liandong.registry.document import RegistryDocument
from liandong.registry.topics_io import publish
from liandong.settings import Settings
from liandong.stack import Stack

REGISTRY = Path(__file__).resolve().parents[2] / "deploy" / "registry" / "demo.yaml"


def ancestry(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    chain = [span]
    while chain[-1]["parent_id"] and chain[-1]["parent_id"] in by_id:
        chain.append(by_id[chain[-1]["parent_id"]])
    return chain


async def test_exceedance_becomes_a_case_with_one_trace(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    stack = Stack.isolated(
        tmp_path / "stack", isolated_settings.topic_prefix, isolated_settings.kafka_bootstrap
    )
    raw = REGISTRY.read_bytes()
    await publish(stack.settings, RegistryDocument.model_validate(yaml.safe_load(raw)), raw)
    stack.start()
    try:
        await stack.wait_ready(timeout=120)
        from gateway.simulator.station import run_scenario
        from liandong.demo import scenario_start

        # Exceedance is judged on valid hourly means (gas) and daily means (water): a full
        # hour from an hour boundary plus the minutes whose watermark closes it (grace 5 min).
        report = await run_scenario(
            REGISTRY,
            "127.0.0.1",
            stack.settings.gateway_port,
            "exceedance",
            minutes=70,
            start=scenario_start(),
        )
        assert report.acked == report.sent and report.sent >= 140 and not report.unacked

        def power_case_opened(seen: Any) -> bool:
            exceeded = any(
                a.kind == "EXCEEDANCE" and a.outlet_id == "out-jn-power-1" for a in seen.alerts
            )
            cases = {c.case_id for c in seen.cases if c.outlet_id == "out-jn-power-1"}
            opened = any(e.kind == "CASE_OPENED" and e.case_id in cases for e in seen.dispatch)
            return exceeded and opened

        seen = None
        for _ in range(120):
            seen = await observe(stack.settings)
            if power_case_opened(seen):
                break
            await asyncio.sleep(1)
        assert seen is not None
        await asyncio.sleep(3)  # let alerts still in flight land before the last look
        seen = await observe(stack.settings)
    finally:
        stack.stop()

    # The flue-gas logger's NOx (a21002, 50 mg/m3, the first limited factor) was at 1.6x its
    # limit from minute 1: 80 mg/m3 at O2 7.5 %, corrected to 88.9 mg/m3 at the reference 6 %,
    # so the first hour (59 of 60 minutes over) is a valid hourly mean above the limit. The
    # wastewater COD is judged on a daily mean, and 70 minutes make no valid day: no
    # exceedance for it.
    exceeded = {(a.outlet_id, a.factor) for a in seen.alerts if a.kind == "EXCEEDANCE"}
    assert exceeded == {("out-jn-power-1", "a21002")}
    # The rule, computed here from the values the simulator sent (as the frames carry them,
    # two decimals): the hourly mean of NOx over the 60 valid minutes, corrected with the
    # hourly mean of O2 to the reference 6 %: mean x (21 - 6) / (21 - mean O2).
    logger = next(lg for lg in loggers_from_registry(REGISTRY) if lg.medium == "gas")
    sent = [scenario_values(logger, "exceedance", m) for m in range(60)]
    nox_mean = sum(float(f"{v['a21002']:.2f}") for v in sent) / 60
    o2_mean = sum(float(f"{v['a19001']:.2f}") for v in sent) / 60
    expected = nox_mean * (21 - 6) / (21 - o2_mean)
    assert 85 < expected < 92  # about 80 mg/m3 at O2 7.5 %, i.e. 88.9 corrected
    nox = next(a for a in seen.alerts if a.kind == "EXCEEDANCE")
    assert abs(nox.value - expected) < 0.01 and nox.valid_count == 60 and nox.limit == 50
    # No tampering signature in honest (noisy) data.
    assert not [a for a in seen.alerts if a.kind == "CONSTANT_VALUE"]
    power_cases = [c for c in seen.cases if c.outlet_id == "out-jn-power-1"]
    assert len(power_cases) == 1
    power = next(c for c in seen.cases if c.outlet_id == "out-jn-power-1")
    assert power.state == "OPENED" and power.county == "320115"
    roles = sorted(p.role for p in power.team)
    assert roles == ["ENFORCEMENT", "ENFORCEMENT", "MONITORING"]
    task_id = next(e.task_id for e in seen.dispatch if e.case_id == power.case_id)
    kinds = [e.kind for e in sorted(seen.dispatch, key=lambda e: e.seq) if e.task_id == task_id]
    steps = iter(kinds)  # the task's steps, in order (other steps may come between)
    assert all(k in steps for k in ("TASK_CREATED", "TEAM_PROPOSED", "CASE_OPENED")), kinds

    spans = [json.loads(line) for line in (stack.traces_file or Path()).read_text().splitlines()]
    by_trace: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for span in spans:
        by_trace[span["trace_id"]][span["span_id"]] = span
    open_case_servers = [
        s
        for s in spans
        if s["service"] == "casefile" and s["name"].endswith("/OpenCase") and s["kind"] == "SERVER"
    ]
    assert len(open_case_servers) == len(seen.cases)
    for server in open_case_servers:
        chain = ancestry(server, by_trace[server["trace_id"]])
        services_root_first = [s["service"] for s in reversed(chain)]
        # Collapse repeats: the path must pass through the services in flow order.
        path = [
            svc
            for i, svc in enumerate(services_root_first)
            if i == 0 or svc != services_root_first[i - 1]
        ]
        assert path == ["gateway", "alerts", "dispatch", "casefile"], [
            (s["service"], s["name"]) for s in reversed(chain)
        ]
        assert chain[-1]["name"] == "hj212 frame"
