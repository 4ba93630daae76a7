"""UpdateTeam (a replaced member, until the inspection record is signed) and RecordSiteNote
(a team member's note, from arrival on): pure domain."""

from __future__ import annotations

import pytest

from casefile.domain.cases import apply
from casefile.domain.commands import (
    RecordArrival,
    RecordInspection,
    RecordSample,
    RecordSiteNote,
    UpdateTeam,
)
from casefile.domain.errors import IllegalTransition, InvalidCommand
from casefile.domain.kinds import State
from tests.unit.casefile.scenario import (
    DISCOVERED,
    MAIN_PATH,
    SITE,
    run,
    upto,
    utc,
)

OPENED = run(MAIN_PATH[:1])  # officers o1, o2; staff m1
ON_SITE = upto(RecordArrival)  # o1 and o2 present
NOW = utc(2026, 3, 2, 2, 30)


def test_a_replaced_officer_joins_the_team_and_the_change_is_audited() -> None:
    command = UpdateTeam(("o1", "o3"), ("m1",), "o2 declined: in court")
    case, changes = apply(OPENED, command, "dispatch", NOW)
    assert (case.officers, case.monitoring_staff) == (("o1", "o3"), ("m1",))
    assert (case.state, case.version) == (State.OPENED, 2)
    (change,) = changes
    assert (change.kind, change.actor, change.from_state, change.to_state) == (
        "UpdateTeam",
        "dispatch",
        State.OPENED,
        State.OPENED,
    )
    assert change.payload["command"] == {
        "officers": ["o1", "o3"],
        "monitoring_staff": ["m1"],
        "reason": "o2 declined: in court",
    }
    assert change.payload["previous_team"] == {"officers": ["o1", "o2"], "monitoring_staff": ["m1"]}
    # the replacement's arrival is now accepted
    arrival = RecordArrival(utc(2026, 3, 2, 3), ("o1", "o3"), SITE)
    arrived, _ = apply(case, arrival, "o3", utc(2026, 3, 2, 3, 1))
    assert arrived.state is State.ON_SITE


def test_the_team_changes_on_site_but_keeps_who_was_recorded_there() -> None:
    case, _ = apply(ON_SITE, UpdateTeam(("o1", "o2", "o4"), ("m2",), "m1 ill"), "mgr", NOW)
    assert case.officers == ("o1", "o2", "o4") and case.monitoring_staff == ("m2",)
    with pytest.raises(InvalidCommand, match="present on site cannot leave the team: o2"):
        apply(ON_SITE, UpdateTeam(("o1", "o3"), ("m1",), "swap"), "mgr", NOW)
    sampled = upto(RecordSample)  # m1 collected S1
    with pytest.raises(InvalidCommand, match="collected samples cannot leave the team: m1"):
        apply(sampled, UpdateTeam(("o1", "o2"), ("m2",), "swap"), "mgr", NOW)


def test_no_team_change_once_the_inspection_record_is_signed() -> None:
    inspected = upto(RecordInspection)
    with pytest.raises(IllegalTransition, match="inspection record not yet signed"):
        apply(inspected, UpdateTeam(("o1", "o2"), ("m1",), "late"), "mgr", NOW)


@pytest.mark.parametrize(
    ("officers", "staff", "reason", "message"),
    [
        (("o1",), ("m1",), "r", "at least two distinct enforcement officers"),
        (("o1", "o1"), ("m1",), "r", "at least two distinct enforcement officers"),
        (("o1", "o3"), (), "r", "monitoring staff are required"),
        (("o1", "o3"), ("o3",), "r", "distinct from the officers"),
        (("o1", "o3"), ("m1",), " ", "reason is required"),
    ],
)
def test_a_team_change_must_leave_a_legal_team(
    officers: tuple[str, ...], staff: tuple[str, ...], reason: str, message: str
) -> None:
    with pytest.raises(InvalidCommand, match=message):
        apply(OPENED, UpdateTeam(officers, staff, reason), "dispatch", NOW)


def test_site_notes_are_appended_from_arrival_on_without_changing_state() -> None:
    en_route = RecordSiteNote(utc(2026, 3, 2, 2, 40), "gate locked, waiting", "o1", SITE)
    with pytest.raises(IllegalTransition, match="arrival on site recorded"):
        apply(OPENED, en_route, "o1", NOW)
    # noted on the way (before the arrival at 03:00), passed on once the team is on site
    case, changes = apply(ON_SITE, en_route, "o1", utc(2026, 3, 2, 3, 5))
    done = RecordSiteNote(utc(2026, 3, 2, 5), "inspection completed on site", "m1", None)
    case, _ = apply(case, done, "m1", utc(2026, 3, 2, 5, 1))
    assert case.state is State.ON_SITE and case.version == ON_SITE.version + 2
    assert [(n.at, n.text, n.by, n.position) for n in case.site_notes] == [
        (utc(2026, 3, 2, 2, 40), "gate locked, waiting", "o1", SITE),
        (utc(2026, 3, 2, 5), "inspection completed on site", "m1", None),
    ]
    first = case.site_notes[0]
    assert (first.recorded_at, first.recorded_by) == (utc(2026, 3, 2, 3, 5), "o1")
    assert changes[0].kind == "RecordSiteNote" and changes[0].to_state is State.ON_SITE


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (RecordSiteNote(utc(2026, 3, 2, 3), " ", "o1"), "text is required"),
        (RecordSiteNote(utc(2026, 3, 2, 3), "x", ""), "by is required"),
        (RecordSiteNote(utc(2026, 3, 2, 3), "x", "o9"), "not on the case team: o9"),
        (RecordSiteNote(utc(2026, 3, 2, 4), "x", "o1"), "in the future"),
        (RecordSiteNote(DISCOVERED.replace(hour=0), "x", "o1"), "precedes"),
    ],
)
def test_a_site_note_is_dated_signed_and_by_a_team_member(
    note: RecordSiteNote, message: str
) -> None:
    with pytest.raises(InvalidCommand, match=message):
        apply(ON_SITE, note, "o1", utc(2026, 3, 2, 3, 10))


def test_no_site_note_on_a_closed_case() -> None:
    closed = run(MAIN_PATH)
    note = RecordSiteNote(utc(2026, 3, 26, 0), "late", "o1")
    with pytest.raises(IllegalTransition):
        apply(closed, note, "o1", utc(2026, 3, 26, 2))
