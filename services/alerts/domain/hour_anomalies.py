"""Hour-level anomaly signatures [domain 2.1, 2.2], judged when an outlet-hour closes:
incomplete hours, the logger's own hourly values disagreeing with the minutes, sudden drops,
O2 dilution and flow mismatches. Thresholds: `anomalies.AnomalyConfig`."""

from __future__ import annotations

import statistics
from typing import Any

from alerts.domain.anomalies import AnomalyConfig
from alerts.domain.explain import Explanation
from alerts.domain.findings import ALL_FACTORS, RULES, Finding, FindingKind, Severity
from alerts.domain.hours import HourResult
from alerts.domain.validity import HJ76, ValidityRules


def _hour_finding(
    kind: FindingKind,
    result: HourResult,
    factor: str,
    firing: bool,
    severity: Severity,
    summary: str,
    values: dict[str, Any],
    revision: int,
    value: float | None = None,
) -> Finding:
    rule_id, basis = RULES[kind]
    return Finding(
        kind=kind,
        outlet_id=result.outlet_id,
        factor=factor,
        start=result.start,
        end=result.end,
        firing=firing,
        severity=severity if firing else Severity.INFO,
        value=value,
        revision=revision,
        explanation=Explanation(
            rule_id=rule_id,
            basis=basis,
            summary=summary,
            window_start=result.start,
            window_end=result.end,
            values=values,
            valid_minutes=result.valid_minutes,
            excluded=dict(result.excluded),
            record_refs=result.record_refs,
        ),
    )


def hour_completeness(
    result: HourResult, rules: ValidityRules = HJ76, revision: int = 0
) -> list[Finding]:
    """Missing hour (nothing received, no logger hour) and incomplete hour (< 45 valid
    minutes). Minutes excluded by approved marks or flag F (stopped) explain a short hour."""
    counted = result.valid_minutes + result.explained
    short = result.basis != "logger_hour" and counted < rules.min_valid_minutes
    missing = short and result.basis == "none"
    incomplete = short and result.basis == "minutes"
    values: dict[str, Any] = {
        "received_minutes": result.received,
        "explained_minutes": result.explained,
        "required": rules.min_valid_minutes,
    }
    return [
        _hour_finding(
            FindingKind.HOUR_MISSING,
            result,
            result.factor,
            missing,
            Severity.WARNING,
            f"{result.factor}: no data received for the hour"
            if missing
            else f"{result.factor}: hour data present or explained",
            values,
            revision,
        ),
        _hour_finding(
            FindingKind.HOUR_INCOMPLETE,
            result,
            result.factor,
            incomplete,
            Severity.WARNING,
            f"{result.factor}: {result.valid_minutes} valid minutes (+{result.explained} "
            f"explained by marks) < {rules.min_valid_minutes}"
            if incomplete
            else f"{result.factor}: hour not incomplete",
            values,
            revision,
            float(result.valid_minutes),
        ),
    ]


def logger_hour_mismatch(
    result: HourResult, cfg: AnomalyConfig, revision: int = 0
) -> Finding | None:
    """The logger's 2061 Avg/ZsAvg vs the platform's recomputation from the same hour's
    minutes; None when there is nothing to compare."""
    if result.basis != "minutes" or not result.valid or result.mean is None:
        return None
    pairs = []
    if result.logger_avg is not None:
        pairs.append(("avg", result.logger_avg, result.mean))
    if result.needs_o2 and result.logger_zs_avg is not None and result.corrected is not None:
        pairs.append(("zs_avg", result.logger_zs_avg, result.corrected))
    if not pairs:
        return None
    bad = [
        (name, sent, ours)
        for name, sent, ours in pairs
        if abs(sent - ours)
        > max(cfg.logger_hour_abs_tolerance, cfg.logger_hour_rel_tolerance * abs(ours))
    ]
    values: dict[str, Any] = {f"logger_{n}": s for n, s, _ in pairs}
    values.update({f"platform_{n}": o for n, _, o in pairs})
    summary = (
        f"{result.factor}: logger hour record differs from recomputation from "
        f"{result.valid_minutes} valid minutes: "
        + "; ".join(f"{n} sent {s:.4g} vs {o:.4g}" for n, s, o in bad)
        if bad
        else f"{result.factor}: logger hour record agrees with recomputation"
    )
    return _hour_finding(
        FindingKind.LOGGER_HOUR_MISMATCH,
        result,
        result.factor,
        bool(bad),
        Severity.MAJOR,
        summary,
        values,
        revision,
    )


