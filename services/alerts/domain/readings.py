"""A single HJ 212 value record for one factor, as the lead maps it from Kafka."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class RecordKind(StrEnum):
    """HJ 212 command numbers (CN) of the upload that carried the value."""

    REALTIME = "2011"
    MINUTE = "2051"
    HOUR = "2061"
    DAY = "2031"


@dataclass(frozen=True, slots=True)
class Reading:
    """One factor of one record. `data_time` is HJ 212 DataTime: for minute, hour and day
    records the START of the period; for real-time records the sampling instant."""

    outlet_id: str
    mn: str
    factor: str
    data_time: datetime
    kind: RecordKind
    received_at: datetime
    record_ref: str
    flag: str | None = None
    rtd: float | None = None
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    cou: float | None = None
    zs_avg: float | None = None
    zs_rtd: float | None = None

    @property
    def value(self) -> float | None:
        """The measured value the record stands for: Rtd for real-time, Avg otherwise."""
        return self.rtd if self.kind is RecordKind.REALTIME else self.avg

    @property
    def corrected(self) -> float | None:
        """The logger's own O2-corrected (折算) value, if it sent one."""
        return self.zs_rtd if self.kind is RecordKind.REALTIME else self.zs_avg
