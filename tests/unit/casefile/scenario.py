"""A walk through one case, step by step, shared by the casefile unit tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from casefile.domain.cases import apply
from casefile.domain.commands import (
    AddEvidence,
    CloseCase,
    Command,
    ConfirmResult,
    DecidePenalty,
    FileCase,
    HandOffCustody,
    OpenCase,
    RecordArrival,
    RecordEnforcement,
    RecordFinding,
    RecordInspection,
    RecordLabResult,
    RecordSample,
    ServeDecision,
    ServeNotice,
)
from casefile.domain.custody import Position
from casefile.domain.kinds import Disposition, EnforcementKind, EvidenceKind, PenaltyKind
from casefile.domain.records import Case, CaseChange, Penalty, Signature, StatuteClause

H = "ab" * 32  # a well-formed sha256 hex digest
H2 = "cd" * 32
OFFICERS = ("o1", "o2")
STAFF = ("m1",)
SITE = Position(31.3, 120.6)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


DISCOVERED = utc(2026, 3, 2, 1)  # 09:00 CST, Monday 2 March 2026

OPEN = OpenCase("C1", "alert-7", "ent-1", "outlet-1", "320583", DISCOVERED, OFFICERS, STAFF)
ARRIVE = RecordArrival(utc(2026, 3, 2, 3), OFFICERS, SITE)
PHOTO = AddEvidence("E1", EvidenceKind.PHOTO, H, utc(2026, 3, 2, 3, 10), "o1", "outlet photo")
SAMPLE = RecordSample(
    "S1",
    "outlet-1",
    "glass 500 mL",
    "H2SO4 pH<2",
    "SEAL-001",
    ("COD",),
    "m1",
    "rep-1",
    utc(2026, 3, 2, 3, 30),
    SITE,
)
SIGNATURES = (
    Signature("o1", "CERT-1", utc(2026, 3, 2, 4)),
    Signature("o2", "CERT-2", utc(2026, 3, 2, 4)),
)
INSPECT = RecordInspection("R1", H, SIGNATURES, party_signed_by="rep-1")
TO_LAB = HandOffCustody("S1", "m1", "lab-A", True, utc(2026, 3, 2, 8), True, "SEAL-001")
RESULT = RecordLabResult(
    "S1",
    "COD",
    Decimal("182"),
    "mg/L",
    "HJ 828-2017",
    "lab-A",
    "CMA-123",
    utc(2026, 3, 3, 2),
    H2,
)
CONFIRM = ConfirmResult("S1", "COD")
CLAUSE = StatuteClause("水污染防治法", 83, "二")
FIND = RecordFinding("F1", True, "COD 182 mg/L over limit 100", CLAUSE, ("E1",), ("S1",))
FILE = FileCase("立-2026-001")
FINE = Penalty(PenaltyKind.FINE, Decimal("150000"))
CORRECT = Penalty(PenaltyKind.ORDER_TO_CORRECT)
NOTICE = ServeNotice("告-2026-001", (FINE, CORRECT), True, utc(2026, 3, 6, 2), "ent-1")
DECIDE = DecidePenalty("决-2026-001", (FINE, CORRECT))
SERVE = ServeDecision(utc(2026, 3, 16, 2), "ent-1", "on the spot")
PAID = RecordEnforcement(EnforcementKind.FINE_PAID, utc(2026, 3, 20), Decimal("150000"))
REINSPECT = RecordEnforcement(EnforcementKind.REINSPECTED, utc(2026, 3, 25), compliant=True)
CLOSE = CloseCase(Disposition.PENALTY_ENFORCED, "fine paid, rectified")

# (command, actor, now) in order; `now` is when the service receives the command.
MAIN_PATH: list[tuple[Command, str, datetime]] = [
    (OPEN, "dispatch", utc(2026, 3, 2, 2)),
    (ARRIVE, "o1", utc(2026, 3, 2, 3, 1)),
    (PHOTO, "o1", utc(2026, 3, 2, 3, 11)),
    (SAMPLE, "m1", utc(2026, 3, 2, 3, 31)),
    (INSPECT, "o1", utc(2026, 3, 2, 4, 1)),
    (TO_LAB, "m1", utc(2026, 3, 2, 8, 1)),
    (RESULT, "m1", utc(2026, 3, 3, 2, 1)),
    (CONFIRM, "m1", utc(2026, 3, 4, 2)),
    (FIND, "o1", utc(2026, 3, 4, 3)),
    (FILE, "mgr", utc(2026, 3, 5, 2)),
    (NOTICE, "o1", utc(2026, 3, 6, 2, 1)),
    (DECIDE, "mgr", utc(2026, 3, 14, 2)),
    (SERVE, "o1", utc(2026, 3, 16, 2, 1)),
    (PAID, "o1", utc(2026, 3, 20, 1)),
    (REINSPECT, "o1", utc(2026, 3, 25, 1)),
    (CLOSE, "mgr", utc(2026, 3, 26, 1)),
]


def run(
    steps: list[tuple[Command, str, datetime]],
    case: Case | None = None,
    on_change: Callable[[CaseChange], None] | None = None,
) -> Case:
    for command, actor, now in steps:
        case, changes = apply(case, command, actor, now)
        if on_change is not None:
            for change in changes:
                on_change(change)
    assert case is not None
    return case


def upto(command_type: type) -> Case:
    """The main-path case right after the first command of `command_type`."""
    index = next(i for i, (c, _, _) in enumerate(MAIN_PATH) if type(c) is command_type)
    return run(MAIN_PATH[: index + 1])


def later(at: datetime, **delta: float) -> datetime:
    return at + timedelta(**delta)