def sudden_drop(
    result: HourResult, baseline: list[float], cfg: AnomalyConfig, revision: int = 0
) -> Finding | None:
    """Hourly measured mean far below the trailing median of valid hours (needs >= 6)."""
    if not result.valid or result.mean is None or len(baseline) < cfg.baseline_min_hours:
        return None
    median = statistics.median(baseline)
    if median <= 0.0:
        return None
    drop = 1.0 - result.mean / median
    firing = drop > cfg.sudden_drop_fraction
    summary = (
        f"{result.factor}: hourly mean {result.mean:.4g} is {drop:.0%} below the trailing "
        f"median {median:.4g} of {len(baseline)} valid hours"
        if firing
        else f"{result.factor}: no sudden drop"
    )
    return _hour_finding(
        FindingKind.SUDDEN_DROP,
        result,
        result.factor,
        firing,
        Severity.WARNING,
        summary,
        {
            "mean": result.mean,
            "baseline_median": median,
            "drop": drop,
            "threshold": cfg.sudden_drop_fraction,
        },
        revision,
        result.mean,
    )


def o2_dilution(
    o2: HourResult,
    pollutants: list[HourResult],
    o2_baseline: list[float],
    baselines: dict[str, list[float]],
    marked: bool,
    cfg: AnomalyConfig,
    revision: int = 0,
) -> Finding | None:
    """O2 near ambient while the unit is not marked as starting/stopping, or O2 up >= 3 points
    vs its baseline while a pollutant's measured concentration falls >= 30 %."""
    if not o2.valid or o2.mean is None:
        return None
    reasons: list[str] = []
    if o2.mean >= cfg.dilution_o2 and not marked:
        reasons.append(
            f"O2 hourly mean {o2.mean:.3g} % >= {cfg.dilution_o2:g} % with no "
            "approved start-up/shut-down/stopped mark"
        )
    if len(o2_baseline) >= cfg.baseline_min_hours and not marked:
        o2_base = statistics.median(o2_baseline)
        if o2.mean - o2_base >= cfg.dilution_o2_rise:
            for p in pollutants:
                base = baselines.get(p.factor, [])
                if p.mean is None or len(base) < cfg.baseline_min_hours:
                    continue
                level = statistics.median(base)
                if level > 0 and p.mean <= (1.0 - cfg.dilution_concentration_drop) * level:
                    reasons.append(
                        f"O2 {o2.mean:.3g} % is {o2.mean - o2_base:.2g} points above its "
                        f"baseline {o2_base:.3g} % while {p.factor} fell from {level:.4g} to "
                        f"{p.mean:.4g}"
                    )
    firing = bool(reasons)
    return _hour_finding(
        FindingKind.O2_DILUTION,
        o2,
        ALL_FACTORS,
        firing,
        Severity.MAJOR,
        "; ".join(reasons) if firing else "no dilution signature",
        {"o2_mean": o2.mean, "threshold_o2": cfg.dilution_o2},
        revision,
        o2.mean,
    )


def flow_mismatch(
    flow: HourResult, pollutants: list[HourResult], cfg: AnomalyConfig, revision: int = 0
) -> Finding | None:
    """Flow zero while a pollutant reads positive over the same valid hour (反吹 left on, or
    a stack not really discharging through the monitored point)."""
    if not flow.valid or flow.mean is None:
        return None
    positive = [
        p
        for p in pollutants
        if p.valid and p.mean is not None and p.mean > cfg.concentration_positive
    ]
    firing = flow.mean <= cfg.flow_zero and bool(positive)
    summary = (
        f"flow {flow.factor} hourly mean {flow.mean:.4g} while "
        + ", ".join(f"{p.factor} {p.mean:.4g}" for p in positive)
        if firing
        else "flow and concentration consistent"
    )
    return _hour_finding(
        FindingKind.FLOW_MISMATCH,
        flow,
        ALL_FACTORS,
        firing,
        Severity.WARNING,
        summary,
        {"flow_mean": flow.mean},
        revision,
        flow.mean,
    )
