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

Service keys (docs/casefile.md, "Trust model"): a service named in `AuthConfig.service_keys`
signs with its own EC P-256 private key (ES256) and names itself in the JWT header `kid`.
Such a token is verified only with that service's public key and yields role SERVICE and
nothing else: `sub` must equal the `kid`, `roles` must be `["service"]`, and an `act` may name
the person only as officer or monitoring staff. Anything beyond that is refused
(Unauthenticated), so a stolen service key cannot become a manager's or an operator's. A token
in a keyed service's name under the shared HS256 key or the OIDC provider is refused too.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from casefile.domain.access import Principal, Role

log = logging.getLogger(__name__)

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


SERVICE_ALGORITHM = "ES256"
# what a service may say about the person it acts for (a manager: reads only, domain.access)
_ACT_ROLES = frozenset({Role.ENFORCEMENT_OFFICER, Role.MONITORING_STAFF, Role.MANAGER})


class Unauthenticated(Exception):
    """No usable bearer token (missing, malformed, expired, wrong signature or audience)."""


class ClaimRefused(Unauthenticated):
    """A validly signed service token claiming more than its key may: a sign of a stolen key
    or a broken service, logged as a warning."""


@dataclass(frozen=True)
class AuthConfig:
    required: bool = True
    hs_key: str | None = None  # HS256 shared key
    jwks_url: str | None = None  # OIDC provider's JWKS (RS256/ES256 need pyjwt[crypto])
    issuer: str | None = ISSUER
    audience: str | None = AUDIENCE
    # HS256/JWKS tokens with role `service` count only for these subjects (legacy path)
    trusted_services: frozenset[str] = field(default_factory=lambda: frozenset({"dispatch"}))
    # service name -> its public key; such a service is trusted, and only under its own key
    service_keys: Mapping[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # a service with a key is trusted (also for OpenCase without a token while auth is off)
        union = self.trusted_services | frozenset(self.service_keys)
        object.__setattr__(self, "trusted_services", union)


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


def service_principal(claims: dict[str, Any], service: str) -> Principal:
    """The principal of a token verified with `service`'s own key: role SERVICE only, acting
    at most for an officer or monitoring staff. Over-claims raise ClaimRefused."""
    if claims.get("sub") != service:
        raise ClaimRefused(f"token signed with {service}'s key names sub {claims.get('sub')!r}")
    raw = claims.get("roles", claims.get("role", []))
    names = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else [raw]
    if [str(n).lower() for n in names] != [SERVICE_ROLE]:
        raise ClaimRefused(f"{service}'s token may claim role service only, not {raw!r}")
    act = claims.get("act")
    on_behalf = None
    if act is not None:
        if not isinstance(act, dict):
            raise Unauthenticated("act claim must be an object")
        if "act" in act:
            raise ClaimRefused(f"{service} acts for one person; acts do not nest")
        person_raw = act.get("roles", act.get("role", []))
        person_names = [person_raw] if isinstance(person_raw, str) else person_raw
        if not isinstance(person_names, list):
            raise Unauthenticated("act roles must be a list")
        acted = set()
        for name in person_names:
            if not isinstance(name, str):
                continue
            role = role_of(name)
            if name.lower() == SERVICE_ROLE or (role is not None and role not in _ACT_ROLES):
                raise ClaimRefused(
                    f"{service} may act only for officers and monitoring staff, not as {name!r}"
                )
            acted.add(role)
        if Role.MANAGER in acted and len(acted) > 1:
            # a manager is acted for only to read (a console); never mixed with a field role
            raise ClaimRefused(
                f"{service} may act only for officers and monitoring staff, or for a manager "
                f"alone, not as {person_names!r}"
            )
        on_behalf = principal_from_claims(act, frozenset(), nested=True)
    return Principal(service, frozenset({Role.SERVICE}), (), on_behalf)


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
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as err:
            raise Unauthenticated(f"invalid token: {err}") from err
        # the header only picks the key; the signature under that key decides
        if isinstance(kid, str) and kid in self.config.service_keys:
            return self._verify_service(token, kid, options)
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
        if claims.get("sub") in self.config.service_keys:
            raise Unauthenticated(
                f"{claims['sub']} signs with its own key (kid {claims['sub']}, ES256); "
                "a token in its name under any other key is refused"
            )
        return principal_from_claims(claims, self.config.trusted_services), float(claims["exp"])

    def _verify_service(
        self, token: str, service: str, options: dict[str, Any]
    ) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self.config.service_keys[service],
                algorithms=[SERVICE_ALGORITHM],
                audience=self.config.audience,
                issuer=self.config.issuer,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.PyJWTError as err:
            raise Unauthenticated(f"invalid {service} token: {err}") from err
        try:
            return service_principal(claims, service), float(claims["exp"])
        except ClaimRefused as err:
            log.warning("refused a token signed with %s's key: %s", service, err)
            raise
