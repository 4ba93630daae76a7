"""Managers' console data on PostgreSQL: 100,000 tasks over 90 days in 12 counties of two
cities, then the response-time page's data (GET /v1/reports/response-times?by=county, day
buckets, the default 30 days: groups, series, ranking and oldest open tasks) and the overview
(GET /v1/reports/overview) as a provincial manager, through the real dispatch app
(ASGI, no network). Targets (issue 16): p95 <= 300 ms and <= 200 ms.

The rows are the report tables dispatch maintains (dispatch_task_facts, dispatch_alarms),
written in bulk: the reading side is what is measured. A database of its own on the shared
server (deploy/postgres/postgres.sh url, or LIANDONG_BENCH_PG_URL), dropped afterwards.
LIANDONG_BENCH_CONSOLE_TASKS and LIANDONG_BENCH_CONSOLE_REQUESTS shrink a quick run.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dispatch.adapters.registry import Reference
from dispatch.adapters.report_store import REPORT_TABLES, fact_values
from dispatch.adapters.store import DispatchStore, make_engine
from dispatch.domain.policy import DispatchPolicy
from dispatch.domain.report_facts import REPORT_STAGES, TaskFact, buckets
from dispatch.entrypoints.dispatch_service import DispatchService
from dispatch.entrypoints.phone_api import create_app
from liandong.tokens.phone import issue

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-console-signing-key-of-32-bytes!"
COUNTIES = [f"3201{n:02d}" for n in (2, 4, 5, 6, 11, 13)] + [
    f"3202{n:02d}" for n in (5, 6, 11, 13, 14, 81)
]
KINDS = ["EXCEEDANCE"] * 6 + ["OFFLINE", "ZERO_VALUE", "CONSTANT_VALUE", "DEVICE_FAULT"]
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
# what the console's response-time page asks for: by county, day buckets, the chart's stage
PAGE_QUERY = {"by": "county", "bucket": "day", "series_stage": "response"}


def _pg_url() -> str:
    url = os.environ.get("LIANDONG_BENCH_PG_URL", "")
    if url:
        return url
    out = subprocess.run(
        [str(ROOT / "deploy/postgres/postgres.sh"), "url"], capture_output=True, text=True
    )
    return out.stdout.strip()


def _admin_dsn(url: str) -> str:
    u = make_url(url).set(drivername="postgresql", database="postgres")
    return u.render_as_string(hide_password=False)


def fact(i: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """One task's report row and its alarm: durations drawn per stage, a few still open."""
    raised = NOW - timedelta(seconds=rng.uniform(0, 90 * 86400))
    county = rng.choice(COUNTIES)
    kind = rng.choice(KINDS)
    age = (NOW - raised).total_seconds()
    d = rng.lognormvariate(4, 0.5)
    a = rng.lognormvariate(6.5, 0.7)
    t = rng.lognormvariate(7.8, 0.5)
    o = rng.lognormvariate(6.5, 0.5)
    s = rng.lognormvariate(7.5, 0.5)
    steps = [d, a, t, o, s]
    done = 5 if age > 86400 or rng.random() < 0.7 else rng.randint(0, 4)
    reached = [sum(steps[: k + 1]) if k < done else None for k in range(5)]
    created, assigned, on_site, sampling, completed = reached
    durations = {
        "dispatch_s": created,
        "acceptance_s": a if assigned is not None else None,
        "travel_s": t if on_site is not None else None,
        "response_s": on_site,
        "on_site_s": o if sampling is not None else None,
        "sampling_s": s if completed is not None else None,
        "on_site_to_done_s": o + s if completed is not None else None,
        "total_s": completed,
    }
    assert set(durations) == {c for *_, c in REPORT_STAGES}
    states = ["CREATED", "ASSIGNED", "ON_SITE", "SAMPLING", "COMPLETED"]
    state = "ASSIGNING" if done == 0 else states[done - 1] if done < 5 else "COMPLETED"
    start = raised + timedelta(seconds=d)
    row = TaskFact(
        task_id=f"bench-{i:07d}",
        county=county,
        priority=rng.choice(["P1", "P2", "P2", "P3"]),
        route=rng.choice(["JOINT_INSPECTION", "JOINT_INSPECTION", "OPERATIONS", "DESK_REVIEW"]),
        state=state,
        is_open=done < 5,
        alert_kind=kind,
        enterprise_id=f"E{i % 3000}",
        outlet_id=f"O{i % 5000}",
        case_id="",
        raised_at=raised,
        durations=durations,
        clock_due={
            "ACCEPT": start + timedelta(minutes=30) if assigned is None else None,
            "ARRIVE": start + timedelta(hours=8) if on_site is None else None,
            "FINISH": start + timedelta(hours=48) if completed is None else None,
        },
        clock_breached={"ACCEPT": a > 1800, "ARRIVE": False, "FINISH": False},
        **buckets(raised),
    )
    alarm = {
        "alert_id": f"alert-{i:07d}",
        "kind": kind,
        "severity": "MAJOR",
        "county": county,
        "outlet_id": row.outlet_id,
        "raised_at": raised,
    }
    return fact_values(row), alarm


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.95 + 0.999999) - 1)]


