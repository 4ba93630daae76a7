"""Dispatch as an OpenID Connect client (authorization code flow with PKCE S256, state and nonce).

The provider is found by discovery (`<issuer>/.well-known/openid-configuration`); the ID token
is checked with pyjwt against the provider's JWKS (signature, iss, aud, azp, exp, iat, nonce).
Only asymmetric signatures are accepted: an HS256 ID token would be signed with the client
secret, which a public client does not have and which would let anyone holding it forge one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

# asymmetric JWS algorithms pyjwt verifies with a provider's public key
_ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# clocks of the provider and of dispatch may differ a little
LEEWAY_S = 60
# discovery and keys are fetched again after this long (key rotation without a restart)
METADATA_TTL_S = 3600.0


class ProviderUnavailable(Exception):
    """The provider could not be reached, or answered something that is not OIDC."""


class SignInRefused(Exception):
    """The provider refused the code, or its answer does not check out."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None = None
    # the claim whose value is the roster person id; `sub` is the only one OIDC promises to be
    # stable and unique per provider, so it is the default
    person_claim: str = "sub"
    scopes: tuple[str, ...] = ("openid", "profile")
    # shown on the sign-in button ("Sign in with <name>")
    display_name: str = ""
    # None: derived from the request (https://host/v1/auth/oidc/callback); set it behind a proxy
    redirect_uri: str | None = None
    # keep the embedded password form beside the provider (e.g. a break-glass operator)
    keep_password: bool = False
    timeout_s: float = 10.0

    @staticmethod
    def from_env(env: dict[str, str] | None = None) -> OidcConfig | None:
        """LIANDONG_OIDC_ISSUER and LIANDONG_OIDC_CLIENT_ID switch OIDC on; None without them."""
        e = os.environ if env is None else env
        issuer = e.get("LIANDONG_OIDC_ISSUER", "").strip()
        client_id = e.get("LIANDONG_OIDC_CLIENT_ID", "").strip()
        if not issuer and not client_id:
            return None
        if not issuer or not client_id:
            raise ValueError("LIANDONG_OIDC_ISSUER and LIANDONG_OIDC_CLIENT_ID go together")
        scopes = tuple(e.get("LIANDONG_OIDC_SCOPES", "openid profile").split())
        if "openid" not in scopes:
            scopes = ("openid", *scopes)
        return OidcConfig(
            issuer=issuer.rstrip("/"),
            client_id=client_id,
            client_secret=e.get("LIANDONG_OIDC_CLIENT_SECRET") or None,
            person_claim=e.get("LIANDONG_OIDC_PERSON_CLAIM", "sub").strip() or "sub",
            scopes=scopes,
            display_name=e.get("LIANDONG_OIDC_NAME", "").strip(),
            redirect_uri=e.get("LIANDONG_OIDC_REDIRECT_URI") or None,
            keep_password=e.get("LIANDONG_OIDC_KEEP_PASSWORD", "").lower() in ("1", "true", "yes"),
            timeout_s=float(e.get("LIANDONG_OIDC_TIMEOUT_SECONDS", "10")),
        )


@dataclass(frozen=True)
class Pending:
    """What a started sign-in needs when the provider sends the browser back."""

    state: str
    nonce: str
    verifier: str

    @staticmethod
    def new() -> Pending:
        # RFC 7636: a verifier of 43 to 128 characters; 48 random bytes give 64
        return Pending(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),
        )

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class _Cached:
    value: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    def fresh(self) -> bool:
        return time.monotonic() - self.at < METADATA_TTL_S


