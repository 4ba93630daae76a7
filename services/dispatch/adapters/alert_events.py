"""`alerts.events` records (AlertEvent protobuf) as the domain's AlertSignal, plus the evidence
an officer reads on the phone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatch.domain.alerts import AlertChange, AlertSignal, Severity
from liandong.events import from_timestamp
from liandong.v1 import alerts_pb2

# The alerts service grades INFO < WARNING < MAJOR < CRITICAL.
SEVERITIES: Mapping[str, Severity] = {
    "INFO": Severity.LOW,
    "LOW": Severity.LOW,
    "WARNING": Severity.MEDIUM,
    "MEDIUM": Severity.MEDIUM,
    "MAJOR": Severity.HIGH,
    "HIGH": Severity.HIGH,
    "CRITICAL": Severity.CRITICAL,
}


class UnusableAlert(ValueError):
    pass


def signal_from_event(
    alert: alerts_pb2.AlertEvent, outlet: Mapping[str, Any] | None = None
) -> AlertSignal:
    """The outlet's registry entry fills in a position the alert does not carry."""
    if alert.change == alerts_pb2.ALERT_CHANGE_UNSPECIFIED:
        raise UnusableAlert("alert change unspecified")
    if not alert.meta.event_id or not alert.alert_id:
        raise UnusableAlert("alert event without event id or alert id")
    ids = (alert.meta.event_id, alert.alert_id, alert.outlet_id, alert.enterprise_id, alert.county)
    if any("\x00" in i for i in ids):
        # PostgreSQL cannot store NUL in text; no real identifier contains one
        raise UnusableAlert("NUL character in an identifier")
    severity = SEVERITIES.get(alert.severity.strip().upper())
    if severity is None:
        raise UnusableAlert(f"unknown severity {alert.severity!r}")
    lat, lon = alert.lat, alert.lon
    if lat == 0.0 and lon == 0.0:  # proto3 default: no position in the event
        lat = float((outlet or {}).get("lat") or 0.0)
        lon = float((outlet or {}).get("lon") or 0.0)
    has_position = not (lat == 0.0 and lon == 0.0)
    change = AlertChange(alerts_pb2.AlertChange.Name(alert.change).removeprefix("ALERT_CHANGE_"))
    return AlertSignal(
        event_id=alert.meta.event_id,
        alert_id=alert.alert_id,
        change=change,
        kind=alert.kind,
        severity=severity,
        outlet_id=alert.outlet_id,
        enterprise_id=alert.enterprise_id,
        county_code=alert.county,
        event_time=from_timestamp(alert.meta.event_time),
        factor=alert.factor or None,
        value=alert.value,
        limit=alert.limit,
        key_polluter=alert.key_polluter,
        repeat_violator=alert.repeat_violator,
        lat=lat if has_position else None,
        lon=lon if has_position else None,
        evidence=alert.explanation,
        source=alert.details.get("source", "online_monitoring"),
    )


def evidence_of(alert: alerts_pb2.AlertEvent) -> dict[str, Any]:
    """What the alerts service found, as the officer sees it in the task detail."""
    window = {}
    if alert.HasField("window_start"):
        window["window_start"] = from_timestamp(alert.window_start).isoformat()
    if alert.HasField("window_end"):
        window["window_end"] = from_timestamp(alert.window_end).isoformat()
    return {
        "alert_id": alert.alert_id,
        "kind": alert.kind,
        "severity": alert.severity,
        "factor": alert.factor,
        "value": alert.value,
        "limit": alert.limit,
        "unit": alert.unit,
        "peak": alert.peak,
        "hours_over": alert.hours_over,
        "valid_count": alert.valid_count,
        "rule": alert.rule,
        "clause": alert.clause,
        "limit_version": alert.limit_version,
        "explanation": alert.explanation,
        "record_refs": list(alert.record_refs),
        "mn": alert.mn,
        "details": dict(alert.details),
        "event_time": from_timestamp(alert.meta.event_time).isoformat(),
        **window,
    }
