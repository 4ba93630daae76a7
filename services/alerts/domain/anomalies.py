"""Anomaly and falsification signatures [domain 2.1, 2.2].

Per-reading detectors run over a per-(outlet, factor, record kind) `StreamState` and use a
`Run` (consecutive occurrences): a run fires when it reaches its threshold, fires again as an
update every `run_update_every` further readings, and ends with a non-firing finding so its
episode can clear. Hour-level detectors run when an outlet-hour closes.

Where domain.md found no public number, the default is an engineering default and says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from alerts.domain.correction import correction_factor
from alerts.domain.explain import Explanation
from alerts.domain.findings import ALL_FACTORS, RULES, Finding, FindingKind, Severity
from alerts.domain.hours import HourResult
from alerts.domain.periods import at
from alerts.domain.validity import HJ76, ValidityRules


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    # 恒值: exact repeats for >= 60 min while running; no national number [domain 2.2, eng.].
    constant_minutes: int = 60
    constant_realtime_readings: int = 120  # 1 h at a 30 s RtdInterval
    # 零值: vendor example "pH 0 for > 30 min" [domain 2.2, V: configurable field].
    zero_minutes: int = 30
    zero_realtime_readings: int = 60
    negative_readings: int = 1  # 负值: immediate [domain 2.2]
    # 超量程: flag T, or within 0.1 % of the configured instrument range [domain 2.2, M].
    over_range_fraction: float = 0.999
    # 稀释: O2 >= 19 % while not marked, or O2 up >= 3 points while concentration falls >= 30 %
    # vs the trailing baseline [domain 2.2, engineering default].
    dilution_o2: float = 19.0
    dilution_o2_rise: float = 3.0
    dilution_concentration_drop: float = 0.3
    # Sudden drop: hourly measured mean > 80 % below the trailing 24-h median [domain 2.2].
    sudden_drop_fraction: float = 0.8
    baseline_hours: int = 24
    baseline_min_hours: int = 6
    # Flow mismatch (gas): flow 0 while concentration > 0 [domain 2.2, V mdsyq note].
    flow_zero: float = 0.0
    concentration_positive: float = 0.0
    # 联网异常: "超过20分钟没有回传" [domain 2.2, V 运维宝].
    offline_minutes: int = 20
    # Timestamps: DataTime more than 5 min ahead of arrival [engineering default].
    future_tolerance_s: float = 300.0
    # Back-fill: >= 120 records arriving >= 2 h late within 1 h of arrival time; critical when
    # it arrives within 72 h before a noted inspection [domain 2.2 fields; thresholds eng.].
    backfill_lateness_s: float = 7200.0
    backfill_window_s: float = 3600.0
    backfill_min_records: int = 120
    backfill_inspection_window_s: float = 72 * 3600.0
    # 实测/折算 inconsistency > 1 % [domain 2.2]; the absolute floor absorbs logger rounding.
    corrected_rel_tolerance: float = 0.01
    corrected_abs_tolerance: float = 0.1
    logger_hour_rel_tolerance: float = 0.01
    logger_hour_abs_tolerance: float = 0.1
    run_update_every: int = 60
    # Hugging the limit (clipping / formula manipulation): over the trailing 72 h, >= 60 % of
    # the valid hourly corrected means within [0.9, 1.0] x the limit in force, with a
    # coefficient of variation <= 3 % among them, given >= 48 valid hours. No public number:
    # engineering defaults [domain 2.2 "Hugging the limit"]. See `hugging`.
    hugging_window_hours: int = 72
    hugging_min_valid_hours: int = 48
    hugging_band_low: float = 0.9
    hugging_band_high: float = 1.0
    hugging_min_share: float = 0.6
    hugging_max_cv: float = 0.03


@dataclass(slots=True)
class Run:
    """Consecutive occurrences of one condition."""

    count: int = 0
    start_ts: float = 0.0
    last_ts: float = 0.0
    value: float = 0.0
    raised: bool = False
    first_ref: str = ""
    last_ref: str = ""

    def to_list(self) -> list[Any]:
        return [
            self.count,
            self.start_ts,
            self.last_ts,
            self.value,
            self.raised,
            self.first_ref,
            self.last_ref,
        ]

    @classmethod
    def from_list(cls, doc: list[Any]) -> Run:
        return cls(
            int(doc[0]),
            float(doc[1]),
            float(doc[2]),
            float(doc[3]),
            bool(doc[4]),
            str(doc[5]),
            str(doc[6]),
        )


FIRE = 1
END = -1


def run_step(
    run: Run, hit: bool, ts: float, value: float, ref: str, threshold: int, every: int
) -> int:
    """FIRE when the run reaches its threshold (and every `every` readings after), END when a
    raised run is broken, else 0."""
    if hit:
        if run.count == 0:
            run.start_ts = ts
            run.first_ref = ref
        run.count += 1
        run.last_ts = ts
        run.value = value
        run.last_ref = ref
        over = run.count - threshold
        if over >= 0 and over % every == 0:
            run.raised = True
            return FIRE
        return 0
    if run.count == 0:
        return 0
    raised = run.raised
    run.count = 0
    run.raised = False
    return END if raised else 0


def run_finding(
    kind: FindingKind,
    outlet_id: str,
    factor: str,
    run: Run,
    event: int,
    ts: float,
    severity: Severity,
    summary: str,
    values: dict[str, Any] | None = None,
) -> Finding:
    rule_id, basis = RULES[kind]
    firing = event == FIRE
    start = run.start_ts if firing else ts
    end = run.last_ts if firing else ts
    refs = tuple(dict.fromkeys(r for r in (run.first_ref, run.last_ref) if r)) if firing else ()
    return Finding(
        kind=kind,
        outlet_id=outlet_id,
        factor=factor,
        start=at(start),
        end=at(end),
        firing=firing,
        severity=severity if firing else Severity.INFO,
        value=run.value if firing else None,
        explanation=Explanation(
            rule_id=rule_id,
            basis=basis,
            summary=summary if firing else f"{factor}: {kind.value} ended",
            window_start=at(start),
            window_end=at(end),
            values={"consecutive": run.count, **(values or {})} if firing else {},
            record_refs=refs,
        ),
    )


@dataclass(slots=True)
class StreamState:
    """Per (outlet, factor, record kind) detector state; plain data, serialisable."""

    constant: Run = field(default_factory=Run)
    zero: Run = field(default_factory=Run)
    negative: Run = field(default_factory=Run)
    over_range: Run = field(default_factory=Run)
    timestamp: Run = field(default_factory=Run)
    conflict: Run = field(default_factory=Run)
    zs: Run = field(default_factory=Run)
    last_ts: float = -1.0
    last_value: float | None = None
    last_flag: str = ""
    pending: tuple[float, float, float | None, str] | None = None  # ts, value, logger zs, ref

    _RUNS = ("constant", "zero", "negative", "over_range", "timestamp", "conflict", "zs")

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {name: getattr(self, name).to_list() for name in self._RUNS}
        doc.update(
            last_ts=self.last_ts,
            last_value=self.last_value,
            last_flag=self.last_flag,
            pending=list(self.pending) if self.pending else None,
        )
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> StreamState:
        state = cls()
        for name in cls._RUNS:
            setattr(state, name, Run.from_list(doc[name]))
        state.last_ts = float(doc["last_ts"])
        state.last_value = doc["last_value"]
        state.last_flag = str(doc["last_flag"])
        p = doc.get("pending")
        state.pending = (float(p[0]), float(p[1]), p[2], str(p[3])) if p else None
        return state


def check_value(
    stream: StreamState,
    outlet_id: str,
    factor: str,
    ts: float,
    value: float | None,
    flag: str,
    ref: str,
    instrument_range: float | None,
    realtime: bool,
    cfg: AnomalyConfig,
) -> list[Finding]:
    """Constant, zero, negative and over-range detectors for one reading. Only flag-N values
    feed constant/zero/negative: calibration (C) and maintenance (M) values are expected to
    sit still and are already excluded from judgement."""
    out: list[Finding] = []
    every = cfg.run_update_every
    pinned = (
        value is not None
        and instrument_range is not None
        and value >= instrument_range * cfg.over_range_fraction
    )
    over = flag == "T" or pinned
    event = run_step(stream.over_range, over, ts, value or 0.0, ref, 1, every)
    if event:
        why = (
            "flag T (over the analyser's upper range)"
            if flag == "T"
            else (f"value {value} pinned at instrument range {instrument_range}")
        )
        out.append(
            run_finding(
                FindingKind.OVER_RANGE,
                outlet_id,
                factor,
                stream.over_range,
                event,
                ts,
                Severity.WARNING,
                f"{factor}: {why}",
                {"range": instrument_range, "flag": flag},
            )
        )
    if value is None or flag != "N":
        return out
    event = run_step(stream.negative, value < 0.0, ts, value, ref, cfg.negative_readings, every)
    if event:
        out.append(
            run_finding(
                FindingKind.NEGATIVE_VALUE,
                outlet_id,
                factor,
                stream.negative,
                event,
                ts,
                Severity.WARNING,
                f"{factor}: negative value {value}",
            )
        )
    zero_n = cfg.zero_realtime_readings if realtime else cfg.zero_minutes
    event = run_step(stream.zero, value == 0.0, ts, value, ref, zero_n, every)
    if event:
        out.append(
            run_finding(
                FindingKind.ZERO_VALUE,
                outlet_id,
                factor,
                stream.zero,
                event,
                ts,
                Severity.WARNING,
                f"{factor}: value 0 for {stream.zero.count} consecutive readings "
                f"(threshold {zero_n})",
                {"threshold": zero_n},
            )
        )
    const_n = cfg.constant_realtime_readings if realtime else cfg.constant_minutes
    run = stream.constant
    # Zeros belong to the zero detector; a changed value ends the run and starts a new one.
    same = value != 0.0 and run.count > 0 and value == run.value
    if not same and run.count > 0:
        event = run_step(run, False, ts, value, ref, const_n, every)
        if event:
            out.append(
                run_finding(
                    FindingKind.CONSTANT_VALUE,
                    outlet_id,
                    factor,
                    run,
                    event,
                    ts,
                    Severity.WARNING,
                    "",
                )
            )
    if value != 0.0:
        event = run_step(run, True, ts, value, ref, const_n, every)
        if event:
            out.append(
                run_finding(
                    FindingKind.CONSTANT_VALUE,
                    outlet_id,
                    factor,
                    run,
                    event,
                    ts,
                    Severity.WARNING,
                    f"{factor}: identical value {value} for {run.count} consecutive readings "
                    f"(threshold {const_n})",
                    {"threshold": const_n},
                )
            )
    return out


def check_timestamp(
    stream: StreamState,
    outlet_id: str,
    factor: str,
    data_ts: float,
    received_ts: float,
    period_s: int,
    ref: str,
    cfg: AnomalyConfig,
) -> Finding | None:
    """DataTime ahead of arrival, or a period record not aligned to its period start."""
    ahead = data_ts - received_ts > cfg.future_tolerance_s
    misaligned = period_s > 0 and data_ts % period_s != 0
    event = run_step(
        stream.timestamp, ahead or misaligned, data_ts, data_ts, ref, 1, cfg.run_update_every
    )
    if not event:
        return None
    why = (
        f"DataTime {at(data_ts).isoformat()} is {data_ts - received_ts:.0f} s ahead of arrival"
        if ahead
        else f"DataTime {at(data_ts).isoformat()} not aligned to a {period_s} s period"
    )
    return run_finding(
        FindingKind.FUTURE_TIMESTAMP,
        outlet_id,
        factor,
        stream.timestamp,
        event,
        data_ts,
        Severity.WARNING,
        f"{factor}: {why}",
        {"received_at": at(received_ts).isoformat()},
    )


def check_conflict(
    stream: StreamState,
    outlet_id: str,
    factor: str,
    data_ts: float,
    conflict: bool,
    value: float | None,
    ref: str,
    kept_ref: str | None,
    cfg: AnomalyConfig,
) -> Finding | None:
    """Same DataTime sent again with a different value; the first record stays in use."""
    event = run_step(stream.conflict, conflict, data_ts, value or 0.0, ref, 1, cfg.run_update_every)
    if not event:
        return None
    return run_finding(
        FindingKind.DUPLICATE_CONFLICT,
        outlet_id,
        factor,
        stream.conflict,
        event,
        data_ts,
        Severity.WARNING,
        f"{factor}: DataTime {at(data_ts).isoformat()} received again with a different value "
        f"({value}); record {kept_ref} stays in use, {ref} is not used",
        {"kept_record": kept_ref, "conflicting_record": ref, "conflicting_value": value},
    )


def check_corrected(
    stream: StreamState,
    outlet_id: str,
    factor: str,
    ts: float,
    measured: float,
    logger_corrected: float,
    o2: float,
    reference_o2: float,
    ref: str,
    cfg: AnomalyConfig,
    o2_ceiling: float,
) -> Finding | None:
    """Logger ZsRtd/ZsAvg vs the platform's C * (21 - O2_ref) / (21 - O2)."""
    factor_ = correction_factor(o2, reference_o2, o2_ceiling)
    if factor_ is None:
        return None
    expected = measured * factor_
    diff = abs(logger_corrected - expected)
    bad = diff > max(cfg.corrected_abs_tolerance, cfg.corrected_rel_tolerance * abs(expected))
    event = run_step(stream.zs, bad, ts, logger_corrected, ref, 1, cfg.run_update_every)
    if not event:
        return None
    return run_finding(
        FindingKind.CORRECTED_MISMATCH,
        outlet_id,
        factor,
        stream.zs,
        event,
        ts,
        Severity.MAJOR,
        f"{factor}: logger corrected value {logger_corrected:.4g} but measured {measured:.4g} at "
        f"O2 {o2:.3g} % with reference {reference_o2:g} % gives {expected:.4g}",
        {
            "measured": measured,
            "o2": o2,
            "reference_o2": reference_o2,
            "logger_corrected": logger_corrected,
            "expected": expected,
        },
    )


