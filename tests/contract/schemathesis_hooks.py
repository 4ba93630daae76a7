"""schemathesis hooks (SCHEMATHESIS_HOOKS) for the phone API contract test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import schemathesis

from dispatch.domain.tasks import task_id_for

# the joint inspection tests.contract.phone_api_server opens (its alert id) and its task
OPEN_ALERT = "A1"
OPEN_TASK = task_id_for(OPEN_ALERT)


@schemathesis.hook
def map_path_parameters(ctx: Any, path_parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Every task route is called on the served task that has an open case, so generated
    bodies reach the field routes' logic and casefile behind them; a drawn task id is
    unknown (404) and would test nothing past the lookup."""
    if path_parameters and "task_id" in path_parameters:
        path_parameters = {**path_parameters, "task_id": OPEN_TASK}
    return path_parameters


@schemathesis.hook
def map_query(ctx: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """GET /v1/events and GET /v1/reports/overview/stream stream until the client leaves; the
    contract test reads what is pending (`follow=false`, the polling clients' form) so every
    request ends."""
    if ctx.operation.path in ("/v1/events", "/v1/reports/overview/stream"):
        query = dict(query or {})
        query["follow"] = "false"
    return query


@schemathesis.serializer("application/offset+octet-stream")
def offset_octets(ctx: Any, value: Any) -> bytes:
    """An upload PATCH's body: the next bytes of the file, sent as they are."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _in_the_past(value: Any, now: datetime) -> Any:
    if isinstance(value, dict):
        return {k: _in_the_past(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [_in_the_past(v, now) for v in value]
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-":
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if at.tzinfo is not None and at > now:
            # the same moment of the year, some years back: still a drawn value, now past
            return at.replace(year=2000 + at.year % 20, day=min(at.day, 28)).isoformat()
    return value


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    """Times on site (captured, collected, signed, analysed) after casefile's clock are
    refused (422, "in the future"): a rule of the moment, which no schema can state. Drawn
    times past now are moved into the past so that the rest of a body is what is tested; the
    refusal itself is tested in tests/integration/dispatch."""
    return _in_the_past(body, datetime.now(UTC))
