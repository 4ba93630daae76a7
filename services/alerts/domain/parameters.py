"""Parameter changes, a tampering signature (参数篡改): instrument and logger parameters.

Data loggers report field information with HJ 212 CN 3020. Its codes are `i` + device class
(1 instrument, 2 logger, 3 auxiliary) + information class (1 log, 2 state, 3 parameter) + three
digits (HJ 212-2017 B.8-B.10), so `i13xxx`, `i23xxx` and `i33xxx` are parameters: range,
calibration curve slope and intercept, conversion factors, dilution ratio, digestion
temperature and time... domain.md 2.2 lists changes to exactly these as parameter tampering and
asks for a diff. The last reported value of each (monitored factor, code) is kept per outlet;
a later report with another value is a finding naming both values, their times and records.

A change inside an approved calibration or maintenance mark is the expected result of that
work: it is still reported (the diff is the record), at WARNING. Outside such a mark it is
MAJOR. The first report of a code is the baseline; a report older than the kept one (a
back-filled 3020) changes nothing. Reports of an unchanged value are non-firing findings, the
evidence that lets an open episode clear after its quiet period.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.domain.explain import Explanation
from alerts.domain.findings import ALL_FACTORS, RULES, Finding, FindingKind, Severity
from alerts.domain.periods import at, epoch
from alerts.domain.registry import MarkKind

PARAMETER_CODE = re.compile(r"i[1-3]3\d{3}")
# marks under which a parameter is expected to change
EXPECTED_UNDER = frozenset({MarkKind.CALIBRATION, MarkKind.MAINTENANCE})
# names of codes whose meaning the reference confirms (hj212.md section 10); others by code
KNOWN_NAMES = {"i13004": "digestion temperature (消解温度)"}


@dataclass(frozen=True, slots=True)
class ParameterReport:
    """One parameter value from a 3020 upload. `factor` is the PolId it was reported for
    (`*` when the upload names none: a logger-level parameter)."""

    outlet_id: str
    mn: str
    factor: str
    code: str
    value: str
    data_time: datetime
    record_ref: str


@dataclass(frozen=True, slots=True)
class KnownValue:
    value: str
    ts: float
    ref: str


@dataclass(slots=True)
class ParameterBook:
    """The last reported value per (factor, code) of one outlet."""

    values: dict[tuple[str, str], KnownValue] = field(default_factory=dict)

    def to_dict(self) -> list[list[Any]]:
        return [[f, c, v.value, v.ts, v.ref] for (f, c), v in self.values.items()]

    @classmethod
    def from_dict(cls, rows: Iterable[list[Any]]) -> ParameterBook:
        return cls(
            {(str(r[0]), str(r[1])): KnownValue(str(r[2]), float(r[3]), str(r[4])) for r in rows}
        )


def is_parameter(code: str) -> bool:
    return PARAMETER_CODE.fullmatch(code) is not None


def same_value(a: str, b: str) -> bool:
    """Numbers compare as numbers ("150" equals "150.0"), anything else as trimmed text."""
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a.strip() == b.strip()
    if math.isnan(x) or math.isnan(y):
        return a.strip() == b.strip()
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def note_parameter(
    book: ParameterBook, report: ParameterReport, marks: Iterable[MarkKind]
) -> Finding | None:
    """Keeps the report and returns its finding: firing when the value changed, non-firing
    when it did not, None for a baseline or an out-of-order report. `marks`: the kinds of
    the approved marks covering the report's time."""
    key = (report.factor, report.code)
    ts = epoch(report.data_time)
    known = book.values.get(key)
    if known is not None and ts <= known.ts:
        return None  # older than what is kept (or the same report again)
    book.values[key] = KnownValue(report.value, ts, report.record_ref)
    if known is None:
        return None
    rule_id, basis = RULES[FindingKind.PARAMETER_CHANGED]
    name = KNOWN_NAMES.get(report.code, report.code)
    where = "" if report.factor == ALL_FACTORS else f" of {report.factor}"
    change: float | None = None
    if same_value(known.value, report.value):
        firing, severity = False, Severity.INFO
        summary = f"{name}{where} unchanged at {report.value}"
        values: dict[str, str] = {"code": report.code, "value": report.value}
        refs: tuple[str, ...] = (report.record_ref,)
    else:
        expected = sorted(m.value for m in marks if m in EXPECTED_UNDER)
        firing, severity = True, Severity.WARNING if expected else Severity.MAJOR
        summary = (
            f"{name}{where} changed from {known.value} (reported {at(known.ts).isoformat()}) "
            f"to {report.value} (reported {at(ts).isoformat()})"
            + (
                f", inside an approved {' and '.join(expected)} mark"
                if expected
                else ", outside any approved calibration or maintenance mark"
            )
        )
        values = {
            "code": report.code,
            "name": name,
            "previous": known.value,
            "previous_at": at(known.ts).isoformat(),
            "current": report.value,
            "current_at": at(ts).isoformat(),
            "under_marks": ",".join(expected),
        }
        refs = (known.ref, report.record_ref)
        with contextlib.suppress(ValueError):
            difference = float(report.value) - float(known.value)
            change = difference if math.isfinite(difference) else None
    return Finding(
        kind=FindingKind.PARAMETER_CHANGED,
        outlet_id=report.outlet_id,
        factor=report.factor,
        start=report.data_time,
        end=report.data_time,
        firing=firing,
        severity=severity,
        value=change,
        explanation=Explanation(
            rule_id=rule_id,
            summary=summary,
            basis=basis,
            window_start=at(known.ts),
            window_end=report.data_time,
            values=values,
            record_refs=refs,
        ),
    )
