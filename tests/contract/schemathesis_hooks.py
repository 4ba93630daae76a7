"""schemathesis hooks (SCHEMATHESIS_HOOKS) for the phone API contract test."""

from __future__ import annotations

from typing import Any

import schemathesis


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
