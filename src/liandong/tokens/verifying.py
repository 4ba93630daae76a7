"""Verifying casefile bearer tokens: with the shared HS256 key, an OIDC provider's JWKS, or a
service's own public key.

Service keys (docs/casefile.md, "Trust model"): a service named in `AuthConfig.service_keys`
signs with its own EC P-256 private key (ES256) and names itself in the JWT header `kid`.
Such a token is verified only with that service's public key and yields role SERVICE and
nothing else (`liandong.tokens.claims.service_principal`). Anything beyond that is refused
(Unauthenticated), so a stolen service key cannot become a manager's or an operator's. A token
in a keyed service's name under the shared HS256 key or the OIDC provider is refused too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from liandong.tokens.claims import (
    AUDIENCE,
    ISSUER,
    ClaimRefused,
    Principal,
    Unauthenticated,
    principal_from_claims,
    service_principal,
)
from liandong.tokens.issuing import SERVICE_ALGORITHM

log = logging.getLogger(__name__)


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
