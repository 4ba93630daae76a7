"""CLI start-up: `liandong --help` and `liandong hj212 decode` of one frame, as a new process
each time (issue 12: a command loads only what it uses; target under 0.3 s of CPU).

CPU time is the child's user + system time (resource.RUSAGE_CHILDREN), the median of a few
runs; wall time is shown beside it (it also counts waiting for the shared CPU)."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.gateway_codec import minute_frames

LIANDONG = Path(sys.executable).parent / "liandong"
RUNS = 5
TARGET_S = 0.3


def _cpu_and_wall(argv: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def measure(argv: list[str], runs: int = RUNS) -> tuple[float, float]:
    """Median CPU and wall seconds of `argv` run `runs` times."""
    samples = [_cpu_and_wall(argv) for _ in range(runs)]
    return statistics.median(c for c, _ in samples), statistics.median(w for _, w in samples)


def run() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        frame = Path(tmp) / "one.hj212"
        frame.write_bytes(minute_frames(1)[0])
        for name, argv in (
            ("cli: liandong --help", [str(LIANDONG), "--help"]),
            (
                "cli: liandong hj212 decode (one frame)",
                [str(LIANDONG), "hj212", "decode", str(frame)],
            ),
        ):
            cpu, wall = measure(argv)
            out.append(
                {
                    "name": f"{name}, CPU",
                    "value": round(cpu, 3),
                    "unit": "s",
                    "target": TARGET_S,
                    "command": "make bench (python -m bench.run cli_startup): "
                    + " ".join(argv[1:]),
                }
            )
            out.append(
                {"name": f"{name}, wall", "value": round(wall, 3), "unit": "s", "target": None}
            )
    return out
