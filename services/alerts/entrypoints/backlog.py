"""Whether the worker has judged its partitions up to their ends, before it closes hours on
its wall clock (issue 13, item 4).

Why: an hour is judged complete or missing on the wall clock. A worker that restarts, takes
over partitions or waits out a broker outage has records of that hour still to read; closing
the hour then opened HOUR_INCOMPLETE / HOUR_MISSING episodes for minutes that were on the
topic and acked, amended later. So hours close only when every owned partition's unjudged
records (its high-water mark less the next offset to judge) are few, and the high-water marks
were just read from the broker: when the broker does not answer, the lag is unknown and
nothing closes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping

log = logging.getLogger(__name__)

# Records a partition may have unjudged and still close hours: a live stream is always a
# batch or so behind its end, a backlog is thousands.
MAX_LAG = int(os.environ.get("LIANDONG_ALERTS_CLOSE_MAX_LAG", "2000"))
HIGHWATER_TIMEOUT_S = 5.0

Highwaters = Callable[[list[int]], Awaitable[Mapping[int, int]]]  # partition -> end offset
Committed = Callable[[int], int | None]  # partition -> committed offset (next to read)


class BacklogGate:
    def __init__(self, highwaters: Highwaters, committed: Committed, max_lag: int = MAX_LAG):
        self.highwaters = highwaters
        self.committed = committed
        self.max_lag = max_lag
        self._next: dict[int, int] = {}  # partition -> next offset to judge
        self.last_lag: dict[int, int] = {}

    def judged(self, partition: int, offset: int) -> None:
        if offset + 1 > self._next.get(partition, -1):
            self._next[partition] = offset + 1

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._next.pop(p, None)

    async def caught_up(self, partitions: Iterable[int]) -> bool:
        owned = sorted(partitions)
        if not owned:
            return True
        try:
            async with asyncio.timeout(HIGHWATER_TIMEOUT_S):
                ends = await self.highwaters(owned)
        except Exception as err:  # broker unreachable: the backlog is unknown
            log.warning("hours not closed: high-water marks unavailable (%r)", err)
            return False
        lag = {}
        for p in owned:
            end = ends.get(p)
            if end is None:
                log.warning("hours not closed: no high-water mark for partition %d", p)
                return False
            position = self._next.get(p, self.committed(p) or 0)
            lag[p] = max(end - position, 0)
        self.last_lag = lag
        behind = {p: n for p, n in lag.items() if n > self.max_lag}
        if behind:
            log.info("hours not closed: behind on partitions %s", behind)
            return False
        return True
