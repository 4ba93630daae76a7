"""Validation of the registry YAML document (format in docs/registry.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


class Enterprise(_Strict):
    id: str
    name: str
    county: str = Field(pattern=r"^\d{6}$", description="6-digit administrative division code")
    key_polluter: bool = False
    address: str = ""
    lat: float | None = None
    lon: float | None = None


class Limit(_Strict):
    factor: str
    value: float | None = None
    unit: str = "mg/m3"
    kind: Literal["national", "special", "ultra_low", "local", "permit"] = "national"
    clause: str = ""
    effective_from: date | datetime
    effective_to: date | datetime | None = None
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> Limit:
        if self.value is None and self.low is None and self.high is None:
            raise ValueError(f"limit for {self.factor} needs value, or low/high for a range")
        return self


class Outlet(_Strict):
    id: str
    enterprise: str
    name: str
    mn: str = Field(min_length=6, max_length=24)
    password: str = Field(min_length=1, max_length=24)
    medium: Literal["gas", "water"]
    sector: str = ""
    standard: str = ""
    reference_o2: float | None = None
    averaging: Literal["hourly", "daily"] | None = None
    lat: float | None = None
    lon: float | None = None
    limits: list[Limit] = []

    @model_validator(mode="after")
    def _default_averaging(self) -> Outlet:
        # Flue gas is judged on hourly means, water on daily means (domain.md §1.3).
        if self.averaging is None:
            self.averaging = "hourly" if self.medium == "gas" else "daily"
        return self


class Mark(_Strict):
    id: str = ""
    outlet: str
    factor: str | None = None
    kind: Literal["maintenance", "calibration", "fault", "stopped", "startup", "shutdown"]
    start: datetime
    end: datetime
    approved: bool = True
    reference: str = ""

    @model_validator(mode="after")
    def _stable_id(self) -> Mark:
        if not self.id:
            self.id = f"{self.outlet}:{self.factor or '*'}:{self.kind}:{self.start.isoformat()}"
        return self


class Certificate(_Strict):
    kind: str
    number: str = ""
    expires: date | None = None


class Shift(_Strict):
    days: list[str]
    start: str = Field(pattern=r"^\d{2}:\d{2}$")
    end: str = Field(pattern=r"^\d{2}:\d{2}$")


class Person(_Strict):
    id: str
    name: str
    roles: list[Literal["enforcement", "monitoring", "operations", "duty_manager", "manager"]]
    certificates: list[Certificate] = []
    jurisdiction: list[str]
    shifts: list[Shift] = []
    on_duty: bool = True
    phone: str = ""
    lat: float | None = None
    lon: float | None = None

    @field_validator("jurisdiction")
    @classmethod
    def _codes(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if not (code.isdigit() and len(code) in (2, 4, 6)):
                raise ValueError(f"jurisdiction code {code!r} must be 2, 4 or 6 digits")
        return codes


class RegistryDocument(_Strict):
    version: Literal[1]
    enterprises: list[Enterprise] = []
    outlets: list[Outlet] = []
    marks: list[Mark] = []
    roster: list[Person] = []

    @model_validator(mode="after")
    def _references(self) -> RegistryDocument:
        problems: list[str] = []
        enterprises = {e.id for e in self.enterprises}
        outlets = {o.id for o in self.outlets}
        for kind, items in (
            ("enterprise", self.enterprises),
            ("outlet", self.outlets),
            ("mark", self.marks),
            ("person", self.roster),
        ):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    problems.append(f"duplicate {kind} id {item.id}")
                seen.add(item.id)
        mns: dict[str, str] = {}
        for outlet in self.outlets:
            if outlet.enterprise not in enterprises:
                problems.append(f"outlet {outlet.id}: unknown enterprise {outlet.enterprise}")
            if outlet.mn in mns:
                problems.append(
                    f"outlet {outlet.id}: MN {outlet.mn} already used by {mns[outlet.mn]}"
                )
            mns[outlet.mn] = outlet.id
        for mark in self.marks:
            if mark.outlet not in outlets:
                problems.append(f"mark {mark.id}: unknown outlet {mark.outlet}")
            if mark.end <= mark.start:
                problems.append(f"mark {mark.id}: end must be after start")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def entities(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, id, JSON-ready document) for every entity, in a stable order."""
        out: list[tuple[str, str, dict[str, Any]]] = []
        for kind, items in (
            ("enterprise", self.enterprises),
            ("outlet", self.outlets),
            ("mark", self.marks),
            ("person", self.roster),
        ):
            for item in items:
                out.append((kind, item.id, item.model_dump(mode="json", exclude_none=True)))
        return out


def as_document(entities: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Rebuilds the YAML-shaped document from materialised entities (kind -> id -> doc)."""
    return {
        "version": 1,
        "enterprises": list(entities.get("enterprise", {}).values()),
        "outlets": list(entities.get("outlet", {}).values()),
        "marks": list(entities.get("mark", {}).values()),
        "roster": list(entities.get("person", {}).values()),
    }
