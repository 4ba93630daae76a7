"""Benchmark of the alerts judgement core (pure, no Kafka): `make bench` calls run().

Throughput: minute readings (SO2 + O2 per minute, values varying) for many gas outlets,
including hour closing, O2 correction, anomaly detectors and episodes.
Memory: tracemalloc of the Judge state for 10,000 outlets after one full hour of minute data
plus the next minutes (one closed hour retained per factor, one open).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from alerts.domain.judge import Judge
from alerts.domain.periods import CST
from alerts.domain.readings import Reading, RecordKind
from alerts.domain.registry import Registry, registry_from_dict

SO2 = "a21026"
O2 = "a19001"
T0 = datetime(2025, 3, 10, 10, 0, tzinfo=CST)


def _registry(outlets: int) -> Registry:
    limit = {
        "factor": SO2,
        "value": 35,
        "unit": "mg/m3",
        "kind": "ultra_low",
        "clause": "UL",
        "effective_from": "2024-01-01",
    }
    return registry_from_dict(
        {
            "version": 1,
            "enterprises": [{"id": "E", "name": "e", "county": "320506", "key_polluter": True}],
            "outlets": [
                {
                    "id": f"O{i}",
                    "enterprise": "E",
                    "mn": f"MN{i:020d}",
                    "medium": "gas",
                    "sector": "thermal_power",
                    "standard": "GB 13223",
                    "reference_o2": 6.0,
                    "averaging": "hourly",
                    "range": {SO2: 200},
                    "limits": [limit],
                }
                for i in range(outlets)
            ],
        }
    )


def _readings(outlets: int, minutes: int) -> Iterator[Reading]:
    for m in range(minutes):
        t = T0 + timedelta(minutes=m)
        received = t + timedelta(seconds=70)
        for i in range(outlets):
            so2 = 20.0 + (i + m) % 17  # varies, crosses the limit after correction sometimes
            o2 = 8.0 + ((i * 7 + m) % 5) * 0.3
            for factor, value in ((O2, o2), (SO2, so2)):
                yield Reading(
                    f"O{i}",
                    f"MN{i:020d}",
                    factor,
                    t,
                    RecordKind.MINUTE,
                    received,
                    f"ev-{i}-{m}-{factor}",
                    "N",
                    avg=value,
                )


def _throughput(outlets: int = 500, minutes: int = 130) -> float:
    judge = Judge(_registry(outlets))
    readings = list(_readings(outlets, minutes))
    start = time.perf_counter()
    for r in readings:
        judge.on_reading(r, r.received_at)
    elapsed = time.perf_counter() - start
    return len(readings) / elapsed


def _memory_mib(outlets: int = 10_000, minutes: int = 66) -> float:
    registry = _registry(outlets)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    judge = Judge(registry)
    for r in _readings(outlets, minutes):  # generated on the fly: only what the state keeps
        judge.on_reading(r, r.received_at)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / 2**20


def run() -> list[dict[str, Any]]:
    per_s = _throughput()
    mib = _memory_mib()
    return [
        {
            "name": "alerts_judge_minute_readings",
            "value": round(per_s),
            "unit": "readings/s",
            "target": 50000,
            "command": "make bench",
        },
        {
            "name": "alerts_judge_state_10k_outlets",
            "value": round(mib, 1),
            "unit": "MiB",
            "target": None,
            "command": "make bench",
        },
    ]


if __name__ == "__main__":
    for record in run():
        print(record)
