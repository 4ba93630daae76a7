"""Translation between Kafka records and the alerts service's messages."""

from __future__ import annotations

from datetime import datetime

from liandong.events import deterministic_id, new_meta, to_timestamp
from liandong.v1 import alerts_pb2

CHANGE = {
    "OPENED": alerts_pb2.ALERT_CHANGE_OPENED,
    "UPDATED": alerts_pb2.ALERT_CHANGE_UPDATED,
    "ESCALATED": alerts_pb2.ALERT_CHANGE_ESCALATED,
    "CLEARED": alerts_pb2.ALERT_CHANGE_CLEARED,
    "AMENDED": alerts_pb2.ALERT_CHANGE_AMENDED,
}


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
