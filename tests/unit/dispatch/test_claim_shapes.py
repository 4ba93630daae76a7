"""A validly signed phone token whose claims have the wrong types is 401 with the reason,
never a 500 (issue 12, item 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from tests.unit.dispatch.test_phone_api import KEY, env, phone_db_url  # noqa: F401


def signed(**claims: Any) -> dict[str, str]:
    now = datetime.now(UTC)
    body = {"sub": "mgr", "role": "DUTY_MANAGER", "jurisdiction": ["3201"], "iss": "liandong"}
    body |= {"iat": now, "exp": now + timedelta(hours=1)} | claims
    return {"Authorization": f"Bearer {jwt.encode(body, KEY, algorithm='HS256')}"}


@pytest.mark.parametrize(
    ("claims", "named"),
    [
        ({"jurisdiction": 3201}, "jurisdiction"),
        ({"jurisdiction": [3201]}, "jurisdiction"),
        ({"role": 7}, "role"),
        ({"role": "EMPEROR"}, "role"),
        ({"role": ["DUTY_MANAGER"]}, "role"),
    ],
)
async def test_wrong_claim_types_are_401_with_the_reason(env, claims, named) -> None:  # noqa: F811
    _, c = env
    for path in ("/v1/me/tasks", "/v1/reports/response-times"):
        r = await c.get(path, headers=signed(**claims))
        assert r.status_code == 401, (path, r.text)
        assert named in r.json()["detail"]


async def test_a_well_formed_token_still_works(env) -> None:  # noqa: F811
    _, c = env
    assert (await c.get("/v1/me/tasks", headers=signed())).status_code == 200
    assert (await c.get("/v1/me/tasks", headers=signed(jurisdiction="3201"))).status_code == 200
