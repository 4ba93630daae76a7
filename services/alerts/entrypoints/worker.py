"""The alerts faust worker: monitoring.records in, alerts.events out.

Delivery is at-least-once (faust's exactly-once mode has open duplicate bugs); effects are made
idempotent by deterministic episode and event ids and by episode state kept in a table with a
changelog, so a restarted worker neither loses an alert nor publishes a new duplicate episode.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import faust
from opentelemetry import trace

from alerts.adapters.codec import alert_event
from liandong.events import deterministic_id, from_timestamp
from liandong.registry.topics_io import RegistryView
from liandong.settings import Settings
from liandong.topics import ALERTS_EVENTS, MONITORING_RECORDS
from liandong.v1 import records_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer("liandong.alerts")


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        f"{settings.topic_prefix}liandong-alerts",
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        processing_guarantee="at_least_once",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        web_port=settings.alerts_web_port,
        web_host="127.0.0.1",
        datadir=settings.alerts_data_dir,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
    )
    from faust.contrib.opentelemetry import setup_opentelemetry

    setup_opentelemetry(app)
    records = app.topic(
        settings.topic(MONITORING_RECORDS),
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
    )
    alerts_out = app.topic(
        settings.topic(ALERTS_EVENTS),
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
    )
    # Open episodes by "outlet|factor|kind": at most one open alert each (changelogged).
    episodes = app.Table("episodes", default=None, partitions=settings.partitions)
    view = RegistryView(settings)

    @app.task
    async def load_registry() -> None:
        await view.start(follow=True)
        log.info("registry loaded: %d outlets", len(view.entities["outlet"]))

    @app.agent(records)
    async def judge(stream: Any) -> Any:
        async for event in stream.events():
            await view.loaded.wait()
            try:
                record = records_pb2.MonitoringRecord.FromString(event.value)
            except Exception:
                # A bad record never stops the stream; it is logged and counted.
                log.exception("undecodable record at offset %s", event.message.offset)
                continue
            for change in judge_record(record, view, episodes):
                await alerts_out.send(
                    key=change.outlet_id.encode(), value=change.SerializeToString()
                )
            yield record.meta.event_id

    app.liandong_view = view  # type: ignore[attr-defined]
    return app


def judge_record(
    record: records_pb2.MonitoringRecord, view: RegistryView, episodes: Any
) -> list[Any]:
    """Foundation rule: a measured value above the limit in force opens an episode."""
    outlet = view.entities["outlet"].get(record.outlet_id)
    if outlet is None:
        return []
    enterprise = view.entities["enterprise"].get(str(outlet.get("enterprise")), {})
    event_time = from_timestamp(record.data_time)
    changes = []
    for reading in record.factors:
        limit = _limit_in_force(outlet, reading.code, event_time)
        if limit is None or "value" not in limit:
            continue
        value = _value(reading)
        if value is None or value <= float(limit["value"]):
            continue
        key = f"{record.outlet_id}|{reading.code}|EXCEEDANCE"
        if episodes.get(key) is not None:
            continue
        start = event_time.replace(minute=0, second=0, microsecond=0)
        alert_id = deterministic_id(
            "episode", record.outlet_id, reading.code, "EXCEEDANCE", start.isoformat()
        )
        episodes[key] = alert_id
        changes.append(
            alert_event(
                alert_id=alert_id,
                change="OPENED",
                revision="1",
                event_time=event_time,
                causation_id=record.meta.event_id,
                kind="EXCEEDANCE",
                severity="MAJOR",
                outlet_id=record.outlet_id,
                enterprise_id=str(outlet.get("enterprise", "")),
                mn=record.mn,
                factor=reading.code,
                county=str(enterprise.get("county", "")),
                value=value,
                limit=float(limit["value"]),
                unit=str(limit.get("unit", "")),
                window_start=event_time,
                window_end=event_time,
                rule="foundation.value_above_limit",
                clause=str(limit.get("clause", "")),
                limit_version=f"{limit.get('kind')}:{limit.get('effective_from')}",
                record_refs=[record.meta.event_id],
                explanation=(
                    f"{reading.code} {value:g} {limit.get('unit', '')} above limit {limit['value']}"
                ),
                key_polluter=bool(enterprise.get("key_polluter", False)),
                lat=float(outlet.get("lat", 0.0) or 0.0),
                lon=float(outlet.get("lon", 0.0) or 0.0),
            )
        )
    return changes


def _value(reading: records_pb2.FactorReading) -> float | None:
    for name in ("zs_avg", "avg", "zs_rtd", "rtd"):
        if reading.HasField(name):
            return float(getattr(reading, name))
    return None


def _limit_in_force(outlet: dict[str, Any], factor: str, at: datetime) -> dict[str, Any] | None:
    day = at.astimezone(UTC).date().isoformat()
    for limit in outlet.get("limits", []):
        if limit.get("factor") != factor:
            continue
        start = str(limit.get("effective_from", ""))[:10]
        end = str(limit.get("effective_to", "") or "9999-12-31")[:10]
        if start <= day <= end:
            return dict(limit)
    return None


def run(settings: Settings) -> None:
    from liandong.telemetry import setup_telemetry

    telemetry = setup_telemetry("alerts")
    app = create_app(settings)
    try:
        app.main()
    finally:
        telemetry.shutdown()
