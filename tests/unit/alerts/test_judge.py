from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.domain.anomalies import AnomalyConfig
from alerts.domain.episodes import AlertChange
from alerts.domain.judge import Judge, JudgeConfig, replay
from alerts.domain.readings import Reading
from alerts.domain.registry import registry_from_dict
from tests.unit.alerts.scenario import (
    COD,
    O2,
    SO2,
    T0,
    closer,
    gas_hour,
    minute,
    registry,
    registry_doc,
)

# Constant/zero detectors are tested on their own; here they would add noise to flat test data.
QUIET = JudgeConfig(anomalies=AnomalyConfig(constant_minutes=10_000, zero_minutes=10_000))


def run(judge: Judge, readings: list[Reading]) -> list[AlertChange]:
    out: list[AlertChange] = []
    for r in readings:
        out += judge.on_reading(r, r.received_at)
    return out


def summary(changes: list[AlertChange]) -> list[tuple[str, str, str]]:
    return [(c.change.value, c.kind.value, c.factor) for c in changes]


def test_hour_closes_on_watermark_and_exceedance_explains_itself() -> None:
    judge = Judge(registry(), QUIET)
    hour = list(gas_hour(T0, 40.0, 9.0))
    assert run(judge, hour) == []  # the hour is still open
    early = T0 + timedelta(hours=1, minutes=4)
    assert run(judge, [minute(O2, early, 9.0), minute(SO2, early, 1.0)]) == []  # within grace
    changes = run(judge, closer(T0))
    assert summary(changes) == [("opened", "exceedance_hourly", SO2)]
    c = changes[0]
    assert c.peak_value == 50.0 and abs((c.peak_ratio or 0) - 50 / 35) < 1e-12
    e = c.explanation
    assert e.valid_minutes == 60 and e.limit is not None and e.limit.value == 35
    assert e.window_start == T0 and len(e.record_refs) == 60


def test_44_valid_minutes_no_exceedance_but_incomplete_hour() -> None:
    judge = Judge(registry(), QUIET)
    changes = run(judge, [*gas_hour(T0, 40.0, 9.0, minutes=range(44)), *closer(T0)])
    # O2 and SO2 both have 44 minutes: both hours are incomplete, neither is judged
    assert summary(changes) == [
        ("opened", "hour_incomplete", O2),
        ("opened", "hour_incomplete", SO2),
    ]


def test_tick_closes_hour_after_max_delay_and_reports_offline() -> None:
    judge = Judge(registry(), QUIET)
    run(judge, list(gas_hour(T0, 40.0, 9.0)))
    assert judge.on_tick(T0 + timedelta(hours=1, minutes=10)) == []
    changes = judge.on_tick(T0 + timedelta(hours=1, minutes=16))
    assert summary(changes) == [("opened", "exceedance_hourly", SO2)]
    # the last record arrived at 11:00:30; 20 minutes of silence is reached at 11:20:30
    assert judge.on_tick(T0 + timedelta(hours=1, minutes=20)) == []
    offline = judge.on_tick(T0 + timedelta(hours=1, minutes=21))
    assert summary(offline) == [("opened", "logger_offline", "*")]


def test_late_minutes_reopen_the_hour_and_amend() -> None:
    judge = Judge(registry(), QUIET)
    first = run(judge, [*gas_hour(T0, 40.0, 9.0, minutes=range(40)), *closer(T0)])
    assert summary(first) == [("opened", "hour_incomplete", O2), ("opened", "hour_incomplete", SO2)]
    late = [
        replace(r, received_at=T0 + timedelta(hours=3))
        for r in gas_hour(T0, 40.0, 9.0, minutes=range(40, 60))
    ]
    assert run(judge, late) == []  # re-judged once the back-fill goes quiet
    changes = judge.on_tick(T0 + timedelta(hours=3, minutes=2))
    got = summary(changes)
    assert ("amended", "hour_incomplete", SO2) in got
    assert ("opened", "exceedance_hourly", SO2) in got
    opened = next(c for c in changes if c.kind.value == "exceedance_hourly")
    assert "late" in opened.reason and opened.explanation.valid_minutes == 60
    assert judge.on_tick(T0 + timedelta(hours=3, minutes=5)) == []


