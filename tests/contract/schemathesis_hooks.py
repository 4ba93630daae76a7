"""schemathesis hooks (SCHEMATHESIS_HOOKS) for the phone API contract test."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def map_query(ctx: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """GET /v1/events streams until the client leaves; the contract test reads what is pending
    (`follow=false`, the polling clients' form) so every request ends."""
    if ctx.operation.path == "/v1/events":
        query = dict(query or {})
        query["follow"] = "false"
    return query
