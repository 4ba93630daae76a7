"""Benchmark: case-file writes through the real gRPC server on SQLite (WAL), 32 clients.

A server process-local grpc.aio server with auth required (HS256) and the store on a fresh
SQLite file; 32 concurrent clients, each on its own case, send AddEvidence writes (each one a
full transaction: idempotency record, case document, hash-chained audit entry, outbox event,
clock check). Measures committed writes/s and the p99 client-observed latency.

Honesty about the shared cores: the 32 clients run with grpc.aio in a separate process (so
their CPU is not the server's event loop), and the server process's CPU time per write is
reported beside the client process's: both processes share this machine's cores.

The same clients are also run against a no-op server (the same service name and method,
answering a fixed Case at once): its rate and p99 are the ceiling of grpc.aio with these
clients on this machine at that moment, so the case-file figures can be read against it.
The server process tunes its garbage collector as `liandong run casefile` does (`tune_gc`).

A third run is the real server (auth, request checks, fingerprint, command, group commit and
its writer thread) on a store that answers AddEvidence at once instead of running its
transaction: what the server would do with a write path that cost nothing. Its rate and p99
bound what any faster store could reach in this process design on this machine.

Run: `python -m bench.casefile_grpc` or `make bench`."""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from casefile import migrations
from casefile.adapters.store import CaseStore, Outcome, WriteJob, make_engine
from casefile.entrypoints.grpc_server import SERVICE_NAME, serve, tune_gc
from liandong.tokens.issuing import issue
from liandong.tokens.verifying import AuthConfig
from liandong.v1 import casefile_pb2, casefile_pb2_grpc

CLIENTS = 32
WRITES_PER_CLIENT = 60
KEY = "bench-key-0123456789abcdef0123456789"


def _open(i: int, discovered: datetime) -> casefile_pb2.OpenCaseRequest:
    request = casefile_pb2.OpenCaseRequest(
        request_id=f"open-{i}",
        task_id=f"bench-task-{i}",
        enterprise_id="ent-1",
        outlet_id="outlet-1",
        county="320583",
        team=[
            casefile_pb2.Party(person_id="o1", role="ENFORCEMENT"),
            casefile_pb2.Party(person_id="o2", role="ENFORCEMENT"),
            casefile_pb2.Party(person_id="m1", role="MONITORING"),
        ],
        opened_by="dispatch",
    )
    request.discovered_at.FromDatetime(discovered)
    return request


async def _clients(address: str, cases: list[str]) -> tuple[list[float], float, float]:
    officer = (("authorization", "Bearer " + issue(KEY, sub="o1", roles=["officer"])),)
    now = datetime.now(UTC)
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = casefile_pb2_grpc.CaseFileStub(channel)

        async def client(n: int) -> None:
            for k in range(WRITES_PER_CLIENT):
                request = casefile_pb2.AddEvidenceRequest(
                    request_id=f"e-{n}-{k}",
                    case_id=cases[n],
                    evidence_id=f"E{k}",
                    kind="PHOTO",
                    sha256=f"{n * 1000 + k:064x}",
                    captured_by="o1",
                    description="outlet photo",
                    media_type="image/jpeg",
                )
                request.captured_at.FromDatetime(now)
                started = time.perf_counter()
                await stub.AddEvidence(request, metadata=officer)
                latencies.append(time.perf_counter() - started)

        cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    return latencies, elapsed, time.process_time() - cpu


def _client_process(address: str, cases: list[str]) -> tuple[list[float], float, float]:
    return asyncio.run(_clients(address, cases))


async def _in_client_process(address: str, cases: list[str]) -> tuple[list[float], float, float]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pending = pool.apply_async(_client_process, (address, cases))
        while not pending.ready():  # keep serving while the client process runs
            await asyncio.sleep(0.05)
        return pending.get()  # type: ignore[no-any-return]


