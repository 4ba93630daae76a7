"""Station simulator: HJ 212-2017 data loggers sending real-time (2011), minute (2051) and hourly
(2061) data over TCP, waiting for 9014 acks and re-sending what was not acked (HJ 212 Table 1:
10 s x 3 over mobile networks).

Scenarios (``SCENARIOS``): normal, exceedance, flatline, dilution (O2 rising, concentrations
falling with it), zero values, offline (loggers stop halfway, then back-fill), maintenance
(M flags), calibration (C flags), backfill (history with old DataTimes) and parameter (a
3020 field-information upload of an instrument parameter, changed halfway). The simulator also
answers the gateway's requests: 9011/9012 to commands, and it sends a 1013 time-calibration
request when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from gateway.domain.replies import execution_result_9012, request_reply_9011
from gateway.simulator.hourly import NORMAL, FactorPeriod, summarise_hour
from liandong.hj212.decoding import decode
from liandong.hj212.encoding import build_data_segment, build_frame
from liandong.hj212.framing import FrameReader
from liandong.hj212.packets import Packet
from liandong.hj212.rejects import FrameError

STATION_TZ = ZoneInfo("Asia/Shanghai")
SCENARIOS = (
    "normal",
    "exceedance",
    "flatline",
    "dilution",
    "zero",
    "offline",
    "maintenance",
    "calibration",
    "backfill",
    "parameter",
)
# `parameter`: the instrument parameter reported with 3020 (HJ 212 B.10 i13004, the digestion
# temperature of a water analyser, deg C) before and after it is turned down halfway
PARAMETER_CODE = "i13004"
PARAMETER_VALUES = ("165.0", "120.0")
_qn_counter = itertools.count()

# Typical factors when a synthetic registry is generated: (code, limit, unit).
GAS_FACTORS = (("a21026", 35.0, "mg/m3"), ("a21002", 50.0, "mg/m3"), ("a34013", 10.0, "mg/m3"))
WATER_FACTORS = (("w01018", 50.0, "mg/L"), ("w21003", 5.0, "mg/L"), ("w21011", 0.5, "mg/L"))
# Flow factors' minute total (Cou, m3) per unit of rate: wastewater L/s, flue gas m3/s.
FLOW_TOTAL_PER_MINUTE = {"w00000": 60 / 1000, "a00000": 60.0}


@dataclass(frozen=True)
class SimLogger:
    mn: str
    password: str
    medium: str
    limits: dict[str, float]

    @property
    def st(self) -> str:
        return "31" if self.medium == "gas" else "32"


@dataclass
class SimReport:
    sent: int = 0
    acked: int = 0
    resent: int = 0
    unacked: list[str] = field(default_factory=list)
    first_data_time: datetime | None = None
    commands_answered: int = 0
    disconnects: int = 0
    # (MN, QN) of every 9014 received: a QN is unique per logger only, so an ack counts for
    # the logger whose connection it came back on.
    acked_frames: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def __rich__(self) -> str:
        return (
            f"sent {self.sent} frame(s), acked {self.acked}, re-sent {self.resent}, "
            f"never acked {len(self.unacked)}"
        )


def new_qn(at: datetime) -> str:
    # 17 digits YYYYMMDDhhmmsszzz; the counter keeps QNs unique within one millisecond.
    return at.strftime("%Y%m%d%H%M%S") + f"{next(_qn_counter) % 1000:03d}"


def _time(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def data_frame(
    logger: SimLogger,
    cn: str,
    data_time: datetime,
    values: dict[str, float],
    *,
    flags: dict[str, str] | None = None,
    qn: str | None = None,
) -> tuple[str, bytes]:
    """A 2011 (Rtd), 2051/2061 (Min/Avg/Max, Cou for flow) upload asking for an ack. For
    2051/2061 each value is taken as one minute's (see `minute_record`); a 2061 summarising
    an hour's minutes is `period_frame` of `summarise_hour`."""
    if cn != "2011":
        return period_frame(logger, cn, data_time, minute_record(values, flags), qn=qn)
    qn = qn or new_qn(datetime.now(STATION_TZ))
    flags = flags or {}
    pairs: list[tuple[str, str]] = [("DataTime", _time(data_time))]
    for code, value in values.items():
        pairs += [(f"{code}-Rtd", f"{value:.3f}"), (f"{code}-Flag", flags.get(code, NORMAL))]
    return qn, _upload(logger, cn, qn, pairs)


def _sent(value: float, decimals: int = 2) -> float:
    """The value as the frame prints it, so sums and means use what the platform receives."""
    return float(f"{value:.{decimals}f}")


