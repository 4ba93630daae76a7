"""Whether the worker has judged its partitions up to their ends, before it closes hours on
its wall clock (issue 13, item 4).

Why: an hour is judged complete or missing on the wall clock. A worker that restarts, takes
over partitions or waits out a broker outage has records of that hour still to read; closing
the hour then opened HOUR_INCOMPLETE / HOUR_MISSING episodes for minutes that were on the
topic and acked, amended later. So hours close only when the worker has judged every owned
partition up to the end the broker gave for it at most `max_behind_s` ago: every record
appended before then is judged, so a logger the judge thinks quiet was not heard from in the
part of the log still unread for longer than that. When the broker does not answer, how far
behind the worker is stays unknown and nothing closes.

The position on a partition is its first offset not judged, and records are judged in
offset order (`admits`): a record beyond a hole (records lost between the fetch and the agent,
which faust does after an assignment and, rarely, mid-stream) is not judged until the hole is
read again. Judged first, the later minutes close the hours between by watermark, empty: a
fresh-clone CI run (2026-12-07) lost 491-~2080 of a partition mid-backlog, judged what came
after, and opened HOUR_MISSING for five complete hours of each outlet there.

A count of unjudged records was used before and is not enough: a partition holding few
outlets is under any count while its backlog still holds the rest of their hours (a fresh-
clone CI run closed such an hour on 2026-12-07).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping

log = logging.getLogger(__name__)

# How far behind the log (in seconds since its end was read) a worker may be and still close
# hours: well under the judge's 60-s quiet time, more than a few timer ticks.
MAX_BEHIND_S = float(os.environ.get("LIANDONG_ALERTS_CLOSE_MAX_BEHIND_S", "30"))
HIGHWATER_TIMEOUT_S = 5.0
# A hole the worker has not read again after this long is given up on (logged as an error):
# holding a partition's judging, hours and offline alarms for ever would be worse than one
# hour judged short.
HOLE_GIVE_UP_S = float(os.environ.get("LIANDONG_ALERTS_HOLE_GIVE_UP_S", "300"))

Highwaters = Callable[[list[int]], Awaitable[Mapping[int, int]]]  # partition -> end offset
Committed = Callable[[int], int | None]  # partition -> committed offset (next to read)


class BacklogGate:
    def __init__(
        self,
        highwaters: Highwaters,
        committed: Committed,
        max_behind_s: float = MAX_BEHIND_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.highwaters = highwaters
        self.committed = committed
        self.max_behind_s = max_behind_s
        self.clock = clock
        self._next: dict[int, int] = {}  # partition -> first offset not judged
        self._start: dict[int, int] = {}  # partition -> where reading starts again
        self._hole_since: dict[int, float] = {}  # partition -> when records beyond a hole came
        self._ends: deque[tuple[float, dict[int, int]]] = deque()  # (read at, partition -> end)
        self.last_lag: dict[int, int] = {}

    def expected(self, partition: int) -> int | None:
        """The first offset of `partition` not judged (None: unknown, any offset will do)."""
        nxt = self._next.get(partition)
        if nxt is None:
            nxt = self._start.get(partition)
        if nxt is None:
            nxt = self.committed(partition)
        return nxt

    def admits(self, partition: int, offset: int) -> bool:
        """Whether the record at `offset` may be judged now: not beyond the first offset not
        judged. A hole not read again in HOLE_GIVE_UP_S is given up on (logged as an error):
        holding a partition for ever would be worse than one hour judged short."""
        nxt = self.expected(partition)
        if nxt is None or offset <= nxt:
            return True
        now = self.clock()
        since = self._hole_since.setdefault(partition, now)
        if now - since < HOLE_GIVE_UP_S:
            return False
        log.error(
            "offsets %d-%d of partition %d were never delivered in %.0f s; judging on without them",
            nxt,
            offset - 1,
            partition,
            now - since,
        )
        self._hole_since.pop(partition, None)
        self._start.pop(partition, None)
        self._next[partition] = offset
        return True

    def judged(self, partition: int, offset: int) -> None:
        """Note a judged record (admitted: at or before the first offset not judged; one
        before it is judged again, as after a re-read)."""
        nxt = self.expected(partition)
        self._start.pop(partition, None)
        if nxt is None or offset >= nxt:
            self._next[partition] = offset + 1
            self._hole_since.pop(partition, None)
        else:
            self._next[partition] = nxt

    def reading_from(self, partition: int, offset: int) -> None:
        """The partition is read again from `offset` (a hole repaired, or the log's start
        when retention removed the records from the committed offset on)."""
        self._next.pop(partition, None)
        self._start[partition] = offset

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._next.pop(p, None)
            self._start.pop(p, None)
            self._hole_since.pop(p, None)

    async def caught_up(self, partitions: Iterable[int]) -> bool:
        owned = sorted(partitions)
        if not owned:
            return True
        try:
            async with asyncio.timeout(HIGHWATER_TIMEOUT_S):
                answer = await self.highwaters(owned)
        except Exception as err:  # broker unreachable: the backlog is unknown
            log.warning("hours not closed: high-water marks unavailable (%r)", err)
            return False
        missing = [p for p in owned if answer.get(p) is None]
        if missing:
            log.warning("hours not closed: no high-water mark for partitions %s", missing)
            return False
        now = self.clock()
        self._ends.append((now, {p: int(answer[p]) for p in owned}))
        while self._ends and now - self._ends[0][0] > self.max_behind_s:
            self._ends.popleft()
        position = {p: self.expected(p) or 0 for p in owned}
        self.last_lag = {p: max(answer[p] - position[p], 0) for p in owned}
        # The oldest end still recent enough asks the least; a partition taken over since it
        # was read is not in it, so only later reads can let that partition close hours.
        for _, ends in self._ends:
            if all(p in ends and position[p] >= ends[p] for p in owned):
                return True
        behind = {p: n for p, n in self.last_lag.items() if n}
        log.info("hours not closed: behind on partitions %s", behind)
        return False
