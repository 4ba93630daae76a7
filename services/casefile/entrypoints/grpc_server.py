"""The casefile gRPC server: CaseFile service plus gRPC health checking and reflection."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from liandong.events import deterministic_id, from_timestamp, to_timestamp
from liandong.v1 import casefile_pb2, casefile_pb2_grpc

from casefile.adapters.store import CaseStore

log = logging.getLogger(__name__)
SERVICE_NAME = casefile_pb2.DESCRIPTOR.services_by_name["CaseFile"].full_name


def case_message(case: dict[str, Any]) -> casefile_pb2.Case:
    return casefile_pb2.Case(
        case_id=case["case_id"],
        state=case["state"],
        task_id=case["task_id"],
        alert_ids=case["alert_ids"],
        enterprise_id=case["enterprise_id"],
        outlet_id=case["outlet_id"],
        county=case["county"],
        team=[casefile_pb2.Party(**p) for p in case["team"]],
        discovered_at=to_timestamp(case["discovered_at"]),
        opened_at=to_timestamp(case["opened_at"]),
        summary=case["summary"],
        version=case["version"],
    )


class CaseFileService(casefile_pb2_grpc.CaseFileServicer):
    def __init__(self, store: CaseStore) -> None:
        self.store = store

    async def OpenCase(  # noqa: N802 - gRPC method names are fixed by the contract
        self, request: casefile_pb2.OpenCaseRequest, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        missing = [f for f in ("request_id", "task_id", "enterprise_id") if not getattr(request, f)]
        if missing:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"missing {', '.join(missing)}")
        if not request.team:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a case needs its inspection team")
        fields = {
            # Deterministic: the same task always names the same case.
            "case_id": "case-" + deterministic_id("case", request.task_id)[:18],
            "task_id": request.task_id,
            "enterprise_id": request.enterprise_id,
            "outlet_id": request.outlet_id,
            "county": request.county,
            "alert_ids": list(request.alert_ids),
            "team": [{"person_id": p.person_id, "name": p.name, "role": p.role} for p in request.team],
            "summary": request.summary,
            "discovered_at": from_timestamp(request.discovered_at)
            if request.HasField("discovered_at")
            else datetime.now(UTC),
            "opened_at": datetime.now(UTC),
            "opened_by": request.opened_by,
        }
        case, created = await asyncio.to_thread(self.store.open_case, request.request_id, fields)
        log.info("case %s %s for task %s", case["case_id"], "opened" if created else "exists", request.task_id)
        return case_message(case)

    async def GetCase(  # noqa: N802
        self, request: casefile_pb2.GetCaseRequest, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        if not request.case_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "case_id is required")
        case = await asyncio.to_thread(self.store.get, request.case_id)
        if case is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no case {request.case_id}")
        assert case is not None
        return case_message(case)

    async def ListCases(  # noqa: N802
        self, request: casefile_pb2.ListCasesRequest, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.ListCasesResponse:
        size = request.page_size or 50
        if not 0 < size <= 500:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must be 1..500")
        cases = await asyncio.to_thread(
            self.store.list,
            state=request.state,
            county=request.county,
            enterprise_id=request.enterprise_id,
            limit=size + 1,
            after=request.page_token,
        )
        page, more = cases[:size], len(cases) > size
        return casefile_pb2.ListCasesResponse(
            cases=[case_message(c) for c in page],
            next_page_token=page[-1]["case_id"] if more else "",
        )


async def serve(store: CaseStore, address: str, stop: asyncio.Event | None = None) -> None:
    server = grpc.aio.server()
    casefile_pb2_grpc.add_CaseFileServicer_to_server(CaseFileService(store), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"cannot listen on {address}")
    await server.start()
    for name in (SERVICE_NAME, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("casefile gRPC listening on %s", address)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=5)
