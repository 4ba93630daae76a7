"""Sessions over real sockets into the real broker: the per-logger CRC opt-in, per-MN session
replacement, rate-limit back-pressure, idle and write timeouts, 1012 set-time on command, and
two replicas sharing the command topic."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from gateway.bootstrap import Running
from gateway.entrypoints import tcp_server
from gateway.simulator.station import (
    LoggerConnection,
    SimLogger,
    SimReport,
    data_frame,
    write_synthetic_registry,
)
from liandong.hj212.redaction import redact_password
from liandong.settings import Settings
from liandong.topics import GATEWAY_COMMAND_RESULTS, MONITORING_RECORDS, MONITORING_REJECTED
from liandong.v1 import records_pb2
from tests.integration.gateway.conftest import (
    load_registry,
    read_topic,
    records,
    rejected,
    start_gateway,
)
from tests.integration.gateway.test_sockets import T0, Peer, _expiry, _send_command, acked
from tests.unit.gateway.reference import modbus_crc


class Recorder:
    """Stands in for an OpenTelemetry counter and remembers what was added."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, amount: int, attributes: dict[str, str] | None = None) -> None:
        attributes = attributes or {}
        self.counts[attributes.get("event") or attributes.get("outcome") or ""] += amount


@pytest.fixture()
def metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Recorder, Recorder]]:
    frames, sessions = Recorder(), Recorder()
    monkeypatch.setattr(tcp_server, "frames_counter", frames)
    monkeypatch.setattr(tcp_server, "sessions_counter", sessions)
    yield frames, sessions


async def eventually(check: object, timeout: float = 30.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check() and loop.time() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.1)
    return bool(check())  # type: ignore[operator]


def modbus_lsb_frame(frame: bytes) -> bytes:
    """The same data segment with a CRC-16/MODBUS check code printed low byte first."""
    segment = frame[6:-6]
    crc = modbus_crc(segment)
    swapped = ((crc & 0xFF) << 8) | (crc >> 8)
    return frame[:6] + segment + f"{swapped:04X}".encode() + b"\r\n"


