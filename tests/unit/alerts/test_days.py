"""Water daily means weighted by flow (HJ 356 section 7, domain 1.3), and their fallbacks.

The day used throughout: COD 40 mg/L in hours 00-11 and 58 mg/L in hours 12-23 against a
limit of 50. Arithmetic mean (12 * 40 + 12 * 58) / 24 = 49 (within). With three times the flow
in the afternoon (36 m3/h, then 108 m3/h; 10 L/s then 30 L/s):
(12 * 40 * 36 + 12 * 58 * 108) / (12 * 36 + 12 * 108) = (1440 + 6264) / 144 = 53.5 (over).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from alerts.domain.days import DayWindow, MeanBasis, close_day
from alerts.domain.episodes import AlertChange
from alerts.domain.exceedance import ExemptionLedger, judge_day
from alerts.domain.hours import HourWindow, close_hour
from alerts.domain.judge import Judge
from alerts.domain.periods import day_index, epoch
from alerts.domain.readings import Reading
from alerts.domain.registry import limit_in_force_ts
from tests.unit.alerts.scenario import COD, T0, minute, registry
from tests.unit.alerts.test_judge import QUIET

WFLOW = "w00000"
WATER = registry().outlet("OUT-W1")
assert WATER is not None
DAY = day_index(epoch(T0))
LIMIT = limit_in_force_ts(WATER, COD, epoch(T0))
assert LIMIT is not None and LIMIT.value == 50


def cod_day() -> DayWindow:
    dw = DayWindow("OUT-W1", COD, DAY)
    for h in range(24):
        dw.set_hour(h, 40.0 if h < 12 else 58.0)
    return dw


def flow_day(*, rates: bool = True, volumes: bool = True) -> DayWindow:
    dw = DayWindow("OUT-W1", WFLOW, DAY)
    for h in range(24):
        rate = 10.0 if h < 12 else 30.0  # L/s
        dw.set_hour(h, rate if rates else None, rate * 3.6 if volumes else None)  # m3 in 1 h
    return dw


def judged(result_day: DayWindow, flow: DayWindow | None) -> tuple[bool, float | None, str]:
    result = close_day(result_day, flow=flow, flow_weighted=True)
    [f] = judge_day(result, WATER, LIMIT, ExemptionLedger())
    return f.firing, f.value, f.explanation.summary


def test_flow_weighting_decides_the_exceedance() -> None:
    plain = close_day(cod_day())
    assert plain.mean == pytest.approx(49.0) and plain.mean_basis is MeanBasis.ARITHMETIC
    [f] = judge_day(plain, WATER, LIMIT, ExemptionLedger())
    assert not f.firing  # 49 <= 50 on the arithmetic mean

    result = close_day(cod_day(), flow=flow_day(), flow_weighted=True)
    assert result.mean == pytest.approx(53.5) and result.arithmetic_mean == pytest.approx(49.0)
    assert result.mean_basis is MeanBasis.FLOW_WEIGHTED
    assert result.flow_total == pytest.approx(12 * 36 + 12 * 108)
    assert result.valid and result.valid_hours == 24
    [f] = judge_day(result, WATER, LIMIT, ExemptionLedger())
    assert f.firing and f.value == pytest.approx(53.5)
    assert f.ratio == pytest.approx(53.5 / 50)
    values = f.explanation.values
    assert values["mean_basis"] == "flow-weighted" and values["arithmetic_mean"] == 49.0
    assert "flow-weighted by hourly Cou volume over 24 valid hours" in f.explanation.summary


def test_mean_flow_rate_weights_when_cou_is_not_sent() -> None:
    result = close_day(cod_day(), flow=flow_day(volumes=False), flow_weighted=True)
    assert result.mean_basis is MeanBasis.FLOW_WEIGHTED
    assert result.mean == pytest.approx(53.5)
    assert result.flow_total == pytest.approx(12 * 10 * 3600 + 12 * 30 * 3600)  # L
    assert "hourly mean flow x 1 h" in result.mean_note


def test_cou_for_only_some_hours_is_not_mixed_with_rates() -> None:
    flow = flow_day(volumes=False)
    flow.set_hour(0, 10.0, 9999.0)  # one hour with a Cou: units differ, so rates are used
    result = close_day(cod_day(), flow=flow, flow_weighted=True)
    assert result.mean == pytest.approx(53.5) and "hourly mean flow x 1 h" in result.mean_note


def test_flow_missing_for_an_hour_falls_back_to_arithmetic_and_says_which() -> None:
    flow = flow_day()
    flow.set_hour(3, None)
    flow.set_hour(4, None)
    firing, value, summary = judged(cod_day(), flow)
    assert not firing and value == pytest.approx(49.0)
    assert "arithmetic, flow missing or invalid for hours 03:00, 04:00" in summary
    result = close_day(cod_day(), flow=flow, flow_weighted=True)
    assert result.mean_basis is MeanBasis.ARITHMETIC and result.flow_total is None


def test_flow_of_an_hour_not_used_does_not_matter() -> None:
    cod = cod_day()
    cod.set_hour(3, None)  # COD hour invalid: its flow is not needed
    flow = flow_day()
    flow.set_hour(3, None)
    result = close_day(cod, flow=flow, flow_weighted=True)
    # 11 * 40 * 36 + 12 * 58 * 108 = 15840 + 75168 = 91008; 11 * 36 + 12 * 108 = 1692
    assert result.mean_basis is MeanBasis.FLOW_WEIGHTED
    assert result.mean == pytest.approx(91008 / 1692) and result.valid_hours == 23


def test_zero_total_flow_is_arithmetic_with_the_reason() -> None:
    flow = DayWindow("OUT-W1", WFLOW, DAY)
    for h in range(24):
        flow.set_hour(h, 0.0, 0.0)
    firing, value, summary = judged(cod_day(), flow)
    assert not firing and value == pytest.approx(49.0)
    assert "total flow over the 24 valid hours is 0" in summary


def test_no_flow_data_at_all_is_arithmetic() -> None:
    result = close_day(cod_day(), flow=None, flow_weighted=True)
    assert result.mean == pytest.approx(49.0) and result.mean_basis is MeanBasis.ARITHMETIC
    assert result.mean_note == "arithmetic, no flow data for the day"


def test_validity_still_needs_20_valid_hours_when_weighted() -> None:
    cod = DayWindow("OUT-W1", COD, DAY)
    for h in range(19):
        cod.set_hour(h, 80.0)
    result = close_day(cod, flow=flow_day(), flow_weighted=True)
    assert not result.valid and result.valid_hours == 19
    assert judge_day(result, WATER, LIMIT, ExemptionLedger())[0].firing is False


def test_hour_volume_from_minute_cou_scaled_to_the_hour() -> None:
    h = int(epoch(T0) // 3600)
    full = HourWindow("OUT-W1", WFLOW, h)
    for m in range(60):
        full.add_minute(m, 10.0, "N", f"f{m}", 0.6)
    assert close_hour(WATER, WFLOW, h, full, None, [], []).volume == pytest.approx(36.0)
    short = HourWindow("OUT-W1", WFLOW, h)
    for m in range(50):
        short.add_minute(m, 10.0, "N", f"f{m}", 0.6)
    # 50 valid minutes of 0.6 m3, scaled to 60 minutes: 30 * 60 / 50 = 36
    assert close_hour(WATER, WFLOW, h, short, None, [], []).volume == pytest.approx(36.0)
    short.add_minute(50, 10.0, "N", "f50")  # a valid minute without Cou
    assert close_hour(WATER, WFLOW, h, short, None, [], []).volume is None
    flagged = HourWindow("OUT-W1", WFLOW, h)
    for m in range(60):  # Cou of a maintenance minute does not count
        flagged.add_minute(m, 10.0, "M" if m < 10 else "N", f"f{m}", 99.0 if m < 10 else 0.6)
    assert close_hour(WATER, WFLOW, h, flagged, None, [], []).volume == pytest.approx(36.0)
    logger = HourWindow("OUT-W1", WFLOW, h)
    logger.set_logger_hour(10.0, None, "N", "h1", 35.5)
    assert close_hour(WATER, WFLOW, h, logger, None, [], []).volume == 35.5


def test_state_with_cou_round_trips_and_old_state_still_decodes() -> None:
    w = HourWindow("OUT-W1", WFLOW, 7)
    w.add_minute(0, 10.0, "N", "a", 0.6)
    w.add_minute(1, 10.0, "N", "b")
    w.set_logger_hour(10.0, None, "N", "h", 36.0)
    doc = w.to_dict()
    assert doc["cous"][:2] == [0.6, None] and doc["logger_cou"] == 36.0
    assert HourWindow.from_dict(doc).to_dict() == doc
    old = {k: v for k, v in doc.items() if k not in ("cous", "logger_cou")}
    back = HourWindow.from_dict(old)
    assert back.cous is None and back.logger_cou is None and back.value_at(0) == 10.0
    pollutant = HourWindow("OUT-W1", COD, 7)
    pollutant.add_minute(0, 40.0, "N", "c")
    assert "cous" not in pollutant.to_dict()  # only flow windows store Cou

    flow = flow_day()
    assert DayWindow.from_dict(flow.to_dict()).to_dict() == flow.to_dict()
    old_day = {k: v for k, v in flow.to_dict().items() if k != "volumes"}
    assert DayWindow.from_dict(old_day).volumes is None


# ---- through the judge ----------------------------------------------------------------


def water(factor: str, at: datetime, avg: float, cou: float | None = None) -> Reading:
    return replace(minute(factor, at, avg, outlet="OUT-W1", mn="MN-WATER-0001"), cou=cou)


def water_day(flow_hours: range = range(24)) -> list[Reading]:
    """COD and flow minutes as a logger sends them: 10 L/s (0.6 m3 a minute) in the morning,
    30 L/s (1.8 m3) in the afternoon; no flow at all in hours outside `flow_hours`."""
    day = T0.replace(hour=0)
    out: list[Reading] = []
    for h in range(24):
        rate = 10.0 if h < 12 else 30.0
        for m in range(60):
            t = day + timedelta(hours=h, minutes=m)
            if h in flow_hours:
                out.append(water(WFLOW, t, rate + 0.01 * (m % 2), rate * 0.06))
            out.append(water(COD, t, (40.0 if h < 12 else 58.0) + 0.01 * (m % 2)))
    return out


def next_day_closer() -> list[Reading]:
    t = T0.replace(hour=0) + timedelta(days=1, minutes=5)
    return [water(WFLOW, t, 10.0, 0.6), water(COD, t, 40.0)]


def run(judge: Judge, readings: list[Reading]) -> list[AlertChange]:
    out: list[AlertChange] = []
    for r in readings:
        out += judge.on_reading(r, r.received_at)
    return out


def test_judge_weights_water_days_by_the_flow_it_received() -> None:
    judge = Judge(registry(), QUIET)
    changes = run(judge, [*water_day(), *next_day_closer()])
    daily = [c for c in changes if c.kind.value == "exceedance_daily"]
    assert [c.change.value for c in daily] == ["opened"]
    # Minute values alternate +0 / +0.01, so each hour's mean is 0.005 higher: COD hours
    # 40.005 and 58.005, flow 10.005 and 30.005 L/s; Cou sums 36 and 108 m3 per hour.
    # (12 * 40.005 * 36 + 12 * 58.005 * 108) / (12 * 36 + 12 * 108) = 53.505
    assert daily[0].peak_value == pytest.approx(53.505)
    values = daily[0].explanation.values
    assert values["mean_basis"] == "flow-weighted"
    assert values["arithmetic_mean"] == pytest.approx(49.005)
    assert "hourly Cou volume" in str(values["mean_note"])


def test_late_flow_hours_rejudge_a_closed_day() -> None:
    judge = Judge(registry(), QUIET)
    readings = water_day(flow_hours=range(23))  # no flow minutes in hour 23
    first = run(judge, [*readings, *next_day_closer()])
    daily = [c for c in first if c.kind.value == "exceedance_daily"]
    assert daily == []  # arithmetic 49.005: within the limit, and says so
    day_window = judge.states["OUT-W1"].days[(COD, DAY)]
    assert day_window.closed
    late_at = T0.replace(hour=0) + timedelta(days=1, hours=2)
    late = [
        replace(
            water(WFLOW, T0.replace(hour=23) + timedelta(minutes=m), 30.0, 1.8), received_at=late_at
        )
        for m in range(60)
    ]
    run(judge, late)
    changes = judge.on_tick(late_at + timedelta(minutes=2))
    daily = [c for c in changes if c.kind.value == "exceedance_daily"]
    # The day was never over, so this is a new episode, opened on late data.
    assert [c.change.value for c in daily] == ["opened"]
    assert "late data" in daily[0].reason
    # hour 23 flow is 30.0 exactly (Cou 108): the same weights as above, 53.505
    assert daily[0].peak_value == pytest.approx(53.505)