def test_marks_approved_later_are_applied_by_rejudge() -> None:
    judge = Judge(registry(), QUIET)
    changes = run(judge, [*gas_hour(T0, 40.0, 9.0), *closer(T0)])
    assert summary(changes) == [("opened", "exceedance_hourly", SO2)]
    doc = registry_doc()
    doc["marks"] = [
        {
            "outlet": "OUT-G1",
            "kind": "calibration",
            "start": "2025-03-10T10:00:00",
            "end": "2025-03-10T10:30:00",
            "approved": True,
            "reference": "CAL-1",
        }
    ]
    judge.set_registry(registry_from_dict(doc))
    amended = judge.rejudge("OUT-G1", T0, T0 + timedelta(hours=1), T0 + timedelta(hours=5))
    withdraw = [c for c in amended if c.kind.value == "exceedance_hourly"]
    assert len(withdraw) == 1 and withdraw[0].change.value == "amended" and withdraw[0].withdrawn


def test_water_outlet_judged_on_daily_mean() -> None:
    judge = Judge(registry(), QUIET)
    day = T0.replace(hour=0)
    readings = []
    for h in range(24):
        for m in range(0, 60):
            t = day + timedelta(hours=h, minutes=m)
            readings.append(minute(COD, t, 60.0, outlet="OUT-W1", mn="MN-WATER-0001"))
    t = day + timedelta(days=1, minutes=5)
    readings.append(minute(COD, t, 10.0, outlet="OUT-W1", mn="MN-WATER-0001"))
    changes = run(judge, readings)
    daily = [c for c in changes if c.kind.value == "exceedance_daily"]
    assert [c.change.value for c in daily] == ["opened"]
    assert daily[0].peak_value == 60.0 and daily[0].explanation.values["valid_hours"] == 24
    assert not [c for c in changes if c.kind.value == "exceedance_hourly"]


def test_unknown_outlet_is_counted_not_raised() -> None:
    judge = Judge(registry(), QUIET)
    assert run(judge, [minute(SO2, T0, 1.0, outlet="X", mn="Y")]) == []
    assert judge.stats.unknown_outlet == 1


def test_state_export_import_continues_identically() -> None:
    readings = [
        *gas_hour(T0, 40.0, 9.0),
        *closer(T0),
        *gas_hour(T0 + timedelta(hours=1, minutes=6), 10.0, 9.0, minutes=range(54)),
        *closer(T0 + timedelta(hours=1)),
        *closer(T0 + timedelta(hours=2)),
    ]
    whole = Judge(registry(), QUIET)
    expected = summary(run(whole, readings))
    first = Judge(registry(), QUIET)
    got = summary(run(first, readings[:70]))
    second = Judge(registry(), QUIET)
    second.import_state(first.export_state())
    got += summary(run(second, readings[70:]))
    assert got == expected and ("cleared", "exceedance_hourly", SO2) in expected


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.0, 20.0, 40.0, 60.0]), min_size=3, max_size=3),
    drop=st.sets(st.integers(0, 59), max_size=20),
)
def test_replaying_a_sequence_twice_yields_the_same_changes_as_once(
    values: list[float], drop: set[int]
) -> None:
    readings: list[Reading] = []
    for i, v in enumerate(values):
        start = T0 + timedelta(hours=i)
        keep = range(60) if i != 1 else [m for m in range(60) if m not in drop]
        readings += gas_hour(start, v, 9.0, minutes=keep)  # type: ignore[arg-type]
    readings += closer(T0 + timedelta(hours=len(values) - 1))
    judge = Judge(registry())
    once = replay(judge, readings)
    assert replay(judge, readings) == []
    fresh = Judge(registry())
    assert [c.to_dict() for c in replay(fresh, readings)] == [c.to_dict() for c in once]
