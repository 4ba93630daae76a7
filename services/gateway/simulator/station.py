"""Station simulator: data loggers that send HJ 212-2017 minute data (CN=2051) over TCP.

Each frame asks for an ack (Flag=5); a frame not acked with 9014 within the timeout is re-sent,
as HJ 212 Table 1 prescribes (10 s x 3 over mobile networks).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from gateway.domain.codec import FrameError, build_data_segment, build_frame, decode
from gateway.domain.framing import FrameReader

STATION_TZ = ZoneInfo("Asia/Shanghai")
_qn_counter = itertools.count()


@dataclass(frozen=True)
class SimLogger:
    mn: str
    password: str
    medium: str
    limits: dict[str, float]


@dataclass
class SimReport:
    sent: int = 0
    acked: int = 0
    resent: int = 0
    unacked: list[str] = field(default_factory=list)
    first_data_time: datetime | None = None

    def __rich__(self) -> str:
        return (
            f"sent {self.sent} frame(s), acked {self.acked}, re-sent {self.resent}, "
            f"never acked {len(self.unacked)}"
        )


def new_qn(at: datetime) -> str:
    # 17 digits YYYYMMDDhhmmsszzz; the counter keeps QNs unique within one millisecond.
    return at.strftime("%Y%m%d%H%M%S") + f"{next(_qn_counter) % 1000:03d}"


def minute_frame(logger: SimLogger, data_time: datetime, values: dict[str, float]) -> tuple[str, bytes]:
    qn = new_qn(datetime.now(STATION_TZ))
    pairs: list[tuple[str, str]] = [("DataTime", data_time.strftime("%Y%m%d%H%M%S"))]
    for code, value in values.items():
        pairs += [
            (f"{code}-Min", f"{value * 0.97:.2f}"),
            (f"{code}-Avg", f"{value:.2f}"),
            (f"{code}-Max", f"{value * 1.03:.2f}"),
            (f"{code}-Flag", "N"),
        ]
    st = "31" if logger.medium == "gas" else "32"
    segment = build_data_segment(
        qn=qn, st=st, cn="2051", pw=logger.password, mn=logger.mn, flag=5, cp_fields=pairs
    )
    return qn, build_frame(segment)


def scenario_values(logger: SimLogger, scenario: str, minute: int) -> dict[str, float]:
    """Plausible minute means; `exceedance` drives the first limited factor to 1.6x its limit."""
    values: dict[str, float] = {}
    if logger.medium == "gas":
        values["a19001"] = 7.5  # O2 %, near a coal boiler's reference 6 %
    for n, (code, limit) in enumerate(sorted(logger.limits.items())):
        base = limit * 0.55
        if scenario == "exceedance" and n == 0 and minute >= 1:
            base = limit * 1.6
        values[code] = base
    return values


def loggers_from_registry(path: Path) -> list[SimLogger]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for outlet in doc.get("outlets", []):
        limits = {
            str(lim["factor"]): float(lim["value"])
            for lim in outlet.get("limits", [])
            if lim.get("value") is not None
        }
        out.append(SimLogger(str(outlet["mn"]), str(outlet["password"]), str(outlet["medium"]), limits))
    return out


async def send_with_acks(
    host: str,
    port: int,
    frames: list[tuple[str, bytes]],
    *,
    timeout: float = 10.0,
    retries: int = 3,
    report: SimReport | None = None,
) -> SimReport:
    report = report or SimReport()
    reader, writer = await asyncio.open_connection(host, port)
    framing = FrameReader()
    pending_acks: list[str] = []
    try:
        for qn, frame in frames:
            for attempt in range(retries + 1):
                writer.write(frame)
                await writer.drain()
                report.sent += 1
                report.resent += 1 if attempt else 0
                if await _await_ack(reader, framing, qn, timeout, pending_acks):
                    report.acked += 1
                    break
            else:
                report.unacked.append(qn)
    finally:
        writer.close()
        await writer.wait_closed()
    return report


async def _await_ack(
    reader: asyncio.StreamReader, framing: FrameReader, qn: str, timeout: float, seen: list[str]
) -> bool:
    if qn in seen:
        seen.remove(qn)
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := deadline - loop.time()) > 0:
        try:
            data = await asyncio.wait_for(reader.read(4096), left)
        except TimeoutError:
            return False
        if not data:
            raise ConnectionError("gateway closed the connection")
        for chunk in framing.feed(data):
            if chunk.frame is None:
                continue
            try:
                packet = decode(chunk.frame, lenient=True).packet
            except FrameError:
                continue
            if packet.cn == "9014" and packet.qn:
                seen.append(packet.qn)
        if qn in seen:
            seen.remove(qn)
            return True
    return False


async def run_scenario(
    registry: Path, host: str, port: int, scenario: str, minutes: int, start: datetime | None = None
) -> SimReport:
    """Every logger in the registry sends `minutes` minute records, concurrently."""
    loggers = loggers_from_registry(registry)
    start = start or (datetime.now(STATION_TZ).replace(second=0, microsecond=0) - timedelta(minutes=minutes))
    report = SimReport(first_data_time=start)

    async def one(logger: SimLogger) -> None:
        frames = [
            minute_frame(logger, start + timedelta(minutes=m), scenario_values(logger, scenario, m))
            for m in range(minutes)
        ]
        await send_with_acks(host, port, frames, report=report)

    await asyncio.gather(*(one(logger) for logger in loggers))
    return report
