"""The console's report API over the hand-computed dataset of report_seed: stage percentiles,
time buckets, the county ranking, the overview, a timeline, exports, and jurisdiction."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from dispatch.adapters.alert_events import signal_from_event
from dispatch.entrypoints.phone_api import create_app
from liandong.v1 import alerts_pb2
from tests.unit.dispatch import report_seed
from tests.unit.dispatch.harness import Harness, alert_event
from tests.unit.dispatch.test_phone_api import KEY, auth

PROVINCE = auth("boss", "DUTY_MANAGER", "32")
JIANGNING = auth("jn", "DUTY_MANAGER", "320115")
WINDOW = {"since": "2026-03-01T00:00:00+08:00", "until": "2026-03-21T00:00:00+08:00"}


@pytest.fixture
def report_db_url() -> str | None:
    return None


@pytest.fixture
async def env(
    tmp_path: Path, report_db_url: str | None
) -> AsyncIterator[tuple[Harness, httpx.AsyncClient, dict[str, str]]]:
    h, ids = report_seed.seeded_harness(tmp_path, report_db_url)
    app = create_app(h.service, KEY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield h, c, ids
    h.close()


def stage(group: dict[str, Any], name: str) -> tuple[int, float | None, float | None, float | None]:
    s = next(s for s in group["stages"] if s["stage"] == name)
    return s["count"], s["p50_s"], s["p90_s"], s["max_s"]


async def test_stages_ranking_and_buckets_by_hand(env) -> None:
    _, c, _ = env
    r = await c.get(
        "/v1/reports/response-times", params={**WINDOW, "by": "county"}, headers=PROVINCE
    )
    body = r.json()
    groups = {g["group"]: g for g in body["groups"]}
    assert set(groups) == {"320106", "320115"}
    gl, jn = groups["320106"], groups["320115"]
    assert (gl["tasks"], gl["open_tasks"], jn["tasks"], jn["open_tasks"]) == (4, 1, 4, 1)
    assert stage(gl, "response") == (3, 2520.0, 3660.0, 3660.0)
    assert stage(gl, "total") == (3, 6060.0, 6120.0, 6120.0)
    assert stage(jn, "response") == (3, 5700.0, 6960.0, 6960.0)
    assert stage(jn, "total") == (3, 10500.0, 10560.0, 10560.0)
    # accepted: G 10, 20, 5, 15 min; J 30, 25, 40 (J4 not yet)
    assert stage(gl, "acceptance") == (4, 600.0, 1200.0, 1200.0)
    assert stage(jn, "acceptance") == (3, 1800.0, 2400.0, 2400.0)
    assert gl["sla_breaches"] == {"ACCEPT": 0, "ARRIVE": 0, "FINISH": 0}
    assert jn["sla_breaches"] == {"ACCEPT": 2, "ARRIVE": 0, "FINISH": 0}
    ranking = [(x["rank"], x["county"], x["response_p50_s"]) for x in body["ranking"]]
    assert ranking == [(1, "320106", 2520.0), (2, "320115", 5700.0)]
    # weeks from Monday (CST): 03-02 has G1 J1, 03-09 G2 J2, 03-16 G3 G4 J3 J4
    weeks = (await c.get("/v1/reports/response-times", params={**WINDOW, "bucket": "week"},
                         headers=PROVINCE)).json()  # fmt: skip
    series = {g["group"]: g for g in weeks["series"]}
    assert {k: v["tasks"] for k, v in series.items()} == {
        "2026-03-02": 2,
        "2026-03-09": 2,
        "2026-03-16": 4,
    }
    assert stage(series["2026-03-02"], "response") == (2, 2520.0, 5700.0, 5700.0)
    months = (await c.get("/v1/reports/response-times", params={**WINDOW, "bucket": "month"},
                          headers=PROVINCE)).json()  # fmt: skip
    assert [(g["group"], g["tasks"]) for g in months["series"]] == [("2026-03", 8)]
    # the chart asks for one stage only
    one = {**WINDOW, "bucket": "week", "series_stage": "total"}
    total = (await c.get("/v1/reports/response-times", params=one, headers=PROVINCE)).json()
    assert [[st["stage"] for st in g["stages"]] for g in total["series"]] == [["total"]] * 3
    assert stage(total["series"][0], "total") == (2, 6120.0, 10500.0, 10500.0)
    assert len(total["groups"][0]["stages"]) == 8  # the tables keep every stage
    bad = {**WINDOW, "series_stage": "lunch"}
    r = await c.get("/v1/reports/response-times", params=bad, headers=PROVINCE)
    assert r.status_code == 422


async def test_a_county_manager_sees_only_their_county(env) -> None:
    _, c, ids = env
    body = (await c.get("/v1/reports/response-times", params={**WINDOW, "by": "county"},
                        headers=JIANGNING)).json()  # fmt: skip
    assert [g["group"] for g in body["groups"]] == ["320115"]
    assert [x["county"] for x in body["ranking"]] == ["320115"]
    assert {t["county"] for t in body["slowest_open"]} == {"320115"}
    asked = {**WINDOW, "county": "320106"}  # asking for the other county narrows to nothing
    other = (await c.get("/v1/reports/response-times", params=asked, headers=JIANGNING)).json()
    assert other["groups"] == [] and other["ranking"] == [] and other["series"] == []
    r = await c.get(f"/v1/reports/tasks/{ids['G1']}/timeline", headers=JIANGNING)
    assert r.status_code == 403
    overview = (await c.get("/v1/reports/overview", headers=JIANGNING)).json()
    assert overview["today"]["alarms_by_kind"] == {"EXCEEDANCE": 1}
    assert overview["open_by_state"] == {"ASSIGNING": 1}
    points = (await c.get("/v1/reports/map", headers=JIANGNING)).json()["outlets"]
    assert [(p["id"], p["open_tasks"], p["worst_state"]) for p in points] == [
        ("OJ", 1, "ASSIGNING")
    ]
    for name in ("response-times", "ranking", "series", "tasks"):
        r = await c.get(f"/v1/reports/export/{name}.csv", params=WINDOW, headers=JIANGNING)
        assert r.status_code == 200
        assert "320115" in r.text or name == "series", name
        assert "320106" not in r.text, name


async def test_overview_counts_today_and_this_week(env) -> None:
    _, c, _ = env
    o = (await c.get("/v1/reports/overview", headers=PROVINCE)).json()
    assert o["today"]["since"] == "2026-03-20T00:00:00+08:00"
    assert o["today"]["alarms_by_kind"] == {"EXCEEDANCE": 2}
    # the week from Monday 16 March: G3, G4, J4 EXCEEDANCE, J3 OFFLINE
    assert o["week"]["alarms_by_kind"] == {"EXCEEDANCE": 3, "OFFLINE": 1}
    assert o["open_by_state"] == {"ASSIGNED": 1, "ASSIGNING": 1} and o["open_tasks"] == 2
    assert o["open_breached"] == {"ACCEPT": 1, "ARRIVE": 0, "FINISH": 0}
    assert o["week_breaches"] == {"ACCEPT": 2, "ARRIVE": 0, "FINISH": 0}
    # last 7 days: G3 (33 min) and J3 (116 min) completed; slowest first
    assert [(x["county"], x["response_p50_s"]) for x in o["slowest_counties"]] == [
        ("320115", 6960.0),
        ("320106", 1980.0),
    ]


async def test_timeline_of_one_task(env) -> None:
    _, c, ids = env
    t = (await c.get(f"/v1/reports/tasks/{ids['J3']}/timeline", headers=PROVINCE)).json()
    kinds = [i["kind"] for i in t["items"]]
    assert kinds == ["ALERT", "CREATED", "ASSIGNING", "ASSIGNED", "EN_ROUTE", "ON_SITE",
                     "SAMPLING", "COMPLETED"]  # fmt: skip
    assert t["items"][0]["note"].startswith("J3: a21026")
    assert t["stages"]["response"] == 6960.0 and t["stages"]["sampling"] == 2700.0
    assert (await c.get("/v1/reports/tasks/nope/timeline", headers=PROVINCE)).status_code == 404
    field = auth("e1", "ENFORCEMENT")
    assert (
        await c.get(f"/v1/reports/tasks/{ids['J3']}/timeline", headers=field)
    ).status_code == 403


async def test_exports_carry_the_numbers(env) -> None:
    _, c, _ = env
    r = await c.get("/v1/reports/export/ranking.csv", params=WINDOW, headers=PROVINCE)
    assert (
        r.headers["content-disposition"] == 'attachment; filename="ranking-20260301-20260320.csv"'
    )
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["rank", "county", "tasks"]
    assert rows[1][:2] == ["1", "320106"] and float(rows[1][4]) == 2520.0
    assert rows[2][:2] == ["2", "320115"] and float(rows[2][4]) == 5700.0
    x = await c.get("/v1/reports/export/response-times.xlsx", params=WINDOW, headers=PROVINCE)
    sheet = load_workbook(io.BytesIO(x.content)).active
    found = {(r[0], r[3]): r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert found[("320115", "total")][5:7] == (10500.0, 10560.0)
    assert (await c.get("/v1/reports/export/nope.csv", headers=PROVINCE)).status_code == 404
    assert (await c.get("/v1/reports/export/ranking.pdf", headers=PROVINCE)).status_code == 404


async def test_every_opened_alarm_counts_once_whatever_became_of_it(env) -> None:
    """One alarm attaches to G4's open task (no new task), one comes in a burst
    (on_signals), one is redelivered, one is a later change of an episode: three alarms."""
    h, c, _ = env
    at = report_seed.NOW - timedelta(minutes=1)
    await h.service.on_alert_event(alert_event("A-new", at=at))
    await h.service.on_alert_event(alert_event("A-new", at=at))  # redelivered
    later = alert_event("A-new", at=at, change=alerts_pb2.ALERT_CHANGE_UPDATED)
    await h.service.on_alert_event(later)
    burst = [signal_from_event(alert_event(a, at=at, kind="OFFLINE"), None) for a in ("B1", "B2")]
    await h.service.on_signals(burst)
    await h.service.on_signals(burst)  # the same burst again
    o = (await c.get("/v1/reports/overview", headers=PROVINCE)).json()
    assert o["today"]["alarms_by_kind"] == {"EXCEEDANCE": 3, "OFFLINE": 2}
