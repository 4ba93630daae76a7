"""Drives the unit tests' main-path scenario through the gRPC API."""

from __future__ import annotations

from typing import Any

from casefile.adapters.codec import fill_message, timestamp
from casefile.domain import commands
from casefile.entrypoints.grpc_server import case_id_for_task
from liandong.v1 import casefile_pb2
from tests.integration.casefile.conftest import Server, bearer
from tests.unit.casefile.scenario import DISCOVERED, MAIN_PATH

TASK = "task-1"
CASE = case_id_for_task(TASK)
TOKENS = {
    "dispatch": ("dispatch", "service"),
    "o1": ("o1", "officer"),
    "o2": ("o2", "officer"),
    "m1": ("m1", "monitoring"),
}
STATES = [
    "OPENED",
    "ON_SITE",
    "ON_SITE",
    "ON_SITE",
    "SAMPLED",
    "AWAITING_LAB",
    "AWAITING_LAB",
    "RESULTS_CONFIRMED",
    "FINDINGS",
    "FILED",
    "NOTICE_SERVED",
    "DECIDED",
    "DECISION_SERVED",
    "ENFORCED",
    "ENFORCED",
    "CLOSED",
]


def auth(actor: str) -> Any:
    if actor == "mgr":
        return bearer("mgr", "manager", jurisdictions=["3205"])
    return bearer(*TOKENS[actor])


def open_request(
    task: str = TASK, county: str = "320583", request_id: str = "open-1"
) -> casefile_pb2.OpenCaseRequest:
    return casefile_pb2.OpenCaseRequest(
        request_id=request_id,
        task_id=task,
        alert_ids=["alert-7"],
        enterprise_id="ent-1",
        outlet_id="outlet-1",
        county=county,
        team=[
            casefile_pb2.Party(person_id="o1", name="王", role="ENFORCEMENT"),
            casefile_pb2.Party(person_id="o2", name="李", role="ENFORCEMENT"),
            casefile_pb2.Party(person_id="m1", name="张", role="MONITORING"),
        ],
        discovered_at=timestamp(DISCOVERED),
        summary="COD over limit",
        opened_by="dispatch",
    )


def request_for(command: commands.Command, case_id: str, request_id: str) -> Any:
    message = getattr(casefile_pb2, f"{type(command).__name__}Request")()
    fill_message(message, command)
    message.request_id, message.case_id = request_id, case_id
    return message


async def step(
    server: Server, stub: Any, i: int, case_id: str = CASE, prefix: str = "r"
) -> casefile_pb2.Case:
    command, actor, now = MAIN_PATH[i]
    server.clock.at = now
    if isinstance(command, commands.OpenCase):
        return await stub.OpenCase(open_request(), metadata=auth(actor))
    call = getattr(stub, type(command).__name__)
    return await call(request_for(command, case_id, f"{prefix}{i}"), metadata=auth(actor))


async def walk(server: Server, stub: Any, upto: int = len(MAIN_PATH)) -> list[casefile_pb2.Case]:
    return [await step(server, stub, i) for i in range(upto)]
