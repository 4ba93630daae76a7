"""Commands held for a logger survive a restart of the gateway replica holding them: the
replica takes up, from gateway.commands and gateway.command-results, every command no replica
has reported on, and sends none twice (real broker, real sockets)."""

from __future__ import annotations

import asyncio

from gateway.simulator.station import LoggerConnection, SimLogger, SimReport, data_frame
from liandong.settings import Settings
from liandong.topics import GATEWAY_COMMAND_RESULTS
from liandong.v1 import records_pb2
from tests.integration.gateway.conftest import read_topic, start_gateway
from tests.integration.gateway.test_sessions import eventually
from tests.integration.gateway.test_sockets import T0, _expiry, _send_command


def _results(messages: list) -> list[records_pb2.CommandResult]:
    return [records_pb2.CommandResult.FromString(m.value) for m in messages]


async def _connect(port: int, logger: SimLogger) -> LoggerConnection:
    station = LoggerConnection(logger, "127.0.0.1", port, SimReport())
    await station.open()
    qn, frame = data_frame(logger, "2051", T0, {"a21026": 10.0})
    assert await station.send(qn, frame)  # the gateway now holds this logger's session
    return station


async def test_a_held_command_is_delivered_after_the_holding_replica_restarts(
    isolated_settings: Settings, fleet: list[SimLogger]
) -> None:
    logger = fleet[0]
    first = await start_gateway(isolated_settings, replica="a")
    try:
        await _send_command(
            isolated_settings,
            records_pb2.GatewayCommand(
                command_id="held-1", mn=logger.mn, cn="3012", expires_at=_expiry(120)
            ),
        )
        held = await eventually(lambda: first.gateway.held_commands() == {logger.mn: ["held-1"]})
        assert held  # the logger is not connected: the replica holds the command
    finally:
        await first.stop()

    second = await start_gateway(isolated_settings, replica="a")  # the same replica, restarted
    try:
        assert second.commands.taken_up == 1
        assert second.gateway.held_commands() == {logger.mn: ["held-1"]}
        station = await _connect(second.gateway.port or 0, logger)
        messages = await read_topic(isolated_settings, GATEWAY_COMMAND_RESULTS, 3, timeout=30)
        await station.close()
    finally:
        await second.stop()
    assert [(r.command_id, r.state) for r in _results(messages)] == [
        ("held-1", "DELIVERED"),
        ("held-1", "ACCEPTED"),
        ("held-1", "SUCCEEDED"),
    ]
    assert [p.cn for p in station.received].count("3012") == 1


async def test_a_reported_command_is_not_sent_again_after_a_restart(
    isolated_settings: Settings, fleet: list[SimLogger]
) -> None:
    logger = fleet[1]
    first = await start_gateway(isolated_settings, replica="a")
    try:
        station = await _connect(first.gateway.port or 0, logger)
        await asyncio.sleep(1.0)  # the consumer's first fetch is under way
        await _send_command(
            isolated_settings,
            records_pb2.GatewayCommand(
                command_id="done-1", mn=logger.mn, cn="3012", expires_at=_expiry(120)
            ),
        )
        before = await read_topic(isolated_settings, GATEWAY_COMMAND_RESULTS, 3, timeout=30)
        await station.close()
    finally:
        await first.stop()
    assert [r.state for r in _results(before)] == ["DELIVERED", "ACCEPTED", "SUCCEEDED"]

    second = await start_gateway(isolated_settings, replica="a")
    try:
        assert second.commands.taken_up == 0
        again = await _connect(second.gateway.port or 0, logger)
        await asyncio.sleep(2.0)  # several sweeps: nothing is due to this logger
        await again.close()
        after = await read_topic(isolated_settings, GATEWAY_COMMAND_RESULTS, 4, timeout=3)
    finally:
        await second.stop()
    assert [p.cn for p in again.received].count("3012") == 0
    assert len(after) == 3


async def test_a_command_that_expired_while_no_replica_ran_is_reported_expired(
    isolated_settings: Settings, fleet: list[SimLogger]
) -> None:
    logger = fleet[2]
    await _send_command(
        isolated_settings,
        records_pb2.GatewayCommand(
            command_id="late-1", mn=logger.mn, cn="3012", expires_at=_expiry(1)
        ),
    )
    await asyncio.sleep(1.5)
    running = await start_gateway(isolated_settings, replica="a")
    try:
        assert running.commands.taken_up == 1
        messages = await read_topic(isolated_settings, GATEWAY_COMMAND_RESULTS, 1, timeout=20)
    finally:
        await running.stop()
    [result] = _results(messages)
    assert (result.command_id, result.state, result.detail) == (
        "late-1",
        "EXPIRED",
        "expired before delivery",
    )
    assert running.gateway.held_commands() == {}
