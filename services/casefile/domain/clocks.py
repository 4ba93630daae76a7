"""Legal clocks computed from a case (domain.md §4.1 and §4.4).

* FILING: from discovery, 15 calendar days (+15 once, approved); met by filing or by
  closing without filing (the duty is to decide whether to file).
* DECISION: from filing, 90 calendar days (+30 approved, more by collective decision), plus
  excluded (paused) whole days; met by the penalty decision.
* HEARING_REQUEST: from the notice, 5 working days, the party's right; met by a request.
* DECISION_SERVICE: from the decision, 7 working days; met by service.
* PAYMENT: from service, 15 calendar days (party; rolled past holidays); met by full payment.
* REINSPECTION: from service, 30 calendar days if correction was ordered; met by 复查.
* SAMPLE_HOLDING:<id>: from collection, the parameters' holding time (exact hours, not days);
  met when every parameter is analysed.

`remaining` is `due_at - now` while the clock runs, and the margin `due_at - met_at` once met
(negative when met late, which is BREACHED). A PARTY's right that runs out is LAPSED, not a
breach. A closed case's clocks are evaluated at the closing time, so they stop there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from casefile.domain import periods
from casefile.domain.deadlines import decision_due, filing_due, hearing_request_due
from casefile.domain.kinds import ClockName, EnforcementKind, PenaltyKind
from casefile.domain.periods import Holder
from casefile.domain.records import Case
from casefile.domain.workdays import WorkCalendar, local_date


class ClockState(StrEnum):
    RUNNING = "RUNNING"
    MET = "MET"
    BREACHED = "BREACHED"
    EXTENDED = "EXTENDED"  # running, with an approved extension
    PAUSED = "PAUSED"  # running, time currently excluded
    LAPSED = "LAPSED"  # a party's right whose window closed unused


@dataclass(frozen=True)
class LegalClock:
    name: str  # unique within the case, e.g. "FILING" or "SAMPLE_HOLDING:S1"
    clock: ClockName
    holder: Holder
    basis: str
    started_at: datetime
    due_at: datetime  # exclusive
    due_date: date  # the last allowed local (CST) day
    state: ClockState
    remaining: timedelta
    met_at: datetime | None = None
    extended_days: int = 0


@dataclass(frozen=True)
class ClockBreach:
    case_id: str
    name: str
    clock: ClockName
    holder: Holder
    basis: str
    due_at: datetime


def _clock(
    *,
    name: str,
    clock: ClockName,
    basis: str,
    holder: Holder,
    started_at: datetime,
    due_at: datetime,
    met_at: datetime | None,
    now: datetime,
    paused: bool = False,
    extended_days: int = 0,
    is_right: bool = False,
) -> LegalClock:
    if met_at is not None:
        state = ClockState.MET if met_at < due_at else ClockState.BREACHED
        remaining = due_at - met_at
    else:
        remaining = due_at - now
        if now >= due_at:
            state = ClockState.LAPSED if is_right else ClockState.BREACHED
        elif paused:
            state = ClockState.PAUSED
        elif extended_days:
            state = ClockState.EXTENDED
        else:
            state = ClockState.RUNNING
    # due_at is the exclusive end of the due day, so the last allowed day is the day before
    due_day = local_date(due_at - timedelta(microseconds=1))
    return LegalClock(
        name,
        clock,
        holder,
        basis,
        started_at,
        due_at,
        due_day,
        state,
        remaining,
        met_at,
        extended_days,
    )


def _closed_without(case: Case, done: datetime | None) -> datetime | None:
    """A clock whose duty ended with the case's closure counts as met at closing time."""
    if done is not None:
        return done
    return case.closure.closed_at if case.closure is not None else None


def _fine_paid_at(case: Case, fine: Decimal) -> datetime | None:
    paid = Decimal(0)
    for record in sorted(case.enforcement, key=lambda r: r.at):
        if record.kind is EnforcementKind.FINE_PAID and record.amount is not None:
            paid += record.amount
            if paid >= fine:
                return record.at
    return None


