"""Live push to phones: wakes the server-sent-event streams of the people concerned.

The notification log in the database is the truth (ids, order, resume); this only tells a
waiting stream that there is something new to read, so a missed wake-up costs at most one
keep-alive interval and never a notification."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator


class PushHub:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def subscribe(self, person_id: str) -> Iterator[asyncio.Event]:
        flag = asyncio.Event()
        self._waiters.setdefault(person_id, set()).add(flag)
        try:
            yield flag
        finally:
            waiting = self._waiters.get(person_id)
            if waiting is not None:
                waiting.discard(flag)
                if not waiting:
                    del self._waiters[person_id]

    def wake(self, person_ids: Iterable[str]) -> None:
        for pid in set(person_ids):
            for flag in self._waiters.get(pid, ()):
                flag.set()

    def listeners(self, person_id: str) -> int:
        return len(self._waiters.get(person_id, ()))

    def wake_all(self) -> None:
        for waiting in self._waiters.values():
            for flag in waiting:
                flag.set()