def minute_record(
    values: dict[str, float], flags: dict[str, str] | None = None
) -> dict[str, FactorPeriod]:
    """The per-factor values of one minute record: Avg the value, Min/Max 3 % below/above
    it, and for a flow factor the minute's total (Cou) from the rate."""
    flags = flags or {}
    record: dict[str, FactorPeriod] = {}
    for code, value in values.items():
        per_minute = FLOW_TOTAL_PER_MINUTE.get(code)
        record[code] = FactorPeriod(
            avg=_sent(value),
            min=_sent(value * 0.97),
            max=_sent(value * 1.03),
            flag=flags.get(code, NORMAL),
            cou=None if per_minute is None else _sent(value * per_minute, 3),
        )
    return record


def period_frame(
    logger: SimLogger,
    cn: str,
    data_time: datetime,
    record: Mapping[str, FactorPeriod],
    *,
    qn: str | None = None,
) -> tuple[str, bytes]:
    """A 2051 (minute) or 2061 (hour) upload of ``record``, asking for an ack. ``data_time``
    is the start of the period (HJ 212 DataTime)."""
    qn = qn or new_qn(datetime.now(STATION_TZ))
    pairs: list[tuple[str, str]] = [("DataTime", _time(data_time))]
    for code, v in record.items():
        pairs += [
            (f"{code}-Min", f"{v.min:.2f}"),
            (f"{code}-Avg", f"{v.avg:.2f}"),
            (f"{code}-Max", f"{v.max:.2f}"),
        ]
        if v.cou is not None:
            pairs.append((f"{code}-Cou", f"{v.cou:.3f}"))
        if v.zs_avg is not None:
            pairs.append((f"{code}-ZsAvg", f"{v.zs_avg:.2f}"))
        pairs.append((f"{code}-Flag", v.flag))
    return qn, _upload(logger, cn, qn, pairs)


def _upload(logger: SimLogger, cn: str, qn: str, pairs: list[tuple[str, str]]) -> bytes:
    segment = build_data_segment(
        qn=qn, st=logger.st, cn=cn, pw=logger.password, mn=logger.mn, flag=5, cp_fields=pairs
    )
    return build_frame(segment)


def minute_frame(
    logger: SimLogger, data_time: datetime, values: dict[str, float]
) -> tuple[str, bytes]:
    return data_frame(logger, "2051", data_time, values)


def field_info_frame(
    logger: SimLogger, data_time: datetime, factor: str, info: Mapping[str, str]
) -> tuple[str, bytes]:
    """A 3020 upload of field information (`i.....-Info`) for the monitored `factor` (PolId)."""
    qn = new_qn(datetime.now(STATION_TZ))
    pairs = [("DataTime", _time(data_time)), ("PolId", factor)]
    pairs += [(f"{code}-Info", value) for code, value in info.items()]
    return qn, _upload(logger, "3020", qn, pairs)


def time_request_1013(logger: SimLogger) -> tuple[str, bytes]:
    qn = new_qn(datetime.now(STATION_TZ))
    segment = build_data_segment(
        qn=qn, st=logger.st, cn="1013", pw=logger.password, mn=logger.mn, flag=5, cp_fields=""
    )
    return qn, build_frame(segment)


def scenario_values(logger: SimLogger, scenario: str, minute: int) -> dict[str, float]:
    """Plausible values for minute ``minute`` of a scenario.

    ``exceedance`` drives the first limited factor (by code) to 1.6x its limit from minute 1;
    ``dilution`` raises O2 towards 19 % and lowers the measured concentrations with it (the
    emission is diluted with air: the O2-corrected value stays high); ``flatline`` repeats the
    same value; ``zero`` sends 0.
    """
    rng = random.Random(f"{logger.mn}:{minute}")
    values: dict[str, float] = {}
    # Real analysers never repeat a value exactly for an hour: a little noise keeps the
    # constant-value detector (a tampering signature) quiet except in ``flatline``.
    o2 = round(7.5 + rng.uniform(-0.2, 0.2), 2)
    if scenario == "dilution":
        o2 = min(19.5, 7.5 + 1.2 * minute)
    if logger.medium == "gas":
        values["a19001"] = o2 if scenario != "flatline" else 7.5
    for n, (code, limit) in enumerate(sorted(logger.limits.items())):
        wave = 1 + 0.08 * math.sin(minute / 7 + n) + rng.uniform(-0.03, 0.03)
        base = limit * 0.55 * wave
        if scenario == "exceedance" and n == 0 and minute >= 1:
            base = limit * 1.6 * (1 + rng.uniform(-0.02, 0.02))
        elif scenario == "flatline":
            base = round(limit * 0.42, 2)
        elif scenario == "zero":
            base = 0.0
        elif scenario == "dilution":
            base = limit * 0.9 * (20.9 - o2) / (20.9 - 7.5)
        values[code] = base
    if logger.medium == "water":
        values.setdefault("w00000", 12.0 * (1 + 0.1 * math.sin(minute / 11)))
    return values


