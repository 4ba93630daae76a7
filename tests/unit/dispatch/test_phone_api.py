"""Phone API: authorisation for every endpoint and role, answers, status, SSE resume."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from dispatch.domain.tasks import task_id_for
from dispatch.entrypoints.phone_api import create_app
from liandong.tokens.phone import issue
from tests.unit.dispatch.harness import Harness, alert_event, build

KEY = "test-signing-key-of-at-least-32-bytes"
TID = task_id_for("A1")


def auth(
    pid: str, role: str = "ENFORCEMENT", jurisdiction: str = "320106", key: str = KEY
) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue(pid, role, [jurisdiction], key=key)}"}


@pytest.fixture
def phone_db_url() -> str | None:
    """None: a temporary SQLite file (tests/integration/dispatch reruns these on PostgreSQL)."""
    return None


@pytest.fixture
async def env(
    tmp_path: Path, phone_db_url: str | None
) -> AsyncIterator[tuple[Harness, httpx.AsyncClient]]:
    h = build(tmp_path, db_url=phone_db_url)
    await h.service.on_alert_event(alert_event("A1"))
    app = create_app(h.service, KEY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield h, c
    h.close()


ENDPOINTS = [
    ("GET", "/v1/me/tasks", None),
    ("GET", f"/v1/tasks/{TID}", None),
    ("POST", f"/v1/tasks/{TID}/accept", None),
    ("POST", f"/v1/tasks/{TID}/decline", {"reason": "x"}),
    ("POST", f"/v1/tasks/{TID}/status", {"status": "EN_ROUTE"}),
    ("GET", "/v1/events?follow=false", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_every_endpoint_needs_a_valid_token(env, method, path, body) -> None:
    _, c = env
    assert (await c.request(method, path, json=body)).status_code == 401
    forged = auth("e1", key="another-key-that-is-32-bytes-long!!")
    assert (await c.request(method, path, json=body, headers=forged)).status_code == 401
    old = issue("e1", "ENFORCEMENT", ["320106"], key=KEY, now=datetime.now(UTC) - timedelta(days=2))
    expired = {"Authorization": f"Bearer {old}"}
    assert (await c.request(method, path, json=body, headers=expired)).status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS[1:5])
async def test_officer_not_on_the_task_gets_403(env, method, path, body) -> None:
    _, c = env
    # e3 is a certified officer of the same county, but was not picked (e1, e2 are nearer)
    r = await c.request(method, path, json=body, headers=auth("e3"))
    assert r.status_code == 403


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS[1:5])
async def test_manager_outside_jurisdiction_gets_403(env, method, path, body) -> None:
    _, c = env
    r = await c.request(method, path, json=body, headers=auth("mgr-x", "DUTY_MANAGER", "3202"))
    assert r.status_code == 403


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS[1:5])
async def test_unknown_task_is_404(env, method, path, body) -> None:
    _, c = env
    r = await c.request(method, path.replace(TID, "no-such-task"), json=body, headers=auth("e1"))
    assert r.status_code == 404


async def test_my_tasks_per_role(env) -> None:
    _, c = env
    mine = (await c.get("/v1/me/tasks", headers=auth("e1"))).json()
    assert [(t["task_id"], t["my_slot"]) for t in mine] == [(TID, "ENFORCEMENT#1 OFFERED")]
    assert (await c.get("/v1/me/tasks", headers=auth("e3"))).json() == []
    # a city-level manager sees the county's task, a manager of another city does not
    city = (await c.get("/v1/me/tasks", headers=auth("boss", "MANAGER", "3201"))).json()
    assert [t["task_id"] for t in city] == [TID]
    other = await c.get("/v1/me/tasks", headers=auth("boss", "MANAGER", "3202"))
    assert other.json() == []


async def test_task_detail_has_evidence_place_and_navigation(env) -> None:
    _, c = env
    d = (await c.get(f"/v1/tasks/{TID}", headers=auth("m1", "MONITORING"))).json()
    assert d["enterprise"] == {"id": "E1", "name": "Acme Power", "address": "1 Road"}
    assert d["outlet"]["name"] == "Stack 1"
    assert d["coordinates"] == {"lat": 32.0, "lon": 118.8}
    assert d["navigation"]["geo"] == "geo:32.000000,118.800000?q=32.000000,118.800000(Stack%201)"
    assert d["navigation"]["amap"].startswith(
        "https://uri.amap.com/marker?position=118.800000,32.000000"
    )
    assert d["evidence"]["factor"] == "a21026" and d["evidence"]["limit"] == 35.0
    assert [m["person_id"] for m in d["team"]] == ["e1", "e2", "m1"]
    assert d["case_id"] == f"case-for-{TID[:8]}"
    assert d["state"] == "ASSIGNING" and d["priority"] == "P2"  # MAJOR -> HIGH -> P2
    assert [s["to_state"] for s in d["history"]] == ["CREATED", "ASSIGNING"]
    # the manager in jurisdiction may read it too
    assert (await c.get(f"/v1/tasks/{TID}", headers=auth("mgr", "MANAGER"))).status_code == 200


async def test_accept_by_all_roles_starts_the_task_and_manager_cannot_accept(env) -> None:
    h, c = env
    r = await c.post(f"/v1/tasks/{TID}/accept", headers=auth("mgr", "MANAGER"))
    assert r.status_code == 403
    for pid in ("e1", "e2"):
        assert (await c.post(f"/v1/tasks/{TID}/accept", headers=auth(pid))).json()[
            "state"
        ] == "ASSIGNING"
    r = await c.post(f"/v1/tasks/{TID}/accept", headers=auth("m1", "MONITORING"))
    assert r.status_code == 200 and r.json()["state"] == "ASSIGNED"
    again = await c.post(f"/v1/tasks/{TID}/accept", headers=auth("m1", "MONITORING"))
    assert again.status_code == 409 and "ASSIGNED" in again.json()["detail"]
    assert h.sink.kinds(TID)[-4:] == ["ACCEPTED", "ACCEPTED", "ACCEPTED", "STATUS_CHANGED"]


async def test_decline_moves_the_slot_to_the_next_nearest(env) -> None:
    h, c = env
    r = await c.post(f"/v1/tasks/{TID}/decline", json={"reason": "on leave"}, headers=auth("e2"))
    assert r.status_code == 200
    team = (await c.get(f"/v1/tasks/{TID}", headers=auth("e1"))).json()["team"]
    # e3 (3.3 km) is the nearest officer left in the county; e2 can no longer see the task
    assert [(m["slot_id"], m["person_id"]) for m in team] == [
        ("ENFORCEMENT#1", "e1"),
        ("ENFORCEMENT#2", "e3"),
        ("MONITORING#1", "m1"),
    ]
    assert (await c.get(f"/v1/tasks/{TID}", headers=auth("e2"))).status_code == 403
    declined = [e for e in h.sink.decoded() if e.kind == "DECLINED"]
    assert [(e.actor, e.note) for e in declined] == [("e2", "on leave")]


async def test_status_geofence_and_illegal_transition(env) -> None:
    h, c = env
    early = await c.post(f"/v1/tasks/{TID}/status", json={"status": "EN_ROUTE"}, headers=auth("e1"))
    assert early.status_code == 403 and "not accepted" in early.json()["detail"]
    for pid, role in (("e1", "ENFORCEMENT"), ("e2", "ENFORCEMENT"), ("m1", "MONITORING")):
        await c.post(f"/v1/tasks/{TID}/accept", headers=auth(pid, role))
    ok = await c.post(f"/v1/tasks/{TID}/status", json={"status": "EN_ROUTE"}, headers=auth("e1"))
    assert ok.json()["state"] == "EN_ROUTE"
    # 0.01 degree north is 1112 m from the outlet: outside the 500 m geofence
    far = await c.post(
        f"/v1/tasks/{TID}/status",
        json={"status": "ON_SITE", "lat": 32.01, "lon": 118.8},
        headers=auth("e1"),
    )
    assert far.status_code == 422
    assert far.json()["detail"]["distance_m"] == pytest.approx(1111.95, abs=0.5)
    nowhere = await c.post(
        f"/v1/tasks/{TID}/status", json={"status": "ON_SITE"}, headers=auth("e1")
    )
    assert nowhere.status_code == 422 and "no position given" in nowhere.json()["detail"]["reason"]
    staff_first = await c.post(
        f"/v1/tasks/{TID}/status",
        json={"status": "ON_SITE", "lat": 32.002, "lon": 118.8},
        headers=auth("m1", "MONITORING"),
    )
    # the monitoring staff member arrived first: recorded, no error, the task still EN_ROUTE
    assert staff_first.status_code == 200 and staff_first.json()["state"] == "EN_ROUTE"
    assert [p["person_id"] for p in staff_first.json()["presence"]] == ["m1"]
    near = await c.post(
        f"/v1/tasks/{TID}/status",
        json={
            "status": "ON_SITE",
            "lat": 32.002,
            "lon": 118.8,
            "note": "gate closed, waited 5 min",
        },
        headers=auth("e2"),
    )
    assert near.status_code == 200 and near.json()["state"] == "ON_SITE"
    skip = await c.post(f"/v1/tasks/{TID}/status", json={"status": "COMPLETED"}, headers=auth("e1"))
    assert skip.status_code == 409 and "ON_SITE to COMPLETED" in skip.json()["detail"]
    bad = await c.post(f"/v1/tasks/{TID}/status", json={"status": "ASSIGNED"}, headers=auth("e1"))
    assert bad.status_code == 422
    site = [e for e in h.sink.decoded() if e.kind == "STATUS_CHANGED" and e.status == "ON_SITE"]
    assert len(site) == 1
    assert (site[0].actor, site[0].note) == ("e2", "gate closed, waited 5 min")
    assert (site[0].position.lat, site[0].position.lon) == (32.002, 118.8)


async def test_a_joint_inspection_is_not_completed_before_two_officers_checked_in(env) -> None:
    _, c = env
    for pid, role in (("e1", "ENFORCEMENT"), ("e2", "ENFORCEMENT"), ("m1", "MONITORING")):
        await c.post(f"/v1/tasks/{TID}/accept", headers=auth(pid, role))
    at_site = {"lat": 32.002, "lon": 118.8}
    for pid, role, status in (
        ("e1", "ENFORCEMENT", "EN_ROUTE"),
        ("e1", "ENFORCEMENT", "ON_SITE"),
        ("m1", "MONITORING", "SAMPLING"),
    ):
        r = await c.post(
            f"/v1/tasks/{TID}/status", json={"status": status, **at_site}, headers=auth(pid, role)
        )
        assert r.status_code == 200, r.text
    early = await c.post(
        f"/v1/tasks/{TID}/status", json={"status": "COMPLETED"}, headers=auth("e1")
    )
    assert early.status_code == 409
    assert "checked in: e1)" in early.json()["detail"]
    assert (await c.get(f"/v1/tasks/{TID}", headers=auth("e1"))).json()["state"] == "SAMPLING"
    second = await c.post(
        f"/v1/tasks/{TID}/status", json={"status": "ON_SITE", **at_site}, headers=auth("e2")
    )
    assert second.status_code == 200 and second.json()["state"] == "SAMPLING"
    done = await c.post(f"/v1/tasks/{TID}/status", json={"status": "COMPLETED"}, headers=auth("e1"))
    assert done.status_code == 200 and done.json()["state"] == "COMPLETED"


async def test_manager_of_the_task_may_cancel_but_not_move_it_on(env) -> None:
    _, c = env
    move = await c.post(
        f"/v1/tasks/{TID}/status", json={"status": "EN_ROUTE"}, headers=auth("mgr", "MANAGER")
    )
    assert move.status_code == 403  # the duty manager is not on the team
    other = await c.post(
        f"/v1/tasks/{TID}/status",
        json={"status": "CANCELLED", "note": "not mine to cancel"},
        headers=auth("boss", "MANAGER", "3201"),
    )
    assert other.status_code == 403  # sees the task, is not its duty manager
    r = await c.post(
        f"/v1/tasks/{TID}/status",
        json={"status": "CANCELLED", "note": "duplicate"},
        headers=auth("mgr", "MANAGER"),
    )
    assert r.status_code == 200 and r.json()["state"] == "CANCELLED"


def parse_sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if fields:
            events.append(fields)
    return events


async def test_sse_backlog_and_resume_with_last_event_id(env) -> None:
    h, c = env
    first = parse_sse((await c.get("/v1/events?follow=false", headers=auth("e1"))).text)
    assert [e["event"] for e in first] == ["offer"]
    last = first[-1]["id"]
    await h.service.on_alert_event(alert_event("A2", kind="DILUTION"))  # same enterprise: grouped
    for pid, role in (("e1", "ENFORCEMENT"), ("e2", "ENFORCEMENT"), ("m1", "MONITORING")):
        await c.post(f"/v1/tasks/{TID}/accept", headers=auth(pid, role))
    resumed = parse_sse(
        (await c.get("/v1/events?follow=false", headers=auth("e1") | {"Last-Event-ID": last})).text
    )
    assert [e["event"] for e in resumed] == ["team_confirmed"]
    assert int(resumed[0]["id"]) > int(last)
    everything = parse_sse((await c.get("/v1/events?follow=false", headers=auth("e1"))).text)
    assert [e["id"] for e in everything] == [last, resumed[0]["id"]]
    # other people's notifications never show up in e1's stream
    m1 = parse_sse((await c.get("/v1/events?follow=false", headers=auth("m1", "MONITORING"))).text)
    assert [e["event"] for e in m1] == ["offer", "team_confirmed"]
    assert {e["id"] for e in m1}.isdisjoint({e["id"] for e in everything})


async def test_bad_last_event_id_is_422_and_healthz_is_open(env) -> None:
    _, c = env
    r = await c.get("/v1/events?follow=false", headers=auth("e1") | {"Last-Event-ID": "abc"})
    assert r.status_code == 422
    health = (await c.get("/healthz")).json()
    assert health == {"status": "ok", "tasks": 1, "policy_version": "test-1"}


async def test_openapi_documents_every_endpoint(env) -> None:
    _, c = env
    paths = (await c.get("/openapi.json")).json()["paths"]
    assert set(paths) == {
        "/healthz",
        "/v1/me/tasks",
        "/v1/tasks/{task_id}",
        "/v1/tasks/{task_id}/accept",
        "/v1/tasks/{task_id}/decline",
        "/v1/tasks/{task_id}/status",
        "/v1/events",
        "/v1/reports/response-times",
        "/v1/auth/token",
        "/v1/auth/refresh",
        "/v1/auth/revoke",
        "/v1/auth/methods",  # the OIDC routes only when a provider is configured
        "/v1/me",
        "/v1/tasks/{task_id}/case",
        "/v1/tasks/{task_id}/site-history",
        "/v1/tasks/{task_id}/inspection",
        "/v1/tasks/{task_id}/evidence",
        "/v1/tasks/{task_id}/samples",
        "/v1/tasks/{task_id}/samples/{sample_id}/custody",
        "/v1/tasks/{task_id}/samples/{sample_id}/results",
        "/v1/tasks/{task_id}/samples/{sample_id}/results/{parameter}/confirm",
        "/v1/reports/overview",
        "/v1/reports/overview/stream",
        "/v1/reports/tasks/{task_id}/timeline",
        "/v1/reports/map",
        "/v1/reports/export/{name}.{fmt}",
        "/v1/reports/cases",
        "/v1/reports/cases/{case_id}",
        "/v1/reports/cases/{case_id}/bundle",
    }
    # the bundle download says what it streams and which refusals it answers
    bundle = paths["/v1/reports/cases/{case_id}/bundle"]["get"]["responses"]
    assert set(bundle) == {"200", "401", "403", "404", "422", "502", "503"}
    assert "application/x-tar" in bundle["200"]["content"]
    # the on-site records answer casefile's refusals as HTTP codes, and say so
    for path in ("/v1/tasks/{task_id}/inspection", "/v1/tasks/{task_id}/samples"):
        codes = set(paths[path]["post"]["responses"])
        assert codes == {"200", "400", "401", "403", "404", "409", "422", "503"}, (path, codes)


async def test_each_check_in_is_shown_once_in_the_presence_list(env) -> None:
    h, c = env
    for pid, role in (("e1", "ENFORCEMENT"), ("e2", "ENFORCEMENT"), ("m1", "MONITORING")):
        await c.post(f"/v1/tasks/{TID}/accept", headers=auth(pid, role))
    await c.post(f"/v1/tasks/{TID}/status", json={"status": "EN_ROUTE"}, headers=auth("e1"))
    here = {"status": "ON_SITE", "lat": 32.001, "lon": 118.8}  # 111.2 m north of the outlet
    h.clock.advance(minutes=20)
    staff = await c.post(f"/v1/tasks/{TID}/status", json=here, headers=auth("m1", "MONITORING"))
    assert staff.status_code == 200 and staff.json()["state"] == "EN_ROUTE"
    h.clock.advance(minutes=5)
    officer = await c.post(f"/v1/tasks/{TID}/status", json=here, headers=auth("e2"))
    assert officer.status_code == 200 and officer.json()["state"] == "ON_SITE"
    h.clock.advance(minutes=1)
    again = await c.post(f"/v1/tasks/{TID}/status", json=here, headers=auth("e2"))
    assert again.status_code == 200 and again.json() == officer.json()  # same answer
    presence = officer.json()["presence"]
    assert [(p["person_id"], p["name"], p["role"], p["checked_in_at"]) for p in presence] == [
        ("m1", "name of m1", "MONITORING", "2026-03-02T02:20:00Z"),
        ("e2", "name of e2", "ENFORCEMENT", "2026-03-02T02:25:00Z"),
    ]
    assert presence[0]["distance_m"] == pytest.approx(111.2, abs=0.05)
    # not on the team: 403; the team's manager sees the list too
    outsider = await c.post(f"/v1/tasks/{TID}/status", json=here, headers=auth("e3"))
    assert outsider.status_code == 403
    seen = await c.get(f"/v1/tasks/{TID}", headers=auth("mgr", "MANAGER"))
    assert [p["person_id"] for p in seen.json()["presence"]] == ["m1", "e2"]
    checked = [e for e in h.sink.decoded() if e.kind == "CHECKED_IN"]
    assert [(e.actor, e.status, e.note) for e in checked] == [
        ("m1", "EN_ROUTE", "MONITORING, 111 m from the outlet"),
        ("e2", "ON_SITE", "ENFORCEMENT, 111 m from the outlet"),
    ]
    # the others are told on their phones who checked in
    e1 = parse_sse((await c.get("/v1/events?follow=false", headers=auth("e1"))).text)
    told = [json.loads(e["data"]) for e in e1 if e["event"] == "checked_in"]
    assert [(t["checked_in_by"], t["role"], t["checked_in_at"]) for t in told] == [
        ("m1", "MONITORING", "2026-03-02T02:20:00+00:00"),
        ("e2", "ENFORCEMENT", "2026-03-02T02:25:00+00:00"),
    ]
    e2 = parse_sse((await c.get("/v1/events?follow=false", headers=auth("e2"))).text)
    assert [e["event"] for e in e2 if e["event"] == "checked_in"] == ["checked_in"]  # m1's
