"""Domain errors; the gRPC layer maps IllegalTransition and ConflictsWithRecord ->
FAILED_PRECONDITION, AlreadyRecorded -> ALREADY_EXISTS (both HTTP 409 at the phone API),
NotOnRecord -> NOT_FOUND, and InvalidCommand -> INVALID_ARGUMENT.

InvalidCommand is kept for what is wrong with the request itself, whatever the case holds;
the subclasses are refusals that depend on what the case has on record, so that a client
can tell "fix the request" from "the case is not as you thought"."""

from __future__ import annotations


class IllegalTransition(Exception):
    """The command is well-formed but not allowed in the current state."""

    def __init__(self, state: str, attempted: str, required: str) -> None:
        self.state = state
        self.attempted = attempted
        self.required = required
        super().__init__(f"case is {state}; cannot {attempted}; requires {required}")


class InvalidCommand(Exception):
    """The command itself is malformed or inconsistent (missing signature, bad seal ...)."""


class ConflictsWithRecord(InvalidCommand):
    """Well-formed, but at odds with the case's records: a person not on the case team, a
    time before the record it follows, a compromised sample cited."""


class NotOnRecord(InvalidCommand):
    """The command names a record (a sample) the case does not have."""


class AlreadyRecorded(InvalidCommand):
    """An id (evidence, sample, finding) is on the case already: the command is well-formed
    and conflicts only with what was recorded before, so no schema can rule it out."""
