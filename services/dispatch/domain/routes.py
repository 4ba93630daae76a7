"""Where an alert goes and how urgent it is."""

from __future__ import annotations

from enum import StrEnum


class Route(StrEnum):
    DESK_REVIEW = "DESK_REVIEW"  # 非现场核查: check marks, ledgers, video from the office
    OPERATIONS = "OPERATIONS"  # device fault / outage: operations staff restore the analyser
    JOINT_INSPECTION = "JOINT_INSPECTION"  # 现场检查: enforcement + monitoring on site


class Priority(StrEnum):
    """P1 is the most urgent. Ordering helpers below because string order is not urgency."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        return int(self.value[1])

    def raised(self, steps: int) -> Priority:
        """Move `steps` towards P1, never past it."""
        return Priority(f"P{max(1, self.rank - steps)}")

    def more_urgent_than(self, other: Priority) -> bool:
        return self.rank < other.rank


SITE_ROUTES = frozenset({Route.JOINT_INSPECTION, Route.OPERATIONS})
