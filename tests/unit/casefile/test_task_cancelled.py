"""RecordTaskCancelled: the case's dispatch task cancelled by its duty manager, recorded in
the case (who, when, why) without changing its state: pure domain."""

from __future__ import annotations

import pytest

from casefile.domain.cases import apply
from casefile.domain.commands import RecordArrival, RecordTaskCancelled
from casefile.domain.errors import IllegalTransition, InvalidCommand
from casefile.domain.kinds import State
from casefile.domain.records import TaskCancellation
from tests.unit.casefile.scenario import DISCOVERED, MAIN_PATH, run, upto, utc

OPENED = run(MAIN_PATH[:1])  # source_ref alert-7, county 320583
NOW = utc(2026, 3, 2, 2, 30)
CANCEL = RecordTaskCancelled("alert-7", utc(2026, 3, 2, 2, 20), "enterprise shut down by court")


def test_a_cancellation_before_arrival_is_recorded_with_who_when_and_why() -> None:
    case, changes = apply(OPENED, CANCEL, "mgr", NOW)
    assert case.task_cancellations == (
        TaskCancellation(
            "alert-7", utc(2026, 3, 2, 2, 20), "enterprise shut down by court", "mgr", NOW
        ),
    )
    assert (case.state, case.version) == (State.OPENED, 2)  # closing stays a legal act
    (change,) = changes
    assert (change.kind, change.actor, change.from_state, change.to_state) == (
        "RecordTaskCancelled",
        "mgr",
        State.OPENED,
        State.OPENED,
    )
    assert change.payload["command"]["reason"] == "enterprise shut down by court"


def test_a_cancellation_on_site_keeps_the_state() -> None:
    on_site = upto(RecordArrival)
    at = utc(2026, 3, 2, 3, 30)
    case, _ = apply(on_site, RecordTaskCancelled("alert-7", at, "storm"), "mgr", at)
    assert case.state is State.ON_SITE and len(case.task_cancellations) == 1


@pytest.mark.parametrize(
    ("command", "error", "message"),
    [
        (RecordTaskCancelled("alert-7", NOW, "  "), InvalidCommand, "reason is required"),
        (RecordTaskCancelled("other", NOW, "x"), InvalidCommand, "not this case's task"),
        (
            RecordTaskCancelled("alert-7", utc(2026, 3, 2, 4), "x"),
            InvalidCommand,
            "in the future",
        ),
        (
            RecordTaskCancelled("alert-7", DISCOVERED.replace(year=2025), "x"),
            InvalidCommand,
            "precedes",
        ),
    ],
)
def test_a_malformed_cancellation_is_refused(
    command: RecordTaskCancelled, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        apply(OPENED, command, "mgr", NOW)


def test_a_task_is_cancelled_once() -> None:
    case, _ = apply(OPENED, CANCEL, "mgr", NOW)
    with pytest.raises(IllegalTransition, match="again"):
        apply(case, CANCEL, "mgr", NOW)
