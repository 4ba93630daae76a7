"""The simulator counts a 9014 for the logger it was sent to, never for another logger that used
the same QN (issue 13, item 7: 54,900 frames had only 6,000 distinct QNs)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from gateway.domain.replies import data_ack_9014
from gateway.simulator.station import LoggerConnection, SimLogger, SimReport, data_frame
from liandong.hj212.decoding import decode
from liandong.hj212.framing import FrameReader

T0 = datetime(2026, 5, 1, 8, 0)


async def _acking_server(ack_mn: str) -> asyncio.Server:
    """A listener that acks uploads from ``ack_mn`` only (a gateway that lost the other's)."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framing = FrameReader()
        while data := await reader.read(65536):
            for chunk in framing.feed(data):
                if chunk.frame is None:
                    continue
                packet = decode(chunk.frame, lenient=True).packet
                if packet.mn == ack_mn:
                    writer.write(data_ack_9014(packet))
        writer.close()

    return await asyncio.start_server(session, "127.0.0.1", 0)


async def test_an_ack_for_one_logger_does_not_count_for_another_with_the_same_qn() -> None:
    acked = SimLogger("MN-ACKED", "pw-1", "water", {})
    ignored = SimLogger("MN-IGNORED", "pw-2", "water", {})
    server = await _acking_server(acked.mn)
    port = server.sockets[0].getsockname()[1]
    report = SimReport()
    connections = [
        LoggerConnection(lg, "127.0.0.1", port, report, timeout=0.5, retries=0)
        for lg in (acked, ignored)
    ]
    qn = "20260501080000001"
    try:
        for connection in connections:
            await connection.open()
        results = []
        for connection in connections:  # the acked logger first: its ack is in the report
            _, frame = data_frame(connection.logger, "2051", T0, {"w01018": 10.0}, qn=qn)
            results.append(await connection.send(qn, frame))
    finally:
        for connection in connections:
            await connection.close()
        server.close()
    assert results == [True, False]
    assert report.acked == 1
    assert report.unacked == [qn]
    assert report.acked_frames == {(acked.mn, qn)}
