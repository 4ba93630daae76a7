"""The alerts worker as a real process on the real broker: HJ 212-shaped minute records in,
alert events out; a bad record is skipped; SIGKILL and restart lose no alert and publish no
second episode."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.domain.periods import CST
from liandong.settings import Settings
from liandong.stack import group_stable
from liandong.v1 import alerts_pb2

from .stations import (
    GAS_MN,
    NOX,
    alert_events,
    field_info_frame,
    gas_minutes,
    produce,
    produce_raw,
    publish_registry,
    record_from_frame,
    registry_doc,
    start_worker,
)

OPENED = alerts_pb2.ALERT_CHANGE_OPENED


def hour_start(hours_ago: int) -> datetime:
    now = datetime.now(CST)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)


def stamped(records: list, received: datetime) -> list:
    # The gateway stamps arrival time; these records "arrive" now, as a back-fill would.
    for r in records:
        r.received_at.FromDatetime(received.astimezone(UTC))
    return records


async def wait_ready(settings: Settings, proc: subprocess.Popen[bytes], log: Path) -> None:
    group = f"{settings.topic_prefix}liandong-alerts"
    for _ in range(120):
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        if await asyncio.to_thread(group_stable, settings, group):
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(log.read_text(errors="replace")[-3000:])


async def wait_for(
    settings: Settings, done: Callable[[list[alerts_pb2.AlertEvent]], bool], timeout: float = 90
) -> list[alerts_pb2.AlertEvent]:
    events: list[alerts_pb2.AlertEvent] = []
    for _ in range(int(timeout)):
        events = await alert_events(settings)
        if done(events):
            return events
        await asyncio.sleep(1)
    return events


def exceedances(events: list[alerts_pb2.AlertEvent]) -> list[alerts_pb2.AlertEvent]:
    return [e for e in events if e.kind == "EXCEEDANCE" and e.factor == NOX]


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


async def test_hourly_exceedance_from_hj212_records_and_a_bad_record_is_skipped(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    await publish_registry(settings, registry_doc())
    log = tmp_path / "alerts.log"
    proc = start_worker(settings, log, tick_s=2)
    try:
        await wait_ready(settings, proc, log)
        await produce_raw(settings, [(b"junk", b"\x00not a protobuf\xff")])
        h = hour_start(2)
        # One full hour at NOx 80 + (m % 7) * 0.1, O2 7.5 + (m % 3) * 0.1, then minutes
        # 0..5 of the next hour: the watermark (minute 5 = grace) closes the first hour.
        records = stamped(gas_minutes(h, range(66), nox=80.0), datetime.now(UTC))
        await produce(settings, records)
        events = await wait_for(settings, lambda ev: bool(exceedances(ev)))
        assert proc.poll() is None, "a bad record must not stop the worker"
    finally:
        stop(proc)
    [opened] = [e for e in exceedances(events) if e.change == OPENED]
    # Hand computation: mean NOx over minutes 0..59 = 80 + 0.1 * 174 / 60 = 80.29; mean O2 =
    # 7.5 + 0.1 * 60 / 60 = 7.6; corrected = 80.29 * (21 - 6) / (21 - 7.6) = 89.88 mg/m3.
    assert abs(opened.value - 89.88) < 0.01
    assert opened.limit == 50 and opened.unit == "mg/m3" and opened.clause == "NOx 50"
    assert opened.severity == "HIGH"  # 1.8x the limit: below the 2x critical ratio
    assert opened.outlet_id == "out-gas" and opened.county == "320115" and opened.key_polluter
    assert opened.valid_count == 60 and len(opened.record_refs) == 60
    assert opened.window_start.ToDatetime(tzinfo=UTC) == h.astimezone(UTC)
    assert opened.window_end.ToDatetime(tzinfo=UTC) == (h + timedelta(hours=1)).astimezone(UTC)
    # The record that completed the condition (minute 5 of the next hour) caused it.
    assert opened.meta.causation_id == records[65].meta.event_id
    assert "not judged" in log.read_text()


async def test_a_changed_instrument_parameter_in_3020_uploads_raises_an_alert(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    await publish_registry(settings, registry_doc())
    log = tmp_path / "alerts.log"
    proc = start_worker(settings, log, tick_s=2)
    try:
        await wait_ready(settings, proc, log)
        first, second = hour_start(3), hour_start(2)
        uploads = [
            record_from_frame(
                field_info_frame(GAS_MN, at, NOX, {"i13004": value, "i13010": "0.98"}),
                "out-gas",
                at + timedelta(seconds=5),
            )
            for at, value in ((first, "150.0"), (second, "120.0"))
        ]
        await produce(settings, uploads)

        def changed(ev: list[alerts_pb2.AlertEvent]) -> list[alerts_pb2.AlertEvent]:
            return [e for e in ev if e.kind == "PARAMETER_CHANGED"]

        events = await wait_for(settings, lambda ev: bool(changed(ev)))
    finally:
        stop(proc)
    [opened] = changed(events)
    assert (opened.change, opened.factor, opened.severity) == (OPENED, NOX, "HIGH")
    assert opened.outlet_id == "out-gas"
    assert list(opened.record_refs) == [u.meta.event_id for u in uploads]
    assert opened.details["value.previous"] == "150.0"
    assert opened.details["value.current"] == "120.0"
    assert opened.meta.causation_id == uploads[1].meta.event_id


async def test_sigkill_and_restart_lose_no_alert_and_open_no_second_episode(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    await publish_registry(settings, registry_doc())
    log = tmp_path / "alerts.log"
    h = hour_start(3)
    proc = start_worker(settings, log, tick_s=2)
    try:
        await wait_ready(settings, proc, log)
        # Hour h over the limit and the minutes that close it; and more: hour h + 1 goes on.
        first = stamped(gas_minutes(h, range(90), nox=80.0), datetime.now(UTC))
        await produce(settings, first)
        events = await wait_for(
            settings, lambda ev: any(e.change == OPENED for e in exceedances(ev))
        )
        assert any(e.change == OPENED for e in exceedances(events))
        os.killpg(proc.pid, signal.SIGKILL)  # no shutdown, no commit, no flush
        proc.wait(10)
        # While it is down: the rest of hour h + 1 over the limit and minutes closing it.
        second = stamped(gas_minutes(h, range(90, 126), nox=80.0), datetime.now(UTC))
        await produce(settings, second)
        proc = start_worker(settings, log, tick_s=2)
        await wait_ready(settings, proc, log)

        def two_hours(ev: list[alerts_pb2.AlertEvent]) -> bool:
            return any(e.hours_over == 2 for e in exceedances(ev))

        events = await wait_for(settings, two_hours, timeout=150)
    finally:
        stop(proc)
    exc = exceedances(events)
    assert any(e.hours_over == 2 for e in exc), [(e.change, e.hours_over) for e in exc]
    # One episode: the second hour joined it instead of opening a new one (state survived).
    assert len({e.alert_id for e in exc}) == 1
    opened_ids: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.change == OPENED:
            opened_ids[e.alert_id].add(e.meta.event_id)
    # Re-published changes (at-least-once) carry the same event id: no second OPENED id.
    assert all(len(ids) == 1 for ids in opened_ids.values()), opened_ids


def test_faust_s_topics_exist_and_are_led_before_the_worker_starts(
    isolated_settings: Settings,
) -> None:
    from kafka import KafkaAdminClient

    from alerts.adapters.faust_topics import ensure_internal_topics, internal_topics
    from liandong.replication import Replication

    topics = internal_topics(f"{isolated_settings.topic_prefix}liandong-alerts", "judge-state", 3)
    ensure_internal_topics(isolated_settings.kafka_bootstrap, topics, Replication(1, 1))
    ensure_internal_topics(isolated_settings.kafka_bootstrap, topics, Replication(1, 1))  # again
    admin = KafkaAdminClient(bootstrap_servers=isolated_settings.kafka_bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics(list(topics))}
    finally:
        admin.close()
    changelog = f"{isolated_settings.topic_prefix}liandong-alerts-judge-state-changelog"
    assert len(described[changelog]["partitions"]) == 3
    assert all(p["leader_id"] >= 0 for t in described.values() for p in t["partitions"])
