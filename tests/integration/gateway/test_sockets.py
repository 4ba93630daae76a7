"""The gateway over real TCP sockets into the real broker: framing, refusals, floods, subpackets,
commands and time calibration."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

from gateway.bootstrap import Running
from gateway.simulator.station import LoggerConnection, SimLogger, SimReport, data_frame
from liandong import telemetry
from liandong.hj212.decoding import decode
from liandong.hj212.encoding import build_data_segment, build_frame
from liandong.hj212.framing import FrameReader
from liandong.hj212.packets import Packet
from liandong.hj212.redaction import redact_password
from liandong.hj212.rejects import FrameError
from liandong.settings import Settings
from liandong.topics import (
    GATEWAY_COMMAND_RESULTS,
    GATEWAY_COMMANDS,
    MONITORING_RECORDS,
    MONITORING_REJECTED,
)
from liandong.v1 import records_pb2
from tests.integration.gateway.conftest import read_topic, records, rejected, start_gateway

T0 = datetime(2024, 5, 1, 10, 0)


class Peer:
    """A raw TCP peer that collects every frame the gateway sends back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framing = FrameReader()
        self.packets: list[Packet] = []
        self.closed = False

    @classmethod
    async def connect(cls, running: Running) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.gateway.port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until(self, check: object, timeout: float = 20.0) -> list[Packet]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check(self.packets) and (left := deadline - loop.time()) > 0:  # type: ignore[operator]
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                break
            except ConnectionError:
                data = b""
            if not data:
                self.closed = True
                break
            for chunk in self.framing.feed(data):
                if chunk.frame is not None:
                    with contextlib.suppress(FrameError):
                        self.packets.append(decode(chunk.frame, lenient=True).packet)
        return self.packets

    def close(self) -> None:
        self.writer.close()


def acked(packets: list[Packet]) -> set[str]:
    return {p.qn for p in packets if p.cn == "9014" and p.qn}


async def test_concatenated_and_split_frames_are_all_acked_and_published(
    isolated_settings: Settings, gateway: Running, fleet: list[SimLogger]
) -> None:
    logger = fleet[1]  # water
    frames = [
        data_frame(logger, "2051", T0 + timedelta(minutes=m), {"w01018": 20.0 + m})
        for m in range(4)
    ]
    peer = await Peer.connect(gateway)
    await peer.send(b"".join(f for _, f in frames[:3]))  # three frames in one write
    last = frames[3][1]
    for piece in (last[:5], last[5:40], last[40:]):  # one frame over three writes
        await peer.send(piece)
        await asyncio.sleep(0.05)
    packets = await peer.until(lambda ps: len(acked(ps)) == 4)
    peer.close()
    assert acked(packets) == {qn for qn, _ in frames}

    published = records(await read_topic(isolated_settings, MONITORING_RECORDS, 4))
    assert sorted(r.factors[0].avg for r in published) == [20.0, 21.0, 22.0, 23.0]
    assert {r.mn for r in published} == {logger.mn}
    assert {r.outlet_id for r in published} == {"out-sim-00001"}
    assert {bytes(r.raw_frame) for r in published} == {redact_password(f) for _, f in frames}
    assert all(r.peer.startswith("127.0.0.1:") for r in published)


async def test_garbage_and_a_bad_crc_are_dead_lettered_and_the_next_frame_still_acked(
    isolated_settings: Settings, gateway: Running, fleet: list[SimLogger]
) -> None:
    logger = fleet[0]
    qn, good = data_frame(logger, "2051", T0, {"a21026": 12.5})
    _bad_qn, bad = data_frame(logger, "2051", T0, {"a21026": 13.5})
    bad = bad[:-6] + (b"0000" if bad[-6:-2] != b"0000" else b"1111") + b"\r\n"
    peer = await Peer.connect(gateway)
    await peer.send(b"AT+CSQ\r\nmodem noise" + bad + good)
    packets = await peer.until(lambda ps: qn in acked(ps))
    peer.close()
    assert acked(packets) == {qn}

    dead = rejected(await read_topic(isolated_settings, MONITORING_REJECTED, 2))
    by_reason = {d.reason: d for d in dead}
    assert bytes(by_reason["garbage"].raw) == b"AT+CSQ\r\nmodem noise"
    assert bytes(by_reason["bad_crc"].raw) == redact_password(bad)
    published = records(await read_topic(isolated_settings, MONITORING_RECORDS, 1))
    assert [r.qn for r in published] == [qn]


