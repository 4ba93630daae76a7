"""OpenTelemetry response-time metrics, read through an in-memory MetricReader: each stage is
recorded once with its exact duration, and neither redelivery, a repeated phone call, a
repeated tick nor a restart records anything twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from dispatch.adapters.response_metrics import ResponseMetrics
from dispatch.domain.tasks import TaskState, task_id_for
from tests.unit.dispatch.harness import Harness, alert_event, build

TID = task_id_for("A1")
AT_SITE = (32.002, 118.8)  # 222 m north of the outlet
TASK = {"route": "JOINT_INSPECTION", "priority": "P2", "county": "320106"}  # MAJOR -> P2


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Harness, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    h = build(tmp_path, response_metrics=ResponseMetrics(meter))
    yield h, reader
    h.close()


def points(reader: InMemoryMetricReader, name: str) -> dict[frozenset[tuple[str, Any]], Any]:
    """The metric's data points by attribute set (cumulative since the start)."""
    data = reader.get_metrics_data()
    found: dict[frozenset[tuple[str, Any]], Any] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    for p in m.data.data_points:
                        found[frozenset(p.attributes.items())] = p
    return found


def stage_durations(reader: InMemoryMetricReader) -> dict[str, tuple[int, float]]:
    """stage -> (count, sum of seconds), checking every point carries the task's attributes."""
    out = {}
    for attrs, p in points(reader, "dispatch.stage.duration").items():
        a = dict(attrs)
        assert {k: a[k] for k in TASK} == TASK and set(a) == {"stage", *TASK}
        out[a["stage"]] = (p.count, p.sum)
    return out


async def status(h: Harness, person: str, state: TaskState, at: tuple[float, float] | None):
    return await h.service.update_status(TID, person, state, at)


async def test_each_stage_is_recorded_once_with_its_exact_duration(env) -> None:
    h, reader = env
    alert = alert_event("A1")  # event time T0 - 10 min; the task is created at T0
    await h.service.on_alert_event(alert)
    assert stage_durations(reader) == {"dispatch": (1, 600.0)}
    assert await h.service.on_alert_event(alert) is None  # redelivered
    assert stage_durations(reader) == {"dispatch": (1, 600.0)}

    h.clock.advance(minutes=20)
    for person in ("e1", "e2", "m1"):
        await h.service.accept(TID, person)
    h.clock.advance(minutes=10)
    await status(h, "e1", TaskState.EN_ROUTE, None)
    h.clock.advance(minutes=40)
    await status(h, "e1", TaskState.ON_SITE, AT_SITE)
    h.clock.advance(minutes=1)
    await status(h, "e1", TaskState.ON_SITE, AT_SITE)  # the phone sent it again
    await status(h, "e2", TaskState.ON_SITE, AT_SITE)  # second officer: no new stage
    await status(h, "m1", TaskState.SAMPLING, AT_SITE)
    h.clock.advance(minutes=119)
    await status(h, "e1", TaskState.COMPLETED, None)
    await h.service.on_alert_event(alert)  # redelivered again, after the end
    await h.service.tick()

    assert stage_durations(reader) == {
        "dispatch": (1, 600.0),  # raised T0 - 10 min, created T0
        "acceptance": (1, 1200.0),  # created T0, the last acceptance at +20 min
        "travel": (1, 3000.0),  # +20 -> e1's check-in at +70
        "response": (1, 4800.0),  # -10 -> +70
        "on site to done": (1, 7200.0),  # +70 -> +190
        "total": (1, 12000.0),  # -10 -> +190
    }
    assert points(reader, "dispatch.sla.breaches") == {}  # P2: 30 min, 8 h, 48 h all kept

    restarted = h.restart()
    await restarted.service.on_alert_event(alert)
    await restarted.service.tick()
    assert stage_durations(reader)["total"] == (1, 12000.0)


async def test_a_breach_is_counted_once_across_ticks_and_a_restart(env) -> None:
    h, reader = env
    await h.service.on_alert_event(alert_event("A1"))
    h.clock.advance(minutes=30)
    await h.service.tick()  # exactly due: not yet breached
    assert points(reader, "dispatch.sla.breaches") == {}
    h.clock.advance(minutes=1)
    await h.service.tick()
    await h.service.tick()
    restarted = h.restart()
    restarted.clock.advance(seconds=5)
    await restarted.service.tick()
    breaches = points(reader, "dispatch.sla.breaches")
    accept = frozenset({"clock": "ACCEPT", "route": "JOINT_INSPECTION", "priority": "P2"}.items())
    assert set(breaches) == {accept}
    assert breaches[accept].value == 1


async def test_no_ids_in_the_attributes(env) -> None:
    h, reader = env
    await h.service.on_alert_event(alert_event("A1"))
    h.clock.advance(hours=1)
    await h.service.tick()
    names = {"dispatch.stage.duration", "dispatch.sla.breaches"}
    keys = {k for n in names for attrs in points(reader, n) for k, _ in attrs}
    assert keys == {"stage", "route", "priority", "county", "clock"}
