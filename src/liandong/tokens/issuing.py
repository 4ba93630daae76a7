"""Signing casefile bearer tokens (JWT): HS256 with a shared key for people and tools, ES256
with a service's own private key (header `kid` = the service) for a service such as dispatch.
What the claims mean: `liandong.tokens.claims`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from liandong.tokens.claims import AUDIENCE, ISSUER, SERVICE_ROLE

SERVICE_ALGORITHM = "ES256"


def issue(
    key: str,
    *,
    sub: str,
    roles: list[str],
    jurisdictions: list[str] | None = None,
    ttl: timedelta = timedelta(hours=12),
    now: datetime | None = None,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    act: dict[str, Any] | None = None,
) -> str:
    """`act` ({"sub": person, "roles": [...]}) makes a service token act for that person."""
    claims = _claims(sub, roles, ttl, now, issuer, audience, act)
    claims["jurisdiction"] = jurisdictions or []
    return jwt.encode(claims, key, algorithm="HS256")


def _claims(
    sub: str,
    roles: list[str],
    ttl: timedelta,
    now: datetime | None,
    issuer: str,
    audience: str,
    act: dict[str, Any] | None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": roles,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "iss": issuer,
        "aud": audience,
    }
    if act is not None:
        claims["act"] = act
    return claims


def issue_service(
    key: ec.EllipticCurvePrivateKey,
    *,
    service: str,
    ttl: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    act: dict[str, Any] | None = None,
    roles: list[str] | None = None,
) -> str:
    """A service's token signed with its own private key (ES256, header `kid` = service).
    `roles` other than ["service"] exist only so tests can show casefile refusing them."""
    claims = _claims(
        service, [SERVICE_ROLE] if roles is None else roles, ttl, now, issuer, audience, act
    )
    return jwt.encode(claims, key, algorithm=SERVICE_ALGORITHM, headers={"kid": service})
