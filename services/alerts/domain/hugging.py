"""Hugging the limit: a clipping / formula-manipulation signature [domain 2.1 #8, 2.2].

A real stack's hourly 折算 means scatter. Means held just under the limit hour after hour, with
almost no spread, suggest a clipped analyser signal, a resistor dialled in between analyser
and logger, or a manipulated correction formula. Per outlet and factor the judge keeps the
valid hourly values of the trailing window (one entry per hour, never more than the window's
hours), each with the limit in force in its own hour; every first judgement of an hour
evaluates the window ending with it.

The band and the spread are taken on value / limit, so a window across a limit change is
judged against the limit each hour had; with one limit it is the same as on the values. Hours
above the limit are not in the band (they are exceedances, judged as such), so an outlet over
its limit never hugs it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from alerts.domain.anomalies import AnomalyConfig
from alerts.domain.explain import Explanation, LimitRef
from alerts.domain.findings import RULES, Finding, FindingKind, Severity
from alerts.domain.hours import HourResult
from alerts.domain.periods import HOUR, at
from alerts.domain.registry import LimitVersion


@dataclass(slots=True)
class HuggingWindow:
    """Valid hourly values of one (outlet, factor): hour -> (value, limit in force)."""

    hours: dict[int, tuple[float, float]] = field(default_factory=dict)

    def note(self, hour: int, value: float | None, limit: float, window_hours: int) -> None:
        """Record (or, for an hour no longer valid, forget) an hour; drop hours that left
        the window ending at the newest hour held, so the state stays bounded."""
        if value is None:
            self.hours.pop(hour, None)
        else:
            self.hours[hour] = (value, limit)
        if self.hours:
            oldest = max(self.hours) - window_hours
            for h in [h for h in self.hours if h <= oldest]:
                del self.hours[h]

    def to_list(self) -> list[list[float]]:
        return [[h, v, lim] for h, (v, lim) in sorted(self.hours.items())]

    @classmethod
    def from_list(cls, doc: list[list[Any]]) -> HuggingWindow:
        return cls({int(h): (float(v), float(lim)) for h, v, lim in doc})


def limit_hugging(
    window: HuggingWindow,
    result: HourResult,
    limit: LimitVersion,
    cfg: AnomalyConfig,
    revision: int = 0,
) -> Finding | None:
    """Note the closed hour and judge the trailing window ending with it. A re-judged hour
    (revision > 0) only corrects the window: the evaluation belongs to the hour's first
    judgement, as the sudden-drop baseline does."""
    assert limit.value is not None and limit.value > 0.0
    size = cfg.hugging_window_hours
    window.note(result.hour, result.value, limit.value, size)
    if revision > 0:
        return None
    first = result.hour - size + 1
    hours = sorted((h, v, lim) for h, (v, lim) in window.hours.items() if first <= h <= result.hour)
    lo, hi = cfg.hugging_band_low, cfg.hugging_band_high
    band = [(h, v, lim) for h, v, lim in hours if lo * lim <= v <= hi * lim]
    n = len(hours)
    k = len(band)
    share = k / n if n else 0.0
    ratios = [v / lim for _, v, lim in band]
    mean_ratio = statistics.fmean(ratios) if ratios else None
    cv = (
        statistics.pstdev(ratios) / mean_ratio
        if mean_ratio is not None and len(ratios) >= 2 and mean_ratio > 0.0
        else None
    )
    firing = (
        n >= cfg.hugging_min_valid_hours
        and share >= cfg.hugging_min_share
        and cv is not None
        and cv <= cfg.hugging_max_cv
    )
    in_band = [v for _, v, _ in band]
    mean = statistics.fmean(in_band) if in_band else None
    what = "corrected means" if result.needs_o2 else "hourly means"
    limits = sorted({lim for _, _, lim in hours})
    counted = (
        f"{k} of {n} valid hours in the trailing {size} h ({share:.0%}) had {what} within "
        f"{lo:g}-{hi:g}x the limit"
    )
    if firing:
        assert cv is not None and mean is not None
        summary = (
            f"{result.factor}: {counted} {limit.value:g} {limit.unit} ({limit.kind.value}, "
            f"{limit.clause}), mean {mean:.4g}, coefficient of variation {cv:.2%} "
            f"(thresholds: share >= {cfg.hugging_min_share:.0%}, CV <= "
            f"{cfg.hugging_max_cv:.0%}, >= {cfg.hugging_min_valid_hours} valid hours); "
            "clipping / formula manipulation signature"
        )
    elif n < cfg.hugging_min_valid_hours:
        summary = (
            f"{result.factor}: {n} valid hours in the trailing {size} h "
            f"(< {cfg.hugging_min_valid_hours}); limit hugging not judged"
        )
    else:
        spread = "n/a" if cv is None else f"{cv:.2%}"
        summary = f"{result.factor}: not hugging the limit: {counted}, CV {spread}"
    rule_id, basis = RULES[FindingKind.LIMIT_HUGGING]
    return Finding(
        kind=FindingKind.LIMIT_HUGGING,
        outlet_id=result.outlet_id,
        factor=result.factor,
        start=result.start,
        end=result.end,
        firing=firing,
        severity=Severity.WARNING if firing else Severity.INFO,
        value=mean if firing else None,
        ratio=mean_ratio if firing else None,
        revision=revision,
        explanation=Explanation(
            rule_id=rule_id,
            basis=basis,
            summary=summary,
            window_start=at(first * HOUR),
            window_end=result.end,
            limit=LimitRef.of(limit),
            values={
                "window_hours": size,
                "valid_hours": n,
                "min_valid_hours": cfg.hugging_min_valid_hours,
                "hours_in_band": k,
                "share": share,
                "min_share": cfg.hugging_min_share,
                "band_low": lo,
                "band_high": hi,
                "cv": cv,
                "max_cv": cfg.hugging_max_cv,
                "mean": mean,
                "mean_ratio": mean_ratio,
                "min_in_band": min(in_band) if in_band else None,
                "max_in_band": max(in_band) if in_band else None,
                "limit": limit.value,
                # more than one when the window spans a limit change
                "limit_values_in_window": ", ".join(f"{v:g}" for v in limits),
            },
            record_refs=tuple(f"hour {at(h * HOUR).isoformat()}" for h, _, _ in band)
            if firing
            else (),
        ),
    )
