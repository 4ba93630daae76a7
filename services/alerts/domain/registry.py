"""Source registry as the alerts service sees it: outlets, limit versions, approved data marks.

`registry_from_dict` parses the document the `liandong registry load` command validates and
publishes (YAML shape in the task brief). Parsing is pure: the caller reads the file.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from alerts.domain.periods import CST, epoch

_E = TypeVar("_E", bound=StrEnum)

PH = "w01001"
O2 = "a19001"


class Medium(StrEnum):
    GAS = "gas"
    WATER = "water"


class AveragingBasis(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"


class LimitKind(StrEnum):
    NATIONAL = "national"
    SPECIAL = "special"
    ULTRA_LOW = "ultra_low"
    LOCAL = "local"
    PERMIT = "permit"


class MarkKind(StrEnum):
    MAINTENANCE = "maintenance"
    CALIBRATION = "calibration"
    FAULT = "fault"
    STOPPED = "stopped"
    STARTUP = "startup"
    SHUTDOWN = "shutdown"


class RegistryError(ValueError):
    """The document is not a valid registry; `problems` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class LimitVersion:
    """One version of a limit; in force on [effective_from, effective_to)."""

    factor: str
    value: float | None
    unit: str
    kind: LimitKind
    clause: str
    effective_from: datetime
    effective_to: datetime | None = None
    low: float | None = None
    high: float | None = None

    def in_force(self, at: datetime) -> bool:
        return self.effective_from <= at and (self.effective_to is None or at < self.effective_to)

    def in_force_ts(self, ts: float) -> bool:
        if epoch(self.effective_from) > ts:
            return False
        return self.effective_to is None or ts < epoch(self.effective_to)

    @property
    def is_range(self) -> bool:
        return self.low is not None or self.high is not None


@dataclass(frozen=True, slots=True)
class Enterprise:
    enterprise_id: str
    name: str
    county: str
    key_polluter: bool
    address: str = ""
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Outlet:
    outlet_id: str
    enterprise_id: str
    mn: str
    medium: Medium
    sector: str
    standard: str
    reference_o2: float | None
    averaging: AveragingBasis
    key_polluter: bool
    county: str
    name: str = ""
    lat: float | None = None
    lon: float | None = None
    ranges: Mapping[str, float] = field(default_factory=dict)
    limits: Mapping[str, tuple[LimitVersion, ...]] = field(default_factory=dict)

    def expected_factors(self) -> tuple[str, ...]:
        """Factors whose hours must arrive: every limited factor, plus O2 when correcting."""
        factors = list(self.limits)
        if self.medium is Medium.GAS and self.reference_o2 is not None and O2 not in factors:
            factors.append(O2)
        return tuple(factors)


@dataclass(frozen=True, slots=True)
class DataMark:
    """An operator's data mark (数据标记); only approved marks change a judgement."""

    outlet_id: str
    factor: str | None  # None = every factor of the outlet
    kind: MarkKind
    start: datetime
    end: datetime
    approved: bool
    reference: str
    start_ts: float = 0.0
    end_ts: float = 0.0

    def applies_to(self, factor: str) -> bool:
        return self.factor is None or self.factor == factor

    def overlaps(self, start_ts: float, end_ts: float) -> bool:
        return self.start_ts < end_ts and start_ts < self.end_ts

    def covers(self, ts: float) -> bool:
        return self.start_ts <= ts < self.end_ts


def limit_in_force(outlet: Outlet, factor: str, at: datetime) -> LimitVersion | None:
    """The limit version in force at `at` (versions never overlap: the parser rejects it)."""
    for version in outlet.limits.get(factor, ()):
        if version.in_force(at if at.tzinfo else at.replace(tzinfo=CST)):
            return version
    return None


def limit_in_force_ts(outlet: Outlet, factor: str, ts: float) -> LimitVersion | None:
    for version in outlet.limits.get(factor, ()):
        if version.in_force_ts(ts):
            return version
    return None


