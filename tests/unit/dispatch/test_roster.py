from datetime import date, datetime, time

import pytest

from dispatch.domain.roster import (
    Level,
    Role,
    Shift,
    code_at,
    normalise_code,
    roster_from_dict,
)
from tests.unit.dispatch.factories import NOW, TZ, person, roster

YAML_SHAPE = {
    "roster": [
        {
            "id": "p1",
            "name": "Wang",
            "roles": ["enforcement"],
            "certificates": [
                {"kind": "enforcement_cert", "number": "32-001", "expires": "2027-06-30"}
            ],
            "jurisdiction": ["320106"],
            "shifts": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}
            ],
            "phone": "13800000000",
            "lat": 32.05,
            "lon": 118.78,
        },
        {
            "id": "night",
            "roles": ["monitoring"],
            "jurisdiction": ["320100"],
            "shifts": [
                {"days": ["sun"], "start": "22:00", "end": "06:00"},
                {"start": "2026-03-07T08:00:00+08:00", "end": "2026-03-07T20:00:00+08:00"},
            ],
        },
    ]
}


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("320106", "320106"),
        ("320100", "3201"),
        ("320000", "32"),
        ("32", "32"),
        ("320106001", "320106"),
    ],
)
def test_normalise_code(raw: str, normal: str) -> None:
    assert normalise_code(raw) == normal


def test_code_at_levels() -> None:
    assert code_at("320106", Level.CITY) == "3201"
    assert code_at("320106", Level.PROVINCE) == "32"
    assert code_at("3201", Level.COUNTY) is None


def test_roster_from_yaml_shape() -> None:
    r = roster_from_dict(YAML_SHAPE)
    p = r.get("p1")
    assert p is not None
    assert p.roles == {Role.ENFORCEMENT}
    assert p.certificates[0].expires == date(2027, 6, 30)
    assert p.has_certificate("enforcement_cert", NOW)
    assert p.on_shift(NOW, TZ)  # Monday 10:00
    assert not p.on_shift(datetime(2026, 3, 2, 18, 0, tzinfo=TZ), TZ)  # end is exclusive
    assert [x.id for x in r.within("320106", Role.ENFORCEMENT)] == ["p1"]
    assert [x.id for x in r.within("3201", Role.MONITORING)] == ["night"]
    assert r.within("320106", Role.MONITORING) == ()


def test_overnight_shift_and_explicit_interval() -> None:
    night = roster_from_dict(YAML_SHAPE).get("night")
    assert night is not None
    assert night.on_shift(datetime(2026, 3, 1, 23, 0, tzinfo=TZ), TZ)  # Sunday night
    assert night.on_shift(datetime(2026, 3, 2, 5, 59, tzinfo=TZ), TZ)  # Monday early
    assert not night.on_shift(datetime(2026, 3, 2, 6, 0, tzinfo=TZ), TZ)
    assert not night.on_shift(datetime(2026, 3, 1, 21, 0, tzinfo=TZ), TZ)
    assert night.on_shift(datetime(2026, 3, 7, 12, 0, tzinfo=TZ), TZ)  # the Saturday interval


def test_shift_evaluated_in_roster_timezone() -> None:
    p = person("p", Role.ENFORCEMENT, shifts=(Shift(frozenset({0}), time(8), time(18)),))
    utc_now = datetime.fromisoformat("2026-03-02T01:00:00+00:00")  # 09:00 in Shanghai
    assert p.on_shift(utc_now, TZ)


def test_duty_manager_nearest_in_hierarchy_and_available() -> None:
    r = roster(
        person("dm-prov", Role.DUTY_MANAGER, county="32"),
        person("dm-city", Role.DUTY_MANAGER, county="3201"),
        person("dm-county-off", Role.DUTY_MANAGER, on_duty=False),
    )
    dm = r.duty_manager_for("320106", NOW)
    assert dm is not None and dm.id == "dm-city"
    only_off = roster(person("dm-off", Role.DUTY_MANAGER, on_duty=False))
    fallback = only_off.duty_manager_for("320106", NOW)
    assert fallback is not None and fallback.id == "dm-off"
    assert roster().duty_manager_for("320106", NOW) is None


def test_duplicate_ids_rejected() -> None:
    with pytest.raises(ValueError):
        roster(person("x", Role.ENFORCEMENT), person("x", Role.MONITORING))
