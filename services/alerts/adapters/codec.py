"""Translation between the judge's AlertChanges and the alerts.events contract (AlertEvent).

Kinds and severities follow what dispatch routes on: kind EXCEEDANCE, PREWARNING, OFFLINE,
OVER_RANGE, CONSTANT_VALUE, ZERO_VALUE, DILUTION, TAMPERING_SUSPECTED or another upper-case
name; severity LOW, MEDIUM, HIGH or CRITICAL. The judge's own finding kind and rule stay in
`details` and `rule`, so nothing of the explanation is lost in the mapping.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from alerts.domain.episodes import AlertChange, ChangeKind
from alerts.domain.findings import FindingKind, Severity
from alerts.domain.registry import Registry
from liandong.events import deterministic_id, new_meta, to_timestamp
from liandong.v1 import alerts_pb2

CHANGE = {
    "OPENED": alerts_pb2.ALERT_CHANGE_OPENED,
    "UPDATED": alerts_pb2.ALERT_CHANGE_UPDATED,
    "ESCALATED": alerts_pb2.ALERT_CHANGE_ESCALATED,
    "CLEARED": alerts_pb2.ALERT_CHANGE_CLEARED,
    "AMENDED": alerts_pb2.ALERT_CHANGE_AMENDED,
}

F = FindingKind
KIND: dict[FindingKind, str] = {
    F.EXCEEDANCE_HOURLY: "EXCEEDANCE",
    F.EXCEEDANCE_DAILY: "EXCEEDANCE",
    F.PH_OUT_OF_RANGE: "EXCEEDANCE",
    # inside an approved start-up/shut-down mark: charged to the cap, not an exceedance
    F.EXCEEDANCE_EXEMPTED: "EXCEEDANCE_EXEMPTED",
    F.PREWARNING: "PREWARNING",
    F.CONSTANT_VALUE: "CONSTANT_VALUE",
    F.ZERO_VALUE: "ZERO_VALUE",
    F.NEGATIVE_VALUE: "NEGATIVE_VALUE",
    F.OVER_RANGE: "OVER_RANGE",
    F.O2_DILUTION: "DILUTION",
    F.SUDDEN_DROP: "SUDDEN_DROP",
    F.FLOW_MISMATCH: "FLOW_MISMATCH",
    F.LOGGER_OFFLINE: "OFFLINE",
    F.HOUR_MISSING: "HOUR_MISSING",
    F.HOUR_INCOMPLETE: "HOUR_INCOMPLETE",
    F.FUTURE_TIMESTAMP: "TIMESTAMP_ANOMALY",
    F.DUPLICATE_CONFLICT: "DUPLICATE_CONFLICT",
    F.BULK_BACKFILL: "BULK_BACKFILL",
    # a logger whose 折算 value does not follow from its own measured value and O2 is a
    # falsification signature (domain 2.1): looked at on site
    F.CORRECTED_MISMATCH: "TAMPERING_SUSPECTED",
    F.LOGGER_HOUR_MISMATCH: "LOGGER_HOUR_MISMATCH",
    F.PARAMETER_CHANGED: "PARAMETER_CHANGED",
}

SEVERITY: dict[Severity, str] = {
    Severity.INFO: "LOW",
    Severity.WARNING: "MEDIUM",
    Severity.MAJOR: "HIGH",
    Severity.CRITICAL: "CRITICAL",
}

# Values an explanation may carry, in order of preference, as the event's one `value`.
_VALUE_KEYS = ("corrected", "mean_measured", "mean", "peak", "value")


def change_revision(change: AlertChange) -> str:
    """What distinguishes this change of the episode from its other changes.

    An episode opens and escalates at most once, so those revisions are fixed: a replay after a
    crash re-derives the same event id even if processing time differs. Other changes are
    identified by their content (everything but processing time)."""
    if change.change in (ChangeKind.OPENED, ChangeKind.ESCALATED):
        return "1"
    doc = change.to_dict()
    doc.pop("at", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def alert_event(
    *,
    alert_id: str,
    change: str,
    revision: str,
    event_time: datetime,
    causation_id: str,
    **fields: object,
) -> alerts_pb2.AlertEvent:
    """An AlertEvent whose event id is derived from (episode, change, revision): a replayed
    judgement yields the same id, so consumers drop it as a duplicate."""
    outlet_id = str(fields.get("outlet_id", ""))
    event = alerts_pb2.AlertEvent(
        meta=new_meta(
            key=outlet_id,
            event_time=event_time,
            producer="alerts",
            event_id=deterministic_id("alert-event", alert_id, change, revision),
            causation_id=causation_id,
        ),
        alert_id=alert_id,
        change=CHANGE[change],
    )
    for name, value in fields.items():
        if value is None:
            continue
        if name in ("window_start", "window_end") and isinstance(value, datetime):
            getattr(event, name).CopyFrom(to_timestamp(value))
        elif name == "record_refs" and isinstance(value, list | tuple):
            event.record_refs.extend(str(v) for v in value)
        elif name == "details" and isinstance(value, dict):
            event.details.update({str(k): str(v) for k, v in value.items()})
        else:
            setattr(event, name, value)
    return event


def event_from_change(
    change: AlertChange, registry: Registry, causation_id: str = ""
) -> alerts_pb2.AlertEvent:
    """The AlertEvent for one AlertChange; enterprise, county and location from the registry."""
    ex = change.explanation
    outlet = registry.outlets.get(change.outlet_id)
    enterprise = registry.enterprises.get(outlet.enterprise_id) if outlet else None
    value = next(
        (
            float(v)
            for k in _VALUE_KEYS
            if isinstance(v := ex.values.get(k), int | float) and not isinstance(v, bool)
        ),
        change.peak_value,
    )
    limit = ex.limit
    limit_value = None
    if limit is not None:
        limit_value = limit.value if limit.value is not None else limit.high
    details: dict[str, object] = {
        "finding_kind": change.kind.value,
        "summary": ex.summary,
        "basis": ex.basis,
        "reason": change.reason,
        "periods_over": change.periods_over,
        "episode_start": change.episode_start.isoformat(),
        "last_period_end": change.last_period_end.isoformat(),
    }
    if change.peak_ratio is not None:
        details["peak_ratio"] = f"{change.peak_ratio:.4g}"
    if change.previous:
        details["previous"] = json.dumps(dict(change.previous), default=str, ensure_ascii=False)
    if change.withdrawn:
        details["withdrawn"] = "true"
    if ex.excluded:
        details["excluded"] = json.dumps(dict(ex.excluded), sort_keys=True)
    for k, v in ex.values.items():
        if v is not None:
            details[f"value.{k}"] = v
    if limit is not None and limit.low is not None:
        details["limit_low"] = limit.low
    lat = outlet.lat if outlet and outlet.lat is not None else (enterprise and enterprise.lat)
    lon = outlet.lon if outlet and outlet.lon is not None else (enterprise and enterprise.lon)
    return alert_event(
        alert_id=change.episode_id,
        change=change.change.value.upper(),
        revision=change_revision(change),
        event_time=ex.window_end,
        causation_id=causation_id or (ex.record_refs[-1] if ex.record_refs else ""),
        kind=KIND.get(change.kind, change.kind.value.upper()),
        severity=SEVERITY[change.severity],
        outlet_id=change.outlet_id,
        enterprise_id=outlet.enterprise_id if outlet else "",
        mn=outlet.mn if outlet else "",
        factor=change.factor,
        county=enterprise.county if enterprise else (outlet.county if outlet else ""),
        value=value,
        limit=limit_value,
        unit=limit.unit if limit else None,
        window_start=ex.window_start,
        window_end=ex.window_end,
        rule=ex.rule_id,
        clause=limit.clause if limit else None,
        limit_version=f"{limit.kind}:{limit.effective_from.isoformat()}" if limit else None,
        record_refs=list(ex.record_refs),
        explanation=ex.summary,
        details=details,
        valid_count=ex.valid_minutes,
        peak=change.peak_value,
        hours_over=round(change.hours_over),
        key_polluter=outlet.key_polluter if outlet else False,
        repeat_violator="repeat violator" in change.reason,
        lat=float(lat) if lat else None,
        lon=float(lon) if lon else None,
    )
