"""`liandong alerts replay`: the worker's judgement over a capture of HJ 212 frames, no Kafka.

Frames are cut with the gateway's FrameReader and decoded leniently, translated to
MonitoringRecords as the gateway does (DataTime is station time, UTC+8), then mapped to
readings and judged by the same Judge the worker runs. Processing time is the arrival time a
record carries (for a capture: the end of its period, as a live logger would send it), and
wall-clock duties run every minute of it, so a day's capture is judged as it happened.
Output: one AlertChange per line as JSON, in the order the judge concluded them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
import yaml

from alerts.adapters.records import FIELD_INFO, parameter_reports_from_record, readings_from_record
from alerts.domain.judge import Judge, replay
from alerts.domain.parameters import ParameterReport
from alerts.domain.periods import CST
from alerts.domain.readings import Reading
from alerts.domain.registry import RegistryError, registry_from_dict

app = typer.Typer(help="Alert judgement without Kafka.", no_args_is_help=True)

# A live logger sends a period's upload once the period is over.
_PERIOD = {
    "2011": timedelta(seconds=0),
    "2051": timedelta(minutes=1),
    "2061": timedelta(hours=1),
    "2031": timedelta(days=1),
}


def frames_of(stream: BinaryIO, chunk: int = 65536) -> Iterator[bytes]:
    from liandong.hj212.framing import FrameReader

    reader = FrameReader()
    while data := stream.read(chunk):
        for piece in reader.feed(data):
            if piece.frame is not None:
                yield piece.frame
    for piece in reader.flush():
        if piece.frame is not None:
            yield piece.frame


def readings_of(
    frames: Iterable[bytes], problems: list[str]
) -> Iterator[Reading | ParameterReport]:
    """Readings of every decodable data frame and the parameters of field-information
    uploads (3020); undecodable frames are listed in `problems`."""
    from liandong.hj212.decoding import decode
    from liandong.hj212.records import to_record
    from liandong.hj212.rejects import FrameError

    for n, frame in enumerate(frames):
        try:
            result = decode(frame, lenient=True)
        except FrameError as err:
            problems.append(f"frame {n}: {err}")
            continue
        packet = result.packet
        if packet.cn == FIELD_INFO and packet.data_time is not None:
            at = packet.data_time.replace(tzinfo=CST)
            record = to_record(result, frame, peer="capture", received_at=at, station_tz=CST)
            yield from parameter_reports_from_record(record, at)
            continue
        if packet.cn not in _PERIOD or packet.data_time is None:
            continue
        received = packet.data_time.replace(tzinfo=CST) + _PERIOD[packet.cn]
        record = to_record(result, frame, peer="capture", received_at=received, station_tz=CST)
        yield from readings_from_record(record, received)


def replay_capture(registry_doc: dict, stream: BinaryIO) -> tuple[list[dict], list[str]]:
    """The alert changes a capture yields, as JSON-ready dicts, and the frames not read."""
    judge = Judge(registry_from_dict(registry_doc))
    problems: list[str] = []
    changes = replay(judge, readings_of(frames_of(stream), problems))
    return [c.to_dict() for c in changes], problems


@app.command("replay")
def replay_command(
    registry: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="registry YAML (as for registry load)")
    ],
    capture: Annotated[
        Path | None,
        typer.Argument(exists=True, dir_okay=False, help="file of HJ 212 frames; stdin if absent"),
    ] = None,
) -> None:
    """Judge a capture of HJ 212 frames and print the alert changes as JSON lines."""
    try:
        doc = yaml.safe_load(registry.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        typer.echo(f"invalid registry file {registry}: {err}", err=True)
        raise typer.Exit(2) from err
    try:
        if capture is None:
            changes, problems = replay_capture(doc, sys.stdin.buffer)
        else:
            with capture.open("rb") as stream:
                changes, problems = replay_capture(doc, stream)
    except RegistryError as err:
        typer.echo(f"invalid registry {registry}: {err}", err=True)
        raise typer.Exit(2) from err
    for change in changes:
        sys.stdout.write(json.dumps(change, ensure_ascii=False, sort_keys=True) + "\n")
    for problem in problems:
        typer.echo(f"skipped {problem}", err=True)
