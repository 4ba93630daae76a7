"""Host -> logger commands through the TCP server: delivery, holding, time calibration and
outcomes (the state machine itself is ``gateway.domain.commands``)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from gateway.adapters.kafka_out import RecordPublisher
from gateway.domain.commands import (
    CommandRequest,
    CommandState,
    CommandTracker,
    Outcome,
    PendingCommand,
)
from gateway.domain.replies import (
    command_request,
    format_time,
    set_time_1012,
)
from gateway.entrypoints.instruments import (
    commands_counter,
)
from gateway.entrypoints.sessions import GatewayConfig, KnownLogger, Session
from liandong.hj212.packets import Packet

log = logging.getLogger(__name__)


class CommandChannel:
    """The gateway's host -> logger commands (HJ 212 §6.1): delivering a command to the logger's
    session or holding it until the logger connects, answering 1013 time calibration, and
    publishing each command's outcome. Mixed into ``Gateway``, whose state it shares."""

    config: GatewayConfig
    publisher: RecordPublisher
    directory: Callable[[str], KnownLogger | None]
    _by_mn: dict[str, list[Session]]
    _tracker: CommandTracker
    _waiting: dict[str, list[CommandRequest]]
    _done_elsewhere: set[str]
    _qns: itertools.count[int]

    if TYPE_CHECKING:

        async def _drain(self, session: Session) -> bool: ...

    def _new_qn(self) -> str:
        now = datetime.now(self.config.station_tz)
        return now.strftime("%Y%m%d%H%M%S") + f"{next(self._qns) % 1000:03d}"

    async def _calibrate(self, session: Session, packet: Packet, known: KnownLogger) -> None:
        """A 1013 time-calibration request is answered 9013 (done), then with 1012 set time."""
        now = datetime.now(self.config.station_tz).replace(tzinfo=None)
        qn = self._new_qn()
        st = packet.st or "32"
        session.send(set_time_1012(packet.mn, known.password, now, qn, st=st))
        self._tracker.delivered(
            PendingCommand(
                command_id=f"auto-1012:{packet.mn}:{packet.qn or qn}",
                mn=packet.mn,
                cn="1012",
                qn=qn,
                expires_at=datetime.now(UTC) + timedelta(seconds=self.config.command_ttl),
            )
        )
        commands_counter.add(1, {"state": "time_calibration"})

    async def submit(self, command: CommandRequest) -> None:
        """A command from gateway.commands: deliver it if the logger is connected here,
        otherwise hold it until the logger connects or the command expires."""
        if command.command_id in self._done_elsewhere:
            return
        now = datetime.now(UTC)
        if command.expires_at <= now:
            await self._publish_outcome(
                Outcome(
                    command.command_id,
                    command.mn,
                    command.cn,
                    CommandState.EXPIRED,
                    detail="expired before delivery",
                )
            )
            return
        sessions = [s for s in self._by_mn.get(command.mn, []) if not s.closed]
        if not sessions:
            self._waiting.setdefault(command.mn, []).append(command)
            return
        await self._deliver(sessions[-1], command)

    def delivered_elsewhere(self, command_id: str) -> None:
        """Another replica reported on this command: stop holding it here."""
        self._done_elsewhere.add(command_id)
        for mn, waiting in list(self._waiting.items()):
            kept = [c for c in waiting if c.command_id != command_id]
            if kept:
                self._waiting[mn] = kept
            else:
                del self._waiting[mn]

    async def _deliver(self, session: Session, command: CommandRequest) -> None:
        known = self.directory(command.mn)
        if known is None:
            await self._publish_outcome(
                Outcome(
                    command.command_id,
                    command.mn,
                    command.cn,
                    CommandState.REJECTED,
                    detail="MN is not registered",
                )
            )
            return
        params = dict(command.params)
        if command.cn == "1012" and "SystemTime" not in params:
            params["SystemTime"] = format_time(datetime.now(self.config.station_tz))
        qn = self._new_qn()
        st = session.st.get(command.mn, "32")
        frame = command_request(command.cn, command.mn, known.password, qn, params, st=st)
        self._tracker.delivered(
            PendingCommand(command.command_id, command.mn, command.cn, qn, command.expires_at)
        )
        session.send(frame)
        if not await self._drain(session):
            return
        await self._publish_outcome(
            Outcome(
                command.command_id,
                command.mn,
                command.cn,
                CommandState.DELIVERED,
                detail=f"QN {qn} to {session.peer} by {self.config.replica}",
            )
        )

    async def _publish_outcome(self, outcome: Outcome) -> None:
        commands_counter.add(1, {"state": str(outcome.state)})
        try:
            await self.publisher.publish_command_result(
                command_id=outcome.command_id,
                mn=outcome.mn,
                cn=outcome.cn,
                state=str(outcome.state),
                at=datetime.now(UTC),
                qn_rtn=outcome.qn_rtn,
                exe_rtn=outcome.exe_rtn,
                detail=outcome.detail,
                replica=self.config.replica,
            )
        except Exception:
            log.exception("could not publish the result of command %s", outcome.command_id)

    async def _expire_commands(self, now: datetime) -> None:
        for outcome in self._tracker.expire(now):
            await self._publish_outcome(outcome)
        for mn, waiting in list(self._waiting.items()):
            kept = []
            for command in waiting:
                if command.expires_at > now:
                    kept.append(command)
                elif command.command_id not in self._done_elsewhere:
                    await self._publish_outcome(
                        Outcome(
                            command.command_id,
                            mn,
                            command.cn,
                            CommandState.NOT_CONNECTED,
                            detail=f"MN {mn} did not connect before expiry",
                        )
                    )
            if kept:
                self._waiting[mn] = kept
            else:
                del self._waiting[mn]
