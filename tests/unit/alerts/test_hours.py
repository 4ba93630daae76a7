from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.domain.days import DayWindow, close_day
from alerts.domain.hours import AddOutcome, HourWindow, close_hour
from alerts.domain.periods import epoch
from alerts.domain.registry import MarkKind, make_mark
from tests.unit.alerts.scenario import O2, SO2, T0, registry

HOUR0 = int(epoch(T0) // 3600)
GAS = registry().outlet("OUT-G1")
assert GAS is not None


def window(
    factor: str, values: dict[int, float], flags: dict[int, str] | None = None
) -> HourWindow:
    w = HourWindow("OUT-G1", factor, HOUR0)
    for m, v in values.items():
        w.add_minute(m, v, (flags or {}).get(m, "N"), f"r{factor}{m}")
    return w


def test_sixty_minutes_at_40_with_o2_9_gives_corrected_50() -> None:
    so2 = window(SO2, dict.fromkeys(range(60), 40.0))
    o2 = window(O2, dict.fromkeys(range(60), 9.0))
    r = close_hour(GAS, SO2, HOUR0, so2, o2, [], [])
    assert r.valid and r.valid_minutes == 60
    assert r.mean == pytest.approx(40.0) and r.o2_mean == pytest.approx(9.0)
    assert r.value == pytest.approx(50.0)
    assert len(r.record_refs) == 60


def test_44_valid_minutes_is_not_a_valid_hour_45_is() -> None:
    o2 = window(O2, dict.fromkeys(range(60), 9.0))
    r44 = close_hour(GAS, SO2, HOUR0, window(SO2, dict.fromkeys(range(44), 40.0)), o2, [], [])
    assert not r44.valid and r44.value is None and r44.valid_minutes == 44
    assert r44.excluded == {"missing": 16}
    r45 = close_hour(GAS, SO2, HOUR0, window(SO2, dict.fromkeys(range(45), 40.0)), o2, [], [])
    assert r45.valid and r45.value == pytest.approx(50.0)


def test_flags_exclude_with_reasons_and_mean_uses_only_valid_minutes() -> None:
    values = dict.fromkeys(range(60), 30.0)
    values.update({0: 500.0, 1: 500.0, 2: 500.0, 3: 500.0, 4: 500.0, 5: 500.0})
    flags = {0: "M", 1: "D", 2: "C", 3: "T", 4: "B", 5: "F"}
    so2 = window(SO2, values, flags)
    o2 = window(O2, dict.fromkeys(range(60), 6.0))
    r = close_hour(GAS, SO2, HOUR0, so2, o2, [], [])
    assert r.valid_minutes == 54
    assert r.mean == pytest.approx(30.0)  # the six flagged 500s are not averaged
    assert r.value == pytest.approx(30.0)  # O2 = reference: factor 1
    assert r.excluded == {
        "flag_M_maintenance": 1,
        "flag_D_fault": 1,
        "flag_C_calibration": 1,
        "flag_T_over_range": 1,
        "flag_B_comms": 1,
        "flag_F_stopped": 1,
    }
    assert r.explained == 1  # only F (stopped) explains a missing value


def test_o2_is_averaged_over_the_same_minutes_and_invalid_o2_excludes_the_minute() -> None:
    so2 = window(SO2, dict.fromkeys(range(60), 40.0))
    o2_values = dict.fromkeys(range(60), 9.0)
    o2_values.update(dict.fromkeys(range(50, 60), 15.0))
    o2 = window(O2, o2_values, dict.fromkeys(range(50, 60), "D"))
    r = close_hour(GAS, SO2, HOUR0, so2, o2, [], [])
    assert r.valid_minutes == 50 and r.excluded == {"o2_invalid": 10}
    assert r.o2_mean == pytest.approx(9.0) and r.value == pytest.approx(50.0)


def test_approved_maintenance_mark_excludes_and_explains_minutes() -> None:
    mark = make_mark("OUT-G1", MarkKind.MAINTENANCE, T0, T0 + timedelta(minutes=20))
    so2 = window(SO2, dict.fromkeys(range(60), 40.0))
    o2 = window(O2, dict.fromkeys(range(60), 9.0))
    r = close_hour(GAS, SO2, HOUR0, so2, o2, [mark], [mark])
    assert r.valid_minutes == 40 and not r.valid
    assert r.excluded == {"mark_maintenance": 20} and r.explained == 20


def test_startup_mark_keeps_data_valid_but_is_reported_for_exemption() -> None:
    mark = make_mark("OUT-G1", MarkKind.STARTUP, T0, T0 + timedelta(hours=1), reference="SU-7")
    so2 = window(SO2, dict.fromkeys(range(60), 40.0))
    o2 = window(O2, dict.fromkeys(range(60), 9.0))
    r = close_hour(GAS, SO2, HOUR0, so2, o2, [mark], [mark])
    assert r.valid and r.exempting_marks == ("SU-7",)


def test_o2_near_ambient_makes_hour_not_judgeable() -> None:
    so2 = window(SO2, dict.fromkeys(range(60), 5.0))
    o2 = window(O2, dict.fromkeys(range(60), 19.5))
    r = close_hour(GAS, SO2, HOUR0, so2, o2, [], [])
    assert not r.valid and r.value is None and r.correction_note is not None


def test_logger_hour_used_only_without_minute_data() -> None:
    w = HourWindow("OUT-G1", SO2, HOUR0)
    w.set_logger_hour(40.0, 52.0, "N", "h-1")
    r = close_hour(GAS, SO2, HOUR0, w, None, [], [])
    assert r.basis == "logger_hour" and r.valid and r.value == 52.0
    bad = HourWindow("OUT-G1", SO2, HOUR0)
    bad.set_logger_hour(40.0, 52.0, "D", "h-2")
    assert not close_hour(GAS, SO2, HOUR0, bad, None, [], []).valid


def test_duplicate_and_conflicting_minutes() -> None:
    w = HourWindow("OUT-G1", SO2, HOUR0)
    assert w.add_minute(3, 40.0, "N", "a") is AddOutcome.NEW
    assert w.add_minute(3, 40.0, "N", "b") is AddOutcome.DUPLICATE
    assert w.add_minute(3, 41.0, "N", "c") is AddOutcome.CONFLICT
    assert w.value_at(3) == 40.0 and w.refs is not None and w.refs[3] == "a"


def test_window_round_trips_through_dict() -> None:
    w = window(SO2, {0: 1.5, 7: 2.5}, {7: "M"})
    w.add_minute(9, None, "N", "x")
    w.set_logger_hour(2.0, None, "N", "h")
    back = HourWindow.from_dict(w.to_dict())
    assert back.to_dict() == w.to_dict()
    assert back.value_at(9) is None and back.value_at(7) == 2.5


@settings(max_examples=150)
@given(
    st.lists(
        st.tuples(st.integers(0, 59), st.floats(0, 1000), st.sampled_from("NNNMDCTBFS?")),
        max_size=200,
    )
)
def test_valid_minutes_never_exceed_60(entries: list[tuple[int, float, str]]) -> None:
    w = HourWindow("OUT-G1", "a34013", HOUR0)
    for m, v, f in entries:
        w.add_minute(m, v, f, "r")
    r = close_hour(GAS, "a34013", HOUR0, w, None, [], [])
    assert 0 <= r.valid_minutes <= 60
    assert r.valid_minutes + sum(r.excluded.values()) == 60


def test_day_needs_20_valid_hours() -> None:
    dw = DayWindow("OUT-W1", "w01018", 0)
    for h in range(19):
        dw.set_hour(h, 40.0)
    dw.set_hour(19, None)
    assert not close_day(dw).valid
    dw.set_hour(20, 70.0)
    r = close_day(dw)
    assert r.valid and r.valid_hours == 20
    assert r.mean == pytest.approx((19 * 40.0 + 70.0) / 20)
    assert DayWindow.from_dict(dw.to_dict()).to_dict() == dw.to_dict()
