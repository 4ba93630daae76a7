from datetime import datetime, timedelta

import pytest

from alerts.domain.days import DayWindow, close_day
from alerts.domain.exceedance import (
    ExceedanceConfig,
    ExemptionLedger,
    PrewarningRun,
    judge_day,
    judge_hour,
    prewarning_step,
)
from alerts.domain.findings import FindingKind, Severity
from alerts.domain.hours import HourWindow, close_hour
from alerts.domain.periods import CST, epoch
from alerts.domain.registry import MarkKind, limit_in_force_ts, make_mark, registry_from_dict
from tests.unit.alerts.scenario import COD, O2, PH, SO2, T0, registry, registry_doc

GAS = registry().outlet("OUT-G1")
WATER = registry().outlet("OUT-W1")
assert GAS is not None and WATER is not None


def hour_result(start: datetime, so2: float, o2: float, n: int = 60, marks=()):  # type: ignore[no-untyped-def]
    h = int(epoch(start) // 3600)
    w = HourWindow("OUT-G1", SO2, h)
    ow = HourWindow("OUT-G1", O2, h)
    for m in range(n):
        w.add_minute(m, so2, "N", f"s{m}")
        ow.add_minute(m, o2, "N", f"o{m}")
    return close_hour(GAS, SO2, h, w, ow, list(marks), list(marks))


def test_corrected_50_over_limit_35_fires_with_full_explanation() -> None:
    r = hour_result(T0, 40.0, 9.0)
    limit = limit_in_force_ts(GAS, SO2, epoch(T0))
    [f] = judge_hour(r, GAS, limit, ExemptionLedger())
    assert f.kind is FindingKind.EXCEEDANCE_HOURLY and f.firing
    assert f.value == pytest.approx(50.0) and f.ratio == pytest.approx(50 / 35)
    assert f.severity is Severity.MAJOR
    e = f.explanation
    assert e.rule_id == "LD-EXC-H/1" and e.clause and "35" in e.clause
    assert e.limit is not None and e.limit.value == 35.0 and e.limit.unit == "mg/m3"
    assert e.limit.effective_from == datetime(2024, 1, 1, tzinfo=CST)
    assert (e.window_start, e.window_end) == (T0, T0 + timedelta(hours=1))
    assert e.valid_minutes == 60 and len(e.record_refs) == 60
    assert e.values["mean_measured"] == pytest.approx(40.0)
    assert e.values["mean_o2"] == pytest.approx(9.0)


def test_44_valid_minutes_does_not_fire() -> None:
    r = hour_result(T0, 40.0, 9.0, n=44)
    [f] = judge_hour(r, GAS, limit_in_force_ts(GAS, SO2, epoch(T0)), ExemptionLedger())
    assert not f.firing and "44 valid minutes" in f.explanation.summary


def test_at_the_limit_does_not_fire_and_twice_is_critical() -> None:
    # 28 measured at O2 9 %: 28 * 1.25 = 35 = limit -> not above
    [f] = judge_hour(
        hour_result(T0, 28.0, 9.0), GAS, limit_in_force_ts(GAS, SO2, epoch(T0)), ExemptionLedger()
    )
    assert not f.firing
    [g] = judge_hour(
        hour_result(T0, 56.0, 9.0), GAS, limit_in_force_ts(GAS, SO2, epoch(T0)), ExemptionLedger()
    )
    assert g.firing and g.severity is Severity.CRITICAL  # 70 = 2.0 x 35


def test_limit_change_mid_day_applies_from_its_hour() -> None:
    reg = registry_from_dict(
        registry_doc(
            limits=[
                {
                    "factor": SO2,
                    "value": 100,
                    "unit": "mg/m3",
                    "kind": "national",
                    "clause": "old",
                    "effective_from": "2024-01-01",
                    "effective_to": "2025-03-10T12:00:00",
                },
                {
                    "factor": SO2,
                    "value": 35,
                    "unit": "mg/m3",
                    "kind": "ultra_low",
                    "clause": "new",
                    "effective_from": "2025-03-10T12:00:00",
                },
            ]
        )
    )
    gas = reg.outlet("OUT-G1")
    assert gas is not None
    eleven, twelve = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    [f11] = judge_hour(
        hour_result(eleven, 40.0, 9.0),
        gas,
        limit_in_force_ts(gas, SO2, epoch(eleven)),
        ExemptionLedger(),
    )
    [f12] = judge_hour(
        hour_result(twelve, 40.0, 9.0),
        gas,
        limit_in_force_ts(gas, SO2, epoch(twelve)),
        ExemptionLedger(),
    )
    assert not f11.firing and f11.explanation.clause == "old"
    assert f12.firing and f12.explanation.clause == "new"


def test_startup_mark_exempts_within_cap_then_alerts() -> None:
    mark = make_mark("OUT-G1", MarkKind.STARTUP, T0, T0 + timedelta(hours=3), reference="SU-1")
    ledger = ExemptionLedger()
    cfg = ExceedanceConfig(exemption_cap_hours=2.0)
    limit = limit_in_force_ts(GAS, SO2, epoch(T0))
    kinds = []
    for i in range(3):
        start = T0 + timedelta(hours=i)
        findings = judge_hour(hour_result(start, 40.0, 9.0, marks=[mark]), GAS, limit, ledger, cfg)
        kinds.append([(f.kind, f.firing) for f in findings])
    exempt = [(FindingKind.EXCEEDANCE_HOURLY, False), (FindingKind.EXCEEDANCE_EXEMPTED, True)]
    assert kinds[0] == exempt and kinds[1] == exempt
    assert kinds[2] == [(FindingKind.EXCEEDANCE_HOURLY, True)]  # 2 h cap used up
    assert ledger.total(2025) == 2.0
    # charging the same hour again (a replay) does not consume the cap
    again = judge_hour(hour_result(T0, 40.0, 9.0, marks=[mark]), GAS, limit, ledger, cfg)
    assert [(f.kind, f.firing) for f in again] == exempt and ledger.total(2025) == 2.0


def test_ph_outside_range_fires_inside_does_not() -> None:
    h = int(epoch(T0) // 3600)
    limit = limit_in_force_ts(WATER, PH, epoch(T0))
    for value, firing in ((5.5, True), (6.0, False), (9.2, True)):
        w = HourWindow("OUT-W1", PH, h)
        for m in range(60):
            w.add_minute(m, value, "N", "p")
        [f] = judge_hour(close_hour(WATER, PH, h, w, None, [], []), WATER, limit, ExemptionLedger())
        assert (f.kind, f.firing) == (FindingKind.PH_OUT_OF_RANGE, firing)


def test_water_daily_mean_judged_not_hours() -> None:
    h = int(epoch(T0) // 3600)
    w = HourWindow("OUT-W1", COD, h)
    for m in range(60):
        w.add_minute(m, 80.0, "N", "c")
    limit = limit_in_force_ts(WATER, COD, epoch(T0))
    assert (
        judge_hour(close_hour(WATER, COD, h, w, None, [], []), WATER, limit, ExemptionLedger())
        == []
    )
    dw = DayWindow("OUT-W1", COD, 20157)
    for i in range(24):
        dw.set_hour(i, 45.0 if i < 12 else 57.0)  # mean 51 > 50
    [f] = judge_day(close_day(dw), WATER, limit, ExemptionLedger())
    assert f.kind is FindingKind.EXCEEDANCE_DAILY and f.firing
    assert f.value == pytest.approx(51.0) and f.explanation.values["valid_hours"] == 24


def test_prewarning_after_n_consecutive_then_ends() -> None:
    run = PrewarningRun()
    limit = limit_in_force_ts(GAS, SO2, epoch(T0))
    assert limit is not None
    cfg = ExceedanceConfig(prewarning_readings=3)
    t = epoch(T0)
    out = [
        prewarning_step(run, "OUT-G1", SO2, t + 30 * i, v, limit, f"r{i}", cfg)
        for i, v in enumerate([36.0, 40.0, 20.0, 36.0, 37.0, 38.0, 39.0, 30.0])
    ]
    fired = [i for i, f in enumerate(out) if f is not None and f.firing]
    ended = [i for i, f in enumerate(out) if f is not None and not f.firing]
    assert fired == [5] and ended == [7]  # the 36, 40 run broke at 20 before reaching 3
    f5 = out[5]
    assert f5 is not None and f5.value == 38.0 and f5.start == datetime.fromtimestamp(t + 90, CST)
