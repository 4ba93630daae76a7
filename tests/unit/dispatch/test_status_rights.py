"""Who may move a task to which status (issue 12, item 1): an offered place is no licence to
cancel; cancelling is the duty manager's, with a reason."""

from __future__ import annotations

from tests.unit.dispatch.test_phone_api import TID, auth, env, phone_db_url  # noqa: F401

AT_SITE = {"lat": 32.002, "lon": 118.8}


async def test_offered_staff_cannot_cancel_or_move_the_task(env) -> None:  # noqa: F811
    h, c = env
    # m1 is offered the monitoring place of this P-joint inspection and has not accepted
    for pid, role in (("m1", "MONITORING"), ("e1", "ENFORCEMENT")):
        r = await c.post(
            f"/v1/tasks/{TID}/status",
            json={"status": "CANCELLED", "note": "not my job"},
            headers=auth(pid, role),
        )
        assert r.status_code == 403, r.text
        assert "duty manager" in r.json()["detail"]
    assert h.service.task(TID).state.value == "ASSIGNING"


async def test_cancel_needs_the_duty_manager_and_a_reason(env) -> None:  # noqa: F811
    h, c = env
    bare = await c.post(
        f"/v1/tasks/{TID}/status", json={"status": "CANCELLED"}, headers=auth("mgr", "MANAGER")
    )
    assert bare.status_code == 422 and "note" in str(bare.json()["detail"])
    blank = await c.post(
        f"/v1/tasks/{TID}/status",
        json={"status": "CANCELLED", "note": "   "},
        headers=auth("mgr", "MANAGER"),
    )
    assert blank.status_code == 422
    ok = await c.post(
        f"/v1/tasks/{TID}/status",
        json={"status": "CANCELLED", "note": "duplicate of an open inspection"},
        headers=auth("mgr", "MANAGER"),
    )
    assert ok.status_code == 200 and ok.json()["state"] == "CANCELLED"
    cancelled = [
        e for e in h.sink.decoded() if e.kind == "STATUS_CHANGED" and e.status == "CANCELLED"
    ]
    assert [(e.actor, e.note) for e in cancelled] == [("mgr", "duplicate of an open inspection")]


async def test_field_steps_are_for_accepted_members_and_completion_for_officers(env) -> None:  # noqa: F811
    _, c = env
    for pid, role in (("e1", "ENFORCEMENT"), ("e2", "ENFORCEMENT"), ("m1", "MONITORING")):
        assert (await c.post(f"/v1/tasks/{TID}/accept", headers=auth(pid, role))).status_code == 200
    manager_moves = await c.post(
        f"/v1/tasks/{TID}/status", json={"status": "EN_ROUTE"}, headers=auth("mgr", "MANAGER")
    )
    assert manager_moves.status_code == 403  # the duty manager was not on site
    for pid, role, status in (
        ("e1", "ENFORCEMENT", "EN_ROUTE"),
        ("e1", "ENFORCEMENT", "ON_SITE"),
        ("e2", "ENFORCEMENT", "ON_SITE"),
        ("m1", "MONITORING", "SAMPLING"),
    ):
        r = await c.post(
            f"/v1/tasks/{TID}/status", json={"status": status, **AT_SITE}, headers=auth(pid, role)
        )
        assert r.status_code == 200, r.text
    by_monitoring = await c.post(
        f"/v1/tasks/{TID}/status", json={"status": "COMPLETED"}, headers=auth("m1", "MONITORING")
    )
    assert by_monitoring.status_code == 403
    assert "officers" in by_monitoring.json()["detail"]
    done = await c.post(f"/v1/tasks/{TID}/status", json={"status": "COMPLETED"}, headers=auth("e2"))
    assert done.status_code == 200 and done.json()["state"] == "COMPLETED"
