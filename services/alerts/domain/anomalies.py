"""Anomaly and falsification signatures [domain 2.1, 2.2]: their thresholds (`AnomalyConfig`)
and the per-reading detectors. Hour-level detectors are in `hour_anomalies`, offline and
back-fill in `arrivals`, the run mechanics in `runs`.

Per-reading detectors run over a per-(outlet, factor, record kind) `StreamState` and use a
`Run` (consecutive occurrences): a run fires when it reaches its threshold, fires again as an
update every `run_update_every` further readings, and ends with a non-firing finding so its
episode can clear. Hour-level detectors run when an outlet-hour closes.

Where domain.md found no public number, the default is an engineering default and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alerts.domain.correction import correction_factor
from alerts.domain.findings import Finding, FindingKind, Severity
from alerts.domain.periods import at
from alerts.domain.runs import Run, run_finding, run_step


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
