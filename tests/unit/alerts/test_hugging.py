"""Hugging the limit (LD-ANO-HUG/1) on hourly corrected SO2 of the gas outlet, limit 35 mg/m3:
the band [0.9, 1.0] x 35 is [31.5, 35.0]."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.domain.anomalies import AnomalyConfig
from alerts.domain.episodes import AlertChange
from alerts.domain.findings import Finding, FindingKind, Severity
from alerts.domain.hours import HourResult
from alerts.domain.hugging import HuggingWindow, limit_hugging
from alerts.domain.judge import Judge, JudgeConfig, OutletState
from alerts.domain.periods import epoch
from alerts.domain.readings import Reading
from alerts.domain.registry import limit_in_force_ts
from alerts.entrypoints.judging import decode_state, encode_state
from tests.unit.alerts.scenario import SO2, T0, closer, gas_hour, registry

GAS = registry().outlet("OUT-G1")
assert GAS is not None
LIMIT = limit_in_force_ts(GAS, SO2, epoch(T0))
assert LIMIT is not None and LIMIT.value == 35
H0 = int(epoch(T0) // 3600)
CFG = AnomalyConfig()


def hour(i: int, corrected: float | None) -> HourResult:
    """Hour H0 + i of SO2 with the given corrected mean (None: an invalid hour)."""
    return HourResult(
        outlet_id="OUT-G1",
        factor=SO2,
        hour=H0 + i,
        basis="minutes",
        received=60,
        valid_minutes=60 if corrected is not None else 10,
        valid=corrected is not None,
        mean=None if corrected is None else corrected * 0.8,
        o2_mean=9.0,
        corrected=corrected,
        correction_note=None,
        minimum=None,
        maximum=None,
        needs_o2=True,
    )


def feed(values: list[float | None], cfg: AnomalyConfig = CFG) -> list[Finding]:
    window = HuggingWindow()
    out = []
    for i, v in enumerate(values):
        f = limit_hugging(window, hour(i, v), LIMIT, cfg)  # type: ignore[arg-type]
        assert f is not None
        out.append(f)
    return out


def clipped(in_band: int, total: int = 72) -> list[float | None]:
    """`total - in_band` hours at 20 (0.57x), then `in_band` hours alternating 34.0 / 34.5."""
    return [20.0] * (total - in_band) + [34.0 if i % 2 == 0 else 34.5 for i in range(in_band)]


def test_fires_on_a_clipped_series_and_explains_itself() -> None:
    out = feed(clipped(60))
    firing = [i for i, f in enumerate(out) if f.firing]
    # 12 hours at 20 then the clipped run: the 48th valid hour (index 47) is the first with
    # enough hours; 36 of 48 in band (75 %), CV 0.25 / 34.25 = 0.73 %.
    assert firing == list(range(47, 72))
    last = out[-1]
    assert last.kind is FindingKind.LIMIT_HUGGING and last.severity is Severity.WARNING
    v = last.explanation.values
    assert (v["valid_hours"], v["hours_in_band"]) == (72, 60)
    assert v["share"] == pytest.approx(60 / 72)
    assert v["cv"] == pytest.approx(0.25 / 34.25)
    assert v["mean"] == pytest.approx(34.25) and v["mean_ratio"] == pytest.approx(34.25 / 35)
    assert (v["min_in_band"], v["max_in_band"]) == (34.0, 34.5)
    assert v["limit_values_in_window"] == "35"
    e = last.explanation
    assert e.limit is not None and e.limit.value == 35 and e.limit.kind == "ultra_low"
    assert e.window_start == T0 and e.window_end == T0 + timedelta(hours=72)
    assert last.start == T0 + timedelta(hours=71)  # the period judged is the closing hour
    assert len(e.record_refs) == 60 and e.record_refs[0].startswith("hour ")
    assert "60 of 72 valid hours in the trailing 72 h (83%)" in e.summary
    assert "coefficient of variation 0.73%" in e.summary and "35 mg/m3" in e.summary
    assert e.rule_id == "LD-ANO-HUG/1"


def test_share_threshold_is_inclusive_of_60_percent_only() -> None:
    assert not feed(clipped(43))[-1].firing  # 43 / 72 = 59.7 %
    assert feed(clipped(44))[-1].firing  # 44 / 72 = 61.1 %


def test_noisy_outlet_at_50_to_80_percent_of_the_limit_does_not_fire() -> None:
    values: list[float | None] = [17.5 + (i * 7 % 11) for i in range(200)]  # 17.5 .. 27.5
    assert max(v for v in values if v is not None) < 31.5
    out = feed(values)
    assert not any(f.firing for f in out)
    assert out[-1].explanation.values["hours_in_band"] == 0


def test_too_few_valid_hours_does_not_fire() -> None:
    out = feed(clipped(47, total=47))  # every hour in band, but only 47 < 48
    assert not any(f.firing for f in out)
    assert "47 valid hours in the trailing 72 h (< 48)" in out[-1].explanation.summary
    # 72 hours, 25 of them invalid (24 multiples of 3, and hour 1): 47 valid hours
    gappy: list[float | None] = [None if i % 3 == 0 or i == 1 else 34.0 for i in range(72)]
    assert sum(v is not None for v in gappy) == 47
    assert not feed(gappy)[-1].firing
    gappy[1] = 34.5  # 48 valid hours: now it fires
    assert feed(gappy)[-1].firing


def test_near_the_limit_with_high_variance_does_not_fire() -> None:
    # 31.5 and 35.0 alternate (0.90x / 1.00x): all in band, mean 0.95x, CV 0.05 / 0.95 = 5.3 %
    out = feed([31.5 if i % 2 else 35.0 for i in range(72)])
    last = out[-1]
    assert not last.firing and last.explanation.values["share"] == 1.0
    assert last.explanation.values["cv"] == pytest.approx(0.05 / 0.95)


def test_above_the_limit_is_exceedance_not_hugging() -> None:
    out = feed([36.0 if i % 2 else 36.2 for i in range(72)])
    assert not any(f.firing for f in out)
    assert out[-1].explanation.values["hours_in_band"] == 0


def test_thresholds_are_configurable() -> None:
    small = AnomalyConfig(hugging_window_hours=6, hugging_min_valid_hours=4)
    assert [f.firing for f in feed(clipped(6, total=6), small)] == [False] * 3 + [True] * 3
    strict = AnomalyConfig(hugging_max_cv=0.005)  # 0.73 % is now too much spread
    assert not feed(clipped(60), strict)[-1].firing


def test_window_stays_bounded_and_round_trips() -> None:
    window = HuggingWindow()
    for i in range(500):
        limit_hugging(window, hour(i, 34.0), LIMIT, CFG)  # type: ignore[arg-type]
    assert sorted(window.hours) == list(range(H0 + 500 - 72, H0 + 500))
    assert HuggingWindow.from_list(window.to_list()) == window
    limit_hugging(window, hour(499, None), LIMIT, CFG, revision=1)  # re-judged invalid
    assert H0 + 499 not in window.hours and len(window.hours) == 71


@settings(max_examples=100, deadline=None)
@given(
    ratios=st.lists(st.floats(0.0, 0.89), min_size=48, max_size=120),
    scale=st.floats(0.05, 1.0),
)
def test_values_well_below_the_band_never_fire(ratios: list[float], scale: float) -> None:
    assert not any(f.firing for f in feed([r * scale * 35.0 for r in ratios]))


# ---- through the judge ------------------------------------------------------------------

SMALL = JudgeConfig(
    anomalies=AnomalyConfig(
        constant_minutes=10_000,
        zero_minutes=10_000,
        hugging_window_hours=6,
        hugging_min_valid_hours=4,
    )
)


def run(judge: Judge, readings: list[Reading]) -> list[AlertChange]:
    out: list[AlertChange] = []
    for r in readings:
        out += judge.on_reading(r, r.received_at)
    return out


def clipped_hours(n: int) -> list[Reading]:
    # SO2 27.2 / 27.6 at O2 9 %: corrected x (21 - 6) / (21 - 9) = 1.25 -> 34.0 / 34.5
    out: list[Reading] = []
    for i in range(n):
        out += gas_hour(T0 + timedelta(hours=i), 27.2 if i % 2 == 0 else 27.6, 9.0)
    return out


def test_judge_opens_a_limit_hugging_episode() -> None:
    judge = Judge(registry(), SMALL)
    changes = run(judge, [*clipped_hours(5), *closer(T0 + timedelta(hours=4))])
    hug = [c for c in changes if c.kind is FindingKind.LIMIT_HUGGING]
    assert [(c.change.value, c.factor) for c in hug] == [("opened", SO2), ("updated", SO2)]
    e = hug[0].explanation
    assert e.values["valid_hours"] == 4 and e.values["hours_in_band"] == 4
    assert e.values["cv"] == pytest.approx(0.25 / 34.25)
    assert not [c for c in changes if c.kind is FindingKind.EXCEEDANCE_HOURLY]
    assert len(judge.states["OUT-G1"].hugging[SO2].hours) == 5


def test_hugging_state_survives_the_table_encoding_and_old_state_decodes() -> None:
    readings = [*clipped_hours(4), *closer(T0 + timedelta(hours=3))]
    split = 3 * 120 + 12  # through minute 5 of hour 3: the watermark closes hours 0-2
    judge = Judge(registry(), SMALL)
    assert not [c for c in run(judge, readings[:split]) if c.kind is FindingKind.LIMIT_HUGGING]
    doc = judge.export_outlet("OUT-G1")
    assert doc is not None and len(doc["hugging"][SO2]) == 3
    partition, back = decode_state(encode_state(3, doc))
    assert partition == 3 and back == doc
    restored = Judge(registry(), SMALL)
    restored.import_outlet(back)
    assert restored.export_outlet("OUT-G1") == doc
    # Hour 3 completes the 4 valid hours needed: the restored judge fires.
    changes = run(restored, readings[split:])
    hug = [c.change.value for c in changes if c.kind is FindingKind.LIMIT_HUGGING]
    assert hug == ["opened"]
    old = {k: v for k, v in doc.items() if k != "hugging"}  # written before the detector
    assert OutletState.from_dict(old, SMALL.episodes).hugging == {}
