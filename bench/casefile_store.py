"""Benchmark: the case-file write path without gRPC, to show where a write's time goes.

The same writes as `casefile_grpc` (32 cases, 60 AddEvidence each, so documents grow to 60
items), built as the server builds them (command from the request message, fingerprint,
reply encoder) and committed in batches of 32 with `CaseStore.run_batch` on a fresh SQLite
file (WAL): one thread, no network, no event loop. Its CPU time per write, beside the no-op
server's and the full server's in `casefile_grpc`, splits a write into gRPC and write path.

Run: `python -m bench.casefile_store` or `make bench`."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from casefile import migrations
from casefile.adapters.codec import from_message
from casefile.adapters.store import CaseStore, OpenFields, WriteJob, make_engine
from casefile.domain import commands
from casefile.entrypoints.grpc_server import CaseFileService, _fingerprint, case_id_for_task
from liandong.tokens.claims import Principal, Role
from liandong.v1 import casefile_pb2

CASES = 32
WRITES_PER_CASE = 60
OFFICER = Principal("o1", frozenset({Role.ENFORCEMENT_OFFICER}))
SERVICE = Principal("dispatch", frozenset({Role.SERVICE}))


def _evidence_job(
    store: CaseStore, service: CaseFileService, case_id: str, n: int, k: int, now: datetime
) -> WriteJob:
    request = casefile_pb2.AddEvidenceRequest(
        request_id=f"e-{n}-{k}",
        case_id=case_id,
        evidence_id=f"E{k}",
        kind="PHOTO",
        sha256=f"{n * 1000 + k:064x}",
        captured_by="o1",
        description="outlet photo",
        media_type="image/jpeg",
    )
    request.captured_at.FromDatetime(now)
    return store.command_job(
        principal=OFFICER,
        request_id=request.request_id,
        fingerprint=_fingerprint(request),
        case_id=case_id,
        command=from_message(commands.AddEvidence, request),
        now=now,
        respond=lambda sc, scope, legal: service.case_reply(sc, scope, now, legal),
    )


def _measure() -> tuple[float, float, int]:
    folder = Path(tempfile.mkdtemp(prefix="casefile-store-bench-"))
    engine = make_engine(f"sqlite:///{folder / 'casefile.db'}")
    migrations.upgrade(engine)
    store = CaseStore(engine)
    service = CaseFileService(store)
    now = datetime.now(UTC)
    cases = []
    for n in range(CASES):
        task = f"bench-task-{n}"
        command = commands.OpenCase(
            case_id=case_id_for_task(task),
            source_ref=task,
            enterprise_id="ent-1",
            outlet_id="outlet-1",
            county_code="320583",
            discovered_at=now - timedelta(hours=1),
            officers=("o1", "o2"),
            monitoring_staff=("m1",),
        )
        store.open_case(
            principal=SERVICE,
            request_id=f"open-{n}",
            fingerprint=f"open-{n}",
            command=command,
            fields=OpenFields(task_id=task),
            now=now,
            respond=lambda sc, scope, legal: service.case_reply(sc, scope, now, legal),
        )
        cases.append(command.case_id)
    cpu, started = time.process_time(), time.perf_counter()
    for k in range(WRITES_PER_CASE):
        jobs = [_evidence_job(store, service, cases[n], n, k, now) for n in range(CASES)]
        failed = [value for ok, value in store.run_batch(jobs) if not ok]
        if failed:
            raise RuntimeError(f"write failed: {failed[0]!r}")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    entries = len(store.audit_entries())
    engine.dispose()
    writes = CASES * WRITES_PER_CASE
    return writes / elapsed, cpu / writes * 1000, entries


def run() -> list[dict]:
    rate, cpu_ms, entries = _measure()
    if entries != CASES * (WRITES_PER_CASE + 1):
        raise RuntimeError(f"expected {CASES * (WRITES_PER_CASE + 1)} audit entries, {entries}")
    common = {"command": "make bench (python -m bench.run casefile_store)"}
    return [
        {
            "name": "casefile_store_writes_batches_of_32_no_grpc",
            "value": round(rate, 1),
            "unit": "writes/s",
            "target": None,
            **common,
        },
        {
            "name": "casefile_store_cpu_per_write_no_grpc",
            "value": round(cpu_ms, 3),
            "unit": "ms",
            "target": None,
            **common,
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
