"""Following host -> logger commands through their replies (HJ 212 §6.1, Appendix C).

A request goes out with its own QN and Flag A set; the logger answers 9011 (QnRtn), may upload
data with the same QN (e.g. 2061 history for a back-fill), then answers 9012 (ExeRtn). This
module is the state machine only: the server feeds it sends, replies and the clock, and
publishes the ``Outcome`` values it returns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from gateway.domain.replies import ExeRtn, QnRtn
from liandong.hj212.packets import Packet

__all__ = ["CommandState", "CommandTracker", "Outcome", "PendingCommand"]


@dataclass(frozen=True)
class CommandRequest:
    """A GatewayCommand as the server needs it (decoded by the command consumer)."""

    command_id: str
    mn: str
    cn: str
    params: dict[str, str]
    expires_at: datetime


class CommandState(enum.StrEnum):
    """The ``state`` of a CommandResult (proto/liandong/v1/records.proto)."""

    NOT_CONNECTED = "NOT_CONNECTED"
    DELIVERED = "DELIVERED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


TERMINAL = frozenset(
    {
        CommandState.NOT_CONNECTED,
        CommandState.REJECTED,
        CommandState.SUCCEEDED,
        CommandState.FAILED,
        CommandState.EXPIRED,
    }
)


@dataclass
class PendingCommand:
    command_id: str
    mn: str
    cn: str
    qn: str
    expires_at: datetime
    state: CommandState = CommandState.DELIVERED
    uploads: int = 0
    """Data frames the logger sent with this command's QN (e.g. 2061 history)."""


@dataclass(frozen=True)
class Outcome:
    command_id: str
    mn: str
    cn: str
    state: CommandState
    qn_rtn: int = 0
    exe_rtn: int = 0
    detail: str = ""


@dataclass
class CommandTracker:
    """Delivered commands by (MN, QN) until they reach a terminal state or expire."""

    _by_qn: dict[tuple[str, str], PendingCommand] = field(default_factory=dict)

    def delivered(self, command: PendingCommand) -> None:
        self._by_qn[(command.mn, command.qn)] = command

    def pending(self) -> int:
        return len(self._by_qn)

    def is_pending(self, mn: str, qn: str | None) -> bool:
        return qn is not None and (mn, qn) in self._by_qn

    def on_packet(self, packet: Packet) -> Outcome | None:
        """A packet from the logger; returns a state change of a tracked command, if any."""
        if packet.qn is None:
            return None
        command = self._by_qn.get((packet.mn, packet.qn))
        if command is None:
            return None
        if packet.cn == "9011":
            raw = packet.fields.get("QnRtn", "")
            code = int(raw) if raw.isdigit() else int(QnRtn.UNKNOWN)
            if code == QnRtn.READY:
                command.state = CommandState.ACCEPTED
                return self._outcome(command, qn_rtn=code)
            return self._finish(command, CommandState.REJECTED, qn_rtn=code, detail=_qn(code))
        if packet.cn == "9012":
            raw = packet.fields.get("ExeRtn", "")
            code = int(raw) if raw.isdigit() else int(ExeRtn.FAILED)
            state = CommandState.SUCCEEDED if code == ExeRtn.SUCCESS else CommandState.FAILED
            detail = f"{command.uploads} data upload(s)"
            if state is CommandState.FAILED:
                detail = f"{_exe(code)}; {detail}"
            return self._finish(command, state, exe_rtn=code, detail=detail)
        if packet.cn in ("9013", "9014"):
            return None
        command.uploads += 1
        return None

    def expire(self, now: datetime) -> list[Outcome]:
        """Commands past their expiry without a 9012 (or a refusing 9011)."""
        out = []
        for key in [k for k, c in self._by_qn.items() if c.expires_at <= now]:
            command = self._by_qn[key]
            out.append(
                self._finish(
                    command,
                    CommandState.EXPIRED,
                    detail=f"no result by expiry (last {command.state}, "
                    f"{command.uploads} data upload(s))",
                )
            )
        return out

    def disconnected(self, mn: str) -> list[PendingCommand]:
        """Commands of a logger whose session ended; they stay tracked (it may reconnect)."""
        return [c for (m, _), c in self._by_qn.items() if m == mn]

    def _finish(
        self,
        command: PendingCommand,
        state: CommandState,
        *,
        qn_rtn: int = 0,
        exe_rtn: int = 0,
        detail: str = "",
    ) -> Outcome:
        command.state = state
        self._by_qn.pop((command.mn, command.qn), None)
        return self._outcome(command, qn_rtn=qn_rtn, exe_rtn=exe_rtn, detail=detail)

    @staticmethod
    def _outcome(
        command: PendingCommand, *, qn_rtn: int = 0, exe_rtn: int = 0, detail: str = ""
    ) -> Outcome:
        return Outcome(
            command.command_id,
            command.mn,
            command.cn,
            command.state,
            qn_rtn=qn_rtn,
            exe_rtn=exe_rtn,
            detail=detail,
        )


def _qn(code: int) -> str:
    try:
        return f"QnRtn {code} ({QnRtn(code).name})"
    except ValueError:
        return f"QnRtn {code}"


def _exe(code: int) -> str:
    try:
        return f"ExeRtn {code} ({ExeRtn(code).name})"
    except ValueError:
        return f"ExeRtn {code}"
