"""People who can be dispatched, their roles, certificates, jurisdiction and shifts.

Jurisdiction codes use the Chinese administrative-division prefix semantics: 2 digits are a
province, 4 a city, 6 a county, so county 320106 lies inside city 3201 and province 32.
Six-digit codes padded with zeros ("320100", "320000") are normalised to their short form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import IntEnum, StrEnum
from typing import Any
from zoneinfo import ZoneInfo


class Role(StrEnum):
    ENFORCEMENT = "ENFORCEMENT"
    MONITORING = "MONITORING"
    OPERATIONS = "OPERATIONS"
    DUTY_MANAGER = "DUTY_MANAGER"


class Level(IntEnum):
    """Jurisdiction level; the value is the prefix length of the code."""

    PROVINCE = 2
    CITY = 4
    COUNTY = 6


_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def normalise_code(code: str) -> str:
    """'320106' -> '320106', '320100' -> '3201', '320000' -> '32', '320106001' -> '320106'."""
    digits = code.strip()
    if not digits.isdigit() or len(digits) < 2:
        raise ValueError(f"not an administrative division code: {code!r}")
    digits = digits[:6]
    while len(digits) > 2 and digits.endswith("00"):
        digits = digits[:-2]
    if len(digits) % 2:
        raise ValueError(f"not an administrative division code: {code!r}")
    return digits


def code_at(code: str, level: Level) -> str | None:
    """The enclosing division of `code` at `level`, or None when `code` is coarser."""
    normal = normalise_code(code)
    return normal[: level.value] if len(normal) >= level.value else None


@dataclass(frozen=True, slots=True)
class Certificate:
    kind: str
    number: str
    expires: date

    def valid_at(self, now: datetime) -> bool:
        # A certificate is valid through its expiry day (local date of `now`).
        return now.date() <= self.expires


@dataclass(frozen=True, slots=True)
class Shift:
    """A weekly shift. `end <= start` means it runs past midnight into the next day."""

    days: frozenset[int]
    start: time
    end: time

    def covers(self, local: datetime) -> bool:
        t = local.time()
        wd = local.weekday()
        if self.start < self.end:
            return wd in self.days and self.start <= t < self.end
        # overnight: evening part belongs to the start day, morning part to the day before
        return (wd in self.days and t >= self.start) or ((wd - 1) % 7 in self.days and t < self.end)


@dataclass(frozen=True, slots=True)
class Interval:
    """An explicit duty interval, e.g. a one-off weekend standby; [start, end)."""

    start: datetime
    end: datetime

    def covers(self, now: datetime) -> bool:
        return self.start <= now < self.end


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    roles: frozenset[Role]
    jurisdiction: tuple[str, ...]
    certificates: tuple[Certificate, ...] = ()
    shifts: tuple[Shift, ...] = ()
    intervals: tuple[Interval, ...] = ()
    on_duty: bool = True  # False = marked off (leave, sick) whatever the shift says
    phone: str = ""
    lat: float | None = None
    lon: float | None = None
    position_at: datetime | None = None
    load: int = 0  # open tasks when the roster snapshot was taken

    def has_certificate(self, kind: str, now: datetime) -> bool:
        return any(c.kind == kind and c.valid_at(now) for c in self.certificates)

    def on_shift(self, now: datetime, tz: ZoneInfo) -> bool:
        """No schedule at all means permanently on call (typical for duty managers)."""
        if not self.shifts and not self.intervals:
            return True
        if any(i.covers(now) for i in self.intervals):
            return True
        local = now.astimezone(tz) if now.tzinfo is not None else now
        return any(s.covers(local) for s in self.shifts)

    def available(self, now: datetime, tz: ZoneInfo) -> bool:
        return self.on_duty and self.on_shift(now, tz)


@dataclass(frozen=True)
class Roster:
    """An immutable roster snapshot with per-jurisdiction indexes built once.

    `_index[(prefix, role)]` lists, sorted by id, everyone holding `role` whose jurisdiction
    lies inside division `prefix` (a city-level officer "3201" is listed under "3201" and
    "32", not under any county, so widening from county to city reaches them).
    """

    people: tuple[Person, ...]
    timezone: str = "Asia/Shanghai"
    _index: dict[tuple[str, Role], tuple[Person, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _by_id: dict[str, Person] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[tuple[str, Role], set[Person]] = {}
        for p in self.people:
            if p.id in self._by_id:
                raise ValueError(f"duplicate person id {p.id!r}")
            self._by_id[p.id] = p
            for code in p.jurisdiction:
                for level in Level:
                    if len(code) < level.value:
                        continue
                    prefix = code[: level.value]
                    for role in p.roles:
                        index.setdefault((prefix, role), set()).add(p)
        for key, members in index.items():
            self._index[key] = tuple(sorted(members, key=lambda m: m.id))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def get(self, person_id: str) -> Person | None:
        return self._by_id.get(person_id)

    def within(self, division: str, role: Role) -> tuple[Person, ...]:
        """Everyone with `role` whose jurisdiction lies inside `division` (normalised code)."""
        return self._index.get((division, role), ())

    def duty_manager_for(self, county_code: str, now: datetime) -> Person | None:
        """The available duty manager nearest in the hierarchy (county, city, province);
        lowest id wins among equals. Falls back to an unavailable one rather than nobody,
        because an escalation must land somewhere."""
        fallback: Person | None = None
        for level in (Level.COUNTY, Level.CITY, Level.PROVINCE):
            division = code_at(county_code, level)
            if division is None:
                continue
            managers = self.within(division, Role.DUTY_MANAGER)
            for m in managers:
                if m.available(now, self.tz):
                    return m
            if fallback is None and managers:
                fallback = managers[0]
        return fallback


def _parse_time(raw: str) -> time:
    if raw in ("24:00", "24:00:00"):
        return time(0, 0)
    return time.fromisoformat(raw)


def _parse_days(raw: Iterable[str] | str) -> frozenset[int]:
    if isinstance(raw, str):
        raw = [raw]
    days: set[int] = set()
    for d in raw:
        key = d.strip().lower()[:3]
        if key not in _DAYS:
            raise ValueError(f"unknown weekday {d!r}")
        days.add(_DAYS[key])
    return frozenset(days)


def _parse_date(raw: Any) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    return date.fromisoformat(str(raw))


def _parse_datetime(raw: Any) -> datetime:
    return raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))


def person_from_dict(raw: Mapping[str, Any]) -> Person:
    shifts: list[Shift] = []
    intervals: list[Interval] = []
    for s in raw.get("shifts") or ():
        if "days" in s:
            shifts.append(
                Shift(
                    _parse_days(s["days"]), _parse_time(str(s["start"])), _parse_time(str(s["end"]))
                )
            )
        else:
            intervals.append(Interval(_parse_datetime(s["start"]), _parse_datetime(s["end"])))
    position_at = raw.get("position_at")
    return Person(
        id=str(raw["id"]),
        name=str(raw.get("name", raw["id"])),
        roles=frozenset(Role(str(r).upper()) for r in raw.get("roles") or ()),
        jurisdiction=tuple(normalise_code(str(c)) for c in raw.get("jurisdiction") or ()),
        certificates=tuple(
            Certificate(str(c["kind"]), str(c.get("number", "")), _parse_date(c["expires"]))
            for c in raw.get("certificates") or ()
        ),
        shifts=tuple(shifts),
        intervals=tuple(intervals),
        on_duty=bool(raw.get("on_duty", True)),
        phone=str(raw.get("phone", "")),
        lat=float(raw["lat"]) if raw.get("lat") is not None else None,
        lon=float(raw["lon"]) if raw.get("lon") is not None else None,
        position_at=_parse_datetime(position_at) if position_at is not None else None,
        load=int(raw.get("load", 0)),
    )


def roster_from_dict(raw: Mapping[str, Any]) -> Roster:
    """Parse the registry YAML shape `{roster: [{id, name, roles, certificates, jurisdiction,
    shifts, phone, lat, lon}], timezone?}`."""
    return Roster(
        people=tuple(person_from_dict(p) for p in raw.get("roster") or ()),
        timezone=str(raw.get("timezone", "Asia/Shanghai")),
    )
