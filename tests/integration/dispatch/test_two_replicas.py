"""Two dispatch service instances on one PostgreSQL database (issue 13, item 10): both tick
on the wall clock, and still every reminder, SLA warning and escalation fires once; a phone
action on one replica finds a task the other created after it started."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from dispatch.domain.tasks import TaskState, task_id_for
from tests.integration.dispatch.test_service_store import Build
from tests.unit.dispatch.harness import alert_event

TID = task_id_for("A1")


# SQLite is one file on one machine: replicas are a PostgreSQL matter
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_replicas_escalate_once_and_share_tasks(harness: Build) -> None:
    a = harness()
    b = a.restart()  # the second replica, on the same database
    # a task created on `a` after `b` started is answered on `b` (and on `a`)
    await a.service.on_alert_event(alert_event("A1", severity="CRITICAL"))  # P1
    for pid, replica in (("e1", b), ("e2", a), ("m1", b)):
        await replica.service.accept(TID, pid)
    assert b.service.task(TID).state is TaskState.ASSIGNED
    for minutes in (2, 30, 200, 20, 60):  # reminders, SLA at risk, breached: escalations
        a.clock.advance(minutes=minutes)  # one clock for both
        await asyncio.gather(a.service.tick(), b.service.tick(), a.service.tick())
    events = Counter((e.key, e.kind, e.seq) for e in a.store.events_for(TID))
    assert [k for k, n in events.items() if n > 1] == []
    kinds = Counter(e.kind for e in a.store.events_for(TID))
    assert kinds["ESCALATED"] == 2 and kinds["SLA_AT_RISK"] == 1 and kinds["SLA_BREACHED"] == 1
    escalations = Counter(
        n.task_id for n in a.store.notifications_after("mgr", 0) if n.kind == "escalation"
    )
    assert escalations[TID] == 2
    seqs = [e.seq for e in a.store.events_for(TID)]
    assert seqs == list(range(1, len(seqs) + 1))