class OidcClient:
    def __init__(self, config: OidcConfig, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config
        self._transport = transport
        self._metadata: _Cached | None = None
        self._jwks: _Cached | None = None
        self._lock = asyncio.Lock()

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.config.timeout_s, transport=self._transport)

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._http() as c:
                r = await c.get(url, headers={"Accept": "application/json"})
            r.raise_for_status()
            body = r.json()
        except (httpx.HTTPError, ValueError) as e:
            raise ProviderUnavailable(f"{url}: {e}") from e
        if not isinstance(body, dict):
            raise ProviderUnavailable(f"{url}: not a JSON object")
        return body

    async def metadata(self) -> dict[str, Any]:
        async with self._lock:
            if self._metadata is None or not self._metadata.fresh():
                url = f"{self.config.issuer}/.well-known/openid-configuration"
                doc = await self._get_json(url)
                # OIDC Discovery 4.3: the document's issuer must be the one configured, or a
                # provider could speak for another
                if doc.get("issuer", "").rstrip("/") != self.config.issuer:
                    raise ProviderUnavailable(f"{url} names another issuer: {doc.get('issuer')}")
                for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(doc.get(key), str):
                        raise ProviderUnavailable(f"{url} lacks {key}")
                methods = doc.get("code_challenge_methods_supported")
                if methods is not None and "S256" not in methods:
                    raise ProviderUnavailable(f"{url}: the provider does not offer PKCE S256")
                self._metadata = _Cached(doc)
            return self._metadata.value

    async def authorization_url(self, pending: Pending, redirect_uri: str) -> str:
        meta = await self.metadata()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self.config.scopes),
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": pending.challenge,
                "code_challenge_method": "S256",
            }
        )
        endpoint = meta["authorization_endpoint"]
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def _signing_key(self, kid: str | None) -> jwt.PyJWK:
        for refetch in (False, True):
            async with self._lock:
                if refetch or self._jwks is None or not self._jwks.fresh():
                    meta = self._metadata.value if self._metadata else None
                    if meta is None:
                        raise ProviderUnavailable("no discovery document")
                    self._jwks = _Cached(await self._get_json(meta["jwks_uri"]))
                jwks = self._jwks.value
            try:
                keys = [k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.public_key_use != "enc"]
            except jwt.PyJWTError as e:
                raise ProviderUnavailable(f"the provider's JWKS: {e}") from e
            matching = [k for k in keys if kid is None or k.key_id == kid]
            if matching and (kid is not None or len(matching) == 1):
                return matching[0]
            # an unknown kid: the provider may have rotated its keys since we fetched them
        raise SignInRefused(f"the ID token's key {kid!r} is not in the provider's JWKS")

    async def redeem(self, code: str, pending: Pending, redirect_uri: str) -> dict[str, Any]:
        """Exchanges `code` with the PKCE verifier; returns the ID token's checked claims (and
        the person claim from userinfo when the ID token lacks it)."""
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pending.verifier,
            "client_id": self.config.client_id,
        }
        # a confidential client also authenticates (client_secret_basic); PKCE binds the code
        # to this sign-in either way
        auth: Any = httpx.USE_CLIENT_DEFAULT
        if self.config.client_secret:
            auth = httpx.BasicAuth(self.config.client_id, self.config.client_secret)
        try:
            async with self._http() as c:
                r = await c.post(meta["token_endpoint"], data=form, auth=auth)
        except httpx.HTTPError as e:
            raise ProviderUnavailable(f"token endpoint: {e}") from e
        try:
            body = r.json()
        except ValueError as e:
            raise ProviderUnavailable(f"token endpoint answered {r.status_code}, not JSON") from e
        if r.status_code == 400 and isinstance(body, dict):
            # RFC 6749 5.2: invalid_grant is a spent, expired or foreign code
            raise SignInRefused(f"the provider refused the code: {body.get('error', '?')}")
        if r.status_code != 200 or not isinstance(body, dict):
            raise ProviderUnavailable(f"token endpoint answered {r.status_code}")
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderUnavailable("the token answer has no id_token")
        claims = await self.check_id_token(id_token, pending.nonce)
        if self.config.person_claim not in claims and isinstance(body.get("access_token"), str):
            claims = {**(await self.userinfo(body["access_token"], claims["sub"])), **claims}
        return claims

    async def check_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        meta = await self.metadata()
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as e:
            raise SignInRefused(f"malformed ID token: {e}") from e
        alg = header.get("alg")
        offered = set(meta.get("id_token_signing_alg_values_supported") or ["RS256"])
        if alg not in _ASYMMETRIC or alg not in offered:
            raise SignInRefused(f"ID token signed with {alg!r}, which is not accepted")
        key = await self._signing_key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=[alg],
                audience=self.config.client_id,
                issuer=meta["issuer"],
                leeway=LEEWAY_S,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.PyJWTError as e:
            raise SignInRefused(f"the ID token does not check out: {e}") from e
        # OIDC Core 3.1.3.7: with several audiences, azp must name this client
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.config.client_id:
            raise SignInRefused("the ID token was issued to another client (azp)")
        got = claims.get("nonce")
        if not isinstance(got, str) or not secrets.compare_digest(got.encode(), nonce.encode()):
            raise SignInRefused("the ID token's nonce is not the one this sign-in sent")
        return claims

    async def userinfo(self, access_token: str, sub: str) -> dict[str, Any]:
        meta = await self.metadata()
        url = meta.get("userinfo_endpoint")
        if not isinstance(url, str):
            return {}
        try:
            async with self._http() as c:
                r = await c.get(url, headers={"Authorization": f"Bearer {access_token}"})
            r.raise_for_status()
            info = r.json()
        except (httpx.HTTPError, ValueError) as e:
            raise ProviderUnavailable(f"userinfo: {e}") from e
        # OIDC Core 5.3.2: userinfo for another subject must not be used
        if not isinstance(info, dict) or info.get("sub") != sub:
            raise SignInRefused("userinfo names another subject than the ID token")
        return info
