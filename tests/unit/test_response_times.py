"""Response times from hand-built events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from liandong.events import to_timestamp
from liandong.response_times import percentile, summarise, timelines
from liandong.v1 import alerts_pb2, dispatch_pb2, envelope_pb2

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def alert(alert_id: str, minute: int) -> alerts_pb2.AlertEvent:
    return alerts_pb2.AlertEvent(
        meta=envelope_pb2.EventMeta(
            event_id=f"a-{alert_id}", processing_time=to_timestamp(T0 + timedelta(minutes=minute))
        ),
        alert_id=alert_id,
        change=alerts_pb2.ALERT_CHANGE_OPENED,
    )


def step(
    task: str, seq: int, minute: int, kind: str, status: str, county: str = "320115"
) -> dispatch_pb2.DispatchEvent:
    return dispatch_pb2.DispatchEvent(
        meta=envelope_pb2.EventMeta(
            event_id=f"{task}-{seq}", event_time=to_timestamp(T0 + timedelta(minutes=minute))
        ),
        task_id=task,
        kind=kind,
        status=status,
        alert_ids=["A1" if task == "t1" else "A2"],
        county=county,
        priority="P1",
        seq=seq,
    )


def test_stage_durations_per_task_and_county() -> None:
    events = [
        step("t1", 1, 1, "TASK_CREATED", "CREATED"),
        step("t1", 2, 9, "STATUS_CHANGED", "ASSIGNED"),
        step("t1", 3, 70, "STATUS_CHANGED", "ON_SITE"),
        step("t1", 3, 70, "STATUS_CHANGED", "ON_SITE"),  # redelivered: same event id
        step("t1", 4, 200, "STATUS_CHANGED", "COMPLETED"),
        step("t2", 1, 12, "TASK_CREATED", "CREATED"),
        step("t2", 2, 40, "STATUS_CHANGED", "ASSIGNED"),
        step("t2", 3, 41, "SLA_BREACHED", "ASSIGNED"),
    ]
    tasks = {t.task_id: t for t in timelines([alert("A1", 0), alert("A2", 10)], events)}
    t1, t2 = tasks["t1"], tasks["t2"]
    assert t1.duration("raised", "CREATED") == 60
    assert t1.duration("raised", "ON_SITE") == 70 * 60
    assert t1.duration("raised", "COMPLETED") == 200 * 60
    assert not t1.open and t2.open
    assert t2.duration("CREATED", "ASSIGNED") == 28 * 60 and t2.breaches == {"sla"}

    rows = {(r.group, r.stage): r for r in summarise(tasks.values())}
    acceptance = rows[("320115", "acceptance")]
    assert (acceptance.count, acceptance.p50_s, acceptance.max_s) == (2, 8 * 60, 28 * 60)
    assert rows[("320115", "response")].count == 1  # t2 never reached the site


def test_nearest_rank_percentile() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 90) == 9.0
    assert percentile(values, 100) == 10.0
    assert percentile([3.0], 99) == 3.0