class Registry:
    """Lookups by MN and outlet id, limits in force, and approved marks overlapping a time."""

    def __init__(
        self,
        enterprises: Iterable[Enterprise] = (),
        outlets: Iterable[Outlet] = (),
        marks: Iterable[DataMark] = (),
    ) -> None:
        self.enterprises = {e.enterprise_id: e for e in enterprises}
        self.outlets = {o.outlet_id: o for o in outlets}
        self.by_mn = {o.mn: o for o in self.outlets.values()}
        self._marks: dict[str, list[DataMark]] = {}
        for mark in marks:
            self._marks.setdefault(mark.outlet_id, []).append(mark)

    def outlet(self, outlet_id: str) -> Outlet | None:
        return self.outlets.get(outlet_id)

    def outlet_by_mn(self, mn: str) -> Outlet | None:
        return self.by_mn.get(mn)

    def limit_in_force(self, outlet_id: str, factor: str, at: datetime) -> LimitVersion | None:
        outlet = self.outlets.get(outlet_id)
        return None if outlet is None else limit_in_force(outlet, factor, at)

    def marks_of(self, outlet_id: str) -> list[DataMark]:
        return self._marks.get(outlet_id, [])

    def marks_covering(self, outlet_id: str, factor: str, at: datetime) -> list[DataMark]:
        ts = epoch(at)
        return [
            m
            for m in self._marks.get(outlet_id, ())
            if m.approved and m.applies_to(factor) and m.covers(ts)
        ]

    def marks_overlapping(
        self, outlet_id: str, factor: str, start_ts: float, end_ts: float
    ) -> list[DataMark]:
        """Approved marks for `factor` (or the whole outlet) overlapping [start, end)."""
        marks = self._marks.get(outlet_id)
        if not marks:
            return []
        return [
            m for m in marks if m.approved and m.applies_to(factor) and m.overlaps(start_ts, end_ts)
        ]


def _time(value: Any, where: str, problems: list[str]) -> datetime | None:
    """YAML gives datetime, date or str; naive times are CST (the registry is local time)."""
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            result = datetime.fromisoformat(value)
        except ValueError:
            problems.append(f"{where}: not an ISO date/time: {value!r}")
            return None
    else:
        problems.append(f"{where}: missing or not a date/time")
        return None
    return result if result.tzinfo else result.replace(tzinfo=CST)


def _number(value: Any, where: str, problems: list[str], required: bool = True) -> float | None:
    if value is None:
        if required:
            problems.append(f"{where}: missing number")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{where}: not a number: {value!r}")
        return None
    return float(value)


def _enum(cls: type[_E], value: Any, where: str, problems: list[str]) -> _E | None:
    try:
        return cls(str(value).lower())
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        problems.append(f"{where}: {value!r} is not one of {allowed}")
        return None


def _limits(doc: Any, where: str, problems: list[str]) -> dict[str, tuple[LimitVersion, ...]]:
    by_factor: dict[str, list[LimitVersion]] = {}
    for i, item in enumerate(doc or []):
        at = f"{where}.limits[{i}]"
        factor = str(item.get("factor", ""))
        if not factor:
            problems.append(f"{at}: factor missing")
            continue
        low = _number(item.get("low"), f"{at}.low", problems, required=False)
        high = _number(item.get("high"), f"{at}.high", problems, required=False)
        value = _number(item.get("value"), f"{at}.value", problems, required=low is None)
        if factor == PH and (low is None or high is None):
            problems.append(f"{at}: pH limits need low and high")
        kind = _enum(LimitKind, item.get("kind", "national"), f"{at}.kind", problems)
        start = _time(item.get("effective_from"), f"{at}.effective_from", problems)
        end = (
            _time(item["effective_to"], f"{at}.effective_to", problems)
            if item.get("effective_to") is not None
            else None
        )
        if start and end and end <= start:
            problems.append(f"{at}: effective_to must be after effective_from")
        if kind is None or start is None:
            continue
        by_factor.setdefault(factor, []).append(
            LimitVersion(
                factor=factor,
                value=value,
                unit=str(item.get("unit", "")),
                kind=kind,
                clause=str(item.get("clause", "")),
                effective_from=start,
                effective_to=end,
                low=low,
                high=high,
            )
        )
    result: dict[str, tuple[LimitVersion, ...]] = {}
    for factor, versions in by_factor.items():
        versions.sort(key=lambda v: v.effective_from)
        for a, b in itertools.pairwise(versions):
            # An ambiguous limit cannot ground a penalty: exactly one version may be in force.
            if a.effective_to is None or a.effective_to > b.effective_from:
                problems.append(
                    f"{where}: limit versions for {factor} overlap at "
                    f"{b.effective_from.isoformat()}"
                )
        result[factor] = tuple(versions)
    return result


