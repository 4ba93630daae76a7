"""Evidence content for the tests: a JPEG with EXIF time and GPS, a small MP4-like file."""

from __future__ import annotations

import hashlib
import io

from PIL import Image


def jpeg(
    when: str = "2026:03:02 11:10:00",
    lat: tuple[float, float, float] = (31.0, 18.0, 0.0),
    lon: tuple[float, float, float] = (120.0, 36.0, 0.0),
    colour: tuple[int, int, int] = (200, 30, 30),
) -> bytes:
    """A 1600x1200 photo taken at `when` (+08:00) at `lat`,`lon` (default 31.3 N, 120.6 E)."""
    exif = Image.Exif()
    exif.get_ifd(0x8769).update({0x9003: when, 0x9011: "+08:00"})
    exif.get_ifd(0x8825).update({1: "N", 2: lat, 3: "E", 4: lon})
    out = io.BytesIO()
    Image.new("RGB", (1600, 1200), colour).save(out, "JPEG", exif=exif)
    return out.getvalue()


def mp4(size: int, seed: int = 1) -> bytes:
    """`size` bytes starting like an ISO base media file (ftyp isom), then pseudo-random."""
    head = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
    body = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(head) + len(body) < size:
        block = hashlib.sha256(block).digest()
        body += block * 64
    return (head + bytes(body))[:size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
