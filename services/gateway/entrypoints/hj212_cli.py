"""``liandong hj212``: offline HJ 212 tools (decode captures, one JSON object per frame)."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from liandong.hj212.crc import CrcVariant
from liandong.hj212.decoding import decode
from liandong.hj212.framing import FrameChunk, FrameReader
from liandong.hj212.packets import DecodeResult
from liandong.hj212.rejects import FrameError

app = typer.Typer(help="HJ 212 protocol tools.", no_args_is_help=True)

_READ_SIZE = 65536


class AcceptCrc(enum.StrEnum):
    MODBUS_MSB = "modbus-msb"
    MODBUS_LSB = "modbus-lsb"


@app.callback()
def main() -> None:
    """HJ 212 protocol tools."""


def _raw(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def result_json(result: DecodeResult) -> dict[str, Any]:
    """A decoded frame as plain JSON-able data."""
    packet = result.packet
    data_time = packet.data_time
    return {
        "qn": packet.qn,
        "st": packet.st,
        "cn": packet.cn,
        "pw": packet.pw,
        "mn": packet.mn,
        "flag": packet.flag,
        "pnum": packet.pnum,
        "pno": packet.pno,
        "version": packet.version.value,
        "needs_ack": packet.needs_ack,
        "is_split": packet.is_split,
        "data_time": data_time.isoformat() if data_time else None,
        "fields": dict(packet.fields),
        "factors": {
            code: {"original_code": f.original_code, "fields": dict(f.fields)}
            for code, f in packet.factors.items()
        },
        "header_extra": dict(packet.header_extra),
        "warnings": list(result.warnings),
        "crc_variant": result.crc_variant.value,
    }


def _chunks(stream: BinaryIO, reader: FrameReader) -> Iterator[FrameChunk]:
    while block := stream.read(_READ_SIZE):
        yield from reader.feed(block)
    yield from reader.flush()


def _records(
    stream: BinaryIO, *, lenient: bool, accepted: frozenset[CrcVariant]
) -> Iterator[dict[str, Any]]:
    for chunk in _chunks(stream, FrameReader()):
        if chunk.frame is None:
            garbage = chunk.garbage or b""
            if not garbage.strip():  # line breaks between frames in a capture file
                continue
            yield {"error": str(chunk.reason), "detail": "skipped bytes", "raw": _raw(garbage)}
            continue
        try:
            yield result_json(decode(chunk.frame, lenient=lenient, accepted_crcs=accepted))
        except FrameError as exc:
            yield {"error": str(exc.code), "detail": exc.detail, "raw": _raw(chunk.frame)}


@app.command("decode")
def decode_command(
    file: Annotated[
        Path | None,
        typer.Argument(help="Capture file of raw frames; standard input when omitted."),
    ] = None,
    lenient: Annotated[
        bool, typer.Option("--lenient", help="Tolerate known deviations, with warnings.")
    ] = False,
    accept_crc: Annotated[
        list[AcceptCrc] | None,
        typer.Option("--accept-crc", help="Also accept this CRC-16/MODBUS variant (repeatable)."),
    ] = None,
) -> None:
    """Decode raw HJ 212 frames and print one JSON object per frame (or skipped bytes)."""
    accepted = frozenset(CrcVariant(choice.value) for choice in accept_crc or ())
    if file is None:
        stream: BinaryIO = sys.stdin.buffer
        records = _records(stream, lenient=lenient, accepted=accepted)
        for record in records:
            typer.echo(json.dumps(record, ensure_ascii=False))
        return
    with file.open("rb") as handle:
        for record in _records(handle, lenient=lenient, accepted=accepted):
            typer.echo(json.dumps(record, ensure_ascii=False))
