"""A validly signed casefile token whose claims have the wrong types is UNAUTHENTICATED with
the reason, not UNKNOWN with a Python exception (issue 12, item 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
import pytest

from liandong.tokens.claims import AUDIENCE, ISSUER
from liandong.v1 import casefile_pb2
from tests.integration.casefile.conftest import KEY, Server
from tests.integration.casefile.test_grpc_calls import code_of
from tests.integration.casefile.walk import open_request

pytestmark = pytest.mark.integration


def metadata(**claims: Any) -> tuple[tuple[str, str]]:
    now = datetime.now(UTC)
    body = {"sub": "mgr", "roles": ["manager"], "jurisdiction": ["3205"]}
    body |= {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + timedelta(hours=1)}
    token = jwt.encode(body | claims, KEY, algorithm="HS256")
    return (("authorization", f"Bearer {token}"),)


@pytest.mark.parametrize(
    ("claims", "named"),
    [
        ({"jurisdiction": 3205}, "jurisdiction"),
        ({"jurisdiction": [3205]}, "jurisdiction"),
        ({"roles": 5}, "roles"),
        ({"roles": [{"x": 1}]}, "roles"),
        ({"sub": ["mgr"]}, "sub"),
        ({"act": "o1"}, "act"),
        ({"act": {"sub": 5}}, "sub"),
    ],
)
async def test_wrong_claim_types_are_unauthenticated(
    server: Server, channel: grpc.aio.Channel, claims: dict[str, Any], named: str
) -> None:
    stub = server.stub(channel)
    for call in (
        stub.ListCases(casefile_pb2.ListCasesRequest(), metadata=metadata(**claims)),
        stub.OpenCase(open_request(), metadata=metadata(**claims)),
    ):
        code, detail = await code_of(call)
        assert code is grpc.StatusCode.UNAUTHENTICATED, detail
        assert named in detail.lower() and "Traceback" not in detail
