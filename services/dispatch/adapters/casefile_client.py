"""gRPC client for casefile: opening the case of an inspection task."""

from __future__ import annotations

from datetime import datetime

import grpc

from liandong.events import to_timestamp
from liandong.v1 import casefile_pb2, casefile_pb2_grpc


class CaseFileClient:
    def __init__(self, address: str) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = casefile_pb2_grpc.CaseFileStub(self._channel)

    async def open_case(
        self,
        *,
        task_id: str,
        alert_ids: list[str],
        enterprise_id: str,
        outlet_id: str,
        county: str,
        team: list[dict[str, str]],
        discovered_at: datetime,
        summary: str,
    ) -> casefile_pb2.Case:
        request = casefile_pb2.OpenCaseRequest(
            # The task id doubles as the request id: a retried open returns the same case.
            request_id=f"open:{task_id}",
            task_id=task_id,
            alert_ids=alert_ids,
            enterprise_id=enterprise_id,
            outlet_id=outlet_id,
            county=county,
            team=[casefile_pb2.Party(**p) for p in team],
            discovered_at=to_timestamp(discovered_at),
            summary=summary,
            opened_by="dispatch",
        )
        return await self._stub.OpenCase(request, timeout=10, wait_for_ready=True)

    async def close(self) -> None:
        await self._channel.close()
