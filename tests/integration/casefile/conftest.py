"""Casefile integration fixtures: a real grpc.aio server on a free port over SQLite or a
fresh PostgreSQL database (created per test, dropped after)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from sqlalchemy.engine import make_url

from casefile import migrations
from casefile.adapters.store import CaseStore, make_engine
from casefile.entrypoints.grpc_server import serve
from liandong.tokens.issuing import issue
from liandong.tokens.verifying import AuthConfig
from liandong.v1 import casefile_pb2_grpc
from tests.unit.casefile.scenario import utc

KEY = "integration-test-key-0123456789abcdef"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'casefile.db'}"
        return
    base = make_url(request.getfixturevalue("pg_url"))
    name = f"liandong_{uuid.uuid4().hex[:12]}"
    admin = base.set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Clock:
    at: datetime = field(default_factory=lambda: utc(2026, 3, 2, 2))

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Server:
    address: str
    store: CaseStore
    clock: Clock
    url: str

    def stub(self, channel: grpc.aio.Channel) -> casefile_pb2_grpc.CaseFileStub:
        return casefile_pb2_grpc.CaseFileStub(channel)


def token(sub: str, *roles: str, jurisdictions: list[str] | None = None) -> str:
    return issue(
        KEY,
        sub=sub,
        roles=list(roles),
        jurisdictions=jurisdictions,
        now=datetime.now().astimezone(),
    )


def bearer(sub: str, *roles: str, jurisdictions: list[str] | None = None) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token(sub, *roles, jurisdictions=jurisdictions)}"),)


def build_store(url: str) -> CaseStore:
    engine = make_engine(url)
    migrations.upgrade(engine)
    return CaseStore(engine)


@contextlib.asynccontextmanager
async def running_server(
    db_url: str, auth: AuthConfig, evidence: Any = None
) -> AsyncIterator[Server]:
    """A casefile gRPC server on a real port over a fresh store, stopped on exit; `evidence`:
    (EvidenceStore, EvidenceConfig) for the evidence calls."""
    store = build_store(db_url)
    clock = Clock()
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(
            store,
            "127.0.0.1:0",
            stop,
            auth=auth,
            now=clock,
            ready=port.set_result,
            evidence=evidence,
        )
    )
    address = f"127.0.0.1:{await asyncio.wait_for(port, 10)}"
    try:
        yield Server(address, store, clock, db_url)
    finally:
        stop.set()
        await task
        store.engine.dispose()


@pytest.fixture()
async def server(db_url: str) -> AsyncIterator[Server]:
    async with running_server(db_url, AuthConfig(required=True, hs_key=KEY)) as running:
        yield running


@pytest.fixture()
async def channel(server: Server) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as ch:
        yield ch


ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def s3_env() -> dict[str, str]:
    """The local S3 server (deploy/s3/s3.sh: s3proxy), started if it is not running (make test
    starts and stops it); its endpoint and keys."""
    import subprocess

    subprocess.run([str(ROOT / "deploy/s3/s3.sh"), "up"], check=True, capture_output=True)
    out = subprocess.run(
        [str(ROOT / "deploy/s3/s3.sh"), "env"], check=True, capture_output=True, text=True
    ).stdout
    return dict(part.split("=", 1) for part in out.split())
