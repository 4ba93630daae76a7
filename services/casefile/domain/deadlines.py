"""The legal deadlines the case rules need (`clocks` reports them): filing, decision and
hearing request, in working days of the case's calendar, extended or paused as recorded."""

from __future__ import annotations

from datetime import datetime

from casefile.domain import periods
from casefile.domain.kinds import (
    ClockName,
)
from casefile.domain.records import Case, Notice
from casefile.domain.workdays import WorkCalendar


def filing_due(case: Case, calendar: WorkCalendar) -> datetime:
    return periods.due_instant(
        periods.FILING, case.discovered_at, calendar, case.extension_days(ClockName.FILING)
    )


def decision_due(case: Case, now: datetime, calendar: WorkCalendar) -> datetime | None:
    if case.filed_at is None:
        return None
    return periods.due_instant(
        periods.DECISION,
        case.filed_at,
        calendar,
        case.extension_days(ClockName.DECISION),
        case.paused_time(ClockName.DECISION, now),
    )


def hearing_request_due(notice: Notice, calendar: WorkCalendar) -> datetime:
    return periods.due_instant(periods.HEARING_REQUEST, notice.served_at, calendar)
