from datetime import timedelta

import pytest

from alerts.domain.anomalies import (
    AnomalyConfig,
    StreamState,
    check_conflict,
    check_corrected,
    check_timestamp,
    check_value,
)
from alerts.domain.arrivals import ArrivalState, check_offline, note_arrival
from alerts.domain.findings import Finding, FindingKind
from alerts.domain.hour_anomalies import (
    flow_mismatch,
    hour_completeness,
    logger_hour_mismatch,
    o2_dilution,
    sudden_drop,
)
from alerts.domain.hours import HourWindow, close_hour
from alerts.domain.periods import epoch
from alerts.domain.registry import MarkKind, make_mark
from tests.unit.alerts.scenario import FLOW, O2, SO2, T0, registry

CFG = AnomalyConfig(constant_minutes=5, zero_minutes=3, run_update_every=100)
GAS = registry().outlet("OUT-G1")
assert GAS is not None
H = int(epoch(T0) // 3600)
t0 = epoch(T0)


def feed(
    values: list[float | None], flags: str | None = None, rng: float | None = None
) -> list[Finding]:
    s = StreamState()
    out: list[Finding] = []
    for i, v in enumerate(values):
        flag = flags[i] if flags else "N"
        out += check_value(s, "OUT-G1", SO2, t0 + 60 * i, v, flag, f"r{i}", rng, False, CFG)
    return out


def kinds(findings: list[Finding]) -> list[tuple[str, bool]]:
    return [(f.kind.value, f.firing) for f in findings]


def test_constant_fires_at_n_identical_and_ends_on_change() -> None:
    assert kinds(feed([7.0, 7.0, 7.0, 7.0])) == []  # 4 < 5
    out = feed([7.0] * 5 + [7.5])
    assert kinds(out) == [("constant_value", True), ("constant_value", False)]
    assert out[0].explanation.values["consecutive"] == 5


def test_constant_ignores_changing_values_and_flagged_data() -> None:
    assert kinds(feed([7.0, 7.1, 7.0, 7.1, 7.0, 7.1])) == []
    assert kinds(feed([7.0] * 6, flags="CCCCCC")) == []  # calibration sits still legitimately


def test_zero_fires_after_threshold_and_not_as_constant() -> None:
    assert kinds(feed([0.0, 0.0])) == []
    assert kinds(feed([0.0] * 6)) == [("zero_value", True)]


def test_negative_fires_immediately() -> None:
    assert kinds(feed([1.0, -0.5, 2.0])) == [("negative_value", True), ("negative_value", False)]
    assert kinds(feed([1.0, 0.5])) == []


def test_over_range_by_flag_or_pinned_at_range() -> None:
    assert kinds(feed([50.0, 60.0], flags="NT")) == [("over_range", True)]
    assert kinds(feed([199.9, 10.0], rng=200.0)) == [("over_range", True), ("over_range", False)]
    assert kinds(feed([150.0, 10.0], rng=200.0)) == []


def test_future_and_misaligned_timestamps() -> None:
    s = StreamState()
    ahead = check_timestamp(s, "OUT-G1", SO2, t0 + 600, t0, 60, "r", CFG)
    assert ahead is not None and ahead.firing
    back = check_timestamp(s, "OUT-G1", SO2, t0 + 660, t0 + 700, 60, "r", CFG)
    assert back is not None and not back.firing
    assert check_timestamp(StreamState(), "OUT-G1", SO2, t0 + 60, t0 + 90, 60, "r", CFG) is None
    odd = check_timestamp(StreamState(), "OUT-G1", SO2, t0 + 17, t0 + 90, 60, "r", CFG)
    assert odd is not None and odd.firing and "aligned" in odd.explanation.summary


def test_conflict_names_both_records() -> None:
    f = check_conflict(StreamState(), "OUT-G1", SO2, t0, True, 41.0, "second", "first", CFG)
    assert f is not None and f.firing
    assert f.explanation.values["kept_record"] == "first"


def test_corrected_mismatch_beyond_one_percent() -> None:
    # 40 at 9 % -> 50 expected
    ok = check_corrected(StreamState(), "OUT-G1", SO2, t0, 40.0, 50.3, 9.0, 6.0, "r", CFG, 19.0)
    assert ok is None  # 0.6 % off
    bad = check_corrected(StreamState(), "OUT-G1", SO2, t0, 40.0, 34.0, 9.0, 6.0, "r", CFG, 19.0)
    assert bad is not None and bad.firing
    assert bad.explanation.values["expected"] == pytest.approx(50.0)


def test_offline_after_threshold_and_back_online() -> None:
    state = ArrivalState()
    note_arrival(state, "OUT-G1", t0, t0 + 30, "r", [], CFG)
    assert check_offline(state, "OUT-G1", t0 + 30 + 19 * 60, CFG) is None
    f = check_offline(state, "OUT-G1", t0 + 30 + 20 * 60, CFG)
    assert f is not None and f.firing and f.value == pytest.approx(20.0)
    assert check_offline(state, "OUT-G1", t0 + 30 + 40 * 60, CFG) is None  # once
    [back] = note_arrival(state, "OUT-G1", t0 + 3000, t0 + 3000, "r2", [], CFG)
    assert back.kind is FindingKind.LOGGER_OFFLINE and not back.firing


def test_bulk_backfill_and_inspection_raises_severity() -> None:
    cfg = AnomalyConfig(backfill_min_records=10)
    arrive = t0 + 10 * 3600
    for inspections, critical in (([], False), ([arrive + 3600], True)):
        state = ArrivalState()
        out = []
        for i in range(10):
            out += note_arrival(state, "OUT-G1", t0 + 60 * i, arrive + i, f"r{i}", inspections, cfg)
        assert kinds(out) == [("bulk_backfill", True)]
        assert (out[0].severity.name == "CRITICAL") is critical
    state = ArrivalState()
    quiet = []
    for i in range(10):  # live data is not back-fill
        quiet += note_arrival(state, "OUT-G1", t0 + 60 * i, t0 + 60 * i + 70, "r", [], cfg)
    assert quiet == []


def _hour(factor: str, value: float, n: int = 60, marks=()):  # type: ignore[no-untyped-def]
    w = HourWindow("OUT-G1", factor, H)
    o2 = HourWindow("OUT-G1", O2, H)  # O2 at the reference 6 %: corrected = measured
    for m in range(n):
        w.add_minute(m, value, "N", "r")
        o2.add_minute(m, 6.0, "N", "r")
    return close_hour(GAS, factor, H, w, o2, list(marks), [])


def test_hour_missing_incomplete_and_explained_by_marks() -> None:
    missing = hour_completeness(close_hour(GAS, O2, H, None, None, [], []))
    assert kinds(missing) == [("hour_missing", True), ("hour_incomplete", False)]
    short = hour_completeness(_hour(O2, 9.0, n=30))
    assert kinds(short) == [("hour_missing", False), ("hour_incomplete", True)]
    mark = make_mark(
        "OUT-G1", MarkKind.MAINTENANCE, T0 + timedelta(minutes=30), T0 + timedelta(hours=1)
    )
    explained = hour_completeness(_hour(O2, 9.0, n=30, marks=[mark]))
    assert kinds(explained) == [("hour_missing", False), ("hour_incomplete", False)]


def test_logger_hour_mismatch() -> None:
    w = HourWindow("OUT-G1", O2, H)
    for m in range(60):
        w.add_minute(m, 9.0, "N", "r")
    w.set_logger_hour(9.05, None, "N", "h")
    f = logger_hour_mismatch(close_hour(GAS, O2, H, w, None, [], []), CFG)
    assert f is not None and not f.firing
    w.logger_avg = 12.0
    g = logger_hour_mismatch(close_hour(GAS, O2, H, w, None, [], []), CFG)
    assert g is not None and g.firing and g.explanation.values["platform_avg"] == 9.0


def test_sudden_drop_vs_trailing_median() -> None:
    baseline = [100.0, 110.0, 90.0, 100.0, 105.0, 95.0]
    drop = sudden_drop(_hour(SO2, 19.0), baseline, CFG)
    assert drop is not None and drop.firing  # 81 % below median 100
    ok = sudden_drop(_hour(SO2, 21.0), baseline, CFG)
    assert ok is not None and not ok.firing
    assert sudden_drop(_hour(SO2, 1.0), baseline[:5], CFG) is None  # too little history


def test_o2_dilution_near_ambient_unless_marked_and_rise_with_drop() -> None:
    f = o2_dilution(_hour(O2, 19.5), [], [], {}, False, CFG)
    assert f is not None and f.firing
    g = o2_dilution(_hour(O2, 19.5), [], [], {}, True, CFG)
    assert g is not None and not g.firing
    rise = o2_dilution(
        _hour(O2, 13.0), [_hour(SO2, 60.0)], [9.0] * 6, {SO2: [100.0] * 6}, False, CFG
    )
    assert rise is not None and rise.firing  # +4 points, SO2 -40 %
    steady = o2_dilution(
        _hour(O2, 13.0), [_hour(SO2, 90.0)], [9.0] * 6, {SO2: [100.0] * 6}, False, CFG
    )
    assert steady is not None and not steady.firing


def test_flow_zero_with_positive_concentration() -> None:
    f = flow_mismatch(_hour(FLOW, 0.0), [_hour(SO2, 20.0)], CFG)
    assert f is not None and f.firing
    g = flow_mismatch(_hour(FLOW, 1500.0), [_hour(SO2, 20.0)], CFG)
    assert g is not None and not g.firing
