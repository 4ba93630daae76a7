"""A photo's own metadata (EXIF capture time and GPS position) and its scaled preview, read
with Pillow. The original bytes stay the evidence; the preview is for the apps only."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image, ImageOps

log = logging.getLogger(__name__)

PREVIEW_EDGE = 1024  # longest edge of a preview, pixels
# a phone photo is well under this; larger claims are refused before decoding (Pillow's guard)
Image.MAX_IMAGE_PIXELS = 120_000_000

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL, _DATETIME = 0x9003, 0x9011, 0x0132
PHOTO_TYPES = frozenset({"image/jpeg", "image/png"})  # HEIC needs a decoder Pillow lacks


@dataclass(frozen=True)
class PhotoFacts:
    captured_at: datetime | None
    position: tuple[float, float] | None
    preview: bytes | None


def _rational(value: Any) -> float:
    return float(value[0]) / float(value[1]) if isinstance(value, tuple) else float(value)


def _degrees(dms: Any, ref: Any) -> float:
    d, m, s = (_rational(v) for v in dms)
    value = d + m / 60 + s / 3600
    return -value if str(ref).strip().upper() in ("S", "W") else value


def _time(exif: Any, zone: ZoneInfo) -> datetime | None:
    sub = exif.get_ifd(_EXIF_IFD)
    text = sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    if not text:
        return None
    try:
        local = datetime.strptime(str(text).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = str(sub.get(_OFFSET_TIME_ORIGINAL) or "").strip("\x00 ")
    if len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        sign = -1 if offset[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
        return local.replace(tzinfo=tz).astimezone(UTC)
    # EXIF without an offset is the camera's wall clock: the deployment's zone
    return local.replace(tzinfo=zone).astimezone(UTC)


def _position(exif: Any) -> tuple[float, float] | None:
    gps = exif.get_ifd(_GPS_IFD)
    try:
        lat, lon = _degrees(gps[2], gps[1]), _degrees(gps[4], gps[3])
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def read_photo(path: Path, zone: ZoneInfo) -> PhotoFacts:
    """EXIF time and position, and a JPEG preview; what cannot be read is None (a photo
    without EXIF, or one Pillow cannot decode, is still evidence)."""
    try:
        with Image.open(path) as img:
            exif = img.getexif()
            at, position = _time(exif, zone), _position(exif)
            try:
                img.draft("RGB", (PREVIEW_EDGE, PREVIEW_EDGE))  # JPEG: decode at reduced scale
                small = ImageOps.exif_transpose(img.convert("RGB"))
                small.thumbnail((PREVIEW_EDGE, PREVIEW_EDGE))
                out = io.BytesIO()
                small.save(out, "JPEG", quality=80)
                preview: bytes | None = out.getvalue()
            except (OSError, ValueError, Image.DecompressionBombError) as err:
                log.warning("no preview for %s: %s", path.name, err)
                preview = None
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        log.warning("photo %s unreadable: %s", path.name, err)
        return PhotoFacts(None, None, None)
    return PhotoFacts(at, position, preview)
