"""The dispatch service and its store, on SQLite and on PostgreSQL: persistence across
restarts, idempotent alerts, outbox, casefile and the tick."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from dispatch.adapters.alert_events import signal_from_event
from dispatch.domain.alerts import Severity
from dispatch.domain.tasks import TaskState, task_id_for
from liandong.events import deterministic_id
from liandong.tokens.phone import TokenRole, issue, verify
from liandong.v1 import alerts_pb2
from tests.unit.dispatch.harness import OUTLET, T0, Harness, alert_event

TID = task_id_for("A1")
Build = Callable[..., Harness]  # the `harness` fixture


async def test_alert_creates_task_team_case_and_events_in_order(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    events = h.sink.decoded()
    assert [(e.seq, e.kind, e.status) for e in events] == [
        (1, "TASK_CREATED", "CREATED"),
        (2, "STATUS_CHANGED", "ASSIGNING"),
        (3, "TEAM_PROPOSED", "ASSIGNING"),
        (4, "CASE_OPENED", "ASSIGNING"),
    ]
    assert [e.meta.event_id for e in events] == [
        deterministic_id("dispatch-event", TID, str(n)) for n in (1, 2, 3, 4)
    ]
    assert {e.meta.causation_id for e in events[:3]} == {"ev-A1-1"}
    assert events[3].case_id == f"case-for-{TID[:8]}"
    assert all(e.alert_time.ToDatetime().isoformat() == "2026-03-02T01:50:00" for e in events)
    assert [(m.person_id, m.role) for m in events[2].team] == [
        ("e1", "ENFORCEMENT"),
        ("e2", "ENFORCEMENT"),
        ("m1", "MONITORING"),
    ]
    (call,) = h.casefile.calls
    assert call["task_id"] == TID and call["alert_ids"] == ["A1"]
    assert [p["person_id"] for p in call["team"]] == ["e1", "e2", "m1"]


async def test_replay_and_restart_create_no_second_task(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    assert await h.service.on_alert_event(alert_event("A1")) is None
    await h.service.accept(TID, "e1")
    h2 = h.restart()
    sent_before = len(h.sink.sent)
    assert await h2.service.on_alert_event(alert_event("A1")) is None
    assert len(h.sink.sent) == sent_before
    assert h2.store.count_tasks() == 1
    assert len(h.casefile.calls) == 1
    # the restarted service continues where the first stopped: e1's acceptance survived
    await h2.service.accept(TID, "e2")
    result = await h2.service.accept(TID, "m1")
    assert h2.service.task(TID).state is TaskState.ASSIGNED
    assert [e.kind for e in result.changes.events] == ["ACCEPTED", "STATUS_CHANGED"]
    # per-task seq continues after the restart: 4 events, e1's ACCEPTED, then these
    assert [e.seq for e in result.changes.events] == [7, 8]


async def test_outbox_survives_a_broker_outage(harness: Build) -> None:
    h = harness()
    h.sink.fail = True
    await h.service.on_alert_event(alert_event("A1"))
    assert h.sink.sent == []
    assert len(h.store.unpublished()) == 4
    h.sink.fail = False
    assert await h.service.flush() == 0  # backing off after the failure
    h.clock.advance(seconds=1)
    assert await h.service.flush() == 4
    assert h.sink.kinds() == ["TASK_CREATED", "STATUS_CHANGED", "TEAM_PROPOSED", "CASE_OPENED"]
    assert h.store.unpublished() == []


async def test_case_opened_on_a_later_tick_when_casefile_was_down(harness: Build) -> None:
    h = harness()
    h.casefile.fail = True
    await h.service.on_alert_event(alert_event("A1"))
    assert h.service.metas[TID].case_pending and "CASE_OPENED" not in h.sink.kinds()
    h2 = h.restart()  # the pending request is stored, not only in memory
    h.casefile.fail = False
    await h2.service.tick()
    assert h2.service.metas[TID].case_pending  # not yet: the first retry waits 1 s
    h.clock.advance(seconds=1)
    await h2.service.tick()
    assert h2.service.metas[TID].case_id == f"case-for-{TID[:8]}"
    assert h.sink.kinds()[-1] == "CASE_OPENED"


async def test_tick_reminds_then_times_out_and_reoffers(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    await h.service.accept(TID, "e1")
    await h.service.accept(TID, "m1")
    h.clock.advance(minutes=2)  # default: a reminder every 2 min, 5 min to answer
    await h.service.tick()
    assert [n.kind for n in h.store.notifications_after("e2", 0)] == ["offer", "reminder"]
    h.clock.advance(minutes=3)
    result = await h.service.tick()
    kinds = [e.kind for e in result.changes.events]
    assert kinds == ["SLOT_VACATED", "TEAM_PROPOSED"]
    assert [n.kind for n in h.store.notifications_after("e3", 0)] == ["offer"]
    team = h.sink.decoded()[-1].team
    assert [(m.person_id, m.state) for m in team] == [("e3", "PROPOSED")]


async def test_sla_breach_is_published_and_escalated_to_the_manager(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1", severity="CRITICAL"))  # P1: accept in 15 min
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    h.clock.advance(minutes=30)
    await h.service.tick()
    h.clock.advance(minutes=200)  # 230 min > 80 % of the 4 h arrive allowance
    result = await h.service.tick()
    assert [(e.kind) for e in result.changes.events] == ["SLA_AT_RISK", "ESCALATED"]
    h.clock.advance(minutes=20)
    result = await h.service.tick()
    assert [(e.kind) for e in result.changes.events] == ["SLA_BREACHED", "ESCALATED"]
    assert [n.kind for n in h.store.notifications_after("mgr", 0)] == ["escalation", "escalation"]


async def test_inhibited_alert_is_published_under_its_alert_id(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("F1", kind="DEVICE_FAULT", severity="WARNING"))
    await h.service.on_alert_event(alert_event("A1"))
    held = [e for e in h.sink.decoded() if e.kind == "ALERT_INHIBITED"]
    assert len(held) == 1 and held[0].meta.key == "A1" and held[0].task_id == ""
    assert held[0].policy_version == "test-1"
    assert h.store.count_tasks() == 1  # only the operations task of the fault


def test_alert_event_mapping_and_position_fallback() -> None:
    s = signal_from_event(
        alert_event("A1", severity="MAJOR", lat=0.0, lon=0.0), {"lat": 31.5, "lon": 118.1}
    )
    assert (s.severity, s.lat, s.lon, s.change.value) == (Severity.HIGH, 31.5, 118.1, "OPENED")
    cleared = signal_from_event(alert_event("A1", change=alerts_pb2.ALERT_CHANGE_CLEARED))
    assert cleared.change.value == "CLEARED"


def test_tokens_round_trip_and_manager_alias() -> None:
    p = verify(issue("x1", "manager", "3201", key="k" * 32), key="k" * 32)
    assert (p.person_id, p.role, p.jurisdiction) == ("x1", TokenRole.DUTY_MANAGER, ("3201",))


async def test_times_survive_a_restart_whatever_the_database_session_time_zone(
    harness: Build,
) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))  # alert at 01:50 UTC, task at 02:00 UTC
    await h.service.accept(TID, "e1")
    h2 = h.restart()
    assert h2.service.metas[TID].alert_time.isoformat() == "2026-03-02T01:50:00+00:00"
    (offer, *_) = h2.store.notifications_after("e1", 0)
    assert offer.created_at.isoformat() == "2026-03-02T02:00:00+00:00"
    # the domain state (JSON) and the columns agree: the ACCEPT clock started at 02:00 UTC
    clocks = h2.service.dispatcher.state.clocks[TID].clocks
    assert min(c.started_at for c in clocks.values()).isoformat() == "2026-03-02T02:00:00+00:00"


async def test_long_identifiers_are_stored_alike_on_every_database(
    harness: Build,
) -> None:
    # ids are the producers' business: 100-character alert and event ids, a 200-character
    # outlet id; SQLite would take any length, so PostgreSQL must too
    h = harness()
    alert_id, event_id = "A" * 100, "ev-" + "x" * 97
    event = alert_event(alert_id, event_id=event_id)
    event.outlet_id = event.meta.key = "O" * 200
    await h.service.on_alert_event(event)
    tid = task_id_for(alert_id)
    h2 = h.restart()
    assert h2.service.task(tid).outlet_id == "O" * 200
    assert event_id in h2.service.dispatcher.state.seen_events
    assert await h2.service.on_alert_event(event) is None
    # a held alert is keyed by its alert id on dispatch.events
    fault = alert_event("F" * 100, kind="DEVICE_FAULT", severity="WARNING")
    await h2.service.on_alert_event(fault)
    await h2.service.on_alert_event(alert_event("B" * 100))
    held = [e for e in h.sink.decoded() if e.kind == "ALERT_INHIBITED"]
    assert [e.meta.key for e in held] == ["B" * 100]


async def test_an_alert_with_a_nul_in_an_identifier_is_skipped_not_stored(
    harness: Build,
) -> None:
    # PostgreSQL refuses NUL in text; SQLite would store it. Such an event is unusable on
    # both, and the next alert is handled as usual.
    h = harness()
    assert await h.service.on_alert_event(alert_event("A\x001")) is None
    bad_outlet = alert_event("A2")
    bad_outlet.outlet_id = "O\x001"
    assert await h.service.on_alert_event(bad_outlet) is None
    assert h.store.count_tasks() == 0
    assert await h.service.on_alert_event(alert_event("A3")) is not None
    assert h.store.count_tasks() == 1


async def test_free_text_from_phones_is_stored_whatever_it_contains(
    harness: Build,
) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    reason = "在法庭 \x00 ' \"; DROP TABLE dispatch_tasks; --"
    await h.service.decline(TID, "e2", reason)
    h2 = h.restart()
    assert h2.service.acceptance(TID).refused["e2"] == f"declined: {reason}"
    declined = [e for e in h.sink.decoded() if e.kind == "DECLINED"]
    assert [(e.actor, e.note) for e in declined] == [("e2", reason)]


async def test_retrying_an_unfilled_slot_vacates_nothing(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    await h.service.accept(TID, "e1")
    await h.service.accept(TID, "e2")
    await h.service.decline(TID, "m1", "sick")  # m2 offered
    await h.service.decline(TID, "m2", "away")  # nobody left: unfilled, escalated
    h.clock.advance(minutes=10)  # the unfilled slot is retried, still nobody
    result = await h.service.tick()
    kinds = [e.kind for e in result.changes.events]
    assert "SLOT_VACATED" not in kinds and kinds.count("TEAM_PROPOSED") == 1
    vacated = [e.note for e in h.sink.decoded() if e.kind == "SLOT_VACATED"]
    assert vacated == ["MONITORING#1: m1 declined", "MONITORING#1: m2 declined"]


async def test_check_ins_survive_a_restart(harness: Build) -> None:
    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(TID, pid)
    await h.service.update_status(TID, "e1", TaskState.EN_ROUTE, None)
    h.clock.advance(minutes=10)
    near = (OUTLET[0] + 0.001, OUTLET[1])  # 111.195 m north of the outlet
    await h.service.update_status(TID, "m1", TaskState.ON_SITE, near, "at the gate")
    h.clock.advance(minutes=5)
    await h.service.update_status(TID, "e2", TaskState.ON_SITE, OUTLET)
    h2 = h.restart()
    presence = h2.service.task(TID).presence
    assert [
        (c.person_id, c.role.value, c.at - T0, c.position, round(c.distance_m, 3), c.note)
        for c in presence.check_ins
    ] == [
        ("m1", "MONITORING", timedelta(minutes=10), near, 111.195, "at the gate"),
        ("e2", "ENFORCEMENT", timedelta(minutes=15), OUTLET, 0.0, ""),
    ]
    assert is_utc(presence.check_ins[0].at) and presence.arrival_covers is None
    # after the restart a repeated check-in still records nothing, and the second officer's
    # check-in makes the arrival with the two officers stored before and after it
    again = await h2.service.update_status(TID, "e2", TaskState.ON_SITE, OUTLET)
    assert again.effects == [] and again.changes.events == []
    h.clock.advance(minutes=1)
    await h2.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET)
    await h2.service.call_casefile()
    (arrival,) = h.casefile.arrivals
    assert arrival["officers_present"] == ["e2", "e1"]
    assert arrival["arrived_at"] == T0 + timedelta(minutes=16)
    h3 = h2.restart()
    assert h3.service.task(TID).presence.arrival_covers == 3
    assert [c.person_id for c in h3.service.task(TID).presence.check_ins] == ["m1", "e2", "e1"]


def is_utc(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


async def test_a_task_stored_before_check_ins_were_kept_loads_with_none(harness: Build) -> None:
    from sqlmodel import Session, select

    from dispatch.adapters.store import TaskRow

    h = harness()
    await h.service.on_alert_event(alert_event("A1"))
    with Session(h.store.engine) as s:  # as an older version wrote it: no `presence` key
        row = s.exec(select(TaskRow)).one()
        doc = json.loads(row.task_json)
        del doc["presence"]
        row.task_json = json.dumps(doc)
        s.add(row)
        s.commit()
    h2 = h.restart()
    presence = h2.service.task(TID).presence
    assert presence.check_ins == [] and presence.arrival_covers is None
