"""Benchmark: HJ 212 decoding of typical minute-data frames (``make bench``).

A typical frame is a 2051 minute upload from a water outlet: DataTime plus eight factors with
Min/Avg/Max/Flag (about 620 bytes). Frames are decoded in lenient mode, as the gateway does.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from liandong.hj212.decoding import decode, decode_python
from liandong.hj212.encoding import build_data_segment, build_frame
from liandong.hj212.native import native_available

_CODES = ("w01018", "w21003", "w21011", "w21001", "w01001", "w00000", "w01012", "w01014")


def minute_frames(count: int, seed: int = 212) -> list[bytes]:
    rng = random.Random(seed)
    frames = []
    for i in range(count):
        pairs = [("DataTime", f"2024050110{i % 60:02d}00")]
        for code in _CODES:
            low = rng.uniform(0, 200)
            pairs += [
                (f"{code}-Min", f"{low:.2f}"),
                (f"{code}-Avg", f"{low * 1.1:.2f}"),
                (f"{code}-Max", f"{low * 1.2:.2f}"),
                (f"{code}-Flag", "N"),
            ]
        segment = build_data_segment(
            qn=f"20240501103{i % 100000:06d}",
            st="32",
            cn="2051",
            pw="123456",
            mn=f"010000A8900016F{i % 4096:09X}",
            flag=5,
            cp_fields=pairs,
        )
        frames.append(build_frame(segment))
    return frames


def bench_decode(n: int = 50_000, *, native: bool = True) -> dict[str, Any]:
    """``decode`` as the gateway calls it (native hot path when installed), or pure Python."""
    fn = decode if native else decode_python
    frames = minute_frames(1000)
    for frame in frames:  # warm-up and sanity check
        assert fn(frame, lenient=True).warnings == ()
    batch = (frames * (n // len(frames) + 1))[:n]
    start = time.perf_counter()
    for frame in batch:
        fn(frame, lenient=True)
    elapsed = time.perf_counter() - start
    name = "hj212_decode_minute_frames"
    if not native:
        name += "_pure_python"
    elif not native_available():
        name += "_native_missing"
    return {
        "name": name,
        "value": round(n / elapsed),
        "unit": "frames/s",
        "target": 100000 if native else None,
        "command": "make bench",
    }


def run() -> list[dict[str, Any]]:
    return [bench_decode(), bench_decode(native=False)]


if __name__ == "__main__":
    for record in run():
        print(json.dumps(record))
