"""Alert episodes, shaped like Alertmanager's dedup-and-group but with persisted state
[peers 1.2]: at most one open episode per (outlet, factor, kind); findings for the same
period are deduplicated by digest, so at-least-once re-delivery produces no new change.

Changes: OPENED, UPDATED (another period over, a run grew, a higher peak), ESCALATED
(repeat violator), CLEARED (after the kind's quiet period of non-firing evaluations, in event
time) and AMENDED (a period already judged was re-judged: late data, back-fill or a mark;
never a silent rewrite: the change carries the previous judgement).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from alerts.domain.explain import Explanation
from alerts.domain.findings import Finding, FindingKind, Severity
from alerts.domain.periods import DAY, HOUR, at, hour_index, hour_start

EPISODE_NAMESPACE = uuid.UUID("6f1c2d4e-8a1b-5c3d-9e7f-0a1b2c3d4e5f")


def episode_id(outlet_id: str, factor: str, kind: str, start: datetime) -> str:
    """uuid5 of (outlet, factor, kind, start hour in CST ISO form): replays give the same id."""
    hour = at(hour_start(hour_index(start.timestamp()))).isoformat()
    return str(uuid.uuid5(EPISODE_NAMESPACE, f"{outlet_id}|{factor}|{kind}|{hour}"))


class ChangeKind(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    ESCALATED = "escalated"
    CLEARED = "cleared"
    AMENDED = "amended"


EXCEEDANCE_KINDS = frozenset(
    {FindingKind.EXCEEDANCE_HOURLY, FindingKind.EXCEEDANCE_DAILY, FindingKind.PH_OUT_OF_RANGE}
)


def _default_quiet() -> dict[FindingKind, float]:
    # Event-time seconds of non-firing evaluations after the last firing period before an
    # episode clears. Hourly exceedance: two compliant hours (engineering default); daily:
    # one compliant day; hour data: the next good hour; runs end with their own evidence.
    return {
        FindingKind.EXCEEDANCE_HOURLY: 2 * HOUR,
        FindingKind.PH_OUT_OF_RANGE: 2 * HOUR,
        FindingKind.EXCEEDANCE_DAILY: DAY,
        FindingKind.HOUR_MISSING: HOUR,
        FindingKind.HOUR_INCOMPLETE: HOUR,
        FindingKind.O2_DILUTION: 2 * HOUR,
        FindingKind.SUDDEN_DROP: 2 * HOUR,
        FindingKind.FLOW_MISMATCH: 2 * HOUR,
        FindingKind.LOGGER_HOUR_MISMATCH: HOUR,
        # A statistic over days: a day below the thresholds before it clears, so a signature
        # that flickers around a threshold stays one episode.
        FindingKind.LIMIT_HUGGING: DAY,
        # parameters are reported rarely (3020): a day of unchanged reports clears
        FindingKind.PARAMETER_CHANGED: DAY,
    }


@dataclass(frozen=True, slots=True)
class EpisodePolicy:
    quiet_s: Mapping[FindingKind, float] = field(default_factory=_default_quiet)
    # Repeat violator: >= 3 episodes of the same kind at the outlet within 30 days, or
    # >= 4 hours over within 24 h (engineering defaults; cf. Hefei "近30日累计超标" SMS and
    # ECHO chronic-violation counting [domain 1.3, 5]).
    repeat_episodes: int = 3
    repeat_window_s: float = 30 * DAY
    hours_over: float = 4.0
    hours_window_s: float = DAY
    escalate_kinds: frozenset[FindingKind] = EXCEEDANCE_KINDS
    retention_s: float = 7 * DAY  # how long cleared episodes stay amendable

    def quiet(self, kind: FindingKind) -> float:
        return self.quiet_s.get(kind, 0.0)


@dataclass(slots=True)
class Period:
    end_ts: float
    value: float | None
    ratio: float | None
    digest: str
    revision: int
    severity: int

    def to_list(self) -> list[Any]:
        return [self.end_ts, self.value, self.ratio, self.digest, self.revision, self.severity]

    @classmethod
    def from_list(cls, d: list[Any]) -> Period:
        return cls(float(d[0]), d[1], d[2], str(d[3]), int(d[4]), int(d[5]))


@dataclass(slots=True)
class Episode:
    episode_id: str
    outlet_id: str
    factor: str
    kind: FindingKind
    start_ts: float
    periods: dict[float, Period] = field(default_factory=dict)
    withdrawn: dict[float, int] = field(default_factory=dict)
    open: bool = True
    cleared_ts: float | None = None
    escalated: bool = False
    last_firing_end: float = 0.0

    def hours_over(self) -> float:
        return sum(p.end_ts - s for s, p in self.periods.items()) / HOUR

    def peak(self) -> tuple[float | None, float | None]:
        values = [p.value for p in self.periods.values() if p.value is not None]
        ratios = [p.ratio for p in self.periods.values() if p.ratio is not None]
        return (max(values) if values else None, max(ratios) if ratios else None)

    def severity(self) -> Severity:
        return Severity(max((p.severity for p in self.periods.values()), default=0))

    def refresh(self) -> None:
        if self.periods:
            self.last_firing_end = max(p.end_ts for p in self.periods.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode_id": self.episode_id,
            "outlet_id": self.outlet_id,
            "factor": self.factor,
            "kind": self.kind.value,
            "start_ts": self.start_ts,
            "periods": {repr(s): p.to_list() for s, p in self.periods.items()},
            "withdrawn": {repr(s): r for s, r in self.withdrawn.items()},
            "open": self.open,
            "cleared_ts": self.cleared_ts,
            "escalated": self.escalated,
            "last_firing_end": self.last_firing_end,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Episode:
        return cls(
            episode_id=d["episode_id"],
            outlet_id=d["outlet_id"],
            factor=d["factor"],
            kind=FindingKind(d["kind"]),
            start_ts=float(d["start_ts"]),
            periods={float(s): Period.from_list(p) for s, p in d["periods"].items()},
            withdrawn={float(s): int(r) for s, r in d["withdrawn"].items()},
            open=bool(d["open"]),
            cleared_ts=d["cleared_ts"],
            escalated=bool(d["escalated"]),
            last_firing_end=float(d["last_firing_end"]),
        )


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One change to one episode, with the explanation of the finding that caused it."""

    change: ChangeKind
    episode_id: str
    outlet_id: str
    factor: str
    kind: FindingKind
    severity: Severity
    at: datetime  # processing time (`now`)
    episode_start: datetime
    last_period_end: datetime
    periods_over: int
    hours_over: float
    peak_value: float | None
    peak_ratio: float | None
    explanation: Explanation
    reason: str = ""
    previous: Mapping[str, Any] | None = None  # AMENDED: the judgement it replaces
    withdrawn: bool = False  # AMENDED: no firing period is left

    @property
    def rule_id(self) -> str:
        return self.explanation.rule_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.change.value,
            "episode_id": self.episode_id,
            "outlet_id": self.outlet_id,
            "factor": self.factor,
            "kind": self.kind.value,
            "severity": self.severity.name,
            "at": self.at.isoformat(),
            "episode_start": self.episode_start.isoformat(),
            "last_period_end": self.last_period_end.isoformat(),
            "periods_over": self.periods_over,
            "hours_over": self.hours_over,
            "peak_value": self.peak_value,
            "peak_ratio": self.peak_ratio,
            "reason": self.reason,
            "previous": dict(self.previous) if self.previous else None,
            "withdrawn": self.withdrawn,
            "explanation": self.explanation.to_dict(),
        }


