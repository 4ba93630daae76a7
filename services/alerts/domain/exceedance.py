"""Exceedance (超标) judgement on the averaging basis the standard specifies.

Gas: valid O2-corrected hourly mean above the limit in force at the start of that hour.
Daily-basis outlets (water, MSW incineration): valid daily mean (flow-weighted for water, see
`days`) above the limit in force at the start of the day, so a version that takes effect
mid-day governs from the next day (no retroactive tightening). pH: a valid hourly value
outside [low, high] [domain 1.3, 6].
An exceedance inside an approved start-up/shut-down mark is charged to the outlet's annual
exemption cap instead of alerting; once the cap is used up it alerts [domain 1.6].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alerts.domain.correction import PhJudgement, ph_judgement
from alerts.domain.days import DayResult
from alerts.domain.explain import Explanation, LimitRef
from alerts.domain.findings import RULES, Finding, FindingKind, Severity
from alerts.domain.hours import HourResult
from alerts.domain.periods import at
from alerts.domain.registry import LimitVersion, Outlet


@dataclass(frozen=True, slots=True)
class ExceedanceConfig:
    # MSW incineration: start-up/shut-down/fault exceedances not judged as 超标 within 60 h per
    # furnace per calendar year (部令第10号) [domain 1.6, M]. No cap value was found for other
    # sectors, so the same 60 h applies unless a sector override is configured.
    exemption_cap_hours: float = 60.0
    exemption_cap_by_sector: Mapping[str, float] = field(default_factory=dict)
    # Engineering default: twice the limit is critical (domain gives no ladder for this).
    critical_ratio: float = 2.0
    # Real-time pre-warning: this many consecutive corrected real-time values above the limit.
    prewarning_readings: int = 10

    def cap_for(self, outlet: Outlet) -> float:
        return self.exemption_cap_by_sector.get(outlet.sector, self.exemption_cap_hours)


class ExemptionLedger:
    """Hours charged to the annual start-up/shut-down cap, per calendar year; charging the
    same period twice is a no-op, so replays do not eat the cap."""

    def __init__(self, used: dict[int, dict[int, float]] | None = None) -> None:
        self.used: dict[int, dict[int, float]] = used or {}

    def total(self, year: int) -> float:
        return sum(self.used.get(year, {}).values())

    def charge(self, year: int, key: int, hours: float, cap: float) -> bool:
        periods = self.used.setdefault(year, {})
        if key in periods:
            return True
        if sum(periods.values()) + hours > cap:
            return False
        periods[key] = hours
        return True

    def release(self, year: int, key: int) -> bool:
        return self.used.get(year, {}).pop(key, None) is not None

    def to_dict(self) -> dict[str, Any]:
        return {str(y): {str(k): h for k, h in p.items()} for y, p in self.used.items()}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ExemptionLedger:
        return cls({int(y): {int(k): float(h) for k, h in p.items()} for y, p in doc.items()})


def _severity(ratio: float, cfg: ExceedanceConfig) -> Severity:
    return Severity.CRITICAL if ratio >= cfg.critical_ratio else Severity.MAJOR


def _hour_values(result: HourResult, outlet: Outlet) -> dict[str, Any]:
    return {
        "basis": result.basis,
        "mean_measured": result.mean,
        "mean_o2": result.o2_mean,
        "reference_o2": outlet.reference_o2 if result.needs_o2 else None,
        "corrected": result.corrected if result.needs_o2 else None,
        "correction_note": result.correction_note,
        "min": result.minimum,
        "max": result.maximum,
        "received_minutes": result.received,
        "logger_avg": result.logger_avg,
        "logger_zs_avg": result.logger_zs_avg,
    }


def judge_hour(
    result: HourResult,
    outlet: Outlet,
    limit: LimitVersion | None,
    ledger: ExemptionLedger,
    cfg: ExceedanceConfig = ExceedanceConfig(),
    revision: int = 0,
) -> list[Finding]:
    """Findings for one closed hour: exceedance (hourly basis), pH, exemption bookkeeping."""
    if limit is None:
        return []
    if limit.is_range:
        return [_judge_ph(result, outlet, limit, revision)]
    if outlet.averaging.value != "hourly" or limit.value is None:
        return []
    kind = FindingKind.EXCEEDANCE_HOURLY
    rule_id, basis = RULES[kind]
    values = _hour_values(result, outlet)
    value = result.value
    common: dict[str, Any] = {
        "rule_id": rule_id,
        "basis": basis,
        "window_start": result.start,
        "window_end": result.end,
        "limit": LimitRef.of(limit),
        "valid_minutes": result.valid_minutes,
        "excluded": dict(result.excluded),
        "record_refs": result.record_refs,
    }
    key = result.hour
    year = result.start.year
    if value is None:
        summary = _invalid_summary(result)
        released = ledger.release(year, key)
        out = [
            _finding(
                kind, result, False, Severity.INFO, summary, values, common, None, None, revision
            )
        ]
        if released:
            out.append(_exempted(result, outlet, False, values, common, revision, ledger, cfg))
        return out
    ratio = value / limit.value if limit.value > 0 else float("inf")
    values = {**values, "limit": limit.value, "ratio": ratio}
    if value <= limit.value:
        summary = (
            f"{result.factor} hourly {'corrected ' if result.needs_o2 else ''}mean "
            f"{value:.4g} {limit.unit} within limit {limit.value:g} {limit.unit}"
        )
        out = [
            _finding(
                kind, result, False, Severity.INFO, summary, values, common, value, ratio, revision
            )
        ]
        if ledger.release(year, key):
            out.append(_exempted(result, outlet, False, values, common, revision, ledger, cfg))
        return out
    summary = (
        f"{result.factor} hourly {'O2-corrected ' if result.needs_o2 else ''}mean "
        f"{value:.4g} {limit.unit} > limit {limit.value:g} {limit.unit} "
        f"({limit.kind.value}, {limit.clause}); {ratio:.2f}x limit"
    )
    if result.needs_o2:
        summary += (
            f"; measured {result.mean:.4g} at O2 {result.o2_mean:.3g} %, "
            f"reference O2 {outlet.reference_o2:g} %"
        )
    if result.valid_minutes:
        summary += f"; {result.valid_minutes} valid minutes"
    return _over_limit(
        kind,
        result,
        outlet,
        summary,
        values,
        common,
        value,
        ratio,
        revision,
        ledger,
        cfg,
        year,
        key,
        bool(result.exempting_marks),
        1.0,
    )


def _over_limit(
    kind: Any,
    result: Any,
    outlet: Outlet,
    summary: str,
    values: dict[str, Any],
    common: Any,
    value: float,
    ratio: float,
    revision: Any,
    ledger: ExemptionLedger,
    cfg: ExceedanceConfig,
    year: int,
    key: Any,
    exempting: bool,
    exempt_hours: float,
) -> list[Finding]:
    """An hour or day over its limit: exempt while approved start-up/shut-down hours remain
    under the annual cap (charged once per key), otherwise an exceedance."""
    if exempting:
        cap = cfg.cap_for(outlet)
        if ledger.charge(year, key, exempt_hours, cap):
            values = {**values, "exemption_used_hours": ledger.total(year), "exemption_cap": cap}
            return [
                _finding(
                    kind,
                    result,
                    False,
                    Severity.INFO,
                    "exempt: " + summary,
                    values,
                    common,
                    value,
                    ratio,
                    revision,
                ),
                _exempted(result, outlet, True, values, common, revision, ledger, cfg, summary),
            ]
        values = {**values, "exemption_cap_exhausted": True, "exemption_cap": cap}
        summary += f"; start-up/shut-down exemption cap of {cap:g} h used up"
    return [
        _finding(
            kind,
            result,
            True,
            _severity(ratio, cfg),
            summary,
            values,
            common,
            value,
            ratio,
            revision,
        )
    ]


def _invalid_summary(result: HourResult) -> str:
    if result.basis == "none":
        return f"{result.factor}: no data for the hour; not judged"
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(result.excluded.items()))
    if result.valid_minutes < 45 and result.basis == "minutes":
        return (
            f"{result.factor}: hour not valid, {result.valid_minutes} valid minutes < 45 "
            f"(excluded: {reasons}); not judged"
        )
    note = result.correction_note or reasons
    return f"{result.factor}: hour not judgeable ({note})"


def _finding(
    kind: FindingKind,
    result: HourResult | DayResult,
    firing: bool,
    severity: Severity,
    summary: str,
    values: dict[str, Any],
    common: dict[str, Any],
    value: float | None,
    ratio: float | None,
    revision: int,
) -> Finding:
    return Finding(
        kind=kind,
        outlet_id=result.outlet_id,
        factor=result.factor,
        start=result.start,
        end=result.end,
        firing=firing,
        severity=severity,
        explanation=Explanation(summary=summary, values=values, **common),
        value=value,
        ratio=ratio,
        revision=revision,
    )


def _exempted(
    result: HourResult | DayResult,
    outlet: Outlet,
    firing: bool,
    values: dict[str, Any],
    common: dict[str, Any],
    revision: int,
    ledger: ExemptionLedger,
    cfg: ExceedanceConfig,
    summary: str = "",
) -> Finding:
    rule_id, basis = RULES[FindingKind.EXCEEDANCE_EXEMPTED]
    marks = result.exempting_marks if isinstance(result, HourResult) else ()
    text = (
        f"exceedance exempted under approved start-up/shut-down mark(s) {', '.join(marks)}: "
        f"{summary}; cap used {ledger.total(result.start.year):g}/{cfg.cap_for(outlet):g} h"
        if firing
        else "no longer an exempted exceedance (re-judged)"
    )
    return Finding(
        kind=FindingKind.EXCEEDANCE_EXEMPTED,
        outlet_id=result.outlet_id,
        factor=result.factor,
        start=result.start,
        end=result.end,
        firing=firing,
        severity=Severity.INFO,
        explanation=Explanation(
            summary=text,
            values={**values, "marks": ", ".join(marks)},
            **{**common, "rule_id": rule_id, "basis": basis},
        ),
        revision=revision,
    )


def _judge_ph(result: HourResult, outlet: Outlet, limit: LimitVersion, revision: int) -> Finding:
    kind = FindingKind.PH_OUT_OF_RANGE
    rule_id, basis = RULES[kind]
    values = {**_hour_values(result, outlet), "low": limit.low, "high": limit.high}
    common: dict[str, Any] = {
        "rule_id": rule_id,
        "basis": basis,
        "window_start": result.start,
        "window_end": result.end,
        "limit": LimitRef.of(limit),
        "valid_minutes": result.valid_minutes,
        "excluded": dict(result.excluded),
        "record_refs": result.record_refs,
    }
    value = result.value
    if value is None:
        return _finding(
            kind,
            result,
            False,
            Severity.INFO,
            _invalid_summary(result),
            values,
            common,
            None,
            None,
            revision,
        )
    verdict = ph_judgement(value, limit.low, limit.high)
    if verdict is PhJudgement.IN_RANGE:
        summary = f"pH hourly mean {value:.3g} within {limit.low:g}-{limit.high:g}"
        return _finding(
            kind, result, False, Severity.INFO, summary, values, common, value, None, revision
        )
    summary = (
        f"pH hourly mean {value:.3g} {verdict.value} permitted range "
        f"{limit.low:g}-{limit.high:g} ({limit.kind.value}, {limit.clause})"
    )
    return _finding(
        kind,
        result,
        True,
        Severity.MAJOR,
        summary,
        {**values, "verdict": verdict.value},
        common,
        value,
        None,
        revision,
    )


def judge_day(
    result: DayResult,
    outlet: Outlet,
    limit: LimitVersion | None,
    ledger: ExemptionLedger,
    exempting_marks: tuple[str, ...] = (),
    exempt_hours: float = 0.0,
    cfg: ExceedanceConfig = ExceedanceConfig(),
    revision: int = 0,
) -> list[Finding]:
    """Daily-basis judgement; exempting marks charge the hours they overlap to the cap."""
    if limit is None or limit.is_range or limit.value is None:
        return []
    kind = FindingKind.EXCEEDANCE_DAILY
    rule_id, basis = RULES[kind]
    refs = result.hour_labels() if result.basis == "hours" else ()
    values: dict[str, Any] = {
        "basis": result.basis,
        "daily_mean": result.mean,
        "valid_hours": result.valid_hours,
        "logger_avg": result.logger_avg,
        "limit": limit.value,
        "mean_basis": result.mean_basis.value,
        "mean_note": result.mean_note,
        "arithmetic_mean": result.arithmetic_mean,
        "flow_total": result.flow_total,
    }
    common: dict[str, Any] = {
        "rule_id": rule_id,
        "basis": basis,
        "window_start": result.start,
        "window_end": result.end,
        "limit": LimitRef.of(limit),
        "valid_minutes": None,
        "excluded": {},
        "record_refs": refs,
    }
    key = result.day
    year = result.start.year
    value = result.value
    if value is None or value <= limit.value:
        summary = (
            f"{result.factor}: day not valid, {result.valid_hours} valid hours < 20; not judged"
            if value is None
            else f"{result.factor} daily mean {value:.4g} within limit {limit.value:g} "
            f"({result.mean_note})"
        )
        ratio = None if value is None else value / limit.value
        out = [
            _finding(
                kind, result, False, Severity.INFO, summary, values, common, value, ratio, revision
            )
        ]
        if ledger.release(year, key):
            out.append(_exempted(result, outlet, False, values, common, revision, ledger, cfg))
        return out
    ratio = value / limit.value if limit.value > 0 else float("inf")
    values["ratio"] = ratio
    summary = (
        f"{result.factor} daily mean {value:.4g} {limit.unit} > limit {limit.value:g} "
        f"{limit.unit} ({limit.kind.value}, {limit.clause}); {ratio:.2f}x limit; "
        f"{result.valid_hours} valid hours; {result.mean_note}"
    )
    return _over_limit(
        kind,
        result,
        outlet,
        summary,
        values,
        common,
        value,
        ratio,
        revision,
        ledger,
        cfg,
        year,
        key,
        bool(exempting_marks),
        exempt_hours,
    )


@dataclass(slots=True)
class PrewarningRun:
    """Consecutive corrected real-time values above the limit for one (outlet, factor)."""

    count: int = 0
    start_ts: float = 0.0
    peak: float = 0.0
    raised: bool = False
    refs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "start_ts": self.start_ts,
            "peak": self.peak,
            "raised": self.raised,
            "refs": list(self.refs),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PrewarningRun:
        return cls(
            int(doc["count"]),
            float(doc["start_ts"]),
            float(doc["peak"]),
            bool(doc["raised"]),
            list(doc["refs"]),
        )


def prewarning_step(
    run: PrewarningRun,
    outlet_id: str,
    factor: str,
    ts: float,
    corrected: float,
    limit: LimitVersion,
    ref: str,
    cfg: ExceedanceConfig = ExceedanceConfig(),
) -> Finding | None:
    """Feed one corrected real-time value; a finding when the run reaches N (then every N
    more, as an update), and a non-firing one when a raised run ends."""
    assert limit.value is not None
    n = cfg.prewarning_readings
    rule_id, basis = RULES[FindingKind.PREWARNING]
    if corrected > limit.value:
        if run.count == 0:
            run.start_ts = ts
            run.peak = corrected
            run.refs = []
        run.count += 1
        run.peak = max(run.peak, corrected)
        if len(run.refs) < n:
            run.refs.append(ref)
        if run.count % n:
            return None
        run.raised = True
        ratio = run.peak / limit.value if limit.value > 0 else float("inf")
        return Finding(
            kind=FindingKind.PREWARNING,
            outlet_id=outlet_id,
            factor=factor,
            start=at(run.start_ts),
            end=at(ts),
            firing=True,
            severity=Severity.WARNING,
            value=run.peak,
            ratio=ratio,
            explanation=Explanation(
                rule_id=rule_id,
                basis=basis,
                summary=(
                    f"{factor}: {run.count} consecutive corrected real-time values above "
                    f"{limit.value:g} {limit.unit} (peak {run.peak:.4g}); the hour has not closed"
                ),
                window_start=at(run.start_ts),
                window_end=at(ts),
                limit=LimitRef.of(limit),
                values={"consecutive": run.count, "peak": run.peak, "threshold_readings": n},
                record_refs=tuple(run.refs),
            ),
        )
    was_raised = run.raised
    run.count = 0
    run.raised = False
    run.refs = []
    if not was_raised:
        return None
    return Finding(
        kind=FindingKind.PREWARNING,
        outlet_id=outlet_id,
        factor=factor,
        start=at(ts),
        end=at(ts),
        firing=False,
        severity=Severity.INFO,
        value=corrected,
        explanation=Explanation(
            rule_id=rule_id,
            basis=basis,
            summary=f"{factor}: corrected real-time value {corrected:.4g} back within the limit",
            window_start=at(ts),
            window_end=at(ts),
            limit=LimitRef.of(limit),
            values={"corrected": corrected},
            record_refs=(ref,),
        ),
    )
