"""Domain errors; the gRPC layer maps IllegalTransition -> FAILED_PRECONDITION and
InvalidCommand -> INVALID_ARGUMENT."""

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