async def _measure(app: Any, path: str, params: dict[str, str], n: int) -> list[float]:
    headers = {"Authorization": f"Bearer {issue('boss', 'DUTY_MANAGER', '32', key=KEY)}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
        for _ in range(3):  # warm-up: connections, plans
            (await c.get(path, params=params, headers=headers)).raise_for_status()
        took = []
        for _ in range(n):
            started = time.perf_counter()
            r = await c.get(path, params=params, headers=headers)
            took.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
        return took


def run() -> list[dict[str, Any]]:
    tasks = int(os.environ.get("LIANDONG_BENCH_CONSOLE_TASKS", "100000"))
    requests = int(os.environ.get("LIANDONG_BENCH_CONSOLE_REQUESTS", "40"))
    url = _pg_url()
    name = f"bench_console_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_dsn(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Shanghai'")
    db_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(db_url)
    try:
        store = DispatchStore(engine)
        rng = random.Random(16)
        facts_table, alarms_table = REPORT_TABLES
        started = time.perf_counter()
        for lo in range(0, tasks, 5000):
            rows = [fact(i, rng) for i in range(lo, min(tasks, lo + 5000))]
            with engine.begin() as conn:
                conn.execute(facts_table.insert(), [r for r, _ in rows])
                conn.execute(alarms_table.insert(), [a for _, a in rows])
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        load_s = time.perf_counter() - started
        service = DispatchService(
            DispatchPolicy(version="bench"), store, Reference({}), clock=lambda: NOW
        )
        app = create_app(service, KEY)
        report = asyncio.run(_measure(app, "/v1/reports/response-times", PAGE_QUERY, requests))
        overview = asyncio.run(_measure(app, "/v1/reports/overview", {}, requests))
        # the ceiling: the database only counting the same 30 days' rows, same run
        floor = []
        with engine.connect() as conn:
            count = text(
                "SELECT count(*) FROM dispatch_task_facts WHERE raised_at >= :s AND raised_at < :u"
            )
            for _ in range(requests):
                started = time.perf_counter()
                conn.execute(count, {"s": NOW - timedelta(days=30), "u": NOW}).scalar()
                floor.append((time.perf_counter() - started) * 1000)
    finally:
        engine.dispose()
        with psycopg.connect(_admin_dsn(url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    note = f"{tasks} tasks over 90 days, 12 counties, PostgreSQL; loaded in {load_s:.0f} s"
    command = "python -m bench.run console_reports"
    ceiling = {
        "name": "PostgreSQL counting the same 30 days' rows, p95, same run",
        "value": round(p95(floor), 1),
        "unit": "ms",
    }
    return [
        {
            "name": "console response-time page data p95 (by county, a stage per day, 30 days)",
            "value": round(p95(report), 1),
            "unit": "ms",
            "target": 300,
            "note": note,
            "command": command,
            "ceiling": ceiling,
        },
        {
            "name": "console overview p95",
            "value": round(p95(overview), 1),
            "unit": "ms",
            "target": 200,
            "note": note,
            "command": command,
            "ceiling": ceiling,
        },
    ]


if __name__ == "__main__":
    for record in run():
        print(record)