# ---- hour-level detectors -------------------------------------------------------------


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


# ---- outlet-level detectors -----------------------------------------------------------


@dataclass(slots=True)
class ArrivalState:
    """Per outlet: last arrival (offline detection) and the back-fill arrival window."""

    last_received_ts: float = -1.0
    last_data_ts: float = -1.0
    offline_raised: bool = False
    offline_since_ts: float = 0.0
    backfill: Run = field(default_factory=Run)
    backfill_window_ts: float = -1.0
    backfill_first_data_ts: float = 0.0
    backfill_last_data_ts: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_received_ts": self.last_received_ts,
            "last_data_ts": self.last_data_ts,
            "offline_raised": self.offline_raised,
            "offline_since_ts": self.offline_since_ts,
            "backfill": self.backfill.to_list(),
            "backfill_window_ts": self.backfill_window_ts,
            "backfill_first_data_ts": self.backfill_first_data_ts,
            "backfill_last_data_ts": self.backfill_last_data_ts,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ArrivalState:
        return cls(
            float(doc["last_received_ts"]),
            float(doc["last_data_ts"]),
            bool(doc["offline_raised"]),
            float(doc["offline_since_ts"]),
            Run.from_list(doc["backfill"]),
            float(doc["backfill_window_ts"]),
            float(doc["backfill_first_data_ts"]),
            float(doc["backfill_last_data_ts"]),
        )


