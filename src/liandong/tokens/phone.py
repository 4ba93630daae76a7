"""Bearer tokens for the phone API (dispatch): JWT HS256 carrying person id, role and jurisdiction.

Roles: ENFORCEMENT, MONITORING and OPERATIONS are field staff (they see only the tasks they
hold or were offered); DUTY_MANAGER (alias MANAGER) sees every task inside its jurisdiction."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt

DEV_KEY = "liandong-dev-only-change-me-32-bytes!"
ALGORITHM = "HS256"
ISSUER = "liandong"


class TokenRole(StrEnum):
    ENFORCEMENT = "ENFORCEMENT"
    MONITORING = "MONITORING"
    OPERATIONS = "OPERATIONS"
    DUTY_MANAGER = "DUTY_MANAGER"

    @property
    def manager(self) -> bool:
        return self is TokenRole.DUTY_MANAGER


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    person_id: str
    role: TokenRole
    jurisdiction: tuple[str, ...]


def signing_key() -> str:
    return os.environ.get("LIANDONG_DISPATCH_JWT_KEY", DEV_KEY)


def issue(
    person_id: str,
    role: str,
    jurisdiction: list[str] | tuple[str, ...] | str,
    *,
    key: str | None = None,
    ttl: timedelta = timedelta(hours=12),
    now: datetime | None = None,
) -> str:
    """A signed token; `role` is a TokenRole name (MANAGER is accepted for DUTY_MANAGER)."""
    issued = now or datetime.now(UTC)
    codes = [jurisdiction] if isinstance(jurisdiction, str) else list(jurisdiction)
    claims = {
        "sub": person_id,
        "role": _role(role).value,
        "jurisdiction": codes,
        "iss": ISSUER,
        "iat": issued,
        "exp": issued + ttl,
    }
    return jwt.encode(claims, key or signing_key(), algorithm=ALGORITHM)


def _role(raw: str) -> TokenRole:
    name = raw.strip().upper()
    return TokenRole.DUTY_MANAGER if name == "MANAGER" else TokenRole(name)


def verify(token: str, key: str | None = None) -> Principal:
    try:
        claims = jwt.decode(
            token,
            key or signing_key(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat"]},
        )
        codes = claims.get("jurisdiction") or []
        if isinstance(codes, str):
            codes = [codes]
        return Principal(
            str(claims["sub"]), _role(str(claims.get("role", ""))), tuple(map(str, codes))
        )
    except (jwt.PyJWTError, ValueError) as e:
        raise InvalidToken(str(e)) from e
