"""Push wake-ups from the other replicas: PostgreSQL LISTEN on the channel every step's commit
notifies (store.WAKE_CHANNEL), handed to this process's PushHub.

A phone's stream is served by whichever replica it connected to, and the step that notified
its person may have run in another one: without this it would hear of it only at its next
re-read. A lost connection wakes everyone (a wake-up may have been missed; one re-read each)
and is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import psycopg
from sqlalchemy.engine import Engine

from dispatch.adapters.push import PushHub
from dispatch.adapters.store import WAKE_ALL, WAKE_CHANNEL

log = logging.getLogger(__name__)


def conninfo(engine: Engine) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL engine."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class DatabaseWakeups:
    def __init__(self, engine: Engine, hub: PushHub, max_backoff_s: float = 10.0) -> None:
        self.dsn = conninfo(engine)
        self.hub = hub
        self.max_backoff_s = max_backoff_s
        self.listening = asyncio.Event()  # set while LISTEN is in place

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                await self._listen(stop)
                backoff = 0.5
            except (psycopg.Error, OSError) as err:
                log.warning("push wake-ups: %s; retrying in %.1f s", err, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            finally:
                if self.listening.is_set():
                    self.listening.clear()
                    self.hub.wake_all()

    async def _listen(self, stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(f"LISTEN {WAKE_CHANNEL}")
            self.listening.set()
            self.hub.wake_all()  # anything committed before LISTEN took effect
            while not stop.is_set():
                # a bounded wait, so `stop` is seen within a second
                async for note in conn.notifies(timeout=1.0):
                    self._wake(note.payload)

    def _wake(self, payload: str) -> None:
        if payload == WAKE_ALL:
            self.hub.wake_all()
            return
        try:
            listeners = json.loads(payload)
        except ValueError:
            log.warning("push wake-ups: unreadable payload %r; waking everyone", payload[:80])
            self.hub.wake_all()
            return
        self.hub.wake(str(p) for p in listeners)