def _offline_finding(
    outlet_id: str, firing: bool, since: float, until: float, cfg: AnomalyConfig
) -> Finding:
    rule_id, basis = RULES[FindingKind.LOGGER_OFFLINE]
    minutes = (until - since) / 60.0
    return Finding(
        kind=FindingKind.LOGGER_OFFLINE,
        outlet_id=outlet_id,
        factor=ALL_FACTORS,
        start=at(since),
        end=at(until),
        firing=firing,
        severity=Severity.WARNING if firing else Severity.INFO,
        value=minutes,
        explanation=Explanation(
            rule_id=rule_id,
            basis=basis,
            summary=(
                f"no data received for {minutes:.0f} min (threshold {cfg.offline_minutes})"
                if firing
                else f"data received again after {minutes:.0f} min"
            ),
            window_start=at(since),
            window_end=at(until),
            values={"silent_minutes": minutes, "threshold_minutes": cfg.offline_minutes},
        ),
    )


def check_offline(
    state: ArrivalState, outlet_id: str, now_ts: float, cfg: AnomalyConfig
) -> Finding | None:
    """On a tick: fires once when nothing arrived for `offline_minutes` (wall clock)."""
    if state.offline_raised or state.last_received_ts < 0:
        return None
    if now_ts - state.last_received_ts < cfg.offline_minutes * 60:
        return None
    state.offline_raised = True
    state.offline_since_ts = state.last_received_ts
    return _offline_finding(outlet_id, True, state.last_received_ts, now_ts, cfg)


