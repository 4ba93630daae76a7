from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from casefile.domain.cases import apply
from casefile.domain.clocks import ClockState, LegalClock, clocks, newly_breached
from casefile.domain.commands import (
    ExtendClock,
    FileCase,
    PauseClock,
    RecordHearing,
    RequestHearing,
    ResumeClock,
    ScheduleHearing,
    ServeDecision,
    ServeNotice,
)
from casefile.domain.kinds import ClockName, PauseReason
from casefile.domain.periods import Holder
from casefile.domain.workdays import WEEKENDS_ONLY, WorkCalendar
from tests.unit.casefile.scenario import (
    DECIDE,
    MAIN_PATH,
    OPEN,
    PAID,
    REINSPECT,
    SERVE,
    H,
    run,
    upto,
    utc,
)

CAL = WEEKENDS_ONLY


def by_name(items: list[LegalClock]) -> dict[str, LegalClock]:
    return {c.name: c for c in items}


def test_filing_due_fifteen_calendar_days_after_discovery() -> None:
    case = run(MAIN_PATH[:1])  # discovered 2026-03-02 09:00 CST
    filing = by_name(clocks(case, utc(2026, 3, 10), CAL))["FILING"]
    assert filing.due_date == date(2026, 3, 17)
    assert filing.due_at == utc(2026, 3, 17, 16)  # 18 March 00:00 CST
    assert filing.state is ClockState.RUNNING
    assert filing.remaining == timedelta(days=7, hours=16)
    assert filing.holder is Holder.AGENCY


def test_filing_day_counts_in_china_time() -> None:
    # 17:00Z on 2 March is already 3 March in CST
    case, _ = apply(
        None, replace(OPEN, discovered_at=utc(2026, 3, 2, 17)), "d", utc(2026, 3, 2, 18)
    )
    assert by_name(clocks(case, utc(2026, 3, 3), CAL))["FILING"].due_date == date(2026, 3, 18)


def test_filing_breach_and_met() -> None:
    case = run(MAIN_PATH[:1])
    assert (
        by_name(clocks(case, utc(2026, 3, 17, 15, 59), CAL))["FILING"].state is ClockState.RUNNING
    )
    assert by_name(clocks(case, utc(2026, 3, 17, 16), CAL))["FILING"].state is ClockState.BREACHED
    filed = upto(FileCase)  # filed 2026-03-05 02:00Z
    clock = by_name(clocks(filed, utc(2026, 4, 1), CAL))["FILING"]
    assert clock.state is ClockState.MET
    assert clock.met_at == utc(2026, 3, 5, 2)
    assert clock.remaining == utc(2026, 3, 17, 16) - utc(2026, 3, 5, 2)


def test_filing_extension_moves_due_by_fifteen_days() -> None:
    case = run(MAIN_PATH[:2])
    case, _ = apply(
        case, ExtendClock(ClockName.FILING, 15, "complex", "mgr"), "mgr", utc(2026, 3, 3)
    )
    filing = by_name(clocks(case, utc(2026, 3, 20), CAL))["FILING"]
    assert filing.due_date == date(2026, 4, 1)
    assert filing.state is ClockState.EXTENDED
    assert filing.extended_days == 15


def test_decision_due_ninety_days_after_filing() -> None:
    case = upto(FileCase)  # filed 2026-03-05 10:00 CST
    decision = by_name(clocks(case, utc(2026, 3, 6), CAL))["DECISION"]
    assert decision.due_date == date(2026, 6, 3)
    case, _ = apply(
        case, ExtendClock(ClockName.DECISION, 30, "appraisal", "mgr"), "mgr", utc(2026, 4, 1)
    )
    assert by_name(clocks(case, utc(2026, 4, 2), CAL))["DECISION"].due_date == date(2026, 7, 3)


def test_hearing_time_is_excluded_from_the_decision_clock() -> None:
    case = upto(ServeNotice)
    case, _ = apply(case, RequestHearing(utc(2026, 3, 9, 2)), "o1", utc(2026, 3, 9, 2))
    paused = by_name(clocks(case, utc(2026, 3, 12, 2), CAL))["DECISION"]
    assert paused.state is ClockState.PAUSED
    assert paused.due_date == date(2026, 6, 6)  # 3 whole days paused so far
    schedule = ScheduleHearing(utc(2026, 3, 19, 2), utc(2026, 3, 10, 2), "host")
    case, _ = apply(case, schedule, "mgr", utc(2026, 3, 10, 3))
    case, _ = apply(case, RecordHearing(utc(2026, 3, 19, 2), "host", H), "mgr", utc(2026, 3, 19, 3))
    # paused 10 days exactly: 3 June + 10 = 13 June
    assert by_name(clocks(case, utc(2026, 3, 20), CAL))["DECISION"].due_date == date(2026, 6, 13)


def test_partial_days_paused_are_not_credited() -> None:
    case = upto(FileCase)
    case, _ = apply(
        case, PauseClock(PauseReason.APPRAISAL, utc(2026, 3, 6)), "mgr", utc(2026, 3, 6)
    )
    case, _ = apply(case, ResumeClock(utc(2026, 3, 7, 23)), "mgr", utc(2026, 3, 7, 23))
    # 1 day 23 hours excluded -> 1 whole day
    assert by_name(clocks(case, utc(2026, 3, 8), CAL))["DECISION"].due_date == date(2026, 6, 4)