async def test_unknown_mn_and_wrong_password_are_refused_with_qnrtn_4_and_3(
    isolated_settings: Settings, gateway: Running, fleet: list[SimLogger]
) -> None:
    stranger = SimLogger("FFFF00000000000000000001", "123456", "gas", {})
    wrong_pw = SimLogger(fleet[0].mn, "000000" if fleet[0].password != "000000" else "1", "gas", {})
    _, unknown = data_frame(stranger, "2051", T0, {"a21026": 1.0})
    _, bad_pw = data_frame(wrong_pw, "2051", T0, {"a21026": 1.0})
    peer = await Peer.connect(gateway)
    await peer.send(unknown + bad_pw)
    packets = await peer.until(lambda ps: len(ps) >= 2)
    peer.close()
    refusals = [(p.cn, p.mn, p.fields.get("QnRtn")) for p in packets]
    assert refusals == [("9011", stranger.mn, "4"), ("9011", fleet[0].mn, "3")]
    dead = rejected(await read_topic(isolated_settings, MONITORING_REJECTED, 2))
    assert sorted(d.reason for d in dead) == ["BAD_PASSWORD", "UNKNOWN_MN"]
    assert not await read_topic(isolated_settings, MONITORING_RECORDS, 1, timeout=2)


async def test_a_peer_flooding_garbage_is_dropped(
    isolated_settings: Settings, fleet: list[SimLogger]
) -> None:
    running = await start_gateway(isolated_settings, garbage_limit=32 * 1024)
    try:
        peer = await Peer.connect(running)
        try:
            for _ in range(64):  # 256 KiB with no "##" in it
                await peer.send(b"x" * 4096)
        except ConnectionError:
            pass
        await peer.until(lambda ps: False, timeout=10)
        assert peer.closed
        dead = rejected(await read_topic(isolated_settings, MONITORING_REJECTED, 20, timeout=5))
        assert "FLOOD" in {d.reason for d in dead}
        # The dead letters stop at the threshold: at most limit + one read of bytes recorded.
        assert sum(len(d.raw) for d in dead) <= 32 * 1024 + 16 * 1024
    finally:
        await running.stop()


def _subpacket(logger: SimLogger, qn: str, pno: int, cp: str) -> bytes:
    segment = build_data_segment(
        qn=qn,
        st="32",
        cn="2051",
        pw=logger.password,
        mn=logger.mn,
        flag=7,
        cp_fields=cp,
        pnum=2,
        pno=pno,
    )
    return build_frame(segment)


async def test_subpackets_out_of_order_are_merged_and_each_acked(
    isolated_settings: Settings, gateway: Running, fleet: list[SimLogger]
) -> None:
    logger = fleet[1]
    one = _subpacket(logger, "20240501100000001", 1, "DataTime=20240501100000;w01018-Avg=21.5")
    two = _subpacket(logger, "20240501100000002", 2, "DataTime=20240501100000;w21003-Avg=1.25")
    peer = await Peer.connect(gateway)
    await peer.send(two)
    await asyncio.sleep(0.2)
    await peer.send(one)
    packets = await peer.until(lambda ps: len(acked(ps)) == 2)
    peer.close()
    assert acked(packets) == {"20240501100000001", "20240501100000002"}
    [merged] = records(await read_topic(isolated_settings, MONITORING_RECORDS, 1))
    assert {f.code: f.avg for f in merged.factors} == {"w01018": 21.5, "w21003": 1.25}
    assert bytes(merged.raw_frame) == redact_password(one + two)


async def test_an_incomplete_split_upload_is_published_with_a_reason(
    isolated_settings: Settings, fleet: list[SimLogger]
) -> None:
    running = await start_gateway(isolated_settings, reassembly_timeout=0.5)
    logger = fleet[1]
    try:
        one = _subpacket(logger, "20240501100000001", 1, "DataTime=20240501100000;w01018-Avg=9.5")
        peer = await Peer.connect(running)
        await peer.send(one)
        packets = await peer.until(lambda ps: len(acked(ps)) == 1)
        peer.close()
        assert acked(packets) == {"20240501100000001"}  # acked once its data is in Kafka
        [partial] = records(await read_topic(isolated_settings, MONITORING_RECORDS, 1))
        assert [(f.code, f.avg) for f in partial.factors] == [("w01018", 9.5)]
        assert any("incomplete_subpackets" in w and "PNO 2 of 2" in w for w in partial.warnings)
        dead = rejected(await read_topic(isolated_settings, MONITORING_REJECTED, 1))
        assert [(d.reason, bytes(d.raw)) for d in dead] == [
            ("incomplete_subpackets", redact_password(one))
        ]
    finally:
        await running.stop()


async def _send_command(settings: Settings, command: records_pb2.GatewayCommand) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(GATEWAY_COMMANDS), command.SerializeToString(), key=command.mn.encode()
        )
    finally:
        await producer.stop()