def note_arrival(
    state: ArrivalState,
    outlet_id: str,
    data_ts: float,
    received_ts: float,
    ref: str,
    inspections: list[float],
    cfg: AnomalyConfig,
) -> list[Finding]:
    """Record an arrival: ends an offline episode, and counts late (back-filled) records."""
    out: list[Finding] = []
    if state.offline_raised:
        state.offline_raised = False
        out.append(_offline_finding(outlet_id, False, state.offline_since_ts, received_ts, cfg))
    state.last_received_ts = max(state.last_received_ts, received_ts)
    state.last_data_ts = max(state.last_data_ts, data_ts)
    late = received_ts - data_ts >= cfg.backfill_lateness_s
    run = state.backfill
    if late and received_ts - state.backfill_window_ts > cfg.backfill_window_s:
        # A new arrival window: the old batch, if it fired, has ended.
        if run.raised:
            out.append(_backfill_finding(state, outlet_id, False, received_ts, inspections, cfg))
        run.count = 0
        run.raised = False
        state.backfill_window_ts = received_ts
    if not late:
        if run.raised and received_ts - state.backfill_window_ts > cfg.backfill_window_s:
            out.append(_backfill_finding(state, outlet_id, False, received_ts, inspections, cfg))
            run.count = 0
            run.raised = False
        return out
    if run.count == 0:
        state.backfill_first_data_ts = data_ts
        state.backfill_last_data_ts = data_ts
    state.backfill_first_data_ts = min(state.backfill_first_data_ts, data_ts)
    state.backfill_last_data_ts = max(state.backfill_last_data_ts, data_ts)
    if (
        run_step(
            run,
            True,
            received_ts,
            received_ts - data_ts,
            ref,
            cfg.backfill_min_records,
            cfg.backfill_min_records,
        )
        == FIRE
    ):
        out.append(_backfill_finding(state, outlet_id, True, received_ts, inspections, cfg))
    return out


