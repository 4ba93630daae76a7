"""Group commit for the asyncio server: concurrent writes share one transaction.

Calls queue their write and wait; one writer thread runs whatever has queued as one batch
(`CaseStore.run_batch`) and hands all results back to the event loop at once, so the thread
hop and the commit are paid per batch, not per write. While a batch commits the next one
fills, so the batch size follows the load with no timer: one write alone commits at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import Any

from casefile.adapters.store import CaseStore, WriteJob

log = logging.getLogger(__name__)
MAX_BATCH = 256


class GroupCommitter:
    def __init__(self, store: CaseStore, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._waiting: list[tuple[WriteJob, asyncio.Future[Any]]] = []
        self._running = False
        self._drainer: asyncio.Task[None] | None = None  # held: the loop keeps weak refs
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "casefile-writer")

    async def write(self, job: WriteJob) -> Any:
        """The job's result once the transaction holding it has committed (or its error)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((job, done))
        if not self._running:
            self._running = True
            self._drainer = loop.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
                try:
                    outcomes = await loop.run_in_executor(
                        self._thread, self.store.run_batch, [job for job, _ in batch]
                    )
                except Exception as err:  # run_batch reports job errors itself: a bug
                    log.exception("write batch failed")
                    outcomes = [(False, err)] * len(batch)
                for (_, done), (ok, value) in zip(batch, outcomes, strict=True):
                    if done.done():  # the caller went away; its write is stored all the same
                        continue
                    if ok:
                        done.set_result(value)
                    else:
                        done.set_exception(value)
        except BaseException as err:  # cancelled (shutdown): nobody is left waiting
            for _, done in self._waiting:
                if not done.done():
                    done.set_exception(err)
            self._waiting.clear()
            raise
        finally:
            self._running = False

    def close(self) -> None:
        self._thread.shutdown(wait=True)
