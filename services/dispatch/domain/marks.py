"""Approved data marks (数据标记) that hold back dispatch, like Alertmanager silences that the
enterprise files and the regulator approves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class DataMark:
    mark_id: str
    outlet_id: str
    category: str  # e.g. "maintenance", "calibration", "production_stopped"
    start: datetime
    end: datetime
    factor: str | None = None  # None: the whole outlet
    approved: bool = True

    def covers(self, outlet_id: str, factor: str | None, at: datetime) -> bool:
        """Half-open [start, end); judged on the alert's event time, not arrival."""
        return (
            self.approved
            and self.outlet_id == outlet_id
            and (self.factor is None or self.factor == factor)
            and self.start <= at < self.end
        )
