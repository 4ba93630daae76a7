"""Benchmark: pure joint-team assignment of 1,000 simultaneous alerts over a synthetic
500-person roster spread across 3 provinces x 4 cities x 5 counties (seeded, reproducible).

Run: `python bench/dispatch_assign.py` or import and call `run()` (used by `make bench`)."""

from __future__ import annotations

import random
import time as clock
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from dispatch.domain.assignment import AssignmentPolicy, TeamRequest, assign_batch
from dispatch.domain.roster import Certificate, Person, Role, Roster, Shift
from dispatch.domain.routes import Priority, Route

SEED = 20260302
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PROVINCES = {"32": (32.0, 118.8), "33": (30.3, 120.2), "37": (36.7, 117.0)}


def _counties() -> list[tuple[str, float, float]]:
    out = []
    for prov, (lat, lon) in PROVINCES.items():
        for city in range(1, 5):
            for county in range(1, 6):
                code = f"{prov}{city:02d}{county:02d}"
                out.append(
                    (code, lat + city * 0.3 + county * 0.05, lon + city * 0.2 - county * 0.04)
                )
    return out


def synthetic(rng: random.Random) -> tuple[Roster, list[TeamRequest]]:
    counties = _counties()
    day = Shift(frozenset(range(5)), time(8), time(18))
    people = []
    for i in range(500):
        code, lat, lon = rng.choice(counties)
        r = rng.random()
        role = Role.ENFORCEMENT if r < 0.55 else Role.MONITORING if r < 0.85 else Role.OPERATIONS
        expires = date(2025, 12, 31) if rng.random() < 0.05 else date(2027, 12, 31)
        people.append(
            Person(
                id=f"p{i:04d}",
                name=f"person {i}",
                roles=frozenset({role}),
                jurisdiction=(code,),
                certificates=(Certificate("enforcement_cert", f"C{i}", expires),),
                shifts=(day,),
                on_duty=rng.random() > 0.05,
                lat=lat + rng.uniform(-0.1, 0.1),
                lon=lon + rng.uniform(-0.1, 0.1),
                load=rng.randint(0, 2),
            )
        )
    policy = AssignmentPolicy()
    slots = policy.team_for(Route.JOINT_INSPECTION, Priority.P2).slot_requests()
    requests = []
    for j in range(1000):
        code, lat, lon = rng.choice(counties)
        requests.append(
            TeamRequest(
                f"t{j:04d}",
                code,
                lat + rng.uniform(-0.05, 0.05),
                lon + rng.uniform(-0.05, 0.05),
                slots,
            )
        )
    return Roster(tuple(people)), requests


def run() -> list[dict]:
    roster, requests = synthetic(random.Random(SEED))
    policy = AssignmentPolicy()
    start = clock.perf_counter()
    results = assign_batch(roster, policy, requests, NOW)
    elapsed = clock.perf_counter() - start
    assert len(results) == len(requests)
    return [
        {
            "name": "dispatch_assign_1000_alerts_500_roster",
            "value": round(elapsed, 4),
            "unit": "s",
            "target": 5.0,
            "command": "make bench",
        }
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
