"""The outbox relay with one partition unavailable (issue 13, item 2).

Before: any failed send re-sent the whole batch (up to 500 rows), at once and again on every
call, so dispatch.events got hundreds of thousands of copies and the consumer stalled.
Now: only what was not acknowledged is sent again, after a growing pause, and handling alerts
does not wait for the relay meanwhile.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from dispatch.domain.tasks import task_id_for
from tests.unit.dispatch.harness import Harness, alert_event

Build = Callable[..., Harness]


async def test_only_unacknowledged_events_are_sent_again_after_a_pause(harness: Build) -> None:
    h = harness()
    blocked = task_id_for("A1")
    h.sink.refused_keys = {blocked}
    await h.service.on_alert_event(alert_event("A1"))
    # another outlet problem, handled during the pause: stored, not waiting for the relay
    second = await h.service.on_alert_event(alert_event("A2", kind="HOUR_MISSING"))
    assert second is not None and h.store.count_tasks() == 2
    for _ in range(5):  # ticks and flushes during the pause offer nothing again
        await h.service.tick()
        await h.service.flush()
    offered = Counter(e.event_id for e in h.sink.offered)
    assert len(offered) == 4 and set(offered.values()) == {1}  # A1's four, once

    h.clock.advance(seconds=1)
    await h.service.flush()  # A1's again (still refused), the second task's for the first time
    assert h.sink.sent and blocked not in {e.key for e in h.sink.sent}
    assert len(h.store.unpublished()) == 4

    h.sink.refused_keys = set()
    h.clock.advance(seconds=60)
    await h.service.flush()
    assert h.store.unpublished() == []
    sent = Counter(e.event_id for e in h.sink.sent)
    assert set(sent.values()) == {1}, "an acknowledged event was sent twice"
    offered = Counter(e.event_id for e in h.sink.offered)
    assert {offered[e.event_id] for e in h.sink.sent if e.key == blocked} == {3}
    assert {offered[e.event_id] for e in h.sink.sent if e.key != blocked} == {1}


async def test_back_off_grows_while_the_partition_stays_away(harness: Build) -> None:
    h = harness()
    h.sink.refused_keys = {task_id_for("A1")}
    await h.service.on_alert_event(alert_event("A1"))
    attempts = []
    for _ in range(40):  # 40 s of one flush a second
        h.clock.advance(seconds=1)
        before = len(h.sink.offered)
        await h.service.flush()
        attempts.append(len(h.sink.offered) > before)
    # 1, 2, 4, 8, 16 s apart: a handful of attempts, not one a second
    assert 3 <= sum(attempts) <= 7, attempts