def _expiry(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(datetime.now(UTC) + timedelta(seconds=seconds))
    return ts


async def test_a_history_command_is_delivered_followed_and_reported(
    isolated_settings: Settings, gateway: Running, fleet: list[SimLogger]
) -> None:
    logger = fleet[0]
    report = SimReport()
    station = LoggerConnection(logger, "127.0.0.1", gateway.gateway.port or 0, report)
    await station.open()
    qn, frame = data_frame(logger, "2051", T0, {"a21026": 10.0})
    assert await station.send(qn, frame)  # the session is now bound to the MN
    await asyncio.sleep(1.0)  # the command consumer has joined its group by now
    await _send_command(
        isolated_settings,
        records_pb2.GatewayCommand(
            command_id="cmd-1",
            mn=logger.mn,
            cn="2061",
            params={"BeginTime": "20240501000000", "EndTime": "20240501060000"},
            expires_at=_expiry(60),
        ),
    )
    await _send_command(
        isolated_settings,
        records_pb2.GatewayCommand(
            command_id="cmd-2", mn="3201150000000000000000FF", cn="3012", expires_at=_expiry(2)
        ),
    )
    messages = await read_topic(isolated_settings, GATEWAY_COMMAND_RESULTS, 4, timeout=30)
    await station.close()
    results = [records_pb2.CommandResult.FromString(m.value) for m in messages]
    assert [(r.command_id, r.state) for r in results if r.command_id == "cmd-1"] == [
        ("cmd-1", "DELIVERED"),
        ("cmd-1", "ACCEPTED"),
        ("cmd-1", "SUCCEEDED"),
    ]
    assert [(r.command_id, r.state) for r in results if r.command_id == "cmd-2"] == [
        ("cmd-2", "NOT_CONNECTED")
    ]
    request = next(p for p in station.received if p.cn == "2061")
    assert request.fields == {"BeginTime": "20240501000000", "EndTime": "20240501060000"}
    assert request.needs_ack and request.st == "31"


async def test_time_calibration_request_gets_9013_then_1012(
    gateway: Running, fleet: list[SimLogger]
) -> None:
    logger = fleet[0]
    segment = build_data_segment(
        qn="20240501100000123",
        st="31",
        cn="1013",
        pw=logger.password,
        mn=logger.mn,
        flag=5,
        cp_fields="",
    )
    peer = await Peer.connect(gateway)
    await peer.send(build_frame(segment))
    packets = await peer.until(lambda ps: len(ps) >= 2)
    peer.close()
    assert [p.cn for p in packets[:2]] == ["9013", "1012"]
    assert packets[0].qn == "20240501100000123"
    system_time = packets[1].time_field("SystemTime")
    assert system_time is not None
    now = datetime.now(UTC).astimezone(gateway.gateway.config.station_tz).replace(tzinfo=None)
    assert abs((now - system_time).total_seconds()) < 120


async def test_a_hash_flood_is_one_dead_letter_with_a_count_and_valid_loggers_are_acked(
    isolated_settings: Settings, gateway: Running, fleet: list[SimLogger]
) -> None:
    """Issue 12, item 8: 32 KiB of '#' (under the garbage budget) is one dead letter with the
    byte count and a bounded sample, not 32,767 of them; the logger's next frame is acked."""
    logger = fleet[0]
    qn, good = data_frame(logger, "2051", T0, {"a21026": 12.5})
    peer = await Peer.connect(gateway)
    for _ in range(8):
        await peer.send(b"#" * 4096)
    await peer.send(good)
    packets = await peer.until(lambda ps: qn in acked(ps))
    peer.close()
    assert acked(packets) == {qn}
    dead = rejected(await read_topic(isolated_settings, MONITORING_REJECTED, 50, timeout=5))
    assert len(dead) == 1, [(d.reason, d.detail) for d in dead]
    assert dead[0].detail.startswith("32768 bytes outside a frame")
    assert len(dead[0].raw) <= 256 and set(bytes(dead[0].raw)) == {ord("#")}


async def test_with_nothing_exporting_each_record_carries_its_own_traceparent(
    isolated_settings: Settings, fleet: list[SimLogger], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process as setup_telemetry leaves it with no exporter: frame spans are not recorded,
    # so the gateway takes unsampled_root_span() and writes the traceparent itself.
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    monkeypatch.setattr(telemetry, "_unrecorded_roots", provider)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    running = await start_gateway(isolated_settings)
    try:
        logger = fleet[0]
        frames = [
            data_frame(logger, "2051", T0 + timedelta(minutes=m), {"a21026": 10.0 + m})
            for m in range(3)
        ]
        peer = await Peer.connect(running)
        await peer.send(b"".join(f for _, f in frames))
        packets = await peer.until(lambda ps: len(acked(ps)) == 3)
        peer.close()
        assert acked(packets) == {qn for qn, _ in frames}
        messages = await read_topic(isolated_settings, MONITORING_RECORDS, 3)
    finally:
        await running.stop()
    trace_ids = set()
    for message in messages:
        headers = dict(message.headers)
        match = re.fullmatch(
            r"00-([0-9a-f]{32})-([0-9a-f]{16})-02", headers["traceparent"].decode()
        )
        assert match and int(match.group(1), 16) and int(match.group(2), 16), headers
        trace_ids.add(match.group(1))
    assert len(trace_ids) == 3  # one trace per frame
