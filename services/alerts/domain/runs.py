"""Runs: consecutive occurrences of one condition in a stream. A run fires when it reaches its
threshold, fires again as an update every `every` further readings, and ends with a
non-firing finding so its episode can clear (used by the detectors in `anomalies` and
`arrivals`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.domain.explain import Explanation
from alerts.domain.findings import RULES, Finding, FindingKind, Severity
from alerts.domain.periods import at


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
