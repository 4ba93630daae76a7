import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.domain.correction import (
    PhJudgement,
    correction_factor,
    o2_corrected,
    ph_judgement,
)


def test_brief_example_40_at_9_percent_to_6_percent_is_50() -> None:
    c = o2_corrected(40.0, 9.0, 6.0)
    assert c.value == pytest.approx(50.0)  # 40 * (21-6)/(21-9) = 40 * 15/12
    assert c.factor == pytest.approx(1.25)


def test_gas_turbine_reference_15_percent() -> None:
    # 20 mg/m3 measured at 16 % O2, reference 15 %: 20 * 6/5 = 24
    assert o2_corrected(20.0, 16.0, 15.0).value == pytest.approx(24.0)


def test_near_ambient_o2_is_not_computable_with_reason() -> None:
    c = o2_corrected(40.0, 19.5, 6.0)
    assert c.value is None and c.reason is not None and "19" in c.reason
    assert o2_corrected(40.0, 21.0, 6.0).value is None
    assert o2_corrected(40.0, 25.0, 6.0).value is None
    assert o2_corrected(40.0, -1.0, 6.0).value is None
    assert o2_corrected(40.0, None, 6.0).value is None
    assert correction_factor(18.9, 6.0) == pytest.approx(15 / 2.1)
    assert correction_factor(19.0, 6.0) is None


def test_no_reference_o2_means_measured_value() -> None:
    c = o2_corrected(40.0, 12.0, None)
    assert c.value == 40.0 and c.reason is not None


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        (5.99, PhJudgement.BELOW),
        (6.0, PhJudgement.IN_RANGE),
        (9.0, PhJudgement.IN_RANGE),
        (9.01, PhJudgement.ABOVE),
    ],
)
def test_ph_range_is_inclusive(value: float, verdict: PhJudgement) -> None:
    assert ph_judgement(value, 6.0, 9.0) is verdict


@given(
    c=st.floats(0.0, 1e4),
    o2a=st.floats(0.0, 18.9),
    o2b=st.floats(0.0, 18.9),
    ref=st.floats(0.0, 20.0),
)
def test_correction_monotonic_in_measured_o2(c: float, o2a: float, o2b: float, ref: float) -> None:
    lo, hi = sorted((o2a, o2b))
    a = o2_corrected(c, lo, ref).value
    b = o2_corrected(c, hi, ref).value
    assert a is not None and b is not None
    assert a <= b + 1e-9 * max(1.0, b)


@given(c1=st.floats(0.0, 1e4), c2=st.floats(0.0, 1e4), o2=st.floats(0.0, 18.9))
def test_correction_monotonic_in_concentration(c1: float, c2: float, o2: float) -> None:
    lo, hi = sorted((c1, c2))
    a, b = o2_corrected(lo, o2, 6.0).value, o2_corrected(hi, o2, 6.0).value
    assert a is not None and b is not None and a <= b
