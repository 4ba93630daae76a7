"""Tokens checked against an OIDC provider's JWKS, served by a tiny local HTTP server."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest

from casefile.adapters.tokens import AUDIENCE, ISSUER, AuthConfig, TokenVerifier, Unauthenticated
from casefile.domain.access import Role

SECRET = b"jwks-served-secret-0123456789abcdef"
# pyjwt[crypto] (cryptography) is not installed, so the JWKS carries a symmetric (oct) key;
# RS256/ES256 keys take the same PyJWKClient path once it is.
JWKS = {
    "keys": [
        {
            "kty": "oct",
            "kid": "k1",
            "alg": "HS256",
            "k": base64.urlsafe_b64encode(SECRET).rstrip(b"=").decode(),
        }
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