async def test_modbus_crc_is_accepted_only_for_the_logger_that_opted_in(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    path = write_synthetic_registry(tmp_path / "registry.yaml", 2)
    document = yaml.safe_load(path.read_text())
    document["outlets"][0]["accept_crc"] = ["modbus-lsb"]
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    opted_in, strict = await load_registry(isolated_settings, path)
    running = await start_gateway(isolated_settings)
    try:
        qn_in, frame_in = data_frame(opted_in, "2051", T0, {"a21026": 12.0})
        _, frame_out = data_frame(strict, "2051", T0, {"w01018": 3.0})
        lsb_in, lsb_out = modbus_lsb_frame(frame_in), modbus_lsb_frame(frame_out)
        assert lsb_in != frame_in  # the two algorithms disagree on this segment
        peer = await Peer.connect(running)
        await peer.send(lsb_out + lsb_in)
        packets = await peer.until(lambda ps: qn_in in acked(ps))
        peer.close()
        assert acked(packets) == {qn_in}
        [record] = records(await read_topic(isolated_settings, MONITORING_RECORDS, 1))
        assert (record.qn, record.crc_variant) == (qn_in, "MODBUS_LSB")
        assert bytes(record.raw_frame) == redact_password(lsb_in)
        [dead] = rejected(await read_topic(isolated_settings, MONITORING_REJECTED, 1))
        assert (dead.reason, dead.mn, bytes(dead.raw)) == (
            "bad_crc",
            strict.mn,
            redact_password(lsb_out),
        )
        assert "modbus-lsb check code, not enabled" in dead.detail
    finally:
        await running.stop()


async def test_a_second_session_for_an_mn_replaces_the_first(
    gateway: Running, fleet: list[SimLogger], metrics: tuple[Recorder, Recorder]
) -> None:
    _, sessions = metrics
    logger = fleet[1]
    qn1, frame1 = data_frame(logger, "2051", T0, {"w01018": 1.0})
    qn2, frame2 = data_frame(logger, "2051", T0 + timedelta(minutes=1), {"w01018": 2.0})
    first = await Peer.connect(gateway)
    await first.send(frame1)
    assert qn1 in acked(await first.until(lambda ps: qn1 in acked(ps)))
    second = await Peer.connect(gateway)  # the logger reconnected; the old link is half-open
    await second.send(frame2)
    assert qn2 in acked(await second.until(lambda ps: qn2 in acked(ps)))
    await first.until(lambda ps: False, timeout=10)  # returns when the gateway closes it
    assert first.closed
    assert not second.closed
    assert sessions.counts["replaced_per_mn_limit"] == 1
    assert gateway.gateway.connected(logger.mn)
    second.close()


async def test_over_the_rate_the_gateway_slows_down_and_loses_nothing(
    isolated_settings: Settings, fleet: list[SimLogger], metrics: tuple[Recorder, Recorder]
) -> None:
    frames_metric, _ = metrics
    running = await start_gateway(isolated_settings, rate=4.0, burst=2.0)
    try:
        logger = fleet[1]
        frames = [
            data_frame(logger, "2051", T0 + timedelta(minutes=m), {"w01018": float(m)})
            for m in range(8)
        ]
        peer = await Peer.connect(running)
        await peer.send(b"".join(f for _, f in frames))  # 8 frames at once, burst is 2
        packets = await peer.until(lambda ps: len(acked(ps)) == 8, timeout=60)
        peer.close()
        assert [p.qn for p in packets if p.cn == "9014"] == [qn for qn, _ in frames]
        assert frames_metric.counts["throttled"] >= 6  # at least the frames over the burst
        assert frames_metric.counts["published"] == 8
        published = records(await read_topic(isolated_settings, MONITORING_RECORDS, 8))
        assert sorted(r.qn for r in published) == sorted(qn for qn, _ in frames)
    finally:
        await running.stop()


async def test_a_silent_connection_is_closed_after_the_idle_timeout(
    isolated_settings: Settings, fleet: list[SimLogger], metrics: tuple[Recorder, Recorder]
) -> None:
    _, sessions = metrics
    running = await start_gateway(isolated_settings, idle_timeout=0.5)
    try:
        peer = await Peer.connect(running)
        await peer.until(lambda ps: False, timeout=20)  # returns when the gateway closes it
        assert peer.closed
        assert sessions.counts["idle_timeout"] == 1
        assert sessions.counts["closed"] == 1
    finally:
        await running.stop()


async def test_a_peer_that_does_not_read_its_replies_is_dropped(
    isolated_settings: Settings, fleet: list[SimLogger], metrics: tuple[Recorder, Recorder]
) -> None:
    _, sessions = metrics
    running = await start_gateway(
        isolated_settings, write_timeout=1.0, rate=1e6, burst=1e6, send_buffer=4096
    )
    try:
        logger = fleet[1]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # before connect: small window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", running.gateway.port))
        _, writer = await asyncio.open_connection(sock=sock)
        start = datetime(2020, 1, 1)
        frames = [
            data_frame(logger, "2051", start + timedelta(minutes=m), {"w01018": 1.0})[1]
            for m in range(3000)
        ]
        for at in range(0, len(frames), 200):  # the peer writes on and never reads
            writer.write(b"".join(frames[at : at + 200]))
            if sessions.counts["write_timeout"]:
                break
            await asyncio.sleep(0.05)
        assert await eventually(lambda: sessions.counts["write_timeout"] == 1)
        assert await eventually(lambda: not running.gateway.connected(logger.mn))
        writer.transport.abort()
    finally:
        await running.stop()


async def test_a_set_time_command_carries_the_station_time_and_is_followed(
    isolated_settings: Settings, gateway: Running, fleet: list[SimLogger]
) -> None:
    logger = fleet[0]
    station = LoggerConnection(logger, "127.0.0.1", gateway.gateway.port or 0, SimReport())
    await station.open()
    qn, frame = data_frame(logger, "2051", T0, {"a21026": 10.0})
    assert await station.send(qn, frame)
    await _consumer_ready(gateway)
    await _send_command(
        isolated_settings,
        records_pb2.GatewayCommand(
            command_id="set-time-1", mn=logger.mn, cn="1012", expires_at=_expiry(60)
        ),
    )
    messages = await read_topic(isolated_settings, GATEWAY_COMMAND_RESULTS, 3, timeout=30)
    await station.close()
    results = [records_pb2.CommandResult.FromString(m.value) for m in messages]
    assert [r.state for r in results] == ["DELIVERED", "ACCEPTED", "SUCCEEDED"]
    [request] = [p for p in station.received if p.cn == "1012"]
    assert request.needs_ack and request.pw == logger.password and request.st == logger.st
    system_time = request.time_field("SystemTime")
    assert system_time is not None
    tz = gateway.gateway.config.station_tz
    now = datetime.now(UTC).astimezone(tz).replace(tzinfo=None)
    assert abs((now - system_time).total_seconds()) < 120  # station (UTC+8) time, not UTC


async def _consumer_ready(running: Running) -> None:
    consumer = running.commands._consumer
    assert await eventually(lambda: bool(consumer.assignment()))
    await asyncio.sleep(1.0)  # "latest" offsets are fetched right after the assignment


async def test_two_replicas_only_the_session_holder_delivers_and_one_result_per_state(
    isolated_settings: Settings, fleet: list[SimLogger]
) -> None:
    a = await start_gateway(isolated_settings, replica="a")
    b = await start_gateway(isolated_settings, replica="b")
    try:
        logger = fleet[0]
        station = LoggerConnection(logger, "127.0.0.1", b.gateway.port or 0, SimReport())
        await station.open()
        qn, frame = data_frame(logger, "2051", T0, {"a21026": 10.0})
        assert await station.send(qn, frame)  # the session is held by replica b
        assert b.gateway.connected(logger.mn) and not a.gateway.connected(logger.mn)
        await _consumer_ready(a)
        await _consumer_ready(b)
        await _send_command(
            isolated_settings,
            records_pb2.GatewayCommand(
                command_id="sample-1", mn=logger.mn, cn="3012", expires_at=_expiry(3)
            ),
        )
        # Past the expiry and several sweeps: a must not report NOT_CONNECTED for it.
        await asyncio.sleep(5.0)
        messages = await read_topic(isolated_settings, GATEWAY_COMMAND_RESULTS, 10, timeout=5)
        await station.close()
    finally:
        await a.stop()
        await b.stop()
    results = [records_pb2.CommandResult.FromString(m.value) for m in messages]
    assert [(r.state, r.meta.producer) for r in results] == [
        ("DELIVERED", "gateway:b"),
        ("ACCEPTED", "gateway:b"),
        ("SUCCEEDED", "gateway:b"),
    ]
    assert [p.cn for p in station.received].count("3012") == 1
