"""The ID token checks of dispatch's OpenID Connect client, one by one, with tokens made here
(a real provider only makes good ones; tests/integration/dispatch/test_oidc_sign_in.py runs the
whole flow against one). Discovery and the JWKS are served by httpx's MockTransport."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from dispatch.adapters.oidc import (
    OidcClient,
    OidcConfig,
    Pending,
    ProviderUnavailable,
    SignInRefused,
)

ISSUER = "https://id.example.test"
NONCE = "the-nonce"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


class FakeProvider:
    """Discovery and JWKS only: what check_id_token reads."""

    def __init__(self) -> None:
        self.keys = {"k1": new_key()}
        self.issuer = ISSUER
        self.jwks_fetches = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{ISSUER}/auth",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                },
            )
        if request.url.path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [jwk(k, i) for i, k in self.keys.items()]})
        return httpx.Response(404)

    def client(self) -> OidcClient:
        transport = httpx.MockTransport(self.handle)
        return OidcClient(OidcConfig(ISSUER, "liandong"), transport=transport)


def token(key: rsa.RSAPrivateKey, kid: str = "k1", alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "sub": "e1",
        "aud": "liandong",
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
    } | claims
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, alg, {"kid": kid})


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


async def test_a_good_id_token_passes(provider: FakeProvider) -> None:
    claims = await provider.client().check_id_token(token(provider.keys["k1"]), NONCE)
    assert claims["sub"] == "e1"


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example.test"}, "issuer"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nonce": "another"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"nonce": "随机数"}, "nonce"),  # non-ASCII: refused, not a TypeError
        ({"iat": None}, "iat"),
        ({"aud": ["liandong", "other"]}, "azp"),
    ],
)
async def test_each_claim_is_checked(
    provider: FakeProvider, claims: dict[str, Any], why: str
) -> None:
    with pytest.raises(SignInRefused, match=f"(?i){why}"):
        await provider.client().check_id_token(token(provider.keys["k1"], **claims), NONCE)


async def test_a_signature_by_another_key_is_refused(provider: FakeProvider) -> None:
    with pytest.raises(SignInRefused, match="Signature"):
        await provider.client().check_id_token(token(new_key(), kid="k1"), NONCE)


async def test_symmetric_and_unsigned_tokens_are_refused(provider: FakeProvider) -> None:
    client = provider.client()
    hs = jwt.encode({"sub": "e1", "nonce": NONCE}, "a-client-secret-of-32-bytes-length", "HS256")
    with pytest.raises(SignInRefused, match="HS256"):
        await client.check_id_token(hs, NONCE)
    unsigned = jwt.encode({"sub": "e1", "nonce": NONCE}, None, "none")
    with pytest.raises(SignInRefused, match="none"):
        await client.check_id_token(unsigned, NONCE)


async def test_a_rotated_key_is_fetched_once_an_unknown_one_refused(
    provider: FakeProvider,
) -> None:
    client = provider.client()
    await client.check_id_token(token(provider.keys["k1"]), NONCE)
    provider.keys["k2"] = new_key()  # the provider rotates after dispatch cached its keys
    claims = await client.check_id_token(token(provider.keys["k2"], kid="k2"), NONCE)
    assert claims["sub"] == "e1" and provider.jwks_fetches == 2
    with pytest.raises(SignInRefused, match="k9"):
        await client.check_id_token(token(new_key(), kid="k9"), NONCE)


async def test_a_discovery_document_for_another_issuer_is_refused(
    provider: FakeProvider,
) -> None:
    provider.issuer = "https://evil.example.test"
    with pytest.raises(ProviderUnavailable, match="another issuer"):
        await provider.client().metadata()


async def test_the_authorization_url_carries_the_s256_challenge(provider: FakeProvider) -> None:
    pending = Pending.new()
    url = httpx.URL(await provider.client().authorization_url(pending, "https://l/cb"))
    q = url.params
    assert q["code_challenge_method"] == "S256" and q["code_challenge"] == pending.challenge
    assert q["state"] == pending.state and q["nonce"] == pending.nonce
    assert pending.verifier not in str(url)
    # RFC 7636 appendix B's example verifier and challenge
    known = Pending("s", "n", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    assert known.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