def _backfill_finding(
    state: ArrivalState,
    outlet_id: str,
    firing: bool,
    now_ts: float,
    inspections: list[float],
    cfg: AnomalyConfig,
) -> Finding:
    rule_id, basis = RULES[FindingKind.BULK_BACKFILL]
    run = state.backfill
    before = [
        i
        for i in inspections
        if 0.0 <= i - run.start_ts <= cfg.backfill_inspection_window_s
        or 0.0 <= run.start_ts - i <= cfg.backfill_window_s
    ]
    severity = Severity.CRITICAL if before else Severity.WARNING
    summary = (
        f"{run.count} records arrived >= {cfg.backfill_lateness_s / 3600:g} h late between "
        f"{at(run.start_ts).isoformat()} and {at(run.last_ts).isoformat()}, covering data "
        f"{at(state.backfill_first_data_ts).isoformat()} - "
        f"{at(state.backfill_last_data_ts).isoformat()}"
        + (f"; inspection noted at {at(before[0]).isoformat()}" if before else "")
    )
    return Finding(
        kind=FindingKind.BULK_BACKFILL,
        outlet_id=outlet_id,
        factor=ALL_FACTORS,
        start=at(run.start_ts if firing else now_ts),
        end=at(run.last_ts if firing else now_ts),
        firing=firing,
        severity=severity if firing else Severity.INFO,
        value=float(run.count),
        explanation=Explanation(
            rule_id=rule_id,
            basis=basis,
            summary=summary if firing else "back-fill batch ended",
            window_start=at(state.backfill_first_data_ts),
            window_end=at(state.backfill_last_data_ts),
            values={
                "records": run.count,
                "threshold": cfg.backfill_min_records,
                "inspection_near": bool(before),
            },
            record_refs=tuple(r for r in (run.first_ref, run.last_ref) if r),
        ),
    )
