"""Outlet-level signatures from when data arrives: an outlet gone offline, and history
back-filled (re-sent) in bulk [domain 2.1, 2.2]. Thresholds: `anomalies.AnomalyConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alerts.domain.anomalies import AnomalyConfig
from alerts.domain.explain import Explanation
from alerts.domain.findings import ALL_FACTORS, RULES, Finding, FindingKind, Severity
from alerts.domain.periods import at
from alerts.domain.runs import FIRE, Run, run_step


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
