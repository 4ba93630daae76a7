"""Builders for dispatch tests. Positions are placed due north of the outlet so distances are
easy to compute by hand: 0.01 degree of latitude = 1.11195 km, and with the default road
factor 1.3 at 40 km/h one km costs 1.95 minutes."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from dispatch.domain.alerts import AlertChange, AlertSignal, Severity
from dispatch.domain.roster import Certificate, Person, Role, Roster, Shift

TZ = ZoneInfo("Asia/Shanghai")
# Monday 2 March 2026, 10:00 local
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
OUTLET = (32.0, 118.8)
COUNTY = "320106"
WEEKDAYS_8_TO_18 = Shift(frozenset(range(5)), time(8), time(18))


def person(
    pid: str,
    *roles: Role,
    north: float = 0.0,
    county: str = COUNTY,
    cert_expires: date | None = date(2027, 1, 1),
    shifts: tuple[Shift, ...] = (WEEKDAYS_8_TO_18,),
    on_duty: bool = True,
    load: int = 0,
) -> Person:
    certs = (
        (Certificate("enforcement_cert", f"No.{pid}", cert_expires),)
        if cert_expires is not None and Role.ENFORCEMENT in roles
        else ()
    )
    return Person(
        id=pid,
        name=pid,
        roles=frozenset(roles),
        jurisdiction=(county,),
        certificates=certs,
        shifts=shifts,
        on_duty=on_duty,
        lat=OUTLET[0] + north,
        lon=OUTLET[1],
        load=load,
    )


def roster(*people: Person) -> Roster:
    return Roster(tuple(people))


def signal(
    alert_id: str = "A1",
    *,
    event_id: str | None = None,
    change: AlertChange = AlertChange.OPENED,
    kind: str = "EXCEEDANCE",
    severity: Severity = Severity.HIGH,
    outlet_id: str = "O1",
    enterprise_id: str = "E1",
    factor: str | None = "a21026",
    key_polluter: bool = False,
    repeat_violator: bool = False,
    event_time: datetime = NOW,
) -> AlertSignal:
    return AlertSignal(
        event_id=event_id or f"{alert_id}:{change.value}",
        alert_id=alert_id,
        change=change,
        kind=kind,
        severity=severity,
        outlet_id=outlet_id,
        enterprise_id=enterprise_id,
        county_code=COUNTY,
        event_time=event_time,
        factor=factor,
        value=120.0,
        limit=100.0,
        key_polluter=key_polluter,
        repeat_violator=repeat_violator,
        lat=OUTLET[0],
        lon=OUTLET[1],
    )