def registry_from_dict(doc: Mapping[str, Any]) -> Registry:
    """Parse and validate a registry document; raises RegistryError listing all problems."""
    problems: list[str] = []
    if doc.get("version") != 1:
        problems.append(f"version: expected 1, got {doc.get('version')!r}")
    enterprises: dict[str, Enterprise] = {}
    for i, e in enumerate(doc.get("enterprises") or []):
        at = f"enterprises[{i}]"
        eid = str(e.get("id", ""))
        county = str(e.get("county", ""))
        if not eid:
            problems.append(f"{at}: id missing")
            continue
        if eid in enterprises:
            problems.append(f"{at}: duplicate enterprise id {eid}")
        if not (len(county) == 6 and county.isdigit()):
            problems.append(f"{at}: county must be a 6-digit code, got {county!r}")
        enterprises[eid] = Enterprise(
            enterprise_id=eid,
            name=str(e.get("name", "")),
            county=county,
            key_polluter=bool(e.get("key_polluter", False)),
            address=str(e.get("address", "")),
            lat=_number(e.get("lat"), f"{at}.lat", problems, required=False),
            lon=_number(e.get("lon"), f"{at}.lon", problems, required=False),
        )
    outlets: dict[str, Outlet] = {}
    mns: set[str] = set()
    for i, o in enumerate(doc.get("outlets") or []):
        at = f"outlets[{i}]"
        oid = str(o.get("id", ""))
        mn = str(o.get("mn", ""))
        enterprise = enterprises.get(str(o.get("enterprise", "")))
        if not oid or not mn:
            problems.append(f"{at}: id and mn are required")
            continue
        if oid in outlets:
            problems.append(f"{at}: duplicate outlet id {oid}")
        if mn in mns:
            problems.append(f"{at}: duplicate mn {mn}")
        mns.add(mn)
        if enterprise is None:
            problems.append(f"{at}: unknown enterprise {o.get('enterprise')!r}")
        medium = _enum(Medium, o.get("medium"), f"{at}.medium", problems)
        averaging = _enum(
            AveragingBasis,
            o.get("averaging", "hourly" if medium is Medium.GAS else "daily"),
            f"{at}.averaging",
            problems,
        )
        ref_o2 = _number(o.get("reference_o2"), f"{at}.reference_o2", problems, required=False)
        if ref_o2 is not None and not 0.0 <= ref_o2 < 21.0:
            problems.append(f"{at}.reference_o2: must be in [0, 21), got {ref_o2}")
        ranges: dict[str, float] = {}
        for factor, top in (o.get("range") or {}).items():
            value = _number(top, f"{at}.range.{factor}", problems)
            if value is not None:
                ranges[str(factor)] = value
        limits = _limits(o.get("limits"), at, problems)
        if medium is None or averaging is None or enterprise is None:
            continue
        outlets[oid] = Outlet(
            outlet_id=oid,
            enterprise_id=enterprise.enterprise_id,
            mn=mn,
            medium=medium,
            sector=str(o.get("sector", "")),
            standard=str(o.get("standard", "")),
            reference_o2=ref_o2,
            averaging=averaging,
            key_polluter=enterprise.key_polluter,
            county=enterprise.county,
            name=str(o.get("name", "")),
            lat=_number(o.get("lat"), f"{at}.lat", problems, required=False),
            lon=_number(o.get("lon"), f"{at}.lon", problems, required=False),
            ranges=ranges,
            limits=limits,
        )
    marks: list[DataMark] = []
    for i, m in enumerate(doc.get("marks") or []):
        at = f"marks[{i}]"
        oid = str(m.get("outlet", ""))
        if oid not in outlets:
            problems.append(f"{at}: unknown outlet {oid!r}")
        kind = _enum(MarkKind, m.get("kind"), f"{at}.kind", problems)
        start = _time(m.get("start"), f"{at}.start", problems)
        end = _time(m.get("end"), f"{at}.end", problems)
        if start and end and end <= start:
            problems.append(f"{at}: end must be after start")
        if kind is None or start is None or end is None:
            continue
        factor = m.get("factor")
        marks.append(
            DataMark(
                outlet_id=oid,
                factor=str(factor) if factor else None,
                kind=kind,
                start=start,
                end=end,
                approved=bool(m.get("approved", False)),
                reference=str(m.get("reference", "")),
                start_ts=epoch(start),
                end_ts=epoch(end),
            )
        )
    if problems:
        raise RegistryError(problems)
    return Registry(enterprises.values(), outlets.values(), marks)


def make_mark(
    outlet_id: str,
    kind: MarkKind,
    start: datetime,
    end: datetime,
    *,
    factor: str | None = None,
    approved: bool = True,
    reference: str = "",
) -> DataMark:
    """Build a mark with its epoch bounds filled in (for code that does not parse YAML)."""
    return DataMark(
        outlet_id, factor, kind, start, end, approved, reference, epoch(start), epoch(end)
    )
