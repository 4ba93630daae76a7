"""Real servers for the phone API's integration tests: casefile's gRPC server with a
dispatch harness calling it, and the phone API served by uvicorn on a free loopback port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import uvicorn

from casefile import migrations
from casefile.adapters.store import CaseStore
from casefile.adapters.store import make_engine as casefile_engine
from casefile.entrypoints.grpc_server import serve
from dispatch.adapters.casefile_client import CaseFileClient, CasefileTokens
from dispatch.domain.tasks import task_id_for
from liandong.tokens.issuing import issue
from liandong.tokens.verifying import AuthConfig
from liandong.v1 import casefile_pb2, casefile_pb2_grpc
from tests.unit.dispatch.harness import Harness, alert_event, build

TID = task_id_for("A1")


@dataclass
class AcceptedCase:
    """Task A1's case, opened in a real casefile and accepted by e1, e2 and m1."""

    casefile: str  # the gRPC address
    store: CaseStore
    h: Harness
    key: str  # casefile's token key, for reading the case as an admin

    @property
    def case_id(self) -> str:
        return self.h.service.metas[TID].case_id

    async def case(self) -> casefile_pb2.Case:
        token = issue(self.key, sub="ops", roles=["admin"])
        async with grpc.aio.insecure_channel(self.casefile) as channel:
            return await casefile_pb2_grpc.CaseFileStub(channel).GetCase(
                casefile_pb2.GetCaseRequest(case_id=self.case_id),
                metadata=(("authorization", f"Bearer {token}"),),
            )


@asynccontextmanager
async def accepted_case(
    tmp_path: Path, key: str, dispatch_key: Any, evidence: Any = None
) -> AsyncIterator[AcceptedCase]:
    engine = casefile_engine(f"sqlite:///{tmp_path / 'casefile.db'}")
    migrations.upgrade(engine)
    store = CaseStore(engine)
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    casefile = asyncio.create_task(
        serve(
            store,
            "127.0.0.1:0",
            stop,
            auth=AuthConfig(
                required=True, hs_key=key, service_keys={"dispatch": dispatch_key.public_key()}
            ),
            ready=port.set_result,
            **({"evidence": evidence} if evidence is not None else {}),
        )
    )
    address = f"127.0.0.1:{await asyncio.wait_for(port, 10)}"
    h = build(tmp_path)
    client = CaseFileClient(address, CasefileTokens(dispatch_key), timeout_s=10)
    h.service.casefile = client
    try:
        await h.service.on_alert_event(alert_event("A1"))  # opens the case in casefile
        for pid in ("e1", "e2", "m1"):
            await h.service.accept(TID, pid)
        yield AcceptedCase(address, store, h, key)
    finally:
        await client.close()
        stop.set()
        await casefile
        h.close()
        engine.dispose()


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve `app` until the block ends; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    http = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(http.serve(sockets=[sock]))
    while not http.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        http.should_exit = True
        await task