def scenario_flags(logger: SimLogger, scenario: str, minute: int) -> dict[str, str]:
    flag = {"maintenance": "M", "calibration": "C"}.get(scenario)
    if flag is None or minute < 1:
        return {}
    return {code: flag for code in logger.limits}


def loggers_from_registry(path: Path) -> list[SimLogger]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for outlet in doc.get("outlets", []):
        limits = {
            str(lim["factor"]): float(lim["value"])
            for lim in outlet.get("limits", [])
            if lim.get("value") is not None
        }
        out.append(
            SimLogger(str(outlet["mn"]), str(outlet["password"]), str(outlet["medium"]), limits)
        )
    return out


def synthetic_registry(count: int, *, county: str = "320115", seed: int = 212) -> dict[str, Any]:
    """A registry document with ``count`` outlets (alternately gas and water) and their
    enterprises, valid for ``liandong registry load``."""
    rng = random.Random(seed)
    enterprises = []
    outlets = []
    for i in range(count):
        gas = i % 2 == 0
        ent = f"ent-sim-{i:05d}"
        enterprises.append({"id": ent, "name": f"Simulated enterprise {i}", "county": county})
        factors = GAS_FACTORS if gas else WATER_FACTORS
        outlets.append(
            {
                "id": f"out-sim-{i:05d}",
                "enterprise": ent,
                "name": f"{'stack' if gas else 'outfall'} {i}",
                "mn": f"{int(county):06d}{0xE000000000 + i:018X}",
                "password": f"{rng.randrange(10**6):06d}",
                "medium": "gas" if gas else "water",
                **({"reference_o2": 6.0} if gas else {}),
                "limits": [
                    {"factor": code, "value": limit, "unit": unit, "effective_from": "2020-01-01"}
                    for code, limit, unit in factors
                ],
            }
        )
    return {
        "version": 1,
        "enterprises": enterprises,
        "outlets": outlets,
        "marks": [],
        "roster": [],
    }