def test_hearing_window_five_working_days() -> None:
    case = upto(ServeNotice)  # served Friday 6 March
    window = by_name(clocks(case, utc(2026, 3, 7), CAL))["HEARING_REQUEST"]
    assert window.due_date == date(2026, 3, 13)
    assert window.holder is Holder.PARTY
    with_holiday = WorkCalendar.of(holidays=[date(2026, 3, 10)])
    assert by_name(clocks(case, utc(2026, 3, 7), with_holiday))["HEARING_REQUEST"].due_date == date(
        2026, 3, 16
    )
    makeup = WorkCalendar.of(makeup_workdays=[date(2026, 3, 7)])
    assert by_name(clocks(case, utc(2026, 3, 7), makeup))["HEARING_REQUEST"].due_date == date(
        2026, 3, 12
    )
    lapsed = by_name(clocks(case, utc(2026, 3, 13, 16), CAL))["HEARING_REQUEST"]
    assert lapsed.state is ClockState.LAPSED  # a party's unused right is not a breach


def test_service_payment_and_reinspection_clocks() -> None:
    decided = upto(type(DECIDE))  # decided Saturday 14 March (CST)
    service = by_name(clocks(decided, utc(2026, 3, 15), CAL))["DECISION_SERVICE"]
    assert service.due_date == date(2026, 3, 24)  # 16,17,18,19,20,23,24
    served = upto(ServeDecision)  # served Monday 16 March
    items = by_name(clocks(served, utc(2026, 3, 17), CAL))
    assert items["DECISION_SERVICE"].state is ClockState.MET
    assert items["PAYMENT"].due_date == date(2026, 3, 31)
    assert items["PAYMENT"].holder is Holder.PARTY
    assert items["REINSPECTION"].due_date == date(2026, 4, 15)
    done = run([(PAID, "o1", utc(2026, 3, 20, 1)), (REINSPECT, "o1", utc(2026, 3, 25, 1))], served)
    items = by_name(clocks(done, utc(2026, 3, 26), CAL))
    assert items["PAYMENT"].state is ClockState.MET
    assert items["REINSPECTION"].met_at == utc(2026, 3, 25)


def test_party_period_ending_on_a_holiday_rolls_forward() -> None:
    decided = upto(type(DECIDE))
    served, _ = apply(
        decided, replace(SERVE, served_at=utc(2026, 3, 20, 2)), "o1", utc(2026, 3, 20, 3)
    )
    # 20 March + 15 = Saturday 4 April -> Monday 6 April
    assert by_name(clocks(served, utc(2026, 3, 21), CAL))["PAYMENT"].due_date == date(2026, 4, 6)
    qingming = WorkCalendar.of(holidays=[date(2026, 4, 6)])
    assert by_name(clocks(served, utc(2026, 3, 21), qingming))["PAYMENT"].due_date == date(
        2026, 4, 7
    )


def test_sample_holding_clock() -> None:
    case = run(MAIN_PATH[:4])  # COD collected 2026-03-02 03:30Z, 5 days
    holding = by_name(clocks(case, utc(2026, 3, 3), CAL))["SAMPLE_HOLDING:S1"]
    assert holding.due_at == utc(2026, 3, 7, 3, 30)
    assert by_name(clocks(case, utc(2026, 3, 7, 3, 30), CAL))["SAMPLE_HOLDING:S1"].state is (
        ClockState.BREACHED
    )
    analysed = run(MAIN_PATH[:7])
    assert by_name(clocks(analysed, utc(2026, 3, 10), CAL))["SAMPLE_HOLDING:S1"].met_at == utc(
        2026, 3, 3, 2
    )


def test_breach_is_emitted_once() -> None:
    case = run(MAIN_PATH[:1])
    t1 = clocks(case, utc(2026, 3, 17, 15), CAL)
    t2 = clocks(case, utc(2026, 3, 17, 16), CAL)
    t3 = clocks(case, utc(2026, 3, 18), CAL)
    first = newly_breached(t1, t2, "C1")
    assert [(b.name, b.due_at) for b in first] == [("FILING", utc(2026, 3, 17, 16))]
    assert newly_breached(t2, t3, "C1") == []


def test_late_act_is_a_breach_once() -> None:
    case = run(MAIN_PATH[:9])
    before = clocks(case, utc(2026, 3, 17), CAL)
    filed, _ = apply(case, FileCase("立-late"), "mgr", utc(2026, 3, 18))
    after = clocks(filed, utc(2026, 3, 18), CAL)
    assert [b.name for b in newly_breached(before, after)] == ["FILING"]
    assert by_name(after)["FILING"].remaining == -timedelta(hours=8)
    assert newly_breached(after, clocks(filed, utc(2026, 3, 19), CAL)) == []


def test_closed_case_clocks_stop_at_closure() -> None:
    closed = run(MAIN_PATH)
    names = {c.name: c.state for c in clocks(closed, utc(2027, 1, 1), CAL)}
    assert names == {
        "FILING": ClockState.MET,
        "DECISION": ClockState.MET,
        "HEARING_REQUEST": ClockState.LAPSED,
        "DECISION_SERVICE": ClockState.MET,
        "PAYMENT": ClockState.MET,
        "REINSPECTION": ClockState.MET,
        "SAMPLE_HOLDING:S1": ClockState.MET,
    }
