"""The worker's pieces without a broker: record mapping, AlertEvent mapping and ids, the
partitioned judge (state encoding, partitions, ticks), and the timeout that waits for a
quiet logger."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts.adapters.codec import event_from_change
from alerts.adapters.records import readings_from_record
from alerts.domain.judge import Judge
from alerts.domain.readings import RecordKind
from alerts.entrypoints.judging import PartitionedJudge, decode_state, encode_state
from liandong.v1 import alerts_pb2

from .hj212 import NOX, O2, nox_minutes, record
from .scenario import SO2, T0, closer, gas_hour, minute, registry

LIMITS = [
    {
        "factor": NOX,
        "value": 50,
        "unit": "mg/m3",
        "kind": "ultra_low",
        "clause": "NOx 50",
        "effective_from": "2024-01-01T00:00:00",
    }
]


def records(start: datetime, minutes: range, nox: float) -> list:
    return [
        record(f, start + timedelta(minutes=m + 1))
        for m, f in zip(minutes, nox_minutes(start, minutes, nox), strict=True)
    ]


def test_a_minute_record_becomes_one_reading_per_factor() -> None:
    [rec] = records(T0, range(1), 80.0)
    readings = readings_from_record(rec, datetime.now(UTC))
    assert [(r.factor, r.avg, r.flag, r.kind) for r in readings] == [
        (O2, 7.5, "N", RecordKind.MINUTE),
        (NOX, 80.0, "N", RecordKind.MINUTE),
    ]
    assert all(r.data_time == T0 and r.record_ref == rec.meta.event_id for r in readings)
    assert readings[0].received_at == T0 + timedelta(minutes=1)


def test_only_the_numbers_a_factor_carries_are_set_and_zero_is_a_value() -> None:
    [rec] = records(T0, range(1), 80.0)
    nox = rec.factors[1]
    nox.ClearField("avg")
    nox.rtd = 0.0  # present and zero: not the same as absent
    nox.zs_avg = 61.25
    rec.received_at.FromDatetime(datetime(2024, 3, 1, 8, 1, 2, 345678))  # naive = UTC
    [_, reading] = readings_from_record(rec, datetime.now(UTC))
    assert (reading.rtd, reading.avg, reading.zs_avg) == (0.0, None, 61.25)
    assert (reading.min, reading.max, reading.cou, reading.zs_rtd) == (None, None, None, None)
    assert reading.received_at == datetime(2024, 3, 1, 8, 1, 2, 345678, tzinfo=UTC)


def test_a_command_record_carries_no_readings() -> None:
    [rec] = records(T0, range(1), 80.0)
    rec.cn = "9014"
    assert readings_from_record(rec, datetime.now(UTC)) == []


def judged_hour() -> tuple[PartitionedJudge, list]:
    pj = PartitionedJudge.create(registry(limits=LIMITS))
    changes = []
    now = T0 + timedelta(hours=1, minutes=6)
    for rec in records(T0, range(66), 80.0):
        changes += pj.on_record(rec, 2, now, lambda oid: None)
    return pj, changes


def test_an_opened_exceedance_maps_to_the_dispatch_contract() -> None:
    pj, changes = judged_hour()
    [opened] = [c for c in changes if c.kind.value == "exceedance_hourly"]
    event = event_from_change(opened, pj.registry, "rec-1")
    assert event.kind == "EXCEEDANCE" and event.change == alerts_pb2.ALERT_CHANGE_OPENED
    assert event.severity == "HIGH"  # MAJOR: 1.8x the limit, below the 2x critical ratio
    assert event.county == "320506" and event.key_polluter and event.enterprise_id == "ENT-1"
    assert event.mn == "MN-GAS-0001" and event.factor == NOX and event.limit == 50
    assert abs(event.value - 89.88) < 0.01  # 80.29 * 15 / 13.4
    assert event.meta.causation_id == "rec-1" and event.meta.key == "OUT-G1"
    assert event.details["finding_kind"] == "exceedance_hourly"
    assert event.rule == "LD-EXC-H/1" and event.clause == "NOx 50"
    assert event.valid_count == 60 and event.hours_over == 1
    # A second rendering (a replay after a crash, later processing time) has the same id.
    again = event_from_change(opened, pj.registry, "rec-2")
    assert again.meta.event_id == event.meta.event_id


def test_state_survives_encoding_and_continues_the_same_episode() -> None:
    pj, _ = judged_hour()
    [(oid, partition, raw)] = pj.take_dirty()
    assert (oid, partition) == ("OUT-G1", 2) and decode_state(raw)[0] == 2
    # A fresh worker loads the stored state and judges the next hour into the same episode.
    fresh = PartitionedJudge.create(registry(limits=LIMITS))
    t1 = T0 + timedelta(hours=1)
    changes = []
    for rec in records(t1, range(6, 66), 80.0):
        changes += fresh.on_record(rec, 2, t1 + timedelta(hours=1, minutes=6), {oid: raw}.get)
    exc = [c for c in changes if c.kind.value == "exceedance_hourly"]
    assert [c.change.value for c in exc] == ["updated"] and exc[0].periods_over == 2


def test_encoding_round_trips_the_judge_state() -> None:
    judge = Judge(registry())
    for r in [*gas_hour(T0, 40.0, 9.0), *closer(T0)]:
        judge.on_reading(r, r.received_at)
    doc = judge.export_outlet("OUT-G1")
    assert doc is not None
    assert decode_state(encode_state(1, doc)) == (1, doc)
    assert doc["hugging"] == {SO2: [[int(T0.timestamp() // 3600), 50.0, 35.0]]}


def test_encoding_round_trips_flow_cou_and_old_state_without_it() -> None:
    judge = Judge(registry())
    for m in range(3):
        t = T0 + timedelta(minutes=m)
        r = minute("w00000", t, 10.0, outlet="OUT-W1", mn="MN-WATER-0001")
        judge.on_reading(replace(r, cou=0.6), r.received_at)
    doc = judge.export_outlet("OUT-W1")
    assert doc is not None
    [window] = doc["windows"]
    assert window["cous"][:4] == [0.6, 0.6, 0.6, None]
    assert decode_state(encode_state(1, doc)) == (1, doc)
    for w in doc["windows"]:
        w.pop("cous")
    doc.pop("hugging")
    judge.import_outlet(doc)  # state written before Cou and limit hugging were kept
    assert judge.states["OUT-W1"].windows[("w00000", int(T0.timestamp() // 3600))].cous is None


def test_forget_and_retain_follow_the_partitions_held() -> None:
    pj, _ = judged_hour()
    [(oid, _, raw)] = pj.take_dirty()
    pj.retain({0, 1}, [(oid, raw)])
    assert pj.judge.states == {}  # partition 2 is not held: not judged here
    pj.retain({2}, [(oid, raw)])
    assert set(pj.judge.states) == {"OUT-G1"} and pj.partition_of == {"OUT-G1": 2}


def test_tick_marks_outlets_it_changed_and_raises_offline() -> None:
    pj, _ = judged_hour()
    pj.take_dirty()
    last = T0 + timedelta(hours=1, minutes=6)  # the last record's arrival
    assert pj.tick(last + timedelta(minutes=5)) == []
    changes = pj.tick(last + timedelta(minutes=21))  # offline after 20 minutes
    assert [c.kind.value for c in changes if c.change.value == "opened"] == ["logger_offline"]
    assert [oid for oid, _, _ in pj.take_dirty()] == ["OUT-G1"]


def test_the_timeout_does_not_close_an_hour_while_records_still_arrive() -> None:
    judge = Judge(registry())
    readings = list(gas_hour(T0, 80.0, 9.0, minutes=range(30)))
    # Back-filled 3 hours late, still arriving: the hour is long past its timeout.
    arrival = T0 + timedelta(hours=3)
    late = [r.__class__(**{**_fields(r), "received_at": arrival}) for r in readings]
    for r in late:
        judge.on_reading(r, arrival)
    assert judge.on_tick(arrival + timedelta(seconds=30)) == []
    assert judge.states["OUT-G1"].closed_through == int(T0.timestamp() // 3600) - 1
    # Quiet for a minute: the timeout closes the hour (30 minutes: not a valid hour).
    changes = judge.on_tick(arrival + timedelta(seconds=61))
    assert judge.states["OUT-G1"].closed_through >= int(T0.timestamp() // 3600)
    assert any(c.kind.value == "hour_incomplete" for c in changes)


def _fields(r: object) -> dict:
    return {name: getattr(r, name) for name in r.__slots__}  # type: ignore[attr-defined]
