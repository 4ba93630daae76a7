"""Day counting for statutory periods: calendar days and working days in China Standard Time.

Rules implemented (tags as in /work/shared/reference/domain.md):

* Periods are counted in local dates of China Standard Time (UTC+8, no DST since 1991), so a
  fixed offset is exact and needs no tz database.
* The day of the triggering event is not counted; an N-day period ends at the end (24:00 CST)
  of the N-th following day. (General rule on periods, 民法典 Art. 201 [M].) Example:
  discovered 2026-03-02 -> 15 calendar days -> due 2026-03-17, i.e. before 2026-03-18 00:00 CST.
* Working days: Monday-Friday, minus configured public holidays, plus configured make-up
  working days (调休 weekends). 行政处罚法 Art. 85 makes its "2/3/5/7-day" periods working days
  excluding statutory holidays [M]; 15/30/60/90-day periods are calendar days.
* Approximation: the holiday and make-up lists are configuration (the State Council publishes
  them yearly); this module knows no holidays by itself. Without them a 5-working-day window
  spanning a holiday comes out too short.
* Roll-forward: when a calendar-day period of a *party* ends on a non-working day it moves to
  the next working day (民法典 Art. 203 [M]); agency deadlines are not rolled forward, so
  internal alarms never fire later than the law allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")


def local_date(at: datetime) -> date:
    return at.astimezone(CST).date()


def end_of_day(day: date) -> datetime:
    """The exclusive end of a local day (next day 00:00 CST), as a UTC instant."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=CST).astimezone(UTC)


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date] = field(default_factory=frozenset)
    makeup_workdays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls, holidays: Iterable[date] = (), makeup_workdays: Iterable[date] = ()
    ) -> WorkCalendar:
        return cls(frozenset(holidays), frozenset(makeup_workdays))

    def is_working_day(self, day: date) -> bool:
        if day in self.makeup_workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: date, days: int) -> date:
        """The `days`-th working day after `start` (start itself not counted)."""
        if days < 0:
            raise ValueError("days must be >= 0")
        current = start
        remaining = days
        while remaining:
            current += timedelta(days=1)
            if self.is_working_day(current):
                remaining -= 1
        return current

    def add_calendar_days(self, start: date, days: int, *, roll_forward: bool = False) -> date:
        due = start + timedelta(days=days)
        if roll_forward:
            while not self.is_working_day(due):
                due += timedelta(days=1)
        return due


WEEKENDS_ONLY = WorkCalendar()
