"""The judge: state for a partition of outlets, fed readings and clock ticks.

Hours close on event time: hour H closes when a minute or real-time reading of the outlet has
DataTime >= end of H + grace; or by wall clock at end of H + max_delay (`on_tick`). Late data
for a closed hour (within `late_retention_s`) re-opens it; it re-closes on a tick once no
late record has arrived for `reopen_quiet_s`, so a back-filled hour is re-judged once, and
any change of judgement comes out as AMENDED.

The same class serves the faust worker and `liandong alerts replay` (see `replay`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from alerts.domain.anomalies import (
    AnomalyConfig,
    StreamState,
    check_conflict,
    check_corrected,
    check_timestamp,
    check_value,
)
from alerts.domain.arrivals import ArrivalState, check_offline, note_arrival
from alerts.domain.correction import DEFAULT_O2_CEILING, correction_factor
from alerts.domain.days import DayWindow, close_day
from alerts.domain.episodes import AlertChange, EpisodeBook, EpisodePolicy
from alerts.domain.exceedance import (
    ExceedanceConfig,
    ExemptionLedger,
    PrewarningRun,
    judge_day,
    judge_hour,
    prewarning_step,
)
from alerts.domain.findings import Finding
from alerts.domain.hour_anomalies import (
    flow_mismatch,
    hour_completeness,
    logger_hour_mismatch,
    o2_dilution,
    sudden_drop,
)
from alerts.domain.hours import AddOutcome, HourResult, HourWindow, close_hour, needs_correction
from alerts.domain.hugging import HuggingWindow, limit_hugging
from alerts.domain.parameters import ParameterBook, ParameterReport, note_parameter
from alerts.domain.periods import DAY, HOUR, day_index, day_of_hour, day_start, epoch
from alerts.domain.readings import Reading, RecordKind
from alerts.domain.registry import (
    O2,
    AveragingBasis,
    MarkKind,
    Medium,
    Outlet,
    Registry,
    limit_in_force_ts,
)
from alerts.domain.validity import EXEMPTING_MARKS, ValidityRules, flag_code

FLOW_FACTORS = {Medium.GAS: "a00000", Medium.WATER: "w00000"}
_NOT_DILUTION = frozenset({MarkKind.STARTUP, MarkKind.SHUTDOWN, MarkKind.STOPPED})


@dataclass(frozen=True, slots=True)
class JudgeConfig:
    validity: ValidityRules = field(default_factory=ValidityRules)
    anomalies: AnomalyConfig = field(default_factory=AnomalyConfig)
    exceedance: ExceedanceConfig = field(default_factory=ExceedanceConfig)
    episodes: EpisodePolicy = field(default_factory=EpisodePolicy)
    grace_s: float = 300.0
    max_delay_s: float = 900.0
    reopen_quiet_s: float = 60.0
    # The wall-clock timeout closes hours only for a logger that has been quiet this long:
    # while records are still arriving (a back-fill burst), the watermark closes them, so a
    # timeout never judges an hour whose minutes are in flight.
    timeout_quiet_s: float = 60.0
    late_retention_s: float = 48 * HOUR
    o2_ceiling: float = DEFAULT_O2_CEILING


@dataclass(slots=True)
class JudgeStats:
    readings: int = 0
    unknown_outlet: int = 0
    duplicates: int = 0
    conflicts: int = 0
    beyond_retention: int = 0
    out_of_order: int = 0


@dataclass(slots=True)
class OutletState:
    outlet_id: str
    book: EpisodeBook
    closed_through: int = -1  # highest closed hour; later hours are open
    watermark: float = -1.0  # newest DataTime of minute/real-time data
    windows: dict[tuple[str, int], HourWindow] = field(default_factory=dict)
    hour_factors: dict[int, set[str]] = field(default_factory=dict)
    reopened: dict[int, float] = field(default_factory=dict)  # hour -> wall-clock deadline
    streams: dict[tuple[str, str], StreamState] = field(default_factory=dict)
    prewarning: dict[str, PrewarningRun] = field(default_factory=dict)
    o2_last: dict[str, tuple[float, float]] = field(default_factory=dict)
    arrival: ArrivalState = field(default_factory=ArrivalState)
    baselines: dict[str, list[float]] = field(default_factory=dict)
    days: dict[tuple[str, int], DayWindow] = field(default_factory=dict)
    days_closed_through: int = -1
    ledger: ExemptionLedger = field(default_factory=ExemptionLedger)
    inspections: list[float] = field(default_factory=list)
    hugging: dict[str, HuggingWindow] = field(default_factory=dict)
    parameters: ParameterBook = field(default_factory=ParameterBook)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outlet_id": self.outlet_id,
            "book": self.book.to_dict(),
            "closed_through": self.closed_through,
            "watermark": self.watermark,
            "windows": [w.to_dict() for w in self.windows.values()],
            "reopened": {str(h): d for h, d in self.reopened.items()},
            "streams": [[f, k, s.to_dict()] for (f, k), s in self.streams.items()],
            "prewarning": {f: r.to_dict() for f, r in self.prewarning.items()},
            "o2_last": {k: list(v) for k, v in self.o2_last.items()},
            "arrival": self.arrival.to_dict(),
            "baselines": {f: list(v) for f, v in self.baselines.items()},
            "days": [d.to_dict() for d in self.days.values()],
            "days_closed_through": self.days_closed_through,
            "ledger": self.ledger.to_dict(),
            "inspections": list(self.inspections),
            "hugging": {f: w.to_list() for f, w in self.hugging.items()},
            "parameters": self.parameters.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any], policy: EpisodePolicy) -> OutletState:
        st = cls(doc["outlet_id"], EpisodeBook.from_dict(doc["book"], policy))
        st.closed_through = int(doc["closed_through"])
        st.watermark = float(doc["watermark"])
        for d in doc["windows"]:
            w = HourWindow.from_dict(d)
            st.windows[(w.factor, w.hour)] = w
            st.hour_factors.setdefault(w.hour, set()).add(w.factor)
        st.reopened = {int(h): float(d) for h, d in doc["reopened"].items()}
        st.streams = {(f, k): StreamState.from_dict(s) for f, k, s in doc["streams"]}
        st.prewarning = {f: PrewarningRun.from_dict(r) for f, r in doc["prewarning"].items()}
        st.o2_last = {k: (float(v[0]), float(v[1])) for k, v in doc["o2_last"].items()}
        st.arrival = ArrivalState.from_dict(doc["arrival"])
        st.baselines = {f: [float(x) for x in v] for f, v in doc["baselines"].items()}
        for d in doc["days"]:
            dw = DayWindow.from_dict(d)
            st.days[(dw.factor, dw.day)] = dw
        st.days_closed_through = int(doc["days_closed_through"])
        st.ledger = ExemptionLedger.from_dict(doc["ledger"])
        st.inspections = [float(x) for x in doc["inspections"]]
        # absent in state written before the limit-hugging detector
        st.hugging = {f: HuggingWindow.from_list(w) for f, w in doc.get("hugging", {}).items()}
        # absent in state written before parameter changes were judged
        st.parameters = ParameterBook.from_dict(doc.get("parameters", []))
        return st


class Judge:
    def __init__(self, registry: Registry, config: JudgeConfig | None = None) -> None:
        self.registry = registry
        self.config = config or JudgeConfig()
        self.states: dict[str, OutletState] = {}
        self.stats = JudgeStats()

    # ---- inputs -------------------------------------------------------------------------

    def set_registry(self, registry: Registry) -> None:
        """Swap in a new registry version (the next judgements use it; see `rejudge`)."""
        self.registry = registry

    def note_inspection(self, outlet_id: str, at: datetime) -> None:
        """An inspection time for the back-fill detector (from dispatch events, if wired)."""
        st = self.states.get(outlet_id)
        if st is not None:
            st.inspections.append(epoch(at))

    def on_reading(self, reading: Reading, now: datetime) -> list[AlertChange]:
        self.stats.readings += 1
        registry = self.registry
        outlet = registry.outlets.get(reading.outlet_id) or registry.by_mn.get(reading.mn)
        if outlet is None:
            self.stats.unknown_outlet += 1
            return []
        st = self.states.get(outlet.outlet_id)
        if st is None:
            st = self._new_state(outlet, reading.data_time)
        ts = epoch(reading.data_time)
        received = epoch(reading.received_at)
        cfg = self.config
        findings = note_arrival(
            st.arrival,
            outlet.outlet_id,
            ts,
            received,
            reading.record_ref,
            st.inspections,
            cfg.anomalies,
        )
        kind = reading.kind
        now_ts = epoch(now)
        if kind is RecordKind.MINUTE:
            findings += self._minute(st, outlet, reading, ts, received, now_ts)
        elif kind is RecordKind.REALTIME:
            findings += self._realtime(st, outlet, reading, ts, received)
        elif kind is RecordKind.HOUR:
            self._logger_hour(st, outlet, reading, ts, now_ts)
        else:
            self._logger_day(st, outlet, reading, ts, now)
        changes = self._apply(st, findings, now) if findings else []
        if kind is RecordKind.MINUTE or kind is RecordKind.REALTIME:
            if ts > st.watermark:
                st.watermark = ts
            target = int((st.watermark - cfg.grace_s) // HOUR) - 1
            if target > st.closed_through:
                changes += self._close_through(st, outlet, target, now)
        elif kind is RecordKind.HOUR:
            # The logger's own hour record says its hour is complete; an outlet that uploads
            # only hourly records (water COD/ammonia analysers) would otherwise close hours
            # only on the wall-clock timeout. Hours before this record's close now; its own
            # hour closes at the next one (the other factors of the same record follow this
            # reading) or on the timeout.
            target = int(ts // HOUR) - 1
            if target > st.closed_through:
                changes += self._close_through(st, outlet, target, now)
        return changes

    def close_hours_of_records(
        self, last_hours: dict[str, int], now: datetime
    ) -> list[AlertChange]:
        """Close each outlet's hours through the hour of its last hour record (outlet id or
        MN -> hour index): the record says that hour is complete (end of a replay)."""
        changes: list[AlertChange] = []
        for key, hour in last_hours.items():
            outlet = self.registry.outlets.get(key) or self.registry.by_mn.get(key)
            st = self.states.get(outlet.outlet_id) if outlet is not None else None
            if outlet is not None and st is not None and hour > st.closed_through:
                changes += self._close_through(st, outlet, hour, now)
        return changes

    def on_parameter(self, report: ParameterReport, now: datetime) -> list[AlertChange]:
        """A parameter value from a 3020 upload: a change is a PARAMETER_CHANGED finding."""
        outlet = self.registry.outlets.get(report.outlet_id) or self.registry.by_mn.get(report.mn)
        if outlet is None:
            self.stats.unknown_outlet += 1
            return []
        st = self.states.get(outlet.outlet_id)
        if st is None:
            st = self._new_state(outlet, report.data_time)
        marks = self.registry.marks_covering(outlet.outlet_id, report.factor, report.data_time)
        finding = note_parameter(
            st.parameters, replace(report, outlet_id=outlet.outlet_id), [m.kind for m in marks]
        )
        return st.book.apply(finding, now) if finding is not None else []

    def on_tick(self, now: datetime, outlet_ids: Iterable[str] | None = None) -> list[AlertChange]:
        """Wall-clock duties: offline loggers, hours past max_delay, re-opened hours; of every
        outlet, or of those in `outlet_ids` (a caller spreading the work over several calls)."""
        now_ts = epoch(now)
        cfg = self.config
        target = int((now_ts - cfg.max_delay_s) // HOUR) - 1
        changes: list[AlertChange] = []
        if outlet_ids is None:
            states: Iterable[OutletState] = self.states.values()
        else:
            states = [st for oid in outlet_ids if (st := self.states.get(oid)) is not None]
        for st in states:
            outlet = self.registry.outlets.get(st.outlet_id)
            if outlet is None:
                continue
            offline = check_offline(st.arrival, st.outlet_id, now_ts, cfg.anomalies)
            if offline is not None:
                changes += st.book.apply(offline, now)
            if st.reopened:
                due = sorted(h for h, deadline in st.reopened.items() if deadline <= now_ts)
                for h in due:
                    del st.reopened[h]
                    changes += self._judge_hour(st, outlet, h, now)
            quiet = now_ts - st.arrival.last_received_ts >= cfg.timeout_quiet_s
            if target > st.closed_through and quiet:
                changes += self._close_through(st, outlet, target, now)
        return changes

    def rejudge(
        self, outlet_id: str, start: datetime, end: datetime, now: datetime
    ) -> list[AlertChange]:
        """Re-judge closed, retained hours in [start, end) (e.g. after a mark was approved)."""
        st = self.states.get(outlet_id)
        outlet = self.registry.outlets.get(outlet_id)
        if st is None or outlet is None:
            return []
        changes: list[AlertChange] = []
        first = int(epoch(start) // HOUR)
        last = min(math.ceil(epoch(end) / HOUR) - 1, st.closed_through)
        oldest = st.closed_through - int(self.config.late_retention_s // HOUR)
        for h in range(max(first, oldest), last + 1):
            changes += self._judge_hour(st, outlet, h, now)
        return changes

    # ---- state export for the faust tables ------------------------------------------------

    def export_outlet(self, outlet_id: str) -> dict[str, Any] | None:
        st = self.states.get(outlet_id)
        return None if st is None else st.to_dict()

    def import_outlet(self, doc: dict[str, Any]) -> None:
        st = OutletState.from_dict(doc, self.config.episodes)
        self.states[st.outlet_id] = st

    def export_state(self) -> dict[str, Any]:
        return {oid: st.to_dict() for oid, st in self.states.items()}

    def import_state(self, doc: dict[str, Any]) -> None:
        for outlet_doc in doc.values():
            self.import_outlet(outlet_doc)

    # ---- readings ----------------------------------------------------------------------

    def _new_state(self, outlet: Outlet, first: datetime) -> OutletState:
        st = OutletState(outlet.outlet_id, EpisodeBook(outlet.outlet_id, self.config.episodes))
        first_hour = int(epoch(first) // HOUR)
        st.closed_through = first_hour - 1  # nothing is known about earlier hours
        st.days_closed_through = day_of_hour(first_hour) - 1
        self.states[outlet.outlet_id] = st
        return st

    def _minute(
        self,
        st: OutletState,
        outlet: Outlet,
        reading: Reading,
        ts: float,
        received: float,
        now_ts: float,
    ) -> list[Finding]:
        hour = int(ts // HOUR)
        factor = reading.factor
        late = hour <= st.closed_through and hour not in st.reopened
        if late and (hour + 1) * HOUR + self.config.late_retention_s < st.watermark:
            self.stats.beyond_retention += 1
            return []
        window = self._window(st, factor, hour)
        outcome = window.add_minute(
            int(ts - hour * HOUR) // 60, reading.avg, reading.flag, reading.record_ref, reading.cou
        )
        if outcome is AddOutcome.DUPLICATE:
            self.stats.duplicates += 1
            return []
        stream = st.streams.get((factor, "2051"))
        if stream is None:
            stream = st.streams[(factor, "2051")] = StreamState()
        minute = int(ts - hour * HOUR) // 60
        if outcome is AddOutcome.CONFLICT:
            self.stats.conflicts += 1
            refs = window.refs
            kept = refs[minute] if refs is not None else None
            f = check_conflict(
                stream,
                outlet.outlet_id,
                factor,
                ts,
                True,
                reading.avg,
                reading.record_ref,
                kept,
                self.config.anomalies,
            )
            return [f] if f else []
        if hour <= st.closed_through:
            st.reopened[hour] = now_ts + self.config.reopen_quiet_s
        return self._stream(
            st, outlet, stream, reading, ts, received, 60, reading.avg, reading.zs_avg
        )

    def _realtime(
        self, st: OutletState, outlet: Outlet, reading: Reading, ts: float, received: float
    ) -> list[Finding]:
        key = (reading.factor, "2011")
        stream = st.streams.get(key)
        if stream is None:
            stream = st.streams[key] = StreamState()
        if ts == stream.last_ts:
            same = reading.rtd == stream.last_value and flag_code(reading.flag) == stream.last_flag
            if same:
                self.stats.duplicates += 1
                return []
            self.stats.conflicts += 1
            f = check_conflict(
                stream,
                outlet.outlet_id,
                reading.factor,
                ts,
                True,
                reading.rtd,
                reading.record_ref,
                None,
                self.config.anomalies,
            )
            return [f] if f else []
        return self._stream(
            st, outlet, stream, reading, ts, received, 0, reading.rtd, reading.zs_rtd
        )

    def _stream(
        self,
        st: OutletState,
        outlet: Outlet,
        stream: StreamState,
        reading: Reading,
        ts: float,
        received: float,
        period_s: int,
        value: float | None,
        logger_zs: float | None,
    ) -> list[Finding]:
        """In-order detectors. Out-of-order (back-filled) values are judged through their
        hour window, not fed to run detectors whose runs assume consecutive readings."""
        if ts < stream.last_ts:
            self.stats.out_of_order += 1
            return []
        cfg = self.config.anomalies
        factor = reading.factor
        oid = outlet.outlet_id
        flag = flag_code(reading.flag)
        ref = reading.record_ref
        out: list[Finding] = []
        if stream.conflict.raised:
            f = check_conflict(stream, oid, factor, ts, False, value, ref, None, cfg)
            if f:
                out.append(f)
        f = check_timestamp(stream, oid, factor, ts, received, period_s, ref, cfg)
        if f:
            out.append(f)
        out += check_value(
            stream, oid, factor, ts, value, flag, ref, outlet.ranges.get(factor), period_s == 0, cfg
        )
        stream.last_ts = ts
        stream.last_value = value
        stream.last_flag = flag
        if value is None or flag != "N":
            return out
        kind = reading.kind.value
        if factor == O2:
            st.o2_last[kind] = (ts, value)
            for (other, k), s in st.streams.items():
                pending = s.pending
                if k == kind and pending is not None and pending[0] == ts:
                    s.pending = None
                    out += self._paired(st, outlet, s, other, pending, value, period_s == 0)
            return out
        if needs_correction(outlet, factor):
            last = st.o2_last.get(kind)
            item = (ts, value, logger_zs, ref)
            if last is not None and last[0] == ts:
                out += self._paired(st, outlet, stream, factor, item, last[1], period_s == 0)
            else:
                stream.pending = item  # O2 of the same instant may come next
        elif period_s == 0:
            out += self._prewarn(st, outlet, factor, ts, value, ref)
        return out

    def _paired(
        self,
        st: OutletState,
        outlet: Outlet,
        stream: StreamState,
        factor: str,
        item: tuple[float, float, float | None, str],
        o2: float,
        realtime: bool,
    ) -> list[Finding]:
        ts, value, logger_zs, ref = item
        out: list[Finding] = []
        ref_o2 = outlet.reference_o2
        assert ref_o2 is not None
        if logger_zs is not None:
            f = check_corrected(
                stream,
                outlet.outlet_id,
                factor,
                ts,
                value,
                logger_zs,
                o2,
                ref_o2,
                ref,
                self.config.anomalies,
                self.config.o2_ceiling,
            )
            if f:
                out.append(f)
        if realtime:
            k = correction_factor(o2, ref_o2, self.config.o2_ceiling)
            if k is not None:
                out += self._prewarn(st, outlet, factor, ts, value * k, ref)
        return out

    def _prewarn(
        self, st: OutletState, outlet: Outlet, factor: str, ts: float, corrected: float, ref: str
    ) -> list[Finding]:
        if outlet.averaging is not AveragingBasis.HOURLY:
            return []
        limit = limit_in_force_ts(outlet, factor, ts)
        if limit is None or limit.value is None or limit.is_range:
            return []
        run = st.prewarning.get(factor)
        if run is None:
            run = st.prewarning[factor] = PrewarningRun()
        if self.registry.marks_overlapping(outlet.outlet_id, factor, ts, ts + 1):
            corrected = -math.inf  # marked periods never pre-warn; ends a raised run
        f = prewarning_step(
            run, outlet.outlet_id, factor, ts, corrected, limit, ref, self.config.exceedance
        )
        return [f] if f else []

    def _logger_hour(
        self, st: OutletState, outlet: Outlet, reading: Reading, ts: float, now_ts: float
    ) -> None:
        hour = int(ts // HOUR)
        if hour <= st.closed_through - int(self.config.late_retention_s // HOUR):
            self.stats.beyond_retention += 1
            return
        window = self._window(st, reading.factor, hour)
        outcome = window.set_logger_hour(
            reading.avg, reading.zs_avg, reading.flag, reading.record_ref, reading.cou
        )
        if outcome is AddOutcome.NEW and hour <= st.closed_through:
            st.reopened[hour] = now_ts + self.config.reopen_quiet_s

    def _logger_day(
        self, st: OutletState, outlet: Outlet, reading: Reading, ts: float, now: datetime
    ) -> None:
        if outlet.averaging is not AveragingBasis.DAILY:
            return
        day = day_index(ts)
        dw = self._day(st, reading.factor, day)
        if dw.logger_ref is None:
            dw.logger_avg, dw.logger_flag, dw.logger_ref = (
                reading.avg,
                reading.flag,
                reading.record_ref,
            )

    def _window(self, st: OutletState, factor: str, hour: int) -> HourWindow:
        window = st.windows.get((factor, hour))
        if window is None:
            window = st.windows[(factor, hour)] = HourWindow(st.outlet_id, factor, hour)
            st.hour_factors.setdefault(hour, set()).add(factor)
        return window

    def _day(self, st: OutletState, factor: str, day: int) -> DayWindow:
        dw = st.days.get((factor, day))
        if dw is None:
            dw = st.days[(factor, day)] = DayWindow(st.outlet_id, factor, day)
        return dw

    def _apply(
        self, st: OutletState, findings: Iterable[Finding], now: datetime
    ) -> list[AlertChange]:
        changes: list[AlertChange] = []
        for f in findings:
            changes += st.book.apply(f, now)
        return changes

    # ---- hours and days ------------------------------------------------------------------

    def _close_through(
        self, st: OutletState, outlet: Outlet, target: int, now: datetime
    ) -> list[AlertChange]:
        retention_h = int(self.config.late_retention_s // HOUR)
        changes: list[AlertChange] = []
        for h in range(max(st.closed_through + 1, target - retention_h), target + 1):
            st.reopened.pop(h, None)
            changes += self._judge_hour(st, outlet, h, now)
        st.closed_through = target
        if outlet.averaging is AveragingBasis.DAILY:
            last_full_day = day_of_hour(target + 1) - 1
            for d in range(max(st.days_closed_through + 1, last_full_day - 2), last_full_day + 1):
                changes += self._judge_day(st, outlet, d, now)
            st.days_closed_through = max(st.days_closed_through, last_full_day)
        self._prune(st, target - retention_h)
        return changes

    def _judge_hour(
        self, st: OutletState, outlet: Outlet, hour: int, now: datetime
    ) -> list[AlertChange]:
        cfg = self.config
        registry = self.registry
        start = hour * HOUR
        end = start + HOUR
        factors = set(st.hour_factors.get(hour, ())) | set(outlet.expected_factors())
        o2_window = st.windows.get((O2, hour))
        o2_marks = registry.marks_overlapping(outlet.outlet_id, O2, start, end)
        results: dict[str, tuple[HourResult, int]] = {}
        for factor in sorted(factors):
            window = self._window(st, factor, hour)
            marks = registry.marks_overlapping(outlet.outlet_id, factor, start, end)
            result = close_hour(
                outlet,
                factor,
                hour,
                window,
                o2_window,
                marks,
                o2_marks,
                cfg.validity,
                cfg.o2_ceiling,
            )
            digest = result.digest()
            if window.revision >= 0 and digest == window.last_digest:
                continue  # re-closed without any change: nothing new to say
            window.revision += 1
            window.last_digest = digest
            window.closed = True
            results[factor] = (result, window.revision)
        findings: list[Finding] = []
        expected = set(outlet.expected_factors())
        pollutants: list[HourResult] = []
        for factor, (result, revision) in results.items():
            limit = limit_in_force_ts(outlet, factor, start)
            findings += judge_hour(result, outlet, limit, st.ledger, cfg.exceedance, revision)
            if factor in expected:
                findings += hour_completeness(result, cfg.validity, revision)
            mismatch = logger_hour_mismatch(result, cfg.anomalies, revision)
            if mismatch:
                findings.append(mismatch)
            if factor != O2 and not factor.startswith(("a00", "a01", "w00")):
                pollutants.append(result)
                if revision == 0:
                    base = st.baselines.setdefault(factor, [])
                    drop = sudden_drop(result, base, cfg.anomalies, revision)
                    if drop:
                        findings.append(drop)
            if outlet.averaging is AveragingBasis.DAILY and not (limit and limit.is_range):
                self._feed_day(st, outlet, result, now, findings)
            elif (
                outlet.medium is Medium.GAS
                and limit is not None
                and limit.value is not None
                and limit.value > 0.0
                and not limit.is_range
            ):
                trail = st.hugging.get(factor)
                if trail is None:
                    trail = st.hugging[factor] = HuggingWindow()
                hug = limit_hugging(trail, result, limit, cfg.anomalies, revision)
                if hug:
                    findings.append(hug)
        if O2 in results:
            o2_result, o2_rev = results[O2]
            marked = any(m.kind in _NOT_DILUTION for m in o2_marks) or any(
                m.kind in _NOT_DILUTION
                for m in registry.marks_overlapping(outlet.outlet_id, "*", start, end)
            )
            f = o2_dilution(
                o2_result,
                pollutants,
                st.baselines.get(O2, []),
                st.baselines,
                marked,
                cfg.anomalies,
                o2_rev,
            )
            if f:
                findings.append(f)
        flow_factor = FLOW_FACTORS[outlet.medium]
        if flow_factor in results:
            flow_result, flow_rev = results[flow_factor]
            f = flow_mismatch(flow_result, pollutants, cfg.anomalies, flow_rev)
            if f:
                findings.append(f)
        for factor, (result, revision) in results.items():
            if revision == 0 and result.valid and result.mean is not None:
                base = st.baselines.setdefault(factor, [])
                base.append(result.mean)
                if len(base) > cfg.anomalies.baseline_hours:
                    del base[0]
        return self._apply(st, findings, now)

    def _feed_day(
        self,
        st: OutletState,
        outlet: Outlet,
        result: HourResult,
        now: datetime,
        findings: list[Finding],
    ) -> None:
        day = day_of_hour(result.hour)
        offset = int((result.hour * HOUR - day_start(day)) // HOUR)
        dw = self._day(st, result.factor, day)
        flow_factor = FLOW_FACTORS[outlet.medium]
        is_flow = result.factor == flow_factor
        if not dw.set_hour(offset, result.value, result.volume if is_flow else None):
            return
        if dw.closed:
            findings += self._day_findings(st, outlet, dw)
        if is_flow and outlet.medium is Medium.WATER:
            # A re-judged flow hour changes the weights of the day's closed means.
            for (factor, d), other in sorted(st.days.items()):
                if d == day and factor != flow_factor and other.closed:
                    findings += self._day_findings(st, outlet, other)

    def _judge_day(
        self, st: OutletState, outlet: Outlet, day: int, now: datetime
    ) -> list[AlertChange]:
        findings: list[Finding] = []
        factors = {f for (f, d) in st.days if d == day}
        factors |= {f for f in outlet.limits if not any(v.is_range for v in outlet.limits[f])}
        for factor in sorted(factors):
            findings += self._day_findings(st, outlet, self._day(st, factor, day))
        return self._apply(st, findings, now)

    def _day_findings(self, st: OutletState, outlet: Outlet, dw: DayWindow) -> list[Finding]:
        flow_factor = FLOW_FACTORS[outlet.medium]
        weighted = outlet.medium is Medium.WATER and dw.factor != flow_factor
        flow = st.days.get((flow_factor, dw.day)) if weighted else None
        result = close_day(dw, self.config.validity, flow, weighted)
        digest = result.digest()
        if dw.revision >= 0 and digest == dw.last_digest:
            return []
        dw.revision += 1
        dw.last_digest = digest
        dw.closed = True
        start = day_start(dw.day)
        marks = [
            m
            for m in self.registry.marks_overlapping(
                outlet.outlet_id, dw.factor, start, start + DAY
            )
            if m.kind in EXEMPTING_MARKS
        ]
        hours = sum(min(m.end_ts, start + DAY) - max(m.start_ts, start) for m in marks) / HOUR
        return judge_day(
            result,
            outlet,
            limit_in_force_ts(outlet, dw.factor, start),
            st.ledger,
            tuple(m.reference for m in marks),
            float(math.ceil(hours)),
            self.config.exceedance,
            dw.revision,
        )

    def _prune(self, st: OutletState, oldest_hour: int) -> None:
        for h in [h for h in st.hour_factors if h < oldest_hour]:
            for factor in st.hour_factors.pop(h):
                st.windows.pop((factor, h), None)
            st.reopened.pop(h, None)
        oldest_day = day_of_hour(oldest_hour) - 1
        for key in [k for k in st.days if k[1] < oldest_day]:
            del st.days[key]


def replay(
    judge: Judge, readings: Iterable[Reading | ParameterReport], tick_every_s: float = 60.0
) -> list[AlertChange]:
    """Judge a recorded sequence without Kafka: processing time is each reading's
    received_at (a parameter report's DataTime), and the wall-clock duties run every
    `tick_every_s` of it, also through quiet time between readings and after the last one
    (until its hours are past max_delay), as the worker's clock does: so an outlet that goes
    quiet has its hours closed by the timeout in a replay too."""
    changes: list[AlertChange] = []
    last_tick: float | None = None
    last_hour_record: dict[str, int] = {}  # outlet id or MN -> the hour of its last hour record

    def tick_until(ts: float) -> None:
        nonlocal last_tick, changes
        if last_tick is None:
            return
        while last_tick + tick_every_s < ts:
            last_tick += tick_every_s
            changes += judge.on_tick(datetime.fromtimestamp(last_tick, UTC))

    for item in readings:
        when = item.data_time if isinstance(item, ParameterReport) else item.received_at
        ts = epoch(when)
        tick_until(ts)
        if isinstance(item, ParameterReport):
            changes += judge.on_parameter(item, when)
        else:
            changes += judge.on_reading(item, when)
        if last_tick is None or ts - last_tick >= tick_every_s:
            changes += judge.on_tick(when)
            last_tick = ts
        if isinstance(item, Reading) and item.kind is RecordKind.HOUR:
            hour = int(epoch(item.data_time) // HOUR)
            last_hour_record[item.outlet_id or item.mn] = max(
                hour, last_hour_record.get(item.outlet_id or item.mn, hour)
            )
    if last_tick is not None and last_hour_record:
        # the capture's last hour records say their hours are complete: close them (no clock
        # is run past the capture, which would judge hours it does not hold as missing)
        changes += judge.close_hours_of_records(
            last_hour_record, datetime.fromtimestamp(last_tick, UTC)
        )
    return changes
