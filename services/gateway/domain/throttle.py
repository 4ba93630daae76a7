"""Per-connection rate limiting: a token bucket over frames (or bytes), time passed in."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TokenBucket"]


@dataclass
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full.

    ``take`` never blocks: it answers how long the caller must wait before the tokens it asked
    for are covered (0.0 when they are available now) and books them either way, so a peer
    that keeps sending is slowed to ``rate`` rather than served in bursts.
    """

    rate: float
    burst: float
    _tokens: float = field(init=False)
    _at: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._tokens = self.burst

    def take(self, now: float, tokens: float = 1.0) -> float:
        """Book ``tokens`` at monotonic time ``now`` (seconds); return the wait in seconds."""
        if self._at is not None and now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        if self._at is None or now > self._at:
            self._at = now
        self._tokens -= tokens
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def available(self, now: float) -> float:
        """Tokens that ``take`` could book at ``now`` without waiting."""
        if self._at is None or now <= self._at:
            return self._tokens
        return min(self.burst, self._tokens + (now - self._at) * self.rate)
