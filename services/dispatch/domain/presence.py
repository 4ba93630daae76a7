"""Who was on site: each team member's own geofenced check-in, once per person per task.

A case file stands as evidence, so who was present is never asserted by one person for the
others: everyone checks in from their own phone, inside the geofence. The case's arrival
(RecordArrival) needs at least two enforcement officers present ("执法人员不得少于两人";
casefile refuses fewer), so it is asked for when the second officer has checked in, naming
the officers who have by then; every check-in is also a site note of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dispatch.domain.roster import Role

# the fewest enforcement officers an on-site inspection may be carried out with
OFFICERS_FOR_ARRIVAL = 2


@dataclass(frozen=True, slots=True)
class CheckIn:
    person_id: str
    role: Role  # the person's role on the task
    at: datetime
    position: tuple[float, float]
    distance_m: float  # from the outlet
    note: str = ""


@dataclass
class Presence:
    check_ins: list[CheckIn] = field(default_factory=list)  # in the order they came
    # how many check-ins the case's arrival covered (None: not asked for yet); the check-ins
    # after them reach the case as site notes of their own at once
    arrival_covers: int | None = None

    def of(self, person_id: str) -> CheckIn | None:
        return next((c for c in self.check_ins if c.person_id == person_id), None)

    def officers(self) -> tuple[str, ...]:
        """The enforcement officers who have checked in, in the order they came."""
        return tuple(c.person_id for c in self.check_ins if c.role is Role.ENFORCEMENT)

    @property
    def arrival_asked(self) -> bool:
        return self.arrival_covers is not None

    def record(self, check_in: CheckIn) -> bool:
        """Adds `check_in` unless its person has checked in already; True if added."""
        if self.of(check_in.person_id) is not None:
            return False
        self.check_ins.append(check_in)
        return True

    def arrival_due(self) -> bool:
        """Whether enough officers are present for the case's arrival and it was not asked
        for yet."""
        return not self.arrival_asked and len(self.officers()) >= OFFICERS_FOR_ARRIVAL
