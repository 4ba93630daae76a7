"""Frames the platform sends: replies to loggers (§6.1-6.2, Appendix C) and host commands.

Replies (9011-9014) echo the request's QN, PW and MN and are sent with ST=91 and Flag=4: the
2017 version bit set, no reply requested, so a reply is never itself acknowledged. Commands
(host -> logger) carry the logger's own system code and Flag=5 (reply requested): the logger
answers 9011 (QnRtn), then the data, then 9012 (ExeRtn).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime

from liandong.hj212.encoding import build_data_segment, build_frame
from liandong.hj212.packets import Packet, ProtocolVersion

__all__ = [
    "REPLY_FLAG",
    "REPLY_ST",
    "ExeRtn",
    "QnRtn",
    "command_request",
    "data_ack_9014",
    "execution_result_9012",
    "format_time",
    "history_request",
    "notify_ack_9013",
    "refusal",
    "request_reply_9011",
    "set_time_1012",
]

REPLY_ST = "91"
REPLY_FLAG = 4
COMMAND_FLAG = 5


class QnRtn(enum.IntEnum):
    """Request reply codes (Table 7)."""

    READY = 1
    REJECTED = 2
    PW_ERROR = 3
    MN_ERROR = 4
    ST_ERROR = 5
    FLAG_ERROR = 6
    QN_ERROR = 7
    CN_ERROR = 8
    CRC_ERROR = 9
    UNKNOWN = 100


class ExeRtn(enum.IntEnum):
    """Execution result codes (Table 6)."""

    SUCCESS = 1
    FAILED = 2
    CONDITION_ERROR = 3
    TIMEOUT = 4
    BUSY = 5
    SYSTEM_FAULT = 6
    NO_DATA = 100


def format_time(moment: datetime) -> str:
    """An N14 time ``YYYYMMDDhhmmss`` (station local time; give a naive local datetime)."""
    return moment.strftime("%Y%m%d%H%M%S")


def _reply(
    header: Packet | Mapping[str, str], cn: str, cp_fields: Sequence[tuple[str, str]]
) -> bytes:
    if isinstance(header, Packet):
        qn, pw, mn = header.qn, header.pw, header.mn
    else:
        qn, pw, mn = header.get("QN"), header.get("PW"), header.get("MN", "")
    segment = build_data_segment(
        qn=qn, st=REPLY_ST, cn=cn, pw=pw, mn=mn, flag=REPLY_FLAG, cp_fields=cp_fields
    )
    return build_frame(segment)


def data_ack_9014(packet: Packet) -> bytes:
    """Data reply to an upload with Flag bit A set: ``CN=9014``, ``CP=&&&&``, QN echoed."""
    return _reply(packet, "9014", ())


def notify_ack_9013(packet: Packet) -> bytes:
    """Notification reply (e.g. to 1013). 2005 loggers expect the notified QN inside CP."""
    cp: tuple[tuple[str, str], ...] = ()
    if packet.version is ProtocolVersion.HJT212_2005 and packet.qn is not None:
        cp = (("QN", packet.qn),)
    return _reply(packet, "9013", cp)


def request_reply_9011(request: Packet | Mapping[str, str], qn_rtn: int) -> bytes:
    """Request reply ``CN=9011`` with ``QnRtn`` (1 = ready to execute)."""
    return _reply(request, "9011", (("QnRtn", str(int(qn_rtn))),))


def execution_result_9012(request: Packet | Mapping[str, str], exe_rtn: int) -> bytes:
    """Execution result ``CN=9012`` with ``ExeRtn`` (1 = success), echoing the request QN."""
    return _reply(request, "9012", (("ExeRtn", str(int(exe_rtn))),))


def refusal(packet_or_partial: Packet | Mapping[str, str], qn_rtn: int) -> bytes:
    """A 9011 refusing a request: QnRtn 3 wrong PW, 4 unknown MN, 9 CRC error, ...

    Accepts a decoded packet or the best-effort header of an undecodable frame
    (``codec.peek_header``), so even a frame with a bad CRC can be answered.
    """
    if int(qn_rtn) == QnRtn.READY:
        raise ValueError("a refusal needs a QnRtn other than 1 (ready)")
    return request_reply_9011(packet_or_partial, qn_rtn)


def command_request(
    cn: str,
    mn: str,
    pw: str,
    qn: str,
    cp_fields: Sequence[tuple[str, str]] | Mapping[str, str] = (),
    *,
    st: str = "32",
    flag: int = COMMAND_FLAG,
) -> bytes:
    """A host -> logger command (e.g. 2061 history, 1012 set time, 3012 sample, 3015 retain).

    ``st`` is the logger's system code (31 air source, 32 water source, ...; Appendix C uses 32).
    """
    pairs = tuple(cp_fields.items()) if isinstance(cp_fields, Mapping) else tuple(cp_fields)
    segment = build_data_segment(qn=qn, st=st, cn=cn, pw=pw, mn=mn, flag=flag, cp_fields=pairs)
    return build_frame(segment)


def history_request(
    cn: str,
    mn: str,
    pw: str,
    qn: str,
    begin: datetime,
    end: datetime,
    *,
    st: str = "32",
) -> bytes:
    """A history request (2031 daily, 2041, 2051 minute, 2061 hourly) for [begin, end]."""
    if end < begin:
        raise ValueError("end before begin")
    cp = (("BeginTime", format_time(begin)), ("EndTime", format_time(end)))
    return command_request(cn, mn, pw, qn, cp, st=st)


def set_time_1012(
    mn: str,
    pw: str,
    system_time: datetime,
    qn: str,
    *,
    st: str = "32",
    pol_id: str | None = None,
) -> bytes:
    """Set the logger's clock (CN 1012), optionally for one instrument (PolId)."""
    cp: list[tuple[str, str]] = []
    if pol_id is not None:
        cp.append(("PolId", pol_id))
    cp.append(("SystemTime", format_time(system_time)))
    return command_request("1012", mn, pw, qn, cp, st=st)
