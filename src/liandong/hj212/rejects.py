"""Why an HJ 212 frame, or a run of stream bytes, is rejected: the reasons published on the
dead-letter topic, and the error that carries one."""

from __future__ import annotations

import enum


class RejectReason(enum.StrEnum):
    """Why a frame or a run of bytes was rejected. Published on the dead-letter topic: stable."""

    BAD_HEADER = "bad_header"
    """The frame does not start with ``##``."""
    BAD_LENGTH = "bad_length"
    """The length field is not 4 decimal digits, or the frame is too short to hold a CRC."""
    LENGTH_MISMATCH = "length_mismatch"
    """The length field disagrees with the data segment's UTF-8 byte count."""
    BAD_CRC = "bad_crc"
    """The check code matches no accepted algorithm (or is lower-case, in strict mode)."""
    BAD_TAIL = "bad_tail"
    """The frame does not end with CR LF (or the stream has no tail where one is due)."""
    TOO_LARGE = "too_large"
    """The data segment (or frame) is longer than allowed."""
    BAD_SEGMENT = "bad_segment"
    """The data segment's syntax is broken (no ``CP=&&``, empty or duplicate items, ...)."""
    MISSING_FIELD = "missing_field"
    """A required header field (CN, MN; in strict mode also QN, ST, PW, Flag) is absent."""
    BAD_FIELD = "bad_field"
    """A field value has the wrong format."""
    NOT_UTF8 = "not_utf8"
    """The data segment is not valid UTF-8."""
    GARBAGE = "garbage"
    """Stream bytes outside any frame (before ``##``)."""
    TRUNCATED = "truncated"
    """The stream ended in the middle of a frame."""
    INCOMPLETE_SUBPACKETS = "incomplete_subpackets"
    """A split upload timed out before all its subpackets arrived."""


class FrameError(Exception):
    """A frame that cannot be decoded (in the chosen mode)."""

    def __init__(self, code: RejectReason, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