def clocks(case: Case, now: datetime, calendar: WorkCalendar) -> list[LegalClock]:
    """Every legal clock the case has started, evaluated at `now` (or at closure)."""
    if case.closure is not None:
        now = min(now, case.closure.closed_at)
    out: list[LegalClock] = []

    filing_ext = case.extension_days(ClockName.FILING)
    out.append(
        _clock(
            name=ClockName.FILING.value,
            clock=ClockName.FILING,
            basis=periods.FILING.basis,
            holder=periods.FILING.holder,
            started_at=case.discovered_at,
            due_at=filing_due(case, calendar),
            met_at=_closed_without(case, case.filed_at),
            now=now,
            extended_days=filing_ext,
        )
    )

    due = decision_due(case, now, calendar)
    if case.filed_at is not None and due is not None:
        decided = case.decision.decided_at if case.decision else None
        out.append(
            _clock(
                name=ClockName.DECISION.value,
                clock=ClockName.DECISION,
                basis=periods.DECISION.basis,
                holder=periods.DECISION.holder,
                started_at=case.filed_at,
                due_at=due,
                met_at=_closed_without(case, decided),
                now=now,
                paused=case.open_pause(ClockName.DECISION) is not None,
                extended_days=case.extension_days(ClockName.DECISION),
            )
        )

    notice = case.notice
    if notice is not None and notice.hearing_rights:
        out.append(
            _clock(
                name=ClockName.HEARING_REQUEST.value,
                clock=ClockName.HEARING_REQUEST,
                basis=periods.HEARING_REQUEST.basis,
                holder=periods.HEARING_REQUEST.holder,
                started_at=notice.served_at,
                due_at=hearing_request_due(notice, calendar),
                met_at=case.hearing.requested_at if case.hearing else None,
                now=now,
                is_right=True,
            )
        )

    decision = case.decision
    if decision is not None:
        out.append(
            _clock(
                name=ClockName.DECISION_SERVICE.value,
                clock=ClockName.DECISION_SERVICE,
                basis=periods.DECISION_SERVICE.basis,
                holder=periods.DECISION_SERVICE.holder,
                started_at=decision.decided_at,
                due_at=periods.due_instant(periods.DECISION_SERVICE, decision.decided_at, calendar),
                met_at=case.decision_service.served_at if case.decision_service else None,
                now=now,
            )
        )

    service = case.decision_service
    if decision is not None and service is not None:
        if decision.has(PenaltyKind.FINE):
            out.append(
                _clock(
                    name=ClockName.PAYMENT.value,
                    clock=ClockName.PAYMENT,
                    basis=periods.PAYMENT.basis,
                    holder=periods.PAYMENT.holder,
                    started_at=service.served_at,
                    due_at=periods.due_instant(periods.PAYMENT, service.served_at, calendar),
                    met_at=_fine_paid_at(case, decision.fine),
                    now=now,
                )
            )
        if decision.has(PenaltyKind.ORDER_TO_CORRECT):
            reinspected = min(
                (r.at for r in case.enforcement if r.kind is EnforcementKind.REINSPECTED),
                default=None,
            )
            out.append(
                _clock(
                    name=ClockName.REINSPECTION.value,
                    clock=ClockName.REINSPECTION,
                    basis=periods.REINSPECTION.basis,
                    holder=periods.REINSPECTION.holder,
                    started_at=service.served_at,
                    due_at=periods.due_instant(periods.REINSPECTION, service.served_at, calendar),
                    met_at=reinspected,
                    now=now,
                )
            )

    for sample in case.samples:
        analysed = {r.parameter: r.analysed_at for r in sample.results}
        done = max(analysed.values()) if set(sample.parameters) <= set(analysed) else None
        out.append(
            _clock(
                name=f"{ClockName.SAMPLE_HOLDING.value}:{sample.sample_id}",
                clock=ClockName.SAMPLE_HOLDING,
                basis=f"analysis within {sample.holding_time} of collection "
                f"({', '.join(sample.parameters)}; HJ 493-2009, domain.md §4.4)",
                holder=Holder.AGENCY,
                started_at=sample.collected_at,
                due_at=sample.holding_due,
                met_at=done,
                now=now,
            )
        )
    return out


def newly_breached(
    before: list[LegalClock], after: list[LegalClock], case_id: str = ""
) -> list[ClockBreach]:
    """Clocks BREACHED in `after` that were not BREACHED in `before`: each breach once."""
    already = {c.name for c in before if c.state is ClockState.BREACHED}
    return [
        ClockBreach(case_id, c.name, c.clock, c.holder, c.basis, c.due_at)
        for c in after
        if c.state is ClockState.BREACHED and c.name not in already
    ]
