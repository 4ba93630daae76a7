"""Evidence content: what the bytes are, how large they may be, and whether a photo's own
metadata agrees with what the phone reported. Pure (no I/O): the upload path feeds it the
first bytes, the sizes and the EXIF values read by an adapter.

Media types are read from the content's signature (magic bytes), never taken from the client:
a table of the formats field phones produce (photos, video, audio, scanned documents). A small
own table rather than a library, because the set is closed (what the limits and the preview
code know) and the ISO base media family (mp4, mov, heic, m4a) needs its `ftyp` brand told
apart, which general sniffers answer loosely (m4a as video/mp4, heic as unknown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

# the longest prefix `media_type_of` needs
SNIFF_BYTES = 64

_FTYP_BRANDS: dict[bytes, str] = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"mif1": "image/heic",
    b"msf1": "image/heic",
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"isom": "video/mp4",
    b"iso2": "video/mp4",
    b"iso4": "video/mp4",
    b"iso5": "video/mp4",
    b"iso6": "video/mp4",
    b"mp41": "video/mp4",
    b"mp42": "video/mp4",
    b"avc1": "video/mp4",
    b"dash": "video/mp4",
    b"MSNV": "video/mp4",
    b"3gp4": "video/3gpp",
    b"3gp5": "video/3gpp",
    b"3gp6": "video/3gpp",
}

# every media type the store accepts
MEDIA_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/heic",
        "video/mp4",
        "video/quicktime",
        "video/3gpp",
        "video/webm",
        "audio/mp4",
        "audio/aac",
        "audio/ogg",
        "audio/wav",
        "audio/mpeg",
        "application/pdf",
    }
)

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/heic": "heic",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/3gpp": "3gp",
    "video/webm": "webm",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/ogg": "ogg",
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "application/pdf": "pdf",
}


def media_type_of(head: bytes) -> str | None:
    """The media type of content starting with `head` (its first SNIFF_BYTES), or None when
    it is none of MEDIA_TYPES."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # EBML: WebM names its DocType "webm" in the header (Matroska says "matroska")
        return "video/webm" if b"webm" in head[:SNIFF_BYTES] else None
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12])
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE6 == 0xE2):
        return "audio/mpeg"  # ID3 tag, or an MPEG-1/2 layer III frame sync
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "audio/aac"  # ADTS frame sync, layer 00
    return None


def extension_of(media_type: str) -> str:
    return EXTENSIONS.get(media_type, "bin")


@dataclass(frozen=True)
class SizeLimits:
    """Largest accepted content per media type: an exact type wins over its family (`image/*`),
    which wins over `default`."""

    limits: tuple[tuple[str, int], ...]
    default: int

    def limit_for(self, media_type: str) -> int:
        table = dict(self.limits)
        if media_type in table:
            return table[media_type]
        family = media_type.split("/", 1)[0] + "/*"
        return table.get(family, self.default)

    @property
    def largest(self) -> int:
        return max([self.default, *(n for _, n in self.limits)])

    @classmethod
    def parse(cls, text: str, default: int) -> SizeLimits:
        """`image/*=25MB,video/*=500MB,application/pdf=50MB` (B, KB, MB, GB: powers of 1024)."""
        out: list[tuple[str, int]] = []
        for part in text.split(","):
            if not part.strip():
                continue
            name, sep, size = part.partition("=")
            if not sep or "/" not in name:
                raise ValueError(f"size limit {part!r}: expected type/subtype=SIZE")
            out.append((name.strip(), parse_size(size)))
        return cls(tuple(out), default)


DEFAULT_LIMITS = SizeLimits(
    (
        ("image/*", 40 * 2**20),
        ("video/*", 1024 * 2**20),
        ("audio/*", 200 * 2**20),
        ("application/pdf", 100 * 2**20),
    ),
    default=100 * 2**20,
)

_UNITS = {"": 1, "B": 1, "KB": 2**10, "K": 2**10, "MB": 2**20, "M": 2**20, "GB": 2**30, "G": 2**30}


def parse_size(text: str) -> int:
    t = text.strip().upper()
    digits = t.rstrip("KMGB")
    unit = t[len(digits) :]
    if not digits.isdigit() or unit not in _UNITS:
        raise ValueError(f"size {text!r}: expected e.g. 25MB")
    return int(digits) * _UNITS[unit]


# ---- photo metadata against the phone's report ---------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    seconds: float = 300.0
    metres: float = 200.0


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine, mean Earth radius) in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(h)))


def disagreements(
    *,
    reported_at: datetime,
    reported_position: tuple[float, float] | None,
    exif_at: datetime | None,
    exif_position: tuple[float, float] | None,
    tolerance: Tolerance,
) -> tuple[str, ...]:
    """Flags for the evidence record where the photo's own metadata and the phone's report
    differ by more than the tolerance. Absent metadata is not a disagreement (many phones
    strip GPS); it is visible as an absent EXIF value on the record."""
    flags: list[str] = []
    if exif_at is not None:
        gap = abs((exif_at - reported_at).total_seconds())
        if gap > tolerance.seconds:
            flags.append(
                f"CAPTURE_TIME_DISAGREES: EXIF {exif_at.isoformat()} vs reported "
                f"{reported_at.isoformat()} ({gap:.0f} s > {tolerance.seconds:.0f} s)"
            )
    if exif_position is not None and reported_position is not None:
        metres = distance_m(exif_position, reported_position)
        if metres > tolerance.metres:
            flags.append(
                f"POSITION_DISAGREES: EXIF {exif_position[0]:.6f},{exif_position[1]:.6f} vs "
                f"reported {reported_position[0]:.6f},{reported_position[1]:.6f} "
                f"({metres:.0f} m > {tolerance.metres:.0f} m)"
            )
    return tuple(flags)
