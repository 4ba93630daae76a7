"""Pure rules of evidence content: media type from the bytes, size limits, EXIF against the
phone's report."""

from __future__ import annotations

from datetime import timedelta

import pytest

from casefile.domain.evidence import (
    DEFAULT_LIMITS,
    SizeLimits,
    Tolerance,
    disagreements,
    distance_m,
    media_type_of,
    parse_size,
)
from tests.unit.casefile.scenario import utc

SIGNATURES = {
    b"\xff\xd8\xff\xe0\x00\x10JFIF": "image/jpeg",
    b"\x89PNG\r\n\x1a\n\x00\x00": "image/png",
    b"\x00\x00\x00\x18ftypheic\x00\x00": "image/heic",
    b"\x00\x00\x00\x18ftypmif1\x00\x00": "image/heic",
    b"\x00\x00\x00\x20ftypisom\x00\x00": "video/mp4",
    b"\x00\x00\x00\x14ftypqt  \x00\x00": "video/quicktime",
    b"\x00\x00\x00\x1cftypM4A \x00\x00": "audio/mp4",
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm": "video/webm",
    b"\xff\xf1\x50\x80": "audio/aac",
    b"OggS\x00\x02": "audio/ogg",
    b"RIFF\x24\x08\x00\x00WAVEfmt ": "audio/wav",
    b"ID3\x04\x00": "audio/mpeg",
    b"%PDF-1.7\n": "application/pdf",
}


@pytest.mark.parametrize(("head", "media_type"), SIGNATURES.items())
def test_media_type_is_read_from_the_bytes(head: bytes, media_type: str) -> None:
    assert media_type_of(head) == media_type


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello world",
        b"<html><body>",
        b"PK\x03\x04zip",
        b"\x1a\x45\xdf\xa3\x9f\x42\x86matroska",  # Matroska, not WebM
        b"\x00\x00\x00\x18ftypcrx \x00",  # an ISO file of another brand
        b"RIFF\x24\x08\x00\x00AVI LIST",
    ],
)
def test_other_content_is_refused(head: bytes) -> None:
    assert media_type_of(head) is None


def test_size_limits_exact_type_then_family_then_default() -> None:
    limits = SizeLimits.parse("image/*=2MB,image/png=1KB,video/*=1G", default=5)
    assert limits.limit_for("image/png") == 1024
    assert limits.limit_for("image/jpeg") == 2 * 2**20
    assert limits.limit_for("video/mp4") == 2**30
    assert limits.limit_for("application/pdf") == 5
    assert limits.largest == 2**30
    assert DEFAULT_LIMITS.limit_for("video/quicktime") == 2**30
    for bad in ("image=5MB", "image/*", "image/*=5XB", "image/*=-1"):
        with pytest.raises(ValueError):
            SizeLimits.parse(bad, default=1)
    assert parse_size("25MB") == 25 * 2**20 and parse_size("7") == 7


def test_disagreements_beyond_tolerance_only() -> None:
    at, here = utc(2026, 3, 2, 3), (31.3, 120.6)
    tol = Tolerance(seconds=300, metres=200)
    same = disagreements(
        reported_at=at, reported_position=here, exif_at=at + timedelta(seconds=299),
        exif_position=(31.3010, 120.6), tolerance=tol,
    )  # fmt: skip
    assert same == ()  # 111 m and 299 s: within
    late = disagreements(
        reported_at=at, reported_position=here, exif_at=at - timedelta(minutes=30),
        exif_position=(31.31, 120.6), tolerance=tol,
    )  # fmt: skip
    assert [f.split(":")[0] for f in late] == ["CAPTURE_TIME_DISAGREES", "POSITION_DISAGREES"]
    assert "1800 s > 300 s" in late[0] and "1112 m > 200 m" in late[1]
    # no EXIF, or no reported position: nothing to compare, nothing flagged
    assert (
        disagreements(
            reported_at=at, reported_position=None, exif_at=None, exif_position=here, tolerance=tol
        )
        == ()
    )


def test_distance() -> None:
    assert distance_m((31.3, 120.6), (31.3, 120.6)) == 0
    assert round(distance_m((0, 0), (0, 1))) == 111_195  # one degree of the equator
