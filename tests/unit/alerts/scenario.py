"""Builders for alert-judgement test scenarios: a registry document and reading sequences."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from alerts.domain.periods import CST
from alerts.domain.readings import Reading, RecordKind
from alerts.domain.registry import Registry, registry_from_dict

SO2 = "a21026"
O2 = "a19001"
COD = "w01018"
PH = "w01001"
FLOW = "a00000"
T0 = datetime(2025, 3, 10, 10, 0, tzinfo=CST)  # an hour start


def registry_doc(**outlet_overrides: Any) -> dict[str, Any]:
    gas: dict[str, Any] = {
        "id": "OUT-G1",
        "enterprise": "ENT-1",
        "name": "boiler stack",
        "mn": "MN-GAS-0001",
        "password": "123456",
        "medium": "gas",
        "sector": "thermal_power",
        "standard": "GB 13223-2011",
        "reference_o2": 6.0,
        "averaging": "hourly",
        "range": {SO2: 200},
        "limits": [
            {
                "factor": SO2,
                "value": 35,
                "unit": "mg/m3",
                "kind": "ultra_low",
                "clause": "环发〔2015〕164号 SO2 35 mg/m3 at 6 % O2",
                "effective_from": "2024-01-01T00:00:00",
            }
        ],
    }
    gas.update(outlet_overrides)
    water = {
        "id": "OUT-W1",
        "enterprise": "ENT-1",
        "name": "wwtp outfall",
        "mn": "MN-WATER-0001",
        "password": "123456",
        "medium": "water",
        "sector": "wwtp",
        "standard": "GB 18918-2002 1A",
        "averaging": "daily",
        "limits": [
            {
                "factor": COD,
                "value": 50,
                "unit": "mg/L",
                "kind": "national",
                "clause": "GB 18918-2002 Table 1 1A COD 50",
                "effective_from": "2024-01-01",
            },
            {
                "factor": PH,
                "low": 6,
                "high": 9,
                "unit": "",
                "kind": "national",
                "clause": "GB 18918-2002 Table 1 pH 6-9",
                "effective_from": "2024-01-01",
            },
        ],
    }
    return {
        "version": 1,
        "enterprises": [
            {
                "id": "ENT-1",
                "name": "Example Power",
                "county": "320506",
                "key_polluter": True,
                "address": "x",
                "lat": 31.3,
                "lon": 120.6,
            }
        ],
        "outlets": [gas, water],
        "marks": [],
        "roster": [],
    }


def registry(**outlet_overrides: Any) -> Registry:
    return registry_from_dict(registry_doc(**outlet_overrides))


def minute(
    factor: str,
    at: datetime,
    avg: float | None,
    *,
    flag: str | None = "N",
    outlet: str = "OUT-G1",
    mn: str = "MN-GAS-0001",
    zs: float | None = None,
    delay: timedelta = timedelta(seconds=30),
    ref: str | None = None,
) -> Reading:
    return Reading(
        outlet_id=outlet,
        mn=mn,
        factor=factor,
        data_time=at,
        kind=RecordKind.MINUTE,
        received_at=at + timedelta(minutes=1) + delay,
        record_ref=ref or f"{outlet}/{factor}/{at:%Y%m%d%H%M}",
        flag=flag,
        avg=avg,
        zs_avg=zs,
    )


def realtime(
    factor: str, at: datetime, rtd: float, *, zs: float | None = None, flag: str | None = "N"
) -> Reading:
    return Reading(
        outlet_id="OUT-G1",
        mn="MN-GAS-0001",
        factor=factor,
        data_time=at,
        kind=RecordKind.REALTIME,
        received_at=at + timedelta(seconds=5),
        record_ref=f"rt/{factor}/{at:%H%M%S}",
        flag=flag,
        rtd=rtd,
        zs_rtd=zs,
    )


def gas_hour(
    start: datetime,
    so2: float,
    o2: float,
    *,
    minutes: range = range(60),
    so2_flag: str | None = "N",
) -> Iterator[Reading]:
    """SO2 and O2 minute records for the given minutes of an hour (O2 first, as packets do)."""
    for m in minutes:
        t = start + timedelta(minutes=m)
        yield minute(O2, t, o2)
        yield minute(SO2, t, so2, flag=so2_flag)


def closer(start: datetime) -> list[Reading]:
    """A reading far enough into the next hour (minute 5 = grace) to close `start`'s hour."""
    t = start + timedelta(hours=1, minutes=5)
    return [minute(O2, t, 9.0), minute(SO2, t, 1.0)]
