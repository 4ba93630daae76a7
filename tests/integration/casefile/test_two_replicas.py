"""Two casefile server processes on one PostgreSQL database (issue 13, item 10).

Both are real `liandong run casefile` processes on their own gRPC ports, started at the same
moment on a fresh database (so their migrations race too). Concurrent writes to the SAME case
go to both; afterwards the audit chain is one unbroken chain (`liandong casefile verify` OK),
every acknowledged write has exactly one entry, and no write failed for the other replica's
sake.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, text

from liandong.ports import free_port
from liandong.tokens.issuing import issue_service
from liandong.tokens.keys import new_private_key, public_pem
from liandong.v1 import casefile_pb2_grpc
from tests.integration.casefile.conftest import KEY
from tests.integration.casefile.test_team_notes_on_behalf import ARRIVED, arrival, note
from tests.integration.casefile.walk import CASE, open_request

ROOT = Path(__file__).resolve().parents[3]
WRITERS = 8  # concurrent callers per replica
NOTES = 12  # notes each caller writes, one after another
DISPATCH = new_private_key()


def dispatch(act: dict[str, Any] | None = None) -> Any:
    return (("authorization", f"Bearer {issue_service(DISPATCH, service='dispatch', act=act)}"),)


O1 = {"sub": "o1", "roles": ["officer"]}


@contextlib.contextmanager
def replica(url: str, tmp_path: Path, name: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    address = f"127.0.0.1:{free_port()}"
    public = tmp_path / "dispatch.pub"
    public.write_bytes(public_pem(DISPATCH.public_key()))
    env = dict(os.environ)
    env.update(
        {
            "LIANDONG_CASEFILE_DB": url,
            "LIANDONG_CASEFILE_GRPC": address,
            "LIANDONG_CASEFILE_OUTBOX": "off",  # no broker needed: the chain is the subject
            "LIANDONG_JWT_KEY": KEY,
            "LIANDONG_CASEFILE_SERVICE_KEYS": f"dispatch={public}",
            "LIANDONG_EVIDENCE_STORE": str(tmp_path / "evidence"),
            "LIANDONG_CASEFILE_CLOCK_INTERVAL": "3600",
            "PYTHONUNBUFFERED": "1",
        }
    )
    log = tmp_path / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "liandong.cli", "run", "casefile"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield address, proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def serving(address: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    request = health_pb2.HealthCheckRequest(service="")
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"replica exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(grpc.aio.AioRpcError):
            async with grpc.aio.insecure_channel(address) as channel:
                answer = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=2)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        await asyncio.sleep(0.2)


# SQLite is one file with one writer on one machine: replicas are a PostgreSQL matter
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_replicas_keep_one_audit_chain(db_url: str, tmp_path: Path) -> None:
    with (
        replica(db_url, tmp_path, "a") as (addr_a, proc_a),
        replica(db_url, tmp_path, "b") as (addr_b, proc_b),
    ):
        await asyncio.wait_for(
            asyncio.gather(
                serving(addr_a, proc_a, tmp_path / "a.log"),
                serving(addr_b, proc_b, tmp_path / "b.log"),
            ),
            120,
        )
        async with (
            grpc.aio.insecure_channel(addr_a) as ch_a,
            grpc.aio.insecure_channel(addr_b) as ch_b,
        ):
            stubs = [casefile_pb2_grpc.CaseFileStub(ch_a), casefile_pb2_grpc.CaseFileStub(ch_b)]
            # the very first writes of a fresh database, one per replica, at the same time
            opened = await asyncio.gather(
                *(s.OpenCase(open_request(), metadata=dispatch()) for s in stubs),
                return_exceptions=True,
            )
            assert [type(o).__name__ for o in opened] == ["Case", "Case"], opened
            await stubs[1].RecordArrival(arrival("a1", "o1", "o2"), metadata=dispatch(O1))

            async def writer(stub: casefile_pb2_grpc.CaseFileStub, who: str) -> list[str]:
                failures = []
                for n in range(NOTES):
                    request = note(f"{who}-{n}", "o1", f"note {who} {n}", ARRIVED)
                    try:
                        await stub.RecordSiteNote(request, metadata=dispatch(O1))
                    except grpc.aio.AioRpcError as err:
                        failures.append(f"{who}-{n}: {err.code().name} {err.details()}")
                return failures

            results = await asyncio.gather(
                *(
                    writer(stubs[i % 2], f"w{i}")
                    for i in range(2 * WRITERS)  # half on each replica
                )
            )
        assert [f for failures in results for f in failures] == []
        assert proc_a.poll() is None and proc_b.poll() is None

    verify = subprocess.run(
        [sys.executable, "-m", "liandong.cli", "casefile", "verify", "--db", db_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            kinds = conn.execute(
                text("SELECT kind, count(*) FROM audit_entries WHERE case_id = :c GROUP BY kind"),
                {"c": CASE},
            ).all()
            seqs = [r[0] for r in conn.execute(text("SELECT seq FROM audit_entries ORDER BY seq"))]
            case_seqs = [
                r[0]
                for r in conn.execute(
                    text("SELECT case_seq FROM audit_entries WHERE case_id = :c ORDER BY seq"),
                    {"c": CASE},
                )
            ]
    finally:
        engine.dispose()
    counts = dict(kinds)
    counts.pop("ClockBreached", None)  # the opening deadline passed long ago (real clock)
    # one entry per acknowledged write: the open (asked twice, stored once), the arrival, notes
    assert counts == {"OpenCase": 1, "RecordArrival": 1, "RecordSiteNote": 2 * WRITERS * NOTES}
    assert seqs == list(range(1, len(seqs) + 1))
    assert case_seqs == list(range(1, len(case_seqs) + 1))