def _p(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[max(0, int(len(ordered) * q) - 1)]


async def _noop_floor() -> tuple[float, float]:
    """Rate and p99 (ms) of the same clients against a server that does no work."""
    reply = casefile_pb2.Case(case_id="case-0", state="OPENED", version=1).SerializeToString()

    async def add_evidence(_request: object, _context: object) -> bytes:
        return reply

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        add_evidence,
        request_deserializer=casefile_pb2.AddEvidenceRequest.FromString,
        response_serializer=bytes,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE_NAME, {"AddEvidence": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        latencies, elapsed, _ = await _in_client_process(
            f"127.0.0.1:{port}", [f"case-{n}" for n in range(CLIENTS)]
        )
    finally:
        await server.stop(None)
    return len(latencies) / elapsed, _p(latencies, 0.99) * 1000


class _NoWriteStore(CaseStore):
    """Runs OpenCase for real and answers every AddEvidence with a fixed reply (no
    transaction): the server around a write path that costs nothing."""

    reply = casefile_pb2.Case(case_id="case-0", state="OPENED", version=2).SerializeToString()

    def run_batch(self, jobs: list[WriteJob]) -> list[Outcome]:
        if all(job.request_key and job.request_key[2] == "AddEvidence" for job in jobs):
            return [(True, self.reply) for _ in jobs]
        return super().run_batch(jobs)


async def _measure(
    store_type: type[CaseStore] = CaseStore,
) -> tuple[float, float, float, int, float, float]:
    folder = Path(tempfile.mkdtemp(prefix="casefile-bench-"))
    engine = make_engine(f"sqlite:///{folder / 'casefile.db'}")
    migrations.upgrade(engine)
    store = store_type(engine)
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve(
            store,
            "127.0.0.1:0",
            stop,
            auth=AuthConfig(required=True, hs_key=KEY),
            ready=port.set_result,
        )
    )
    address = f"127.0.0.1:{await port}"
    service = (("authorization", "Bearer " + issue(KEY, sub="dispatch", roles=["service"])),)
    now = datetime.now(UTC)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = casefile_pb2_grpc.CaseFileStub(channel)
        cases = [
            (await stub.OpenCase(_open(i, now - timedelta(hours=1)), metadata=service)).case_id
            for i in range(CLIENTS)
        ]
    server_cpu = time.process_time()
    latencies, elapsed, client_cpu = await _in_client_process(address, cases)
    server_cpu = time.process_time() - server_cpu
    stop.set()
    await server
    entries = len(store.audit_entries())
    engine.dispose()
    p50, p99 = _p(latencies, 0.5), _p(latencies, 0.99)
    writes = len(latencies)
    return (
        writes / elapsed,
        p50 * 1000,
        p99 * 1000,
        entries,
        server_cpu / writes * 1000,
        client_cpu / writes * 1000,
    )


def run() -> list[dict]:
    tune_gc()
    rate, p50, p99, entries, server_ms, client_ms = asyncio.run(_measure())
    floor_rate, floor_p99 = asyncio.run(_noop_floor())
    bare_rate, _, bare_p99, bare_entries, bare_ms, _ = asyncio.run(_measure(_NoWriteStore))
    if bare_entries != CLIENTS:  # only the opens were written
        raise RuntimeError(f"the no-write run wrote {bare_entries} audit entries, not {CLIENTS}")
    if entries != CLIENTS * (WRITES_PER_CLIENT + 1):
        raise RuntimeError(f"expected {CLIENTS * (WRITES_PER_CLIENT + 1)} audit entries, {entries}")
    common = {"command": "make bench (python -m bench.run casefile_grpc)"}
    noop = {
        "name": "no-op grpc.aio server, same clients",
        "value": round(floor_rate, 1),
        "unit": "writes/s",
    }
    noop_p99 = {"name": "no-op grpc.aio server p99", "value": round(floor_p99, 2), "unit": "ms"}
    return [
        {
            "name": "casefile_grpc_writes_32_clients_sqlite",
            "value": round(rate, 1),
            "unit": "writes/s",
            "target": 2000,
            "ceiling": noop,
            **common,
        },
        {
            "name": "casefile_grpc_write_p99_32_clients_sqlite",
            "value": round(p99, 2),
            "unit": "ms",
            "target": 20,
            "ceiling": noop_p99,
            **common,
        },
        {
            "name": "casefile_grpc_write_p50_32_clients_sqlite",
            "value": round(p50, 2),
            "unit": "ms",
            "target": None,
            **common,
        },
        {
            # server process CPU (gRPC, auth, domain, SQLite) per write; 2000 writes/s on
            # one core needs <= 0.5 ms
            "name": "casefile_grpc_server_cpu_per_write",
            "value": round(server_ms, 3),
            "unit": "ms",
            "target": None,
            **common,
        },
        {
            # the ceiling: grpc.aio with the same 32 clients and a handler that does nothing
            "name": "casefile_grpc_noop_server_rate_32_clients",
            "value": round(floor_rate, 1),
            "unit": "calls/s",
            "target": None,
            **common,
        },
        {
            "name": "casefile_grpc_noop_server_p99_32_clients",
            "value": round(floor_p99, 2),
            "unit": "ms",
            "target": None,
            **common,
        },
        {
            # the real server around a store that answers AddEvidence without a transaction
            "name": "casefile_grpc_server_without_write_path_rate",
            "value": round(bare_rate, 1),
            "unit": "calls/s",
            "target": None,
            **common,
        },
        {
            "name": "casefile_grpc_server_without_write_path_p99",
            "value": round(bare_p99, 2),
            "unit": "ms",
            "target": None,
            **common,
        },
        {
            "name": "casefile_grpc_server_without_write_path_cpu_per_call",
            "value": round(bare_ms, 3),
            "unit": "ms",
            "target": None,
            **common,
        },
        {
            "name": "casefile_grpc_client_process_cpu_per_write",
            "value": round(client_ms, 3),
            "unit": "ms",
            "target": None,
            **common,
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
