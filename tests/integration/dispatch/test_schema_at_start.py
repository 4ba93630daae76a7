"""Replicas starting together on one fresh PostgreSQL database both create dispatch's tables
(found by `make chaos`: one of two dispatch processes started at once exited on a duplicate
CREATE TABLE)."""

from __future__ import annotations

import threading

from dispatch.adapters.credentials import CredentialStore
from dispatch.adapters.field_files import FieldFiles
from dispatch.adapters.store import DispatchStore, make_engine


def test_replicas_starting_at_once_create_the_schema_once(pg_database: str) -> None:
    starters = 4
    barrier = threading.Barrier(starters)
    errors: list[BaseException] = []

    def start() -> None:
        engine = make_engine(pg_database)
        try:
            barrier.wait()
            CredentialStore(engine)
            FieldFiles(engine)
            DispatchStore(engine)
        except BaseException as err:  # reported by the test thread below
            errors.append(err)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
