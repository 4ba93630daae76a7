"""Tokens checked against an OIDC provider's JWKS, served by a tiny local HTTP server on
127.0.0.1: a real RSA key pair (RS256), a P-256 key (ES256) and a symmetric key (HS256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from liandong.tokens.claims import AUDIENCE, ISSUER, Role, Unauthenticated
from liandong.tokens.verifying import AuthConfig, TokenVerifier

SECRET = b"jwks-served-secret-0123456789abcdef"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _public_jwk(jwk_json: str, kid: str, alg: str | None) -> dict[str, str]:
    jwk = json.loads(jwk_json)
    jwk["kid"] = kid
    if alg:
        jwk["alg"] = alg
    return jwk


JWKS = {
    "keys": [
        # only public halves are published; the EC key has no "alg", so the verifier must
        # take ES256 from its curve
        _public_jwk(RSAAlgorithm.to_jwk(RSA_KEY.public_key()), "r1", "RS256"),
        _public_jwk(ECAlgorithm.to_jwk(EC_KEY.public_key()), "e1", None),
        {
            "kty": "oct",
            "kid": "k1",
            "alg": "HS256",
            "k": base64.urlsafe_b64encode(SECRET).rstrip(b"=").decode(),
        },
    ]
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(JWKS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def jwks_url() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/.well-known/jwks.json"
    httpd.shutdown()


def _token(kid: str, key: bytes) -> str:
    claims = {"sub": "o1", "roles": ["officer"], "exp": 4102444800, "iss": ISSUER, "aud": AUDIENCE}
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})


def test_token_verified_with_the_providers_key(jwks_url: str) -> None:
    verifier = TokenVerifier(AuthConfig(jwks_url=jwks_url))
    principal = verifier.verify(_token("k1", SECRET))
    assert principal.subject == "o1" and principal.roles == {Role.ENFORCEMENT_OFFICER}


def test_unknown_kid_or_wrong_key_is_refused(jwks_url: str) -> None:
    verifier = TokenVerifier(AuthConfig(jwks_url=jwks_url))
    with pytest.raises(Unauthenticated):
        verifier.verify(_token("k2", SECRET))
    with pytest.raises(Unauthenticated):
        verifier.verify(_token("k1", b"not-the-providers-key-0123456789ab"))


CLAIMS = {"sub": "o1", "roles": ["officer"], "exp": 4102444800, "iss": ISSUER, "aud": AUDIENCE}


def test_rs256_token_verified_with_the_published_rsa_key(jwks_url: str) -> None:
    verifier = TokenVerifier(AuthConfig(jwks_url=jwks_url))
    token = jwt.encode(CLAIMS, RSA_KEY, algorithm="RS256", headers={"kid": "r1"})
    principal = verifier.verify(token)
    assert principal.subject == "o1" and principal.roles == {Role.ENFORCEMENT_OFFICER}


def test_es256_token_verified_with_the_published_ec_key(jwks_url: str) -> None:
    verifier = TokenVerifier(AuthConfig(jwks_url=jwks_url))
    claims = {**CLAIMS, "sub": "m1", "roles": ["monitoring"]}
    token = jwt.encode(claims, EC_KEY, algorithm="ES256", headers={"kid": "e1"})
    principal = verifier.verify(token)
    assert principal.subject == "m1" and principal.roles == {Role.MONITORING_STAFF}


def test_rs256_token_signed_by_another_key_is_refused(jwks_url: str) -> None:
    verifier = TokenVerifier(AuthConfig(jwks_url=jwks_url))
    forged = jwt.encode(CLAIMS, OTHER_RSA_KEY, algorithm="RS256", headers={"kid": "r1"})
    with pytest.raises(Unauthenticated):
        verifier.verify(forged)


def test_rs256_token_with_wrong_audience_or_expired_is_refused(jwks_url: str) -> None:
    verifier = TokenVerifier(AuthConfig(jwks_url=jwks_url))
    for claims in ({**CLAIMS, "aud": "someone-else"}, {**CLAIMS, "exp": 946684800}):
        token = jwt.encode(claims, RSA_KEY, algorithm="RS256", headers={"kid": "r1"})
        with pytest.raises(Unauthenticated):
            verifier.verify(token)


def test_algorithm_confusion_with_the_public_key_as_hmac_secret_is_refused(
    jwks_url: str,
) -> None:
    # The classic attack: sign HS256 with the RSA *public* key bytes and name the RSA kid.
    # The algorithm must come from the published key, never from the token header.
    verifier = TokenVerifier(AuthConfig(jwks_url=jwks_url))
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": "r1"}).encode()
    ).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(CLAIMS).encode()).rstrip(b"=")
    signature = hmac.new(public_pem, header + b"." + body, hashlib.sha256).digest()
    token = b".".join((header, body, base64.urlsafe_b64encode(signature).rstrip(b"="))).decode()
    with pytest.raises(Unauthenticated):
        verifier.verify(token)
