"""Statutory periods of the enforcement lifecycle (domain.md §4.1) and their due instants.

Each period names its basis and confidence tag as given in domain.md; working-day semantics
follow 行政处罚法 Art. 85 [M] (see `workdays`). A due instant is the exclusive end of the due
day in CST: the act is on time if it happens before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from casefile.domain.workdays import WorkCalendar, end_of_day, local_date


class Holder(StrEnum):
    AGENCY = "AGENCY"  # the authority must act; overrun is a breach
    PARTY = "PARTY"  # the party's obligation or right


@dataclass(frozen=True)
class Period:
    days: int
    working_days: bool
    holder: Holder
    basis: str


FILING = Period(15, False, Holder.AGENCY, "立案 within 15 days of discovery, 2023 办法 Art. 18 [V]")
FILING_EXTENSION_DAYS = 15  # "+15 with approval" [V], once
DECISION = Period(
    90, False, Holder.AGENCY, "处罚决定 within 90 days of 立案, 行政处罚法 Art. 60 / 2023 办法 [M]"
)
DECISION_FIRST_EXTENSION_DAYS = 30  # "+30 with approval; further by collective decision" [M]
HEARING_REQUEST = Period(
    5, True, Holder.PARTY, "hearing request within 5 days of the notice, 行政处罚法 Art. 64 [M]"
)
HEARING_NOTICE = Period(
    7, True, Holder.AGENCY, "hearing notified >= 7 days before it, 行政处罚法 Art. 64 [M]"
)
DECISION_SERVICE = Period(
    7, True, Holder.AGENCY, "decision served within 7 days, 行政处罚法 Art. 61 [M]"
)
PAYMENT = Period(15, False, Holder.PARTY, "fine paid within 15 days of service, Art. 67 [M]")
REINSPECTION = Period(
    30, False, Holder.AGENCY, "复查 within 30 days of serving 责令改正, 环保部令第28号 [M]"
)


def due_date(period: Period, start: datetime, calendar: WorkCalendar, extra_days: int = 0) -> date:
    """The last day of the period; the start day itself is not counted."""
    start_day = local_date(start)
    if period.working_days:
        return calendar.add_working_days(start_day, period.days + extra_days)
    return calendar.add_calendar_days(
        start_day, period.days + extra_days, roll_forward=period.holder is Holder.PARTY
    )


def due_instant(
    period: Period,
    start: datetime,
    calendar: WorkCalendar,
    extra_days: int = 0,
    excluded: timedelta = timedelta(0),
) -> datetime:
    """Exclusive deadline. `excluded` time (hearing, monitoring, appraisal ...) is added in
    whole days only: a partial excluded day is not credited, so the deadline is never later
    than the law's (conservative approximation)."""
    return end_of_day(due_date(period, start, calendar, extra_days + excluded.days))
