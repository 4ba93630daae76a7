"""O2 correction (折算浓度) and pH range judgement.

C_std = C_meas * (21 - O2_ref) / (21 - O2_meas)  [domain 1.2, formula verified in public code].
As O2 approaches ambient (21 %) the factor explodes (start-up, shut-down, dilution). No
official cap was found [domain 1.2 "High-O2 guard"], so instead of silently capping we refuse
to correct at or above a configurable ceiling (default 19 %) and say why; the O2-dilution
detector raises its own finding for the same hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

O2_AMBIENT = 21.0
DEFAULT_O2_CEILING = 19.0


@dataclass(frozen=True, slots=True)
class Correction:
    value: float | None
    factor: float | None
    reason: str | None = None  # why value is None, or a note on how it was obtained


def correction_factor(
    o2_measured: float, o2_reference: float, ceiling: float = DEFAULT_O2_CEILING
) -> float | None:
    """(21 - O2_ref) / (21 - O2_meas), or None when not computable (O2 >= ceiling or < 0)."""
    if o2_measured >= ceiling or o2_measured < 0.0 or o2_measured >= O2_AMBIENT:
        return None
    return (O2_AMBIENT - o2_reference) / (O2_AMBIENT - o2_measured)


def o2_corrected(
    measured: float,
    o2_measured: float | None,
    o2_reference: float | None,
    ceiling: float = DEFAULT_O2_CEILING,
) -> Correction:
    """Corrected concentration with the reason whenever it cannot be computed."""
    if o2_reference is None:
        # "其他车间或生产设施排气按实测浓度计算" [domain 1.2]: no reference O2, no correction.
        return Correction(measured, 1.0, "no reference O2: measured concentration used")
    if o2_measured is None:
        return Correction(None, None, "no valid O2 for the same period")
    if o2_measured < 0.0:
        return Correction(None, None, f"O2 {o2_measured:g} % is negative")
    if o2_measured >= ceiling:
        return Correction(
            None,
            None,
            f"O2 {o2_measured:g} % at or above the {ceiling:g} % ceiling (near ambient 21 %): "
            "correction not computable; start-up/shut-down must be marked, otherwise dilution",
        )
    factor = (O2_AMBIENT - o2_reference) / (O2_AMBIENT - o2_measured)
    return Correction(measured * factor, factor)


class PhJudgement(StrEnum):
    IN_RANGE = "in_range"
    BELOW = "below"
    ABOVE = "above"


def ph_judgement(value: float, low: float | None, high: float | None) -> PhJudgement:
    """Inclusive range: pH 6-9 permits exactly 6.0 and 9.0."""
    if low is not None and value < low:
        return PhJudgement.BELOW
    if high is not None and value > high:
        return PhJudgement.ABOVE
    return PhJudgement.IN_RANGE