def write_synthetic_registry(path: Path, count: int) -> Path:
    path.write_text(
        yaml.safe_dump(synthetic_registry(count), allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return path


class LoggerConnection:
    """One logger's TCP session: sends uploads, collects 9014 acks, answers commands."""

    def __init__(
        self,
        logger: SimLogger,
        host: str,
        port: int,
        report: SimReport,
        *,
        timeout: float = 10.0,
        retries: int = 3,
    ) -> None:
        self.logger = logger
        self.host, self.port = host, port
        self.report = report
        self.timeout = timeout
        self.retries = retries
        self.acks: dict[str, asyncio.Event] = {}
        self.received: list[Packet] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._task = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()

    async def _read(self) -> None:
        assert self._reader is not None
        framing = FrameReader()
        while True:
            try:
                data = await self._reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                for event in self.acks.values():
                    event.set()  # wake waiters; they see the missing ack and re-send
                return
            for chunk in framing.feed(data):
                if chunk.frame is None:
                    continue
                try:
                    packet = decode(chunk.frame, lenient=True).packet
                except FrameError:
                    continue
                self.received.append(packet)
                if packet.cn == "9014" and packet.qn:
                    self.report.acked_frames.add((self.logger.mn, packet.qn))
                    waiter = self.acks.get(packet.qn)
                    if waiter is not None:
                        waiter.set()
                elif packet.cn not in ("9011", "9012", "9013") and packet.needs_ack:
                    self._answer(packet)

    def _answer(self, request: Packet) -> None:
        """A host command: ready (9011 QnRtn=1), then done (9012 ExeRtn=1)."""
        assert self._writer is not None
        self._writer.write(request_reply_9011(request, 1))
        self._writer.write(execution_result_9012(request, 1))
        self.report.commands_answered += 1

    async def send(self, qn: str, frame: bytes) -> bool:
        """Send and wait for the 9014, re-sending (reconnecting if needed) up to ``retries``."""
        for attempt in range(self.retries + 1):
            event = self.acks.setdefault(qn, asyncio.Event())
            event.clear()
            try:
                if self._writer is None or self._writer.is_closing():
                    await self.open()
                assert self._writer is not None
                self._writer.write(frame)
                await self._writer.drain()
            except (ConnectionError, OSError):
                self.report.disconnects += 1
                self._writer = None
                await asyncio.sleep(min(self.timeout, 1.0))
                continue
            self.report.sent += 1
            self.report.resent += 1 if attempt else 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timeout):  # no extra task per frame
                    await event.wait()
            if (self.logger.mn, qn) in self.report.acked_frames:
                self.acks.pop(qn, None)
                self.report.acked += 1
                return True
        self.acks.pop(qn, None)
        self.report.unacked.append(qn)
        return False

    async def send_raw(self, data: bytes) -> None:
        if self._writer is None:
            await self.open()
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()


async def send_with_acks(
    host: str,
    port: int,
    frames: list[tuple[str, bytes]],
    *,
    timeout: float = 10.0,
    retries: int = 3,
    report: SimReport | None = None,
) -> SimReport:
    """Send frames one by one on one connection, each waiting for its 9014."""
    report = report or SimReport()
    logger = SimLogger("", "", "water", {})
    connection = LoggerConnection(logger, host, port, report, timeout=timeout, retries=retries)
    await connection.open()
    try:
        for qn, frame in frames:
            await connection.send(qn, frame)
    finally:
        await connection.close()
    return report


def scenario_frames(
    logger: SimLogger, scenario: str, minutes: int, start: datetime, *, realtime: bool = False
) -> list[tuple[str, bytes]]:
    """The uploads of one logger for a scenario, in sending order.

    Minute data (2051) every minute, hourly data (2061) at each full hour, real-time data
    (2011) before each minute record when ``realtime``. The 2061 sent after minute 59
    summarises the hour that minute ends (DataTime = that hour's start) from its minute
    records (`summarise_hour`); a run of 60 minutes or more that stops mid-hour also closes
    with a 2061 of the minutes sent in its last hour. ``offline`` sends nothing for the
    second half, then back-fills it; ``backfill`` sends the same minutes with DataTimes a day
    old, as history re-sent after a gap.
    """
    frames: list[tuple[str, bytes]] = []
    times = [start + timedelta(minutes=m) for m in range(minutes)]
    if scenario == "backfill":
        times = [t - timedelta(days=1) for t in times]
    order = list(range(minutes))
    if scenario == "offline":
        half = minutes // 2
        order = list(range(half)) + list(range(half, minutes))  # the gap is sent late: see run
    hours: dict[datetime, list[dict[str, FactorPeriod]]] = {}
    # the analyser of the logger's first limited factor (or first factor) for `parameter`
    instrument = min(logger.limits) if logger.limits else next(iter(scenario_values(logger, "", 0)))
    for m in order:
        if scenario == "parameter" and m in (0, minutes // 2):
            value = PARAMETER_VALUES[0 if m == 0 else 1]
            frames.append(field_info_frame(logger, times[m], instrument, {PARAMETER_CODE: value}))
        values = scenario_values(logger, scenario, m)
        flags = scenario_flags(logger, scenario, m)
        if realtime:
            frames.append(data_frame(logger, "2011", times[m], values, flags=flags))
        record = minute_record(values, flags)
        frames.append(period_frame(logger, "2051", times[m], record))
        # The hour a minute belongs to starts at its full hour: the 2061 DataTime.
        hour = times[m].replace(minute=0)
        hours.setdefault(hour, []).append(record)
        if times[m].minute == 59 or (m == minutes - 1 and minutes >= 60):
            summary = summarise_hour(hours.pop(hour), logger.medium)
            frames.append(period_frame(logger, "2061", hour, summary))
    return frames


async def run_scenario(
    registry: Path,
    host: str,
    port: int,
    scenario: str,
    minutes: int,
    start: datetime | None = None,
    *,
    loggers: int | None = None,
    realtime: bool = False,
    timeout: float = 10.0,
    progress: Callable[[int], None] | None = None,
) -> SimReport:
    """Every logger in the registry (or the first ``loggers``) sends ``minutes`` of data,
    concurrently, each waiting for the ack of a frame before sending the next."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
    fleet = loggers_from_registry(registry)[:loggers]
    start = start or (
        datetime.now(STATION_TZ).replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    )
    naive_start = start.replace(tzinfo=None)
    report = SimReport(first_data_time=start)

    async def one(logger: SimLogger) -> None:
        frames = scenario_frames(logger, scenario, minutes, naive_start, realtime=realtime)
        connection = LoggerConnection(logger, host, port, report, timeout=timeout)
        await connection.open()
        try:
            if scenario == "offline":
                half = len(frames) // 2
                await _send_all(connection, frames[:half], progress)
                await connection.close()
                report.disconnects += 1
                await connection.open()
                await _send_all(connection, frames[half:], progress)
            else:
                await _send_all(connection, frames, progress)
        finally:
            await connection.close()

    await asyncio.gather(*(one(logger) for logger in fleet))
    return report


async def _send_all(
    connection: LoggerConnection,
    frames: Iterable[tuple[str, bytes]],
    progress: Callable[[int], None] | None,
) -> None:
    for qn, frame in frames:
        await connection.send(qn, frame)
        if progress is not None:
            progress(1)
