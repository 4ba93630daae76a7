"""The alert signal dispatch consumes: one change of one alert episode from `alerts.events`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum


class AlertChange(StrEnum):
    OPENED = "OPENED"
    UPDATED = "UPDATED"
    ESCALATED = "ESCALATED"
    CLEARED = "CLEARED"
    AMENDED = "AMENDED"


class AlertKind(StrEnum):
    """Kinds the alerts service emits today. Dispatch keeps unknown kinds as plain strings
    (see `parse_kind`) so a newer alerts service never breaks dispatch."""

    EXCEEDANCE = "EXCEEDANCE"
    PREWARNING = "PREWARNING"
    DEVICE_FAULT = "DEVICE_FAULT"
    OFFLINE = "OFFLINE"
    OVER_RANGE = "OVER_RANGE"
    CONSTANT_VALUE = "CONSTANT_VALUE"
    ZERO_VALUE = "ZERO_VALUE"
    DILUTION = "DILUTION"
    TAMPERING_SUSPECTED = "TAMPERING_SUSPECTED"
    PARAMETER_CHANGED = "PARAMETER_CHANGED"


class Severity(IntEnum):
    """Ordered so policies can say "at least MEDIUM"."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


def parse_kind(raw: str) -> str:
    """Known kinds become `AlertKind` members; anything else stays an upper-case string."""
    name = raw.strip().upper()
    try:
        return AlertKind(name)
    except ValueError:
        return name


def parse_severity(raw: str | int) -> Severity:
    if isinstance(raw, int):
        return Severity(raw)
    return Severity[raw.strip().upper()]


@dataclass(frozen=True, slots=True)
class AlertSignal:
    """One alert-episode change. `event_id` identifies this change (idempotency);
    `alert_id` identifies the episode across its changes."""

    event_id: str
    alert_id: str
    change: AlertChange
    kind: str
    severity: Severity
    outlet_id: str
    enterprise_id: str
    county_code: str
    event_time: datetime
    factor: str | None = None
    value: float | None = None
    limit: float | None = None
    key_polluter: bool = False
    repeat_violator: bool = False
    lat: float | None = None
    lon: float | None = None
    evidence: str = ""
    source: str = "online_monitoring"