Key = tuple[str, str]  # (factor, kind)


class EpisodeBook:
    """Episodes of one outlet (state is kept per outlet, like the Kafka key)."""

    def __init__(self, outlet_id: str, policy: EpisodePolicy | None = None) -> None:
        self.outlet_id = outlet_id
        self.policy = policy or EpisodePolicy()
        self.open: dict[Key, Episode] = {}
        self.closed: dict[Key, list[Episode]] = {}
        self.starts: dict[str, list[float]] = {}  # kind -> episode start times (repeat count)
        self.event_ts = 0.0  # newest period end seen, for pruning

    def _change(
        self,
        change: ChangeKind,
        ep: Episode,
        finding: Finding,
        now: datetime,
        reason: str = "",
        previous: Mapping[str, Any] | None = None,
        withdrawn: bool = False,
    ) -> AlertChange:
        peak, ratio = ep.peak()
        severity = ep.severity() if ep.periods else finding.severity
        if ep.escalated:
            severity = Severity.CRITICAL
        return AlertChange(
            change=change,
            episode_id=ep.episode_id,
            outlet_id=ep.outlet_id,
            factor=ep.factor,
            kind=ep.kind,
            severity=severity,
            at=now,
            episode_start=at(ep.start_ts),
            last_period_end=at(ep.last_firing_end),
            periods_over=len(ep.periods),
            hours_over=ep.hours_over(),
            peak_value=peak,
            peak_ratio=ratio,
            explanation=finding.explanation,
            reason=reason,
            previous=previous,
            withdrawn=withdrawn,
        )

    def _holding(self, key: Key, start: float) -> Episode | None:
        ep = self.open.get(key)
        if ep is not None and start in ep.periods:
            return ep
        for old in self.closed.get(key, ()):
            if start in old.periods:
                return old
        return None

    def _tombstone(self, key: Key, start: float) -> int:
        eps = [*self.closed.get(key, ()), *([self.open[key]] if key in self.open else [])]
        return max((e.withdrawn[start] for e in eps if start in e.withdrawn), default=-1)

    def apply(self, finding: Finding, now: datetime) -> list[AlertChange]:
        key = (finding.factor, finding.kind.value)
        start = finding.start.timestamp()
        end = finding.end.timestamp()
        self.event_ts = max(self.event_ts, end)
        ep = self._holding(key, start)
        if finding.firing:
            return self._firing(key, ep, finding, start, end, now)
        if ep is not None:
            return self._withdraw(key, ep, finding, start, now)
        current = self.open.get(key)
        if (
            current is not None
            and start >= current.last_firing_end
            and end >= current.last_firing_end + self.policy.quiet(finding.kind)
        ):
            current.open = False
            current.cleared_ts = end
            del self.open[key]
            self.closed.setdefault(key, []).append(current)
            self._prune(key)
            return [
                self._change(
                    ChangeKind.CLEARED, current, finding, now, reason="quiet period passed"
                )
            ]
        return []

    def _firing(
        self,
        key: Key,
        ep: Episode | None,
        finding: Finding,
        start: float,
        end: float,
        now: datetime,
    ) -> list[AlertChange]:
        digest = finding.digest()
        record = Period(
            end, finding.value, finding.ratio, digest, finding.revision, int(finding.severity)
        )
        if ep is not None:
            old = ep.periods[start]
            if old.digest == digest or finding.revision < old.revision:
                return []  # re-delivery, or a replay of an older judgement
            if finding.revision == old.revision and end < old.end_ts:
                return []  # an older snapshot of a run that has since grown
            amended = finding.revision > old.revision or end == old.end_ts
            ep.periods[start] = record
            ep.refresh()
            replaced: dict[str, Any] = {
                "value": old.value,
                "ratio": old.ratio,
                "revision": old.revision,
                "end": at(old.end_ts).isoformat(),
            }
            change = ChangeKind.AMENDED if amended else ChangeKind.UPDATED
            out = [
                self._change(
                    change,
                    ep,
                    finding,
                    now,
                    reason="period re-judged" if amended else "run continues",
                    previous=replaced if amended else None,
                )
            ]
            return out + self._escalate(key, ep, finding, end, now)
        if finding.revision <= self._tombstone(key, start):
            return []
        target = self.open.get(key)
        if target is None and finding.revision > 0:
            for old_ep in reversed(self.closed.get(key, [])):
                cleared = old_ep.cleared_ts or old_ep.last_firing_end
                if old_ep.start_ts - self.policy.quiet(finding.kind) <= start < cleared:
                    target = old_ep
                    break
        if target is not None:
            was_open = target.open
            target.periods[start] = record
            target.start_ts = min(target.start_ts, start)
            target.refresh()
            late = finding.revision > 0 or not was_open
            change = ChangeKind.AMENDED if late else ChangeKind.UPDATED
            previous: dict[str, Any] | None = (
                {"value": None, "revision": finding.revision - 1, "judgement": "not firing"}
                if late
                else None
            )
            out = [
                self._change(
                    change,
                    target,
                    finding,
                    now,
                    reason="late data: period now firing" if late else "period over",
                    previous=previous,
                )
            ]
            return out + self._escalate(key, target, finding, end, now)
        ep = Episode(
            episode_id=episode_id(
                self.outlet_id, finding.factor, finding.kind.value, finding.start
            ),
            outlet_id=self.outlet_id,
            factor=finding.factor,
            kind=finding.kind,
            start_ts=start,
            periods={start: record},
            last_firing_end=end,
        )
        self.open[key] = ep
        starts = self.starts.setdefault(finding.kind.value, [])
        starts.append(start)
        horizon = start - self.policy.repeat_window_s
        self.starts[finding.kind.value] = [s for s in starts if s >= horizon]
        reason = "late data: period re-judged as firing" if finding.revision > 0 else ""
        out = [self._change(ChangeKind.OPENED, ep, finding, now, reason=reason)]
        return out + self._escalate(key, ep, finding, end, now)

    def _withdraw(
        self, key: Key, ep: Episode, finding: Finding, start: float, now: datetime
    ) -> list[AlertChange]:
        old = ep.periods[start]
        if finding.revision <= old.revision:
            return []  # a replay of the judgement that was already superseded
        del ep.periods[start]
        ep.withdrawn[start] = finding.revision
        withdrawn = not ep.periods
        if withdrawn and ep.open:
            ep.open = False
            ep.cleared_ts = finding.end.timestamp()
            del self.open[key]
            self.closed.setdefault(key, []).append(ep)
        ep.refresh()
        previous = {
            "value": old.value,
            "ratio": old.ratio,
            "revision": old.revision,
            "judgement": "firing",
        }
        return [
            self._change(
                ChangeKind.AMENDED,
                ep,
                finding,
                now,
                reason="period re-judged as not firing",
                previous=previous,
                withdrawn=withdrawn,
            )
        ]

    def _escalate(
        self, key: Key, ep: Episode, finding: Finding, end: float, now: datetime
    ) -> list[AlertChange]:
        policy = self.policy
        if ep.escalated or ep.kind not in policy.escalate_kinds:
            return []
        window_start = ep.start_ts - policy.repeat_window_s
        repeats = sum(
            1 for s in self.starts.get(ep.kind.value, ()) if window_start <= s <= ep.start_ts
        )
        horizon = end - policy.hours_window_s
        seconds = 0.0
        for e in [*self.closed.get(key, ()), *([self.open[key]] if key in self.open else [])]:
            for s, p in e.periods.items():
                if s >= horizon:
                    seconds += p.end_ts - s
        hours = seconds / HOUR
        reasons = []
        if repeats >= policy.repeat_episodes:
            reasons.append(
                f"repeat violator: {repeats} {ep.kind.value} episodes within "
                f"{policy.repeat_window_s / DAY:g} days"
            )
        # Hours over is an hourly-basis measure: one daily exceedance is not 24 hours over.
        if hours >= policy.hours_over and ep.kind is not FindingKind.EXCEEDANCE_DAILY:
            reasons.append(f"{hours:g} hours over within {policy.hours_window_s / HOUR:g} h")
        if not reasons:
            return []
        ep.escalated = True
        return [self._change(ChangeKind.ESCALATED, ep, finding, now, reason="; ".join(reasons))]

    def _prune(self, key: Key) -> None:
        horizon = self.event_ts - self.policy.retention_s
        kept = [e for e in self.closed.get(key, []) if (e.cleared_ts or 0.0) >= horizon]
        self.closed[key] = kept

    def open_episodes(self) -> list[Episode]:
        return list(self.open.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "outlet_id": self.outlet_id,
            "open": [e.to_dict() for e in self.open.values()],
            "closed": [e.to_dict() for eps in self.closed.values() for e in eps],
            "starts": {k: list(v) for k, v in self.starts.items()},
            "event_ts": self.event_ts,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any], policy: EpisodePolicy | None = None) -> EpisodeBook:
        book = cls(doc["outlet_id"], policy)
        for d in doc["open"]:
            e = Episode.from_dict(d)
            book.open[(e.factor, e.kind.value)] = e
        for d in doc["closed"]:
            e = Episode.from_dict(d)
            book.closed.setdefault((e.factor, e.kind.value), []).append(e)
        book.starts = {k: [float(s) for s in v] for k, v in doc["starts"].items()}
        book.event_ts = float(doc["event_ts"])
        return book
