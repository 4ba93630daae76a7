"""JSON encoding of the dispatcher's state objects for the database.

pydantic's TypeAdapter round-trips the domain dataclasses (enums, aware datetimes, timedeltas,
nested dataclasses) exactly, so the domain stays free of any persistence code."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from dispatch.domain.acceptance import AcceptanceState
from dispatch.domain.policy import ActiveFault
from dispatch.domain.sla import SlaClocks
from dispatch.domain.tasks import Task

TASK = TypeAdapter(Task)
ACCEPTANCE = TypeAdapter(AcceptanceState)
CLOCKS = TypeAdapter(SlaClocks)
FAULTS = TypeAdapter(dict[str, ActiveFault])
LOADS = TypeAdapter(dict[str, int])


def dump(adapter: TypeAdapter[Any], value: Any) -> str:
    return adapter.dump_json(value).decode()


def load(adapter: TypeAdapter[Any], raw: str) -> Any:
    return adapter.validate_json(raw)
