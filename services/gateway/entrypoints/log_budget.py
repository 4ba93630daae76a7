"""A budget for a log line that bad input can trigger at will (a rejected frame): at most
`per_second` lines a second, then one line saying how many were left out. The metrics count
every event; the log only has to show that they happen."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class LogBudget:
    def __init__(
        self,
        log: logging.Logger,
        per_second: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.per_second = per_second
        self.clock = clock
        self.tokens = per_second
        self.last = clock()
        self.suppressed = 0

    def info(self, message: str, *args: object) -> None:
        now = self.clock()
        self.tokens = min(self.per_second, self.tokens + (now - self.last) * self.per_second)
        self.last = now
        if self.tokens < 1:
            self.suppressed += 1
            return
        self.tokens -= 1
        if self.suppressed:
            self.log.warning("%d similar log lines left out (log budget)", self.suppressed)
            self.suppressed = 0
        self.log.info(message, *args)
