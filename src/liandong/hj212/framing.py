"""Cutting an HJ 212 TCP byte stream into candidate frames.

TCP reads do not align with frames: one read may hold several frames, a frame may be split
over reads, and loggers send stray bytes (modem chatter, heartbeats, truncated retries). The
reader follows the declared length; when the tail is not where the length says, it falls back
to the next LF (so a frame with a wrong length field still reaches ``decode``, which judges
it). Everything skipped is returned with a reason so the caller can dead-letter it; the
buffer never holds more than ``max_frame`` bytes. CRCs are ``decode``'s business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from liandong.hj212.rejects import RejectReason

__all__ = ["FrameChunk", "FrameReader"]

_HEAD = b"##"
_PREFIX = 6  # "##" + 4-digit length
# where a frame may start: "##" and its length digits (those that have arrived so far)
_START = re.compile(rb"##(?:[0-9]{4}|[0-9]{0,3}\Z)")
_OVERHEAD = 12  # prefix + CRC + CR LF


@dataclass(frozen=True, slots=True)
class FrameChunk:
    """Either a candidate frame or skipped bytes with the reason they were skipped."""

    frame: bytes | None = None
    garbage: bytes | None = None
    reason: RejectReason | None = None


class FrameReader:
    """Incremental frame splitter for one connection."""

    def __init__(self, max_frame: int = 4096) -> None:
        if max_frame < _OVERHEAD:
            raise ValueError("max_frame must hold at least an empty frame")
        self._max = max_frame
        self._buf = bytearray()
        # After an oversized frame, bytes up to the next "##" still belong to it.
        self._skip_reason = RejectReason.GARBAGE

    def pending(self) -> int:
        """Bytes buffered while waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[FrameChunk]:
        """Add bytes read from the connection; return the frames and skipped runs now complete."""
        buf = self._buf
        buf += data
        out: list[FrameChunk] = []
        while buf:
            start = buf.find(_HEAD)
            if start != 0:
                # Keep a lone trailing '#': it may be the first half of the next "##".
                cut = start if start > 0 else len(buf) - (1 if buf[-1] == 0x23 else 0)
                if cut:
                    self._skip(out, cut, self._skip_reason)
                if start < 0:
                    break
                continue
            self._skip_reason = RejectReason.GARBAGE
            if not self._take_frame(out):
                break
        return out

    def flush(self) -> list[FrameChunk]:
        """End of stream: hand over what is left (a tail-less frame, or truncated bytes)."""
        buf = self._buf
        out: list[FrameChunk] = []
        if not buf:
            return out
        length = _length(buf)
        if length is not None and len(buf) == _PREFIX + length + 4:
            out.append(FrameChunk(frame=bytes(buf)))
        elif buf.startswith(_HEAD):
            out.append(FrameChunk(garbage=bytes(buf), reason=RejectReason.TRUNCATED))
        else:
            out.append(FrameChunk(garbage=bytes(buf), reason=self._skip_reason))
        buf.clear()
        return out

    def _skip(self, out: list[FrameChunk], n: int, reason: RejectReason) -> None:
        out.append(FrameChunk(garbage=bytes(self._buf[:n]), reason=reason))
        del self._buf[:n]

    def _emit(self, out: list[FrameChunk], n: int) -> None:
        out.append(FrameChunk(frame=bytes(self._buf[:n])))
        del self._buf[:n]

    def _take_frame(self, out: list[FrameChunk]) -> bool:
        """The buffer starts with "##". Emit one chunk and return True, or False to wait."""
        buf = self._buf
        have = len(buf)
        if have < _PREFIX:
            if buf[2:].isdigit() or have == 2:
                return False
            self._resync(out, RejectReason.BAD_LENGTH)
            return True
        length = _length(buf)
        if length is None:
            self._resync(out, RejectReason.BAD_LENGTH)
            return True
        tail_at = _PREFIX + length + 4
        if tail_at + 2 <= self._max:
            if have < tail_at + 1:
                return False
            if buf[tail_at] == 0x0A:  # LF-only tail: decode decides whether to accept it
                self._emit(out, tail_at + 1)
                return True
            if have < tail_at + 2:
                return False
            pair = buf[tail_at : tail_at + 2]
            if pair == b"\r\n":
                self._emit(out, tail_at + 2)
                return True
            if pair == _HEAD:  # tail missing, next frame follows: decode decides
                self._emit(out, tail_at)
                return True
        return self._fallback(out)

    def _fallback(self, out: list[FrameChunk]) -> bool:
        """The length field is wrong (or too large): look for the tail by content."""
        buf = self._buf
        limit = min(len(buf), self._max)
        lf = buf.find(b"\n", _PREFIX, limit)
        nxt = buf.find(_HEAD, 1, limit)
        if lf >= 0 and (nxt < 0 or lf < nxt):
            self._emit(out, lf + 1)
            return True
        if nxt >= 0:
            self._skip(out, nxt, RejectReason.BAD_TAIL)
            return True
        if len(buf) >= self._max:
            keep = 1 if buf[self._max - 1] == 0x23 else 0
            self._skip(out, self._max - keep, RejectReason.TOO_LARGE)
            self._skip_reason = RejectReason.TOO_LARGE
            return True
        return False

    def _resync(self, out: list[FrameChunk], reason: RejectReason) -> None:
        """Drop the bad "##" and everything up to the next "##" that may start a frame (digits
        after it, as far as they have arrived), or all but a trailing '#'. A run of '#' is one
        skipped chunk, not one per byte (a '#' flood used to become a dead letter per byte)."""
        buf = self._buf
        found = _START.search(buf, 1)
        nxt = found.start() if found is not None else len(buf) - (1 if buf[-1] == 0x23 else 0)
        self._skip(out, nxt, reason)


def _length(buf: bytearray) -> int | None:
    field = buf[2:_PREFIX]
    if len(field) != 4 or not field.isdigit() or not buf.startswith(_HEAD):
        return None
    return int(field)
