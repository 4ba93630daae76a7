"""What every finding and alert carries so that it explains itself in a hearing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.domain.registry import LimitVersion

Value = float | int | str | bool | None


@dataclass(frozen=True, slots=True)
class LimitRef:
    """The limit version a judgement used, copied so that later registry edits cannot alter it."""

    value: float | None
    unit: str
    kind: str
    clause: str
    effective_from: datetime
    effective_to: datetime | None = None
    low: float | None = None
    high: float | None = None

    @classmethod
    def of(cls, version: LimitVersion) -> LimitRef:
        return cls(
            value=version.value,
            unit=version.unit,
            kind=version.kind.value,
            clause=version.clause,
            effective_from=version.effective_from,
            effective_to=version.effective_to,
            low=version.low,
            high=version.high,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "unit": self.unit,
            "kind": self.kind,
            "clause": self.clause,
            "effective_from": self.effective_from.isoformat(),
            "effective_to": self.effective_to.isoformat() if self.effective_to else None,
            "low": self.low,
            "high": self.high,
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """Rule, basis, limit, data window, values used, validity and the records behind them."""

    rule_id: str
    summary: str
    basis: str
    window_start: datetime
    window_end: datetime
    limit: LimitRef | None = None
    values: Mapping[str, Value] = field(default_factory=dict)
    valid_minutes: int | None = None
    excluded: Mapping[str, int] = field(default_factory=dict)
    record_refs: tuple[str, ...] = ()

    @property
    def clause(self) -> str | None:
        return self.limit.clause if self.limit else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "summary": self.summary,
            "basis": self.basis,
            "clause": self.clause,
            "limit": self.limit.to_dict() if self.limit else None,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "values": dict(self.values),
            "valid_minutes": self.valid_minutes,
            "excluded": dict(self.excluded),
            "record_refs": list(self.record_refs),
        }
