"""Bearer tokens (JWT): issuing with a local key, verifying with a key or an OIDC JWKS.

Claims: `sub` (person id, or a service name), `roles` (list) or `role` (one), `jurisdiction`
(list or comma-separated county code prefixes), `exp`, `iss`, `aud`. Role names are the
domain's (ENFORCEMENT_OFFICER, MONITORING_STAFF, MANAGER, ADMIN; short forms officer,
monitoring, manager, admin are accepted) plus `service` for a trusted service such as
dispatch (role SERVICE: intake, team changes and reads, no legal act in its own name).

A trusted service passes on a person's field record with an `act` claim naming that person:
`{"sub": "dispatch", "roles": ["service"], "act": {"sub": "o1", "roles": ["officer"]}}`.
RFC 8693 spells delegation with the delegate in `act`; here the token's own subject stays
the authenticated caller (the service) and `act` names the person it acts for, so that
nothing signed for the service can pass as the person's own token.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from casefile.domain.access import Principal, Role

ISSUER = "liandong"
AUDIENCE = "liandong-casefile"
_ALIASES = {
    "officer": Role.ENFORCEMENT_OFFICER,
    "enforcement": Role.ENFORCEMENT_OFFICER,
    "enforcement_officer": Role.ENFORCEMENT_OFFICER,
    "monitoring": Role.MONITORING_STAFF,
    "monitoring_staff": Role.MONITORING_STAFF,
    "manager": Role.MANAGER,
    "admin": Role.ADMIN,
}
SERVICE_ROLE = "service"


class Unauthenticated(Exception):
    """No usable bearer token (missing, malformed, expired, wrong signature or audience)."""


@dataclass(frozen=True)
class AuthConfig:
    required: bool = True
    hs_key: str | None = None  # HS256 shared key
    jwks_url: str | None = None  # OIDC provider's JWKS (RS256/ES256 need pyjwt[crypto])
    issuer: str | None = ISSUER
    audience: str | None = AUDIENCE
    trusted_services: frozenset[str] = field(default_factory=lambda: frozenset({"dispatch"}))


def local_key(path: Path) -> str:
    """The embedded default's signing key: created once (0600) beside the database."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


def role_of(name: str) -> Role | None:
    try:
        return Role(name.upper())
    except ValueError:
        return _ALIASES.get(name.lower())


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
    now = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": roles,
        "jurisdiction": jurisdictions or [],
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "iss": issuer,
        "aud": audience,
    }
    if act is not None:
        claims["act"] = act
    return jwt.encode(claims, key, algorithm="HS256")


def principal_from_claims(
    claims: dict[str, Any], trusted_services: frozenset[str], *, nested: bool = False
) -> Principal:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthenticated("token has no subject" if not nested else "act claim has no sub")
    act = claims.get("act")
    on_behalf = None
    if act is not None and not nested:
        if not isinstance(act, dict):
            raise Unauthenticated("act claim must be an object")
        # the person's roles are as the service states them; never a service role
        on_behalf = principal_from_claims(act, frozenset(), nested=True)
    raw = claims.get("roles", claims.get("role", []))
    names = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
    roles: set[Role] = set()
    for name in names:
        if not isinstance(name, str):
            continue
        if name.lower() == SERVICE_ROLE:
            if sub in trusted_services:
                roles.add(Role.SERVICE)
            continue
        role = role_of(name)
        if role is not None:
            roles.add(role)
    places = claims.get("jurisdiction", [])
    if isinstance(places, str):
        places = [p.strip() for p in places.split(",")]
    codes = tuple(p for p in places if isinstance(p, str) and p)
    return Principal(sub, frozenset(roles), codes, on_behalf)


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    expires: float  # the token's exp (epoch seconds)
    recheck: float  # when to verify the signature again (key rotation, JWKS changes)


class TokenVerifier:
    """Verifies bearer tokens; a verified token is remembered (bounded, for `recheck_s`) so a
    client's every call does not pay for the signature again. Expiry is checked on each use."""

    CACHED = 10_000

    def __init__(
        self,
        config: AuthConfig,
        *,
        recheck_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._jwks = jwt.PyJWKClient(config.jwks_url) if config.jwks_url else None
        self._verified: dict[str, _Verified] = {}
        self._lock = threading.Lock()
        self.recheck_s = recheck_s
        self.clock = clock

    def verify(self, token: str) -> Principal:
        now = self.clock()
        hit = self._verified.get(token)
        if hit is not None:
            if now >= hit.expires:
                with self._lock:
                    self._verified.pop(token, None)
                raise Unauthenticated("invalid token: Signature has expired")
            if now < hit.recheck:
                return hit.principal
        principal, expires = self._verify(token)
        with self._lock:
            self._verified.pop(token, None)
            self._verified[token] = _Verified(
                principal, expires, min(expires, now + self.recheck_s)
            )
            while len(self._verified) > self.CACHED:  # the oldest first (insertion order)
                del self._verified[next(iter(self._verified))]
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        options = {"require": ["exp", "sub"], "verify_aud": self.config.audience is not None}
        try:
            if self._jwks is not None:
                signing = self._jwks.get_signing_key_from_jwt(token)
                algorithms = [signing.algorithm_name] if signing.algorithm_name else ["RS256"]
                key: Any = signing.key
            elif self.config.hs_key:
                key, algorithms = self.config.hs_key, ["HS256"]
            else:
                raise Unauthenticated("no verification key configured")
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.config.audience,
                issuer=self.config.issuer,
                options=options,  # type: ignore[arg-type]
            )
        except (jwt.PyJWTError, jwt.PyJWKClientError) as err:
            raise Unauthenticated(f"invalid token: {err}") from err
        return principal_from_claims(claims, self.config.trusted_services), float(claims["exp"])
