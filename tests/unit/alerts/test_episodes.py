from dataclasses import replace
from datetime import datetime, timedelta

from alerts.domain.episodes import ChangeKind, EpisodeBook, EpisodePolicy, episode_id
from alerts.domain.explain import Explanation
from alerts.domain.findings import Finding, FindingKind, Severity
from tests.unit.alerts.scenario import SO2, T0

NOW = T0 + timedelta(days=1)


def hour(
    i: int, firing: bool, value: float = 50.0, revision: int = 0, start: datetime = T0
) -> Finding:
    s = start + timedelta(hours=i)
    return Finding(
        kind=FindingKind.EXCEEDANCE_HOURLY,
        outlet_id="OUT-G1",
        factor=SO2,
        start=s,
        end=s + timedelta(hours=1),
        firing=firing,
        severity=Severity.MAJOR if firing else Severity.INFO,
        explanation=Explanation("LD-EXC-H/1", "x", "b", s, s + timedelta(hours=1)),
        value=value,
        ratio=value / 35,
        revision=revision,
    )


def changes(book: EpisodeBook, findings: list[Finding]) -> list[str]:
    return [c.change.value for f in findings for c in book.apply(f, NOW)]


def test_lifecycle_open_update_clear_after_quiet_period() -> None:
    book = EpisodeBook("OUT-G1")
    seq = [hour(0, True), hour(1, True, 70.0), hour(2, False), hour(3, False), hour(4, True)]
    assert changes(book, seq) == ["opened", "updated", "cleared", "opened"]
    # hour 2 alone (1 h) is not the 2 h quiet period; hour 3's end is
    cleared = book.closed[(SO2, "exceedance_hourly")][0]
    assert cleared.cleared_ts == (T0 + timedelta(hours=4)).timestamp()
    assert cleared.hours_over() == 2.0 and cleared.peak() == (70.0, 2.0)


def test_same_finding_twice_produces_nothing_new() -> None:
    book = EpisodeBook("OUT-G1")
    seq = [hour(0, True), hour(1, True), hour(2, False), hour(3, False)]
    first = changes(book, seq)
    assert changes(book, seq) == []
    assert first == ["opened", "updated", "cleared"]


def test_episode_id_is_deterministic_from_outlet_factor_kind_start_hour() -> None:
    a = EpisodeBook("OUT-G1").apply(hour(0, True), NOW)[0].episode_id
    b = EpisodeBook("OUT-G1").apply(hour(0, True), NOW + timedelta(days=3))[0].episode_id
    assert a == b == episode_id("OUT-G1", SO2, "exceedance_hourly", T0 + timedelta(minutes=30))
    assert a != episode_id("OUT-G1", SO2, "exceedance_hourly", T0 + timedelta(hours=1))
    assert a != episode_id("OUT-G2", SO2, "exceedance_hourly", T0)


def test_amendment_changes_value_and_withdraws_with_previous_judgement() -> None:
    book = EpisodeBook("OUT-G1")
    book.apply(hour(0, True), NOW)
    book.apply(hour(1, True), NOW)
    [amend] = book.apply(hour(1, True, 80.0, revision=1), NOW)
    assert amend.change is ChangeKind.AMENDED and amend.previous is not None
    assert amend.previous["value"] == 50.0 and amend.peak_value == 80.0
    [withdraw] = book.apply(hour(1, False, 30.0, revision=2), NOW)
    assert withdraw.change is ChangeKind.AMENDED and not withdraw.withdrawn
    assert withdraw.periods_over == 1
    # replaying the superseded judgements changes nothing
    assert book.apply(hour(1, True, 80.0, revision=1), NOW) == []
    assert book.apply(hour(1, True), NOW) == []
    [last] = book.apply(hour(0, False, 20.0, revision=1), NOW)
    assert last.withdrawn and not book.open


def test_late_firing_hour_opens_with_reason() -> None:
    book = EpisodeBook("OUT-G1")
    book.apply(hour(0, False), NOW)
    [c] = book.apply(hour(0, True, revision=1), NOW)
    assert c.change is ChangeKind.OPENED and "late" in c.reason


def test_escalates_on_hours_over_in_24h_once() -> None:
    book = EpisodeBook("OUT-G1", EpisodePolicy(hours_over=3))
    out = changes(book, [hour(0, True), hour(1, True), hour(2, True), hour(3, True)])
    assert out == ["opened", "updated", "updated", "escalated", "updated"]


def test_escalates_repeat_violator_on_third_episode_in_30_days() -> None:
    book = EpisodeBook("OUT-G1")
    seq = []
    for day in range(3):
        start = T0 + timedelta(days=day * 5)
        seq += [
            hour(0, True, start=start),
            hour(1, False, start=start),
            hour(2, False, start=start),
        ]
    out = changes(book, seq)
    assert out == ["opened", "cleared", "opened", "cleared", "opened", "escalated", "cleared"]


def test_run_growth_is_update_and_stale_snapshot_ignored() -> None:
    book = EpisodeBook("OUT-G1")
    base = replace(hour(0, True), kind=FindingKind.CONSTANT_VALUE, end=T0 + timedelta(hours=1))
    grown = replace(base, end=T0 + timedelta(hours=2))
    assert [c.change.value for c in book.apply(base, NOW)] == ["opened"]
    assert [c.change.value for c in book.apply(grown, NOW)] == ["updated"]
    assert book.apply(base, NOW) == []


def test_book_round_trips_through_dict() -> None:
    book = EpisodeBook("OUT-G1")
    changes(book, [hour(0, True), hour(1, True), hour(2, False), hour(3, False), hour(5, True)])
    again = EpisodeBook.from_dict(book.to_dict())
    assert again.to_dict() == book.to_dict()
    assert again.apply(hour(5, True), NOW) == []
