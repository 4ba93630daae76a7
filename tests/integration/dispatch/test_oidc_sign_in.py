"""Sign-in through a real OpenID Connect provider (panva's oidc-provider on a real port, see
tests/oidc_provider): dispatch on a real port as its client, and httpx as the browser that
follows the provider's login and consent forms. Authorization code with PKCE S256, state and
nonce; the one-time code handed to the app; refusals that say why and are never a 500."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from dispatch.adapters.credentials import PENDING_TTL, CredentialStore, PendingSignIn
from dispatch.adapters.credentials import TABLES as CREDENTIAL_TABLES
from dispatch.adapters.oidc import OidcClient, OidcConfig
from dispatch.adapters.store import make_engine
from dispatch.entrypoints.phone_api import create_app
from liandong.tokens.phone import verify
from tests.browser.conftest import LiveServer
from tests.oidc_provider import Provider, free_port, running_provider, sign_in_at_provider
from tests.unit.dispatch.harness import Harness, build

pytestmark = pytest.mark.integration

# made per run: no secret is written in the repository
KEY = secrets.token_urlsafe(32)
CLIENT_SECRET = secrets.token_urlsafe(24)
PASSWORD = secrets.token_urlsafe(12)
USERS = {
    "e1": {"password": PASSWORD},
    "mgr": {"password": PASSWORD},
    "stranger": {"password": PASSWORD},  # known to the provider, not on the roster
    # an opaque subject: only preferred_username names the roster person
    "e2": {"password": PASSWORD, "sub": "u-0002"},
}


@dataclass
class Site:
    url: str
    harness: Harness


def callback(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/auth/oidc/callback"


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"main": free_port(), "by_username": free_port()}


@pytest.fixture(scope="module")
def provider(ports: dict[str, int]) -> Iterator[Provider]:
    client = {
        "client_id": "liandong",
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [callback(p) for p in ports.values()],
    }
    with running_provider([client], USERS) as p:
        yield p


def serve(tmp: Path, port: int, config: OidcConfig) -> tuple[Site, LiveServer]:
    h = build(tmp)
    app = create_app(h.service, KEY, oidc=OidcClient(config))
    server = LiveServer(app, port).__enter__()
    return Site(server.url, h), server


@pytest.fixture(scope="module")
def site(
    provider: Provider, ports: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    config = OidcConfig(provider.issuer, "liandong", CLIENT_SECRET, display_name="测试认证")
    s, server = serve(tmp_path_factory.mktemp("oidc"), ports["main"], config)
    yield s
    server.__exit__()
    s.harness.close()


@pytest.fixture
def agent() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=20) as c:
        yield c


def start(agent: httpx.Client, site: Site, app: str = "field") -> str:
    r = agent.get(f"{site.url}/v1/auth/oidc/start", params={"app": app})
    assert r.status_code == 302, r.text
    return r.headers["location"]


def sign_in(agent: httpx.Client, site: Site, login: str, app: str = "field") -> httpx.Response:
    """Start, sign in at the provider, and come back: dispatch's answer to the callback."""
    back = sign_in_at_provider(agent, start(agent, site, app), login, PASSWORD)
    assert back.headers["location"].startswith(f"{site.url}/v1/auth/oidc/callback?")
    return agent.get(back.headers["location"])


def handoff(answer: httpx.Response, app_path: str = "/") -> str:
    assert answer.status_code == 303, answer.text
    where = answer.headers["location"]
    assert where.startswith(f"{app_path}#oidc=")
    return where.split("#oidc=", 1)[1]


def test_a_person_signs_in_at_the_provider_and_gets_liandongs_own_tokens(
    site: Site, agent: httpx.Client
) -> None:
    authorize = start(agent, site)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["state"][0] and query["nonce"][0] and query["client_id"] == ["liandong"]
    assert "code_verifier" not in query  # the verifier stays in dispatch's database
    back = sign_in_at_provider(agent, authorize, "e1", PASSWORD)
    answer = agent.get(back.headers["location"])
    code = handoff(answer)
    # the state cookie is spent with the sign-in
    assert "liandong_oidc_state" in answer.headers.get("set-cookie", "")

    r = agent.post(f"{site.url}/v1/auth/oidc/exchange", json={"code": code})
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["person"]["person_id"] == "e1" and tokens["person"]["role"] == "ENFORCEMENT"
    assert tokens["expires_in"] == 900
    assert verify(tokens["access_token"], KEY).person_id == "e1"
    me = agent.get(
        f"{site.url}/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200 and me.json()["person_id"] == "e1"
    # refresh works as for a password sign-in
    renewed = agent.post(
        f"{site.url}/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert renewed.status_code == 200 and renewed.json()["person"]["person_id"] == "e1"
    # the one-time code works once
    again = agent.post(f"{site.url}/v1/auth/oidc/exchange", json={"code": code})
    assert again.status_code == 401


def test_the_console_asks_for_the_duty_manager_role(site: Site, agent: httpx.Client) -> None:
    code = handoff(sign_in(agent, site, "mgr", app="console"), "/console/")
    r = agent.post(f"{site.url}/v1/auth/oidc/exchange", json={"code": code})
    assert r.json()["person"]["role"] == "DUTY_MANAGER"
    with httpx.Client(timeout=20) as other:
        refused = sign_in(other, site, "e1", app="console")
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
    assert "DUTY_MANAGER" in refused.text


def test_a_person_the_roster_does_not_know_is_refused_with_a_page(
    site: Site, agent: httpx.Client
) -> None:
    r = sign_in(agent, site, "stranger")
    assert r.status_code == 403
    assert "不在人员名册中" in r.text and "not on the roster" in r.text
    # an opaque subject is not a roster id either (the default claim is `sub`)
    with httpx.Client(timeout=20) as other:
        assert sign_in(other, site, "e2").status_code == 403


def test_a_wrong_or_missing_state_is_refused(site: Site, agent: httpx.Client) -> None:
    back = sign_in_at_provider(agent, start(agent, site), "e1", PASSWORD)
    url = urlsplit(back.headers["location"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    base = f"{site.url}{url.path}"
    forged = agent.get(base, params={**query, "state": "someone-elses-state"})
    assert forged.status_code == 403 and "state" in forged.text
    assert agent.get(base, params={**query, "state": "状态"}).status_code == 403
    # the right state from another browser (no cookie): a planted callback URL
    with httpx.Client(timeout=20) as other:
        assert other.get(base, params=query).status_code == 403
    # no parameters at all, and a provider's error answer for an unknown state
    assert agent.get(base).status_code == 403
    assert agent.get(base, params={"error": "access_denied"}).status_code == 403
    # the genuine answer still works: refusals did not spend the sign-in
    handoff(agent.get(base, params=query))


def test_a_provider_error_ends_the_sign_in_with_its_reason(site: Site, agent: httpx.Client) -> None:
    state = parse_qs(urlsplit(start(agent, site)).query)["state"][0]
    r = agent.get(
        f"{site.url}/v1/auth/oidc/callback", params={"state": state, "error": "access_denied"}
    )
    assert r.status_code == 400 and "access_denied" in r.text


def test_a_replayed_callback_or_code_is_refused(site: Site, agent: httpx.Client) -> None:
    back = sign_in_at_provider(agent, start(agent, site), "e1", PASSWORD)
    first_callback = back.headers["location"]
    old_code = parse_qs(urlsplit(first_callback).query)["code"][0]
    handoff(agent.get(first_callback))
    # the same callback again (the state is spent and its cookie gone)
    state = parse_qs(urlsplit(first_callback).query)["state"][0]
    agent.cookies.set("liandong_oidc_state", state, domain="127.0.0.1", path="/v1/auth/oidc")
    assert agent.get(first_callback).status_code == 403
    # the old code under a fresh sign-in of the same agent: the provider refuses to redeem
    # it twice (and the new sign-in's verifier does not match its challenge anyway)
    fresh_state = parse_qs(urlsplit(start(agent, site)).query)["state"][0]
    r = agent.get(
        f"{site.url}/v1/auth/oidc/callback", params={"code": old_code, "state": fresh_state}
    )
    assert r.status_code == 400 and "invalid_grant" in r.text


def test_an_id_token_with_another_nonce_is_refused(site: Site, agent: httpx.Client) -> None:
    authorize = start(agent, site)
    back = sign_in_at_provider(agent, authorize, "e1", PASSWORD)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    # the provider put the nonce it was sent into the ID token; dispatch now expects another
    # (as if the token had been made for a different sign-in)
    with site.harness.service.store.engine.begin() as conn:
        changed = conn.execute(
            text("UPDATE dispatch_oidc_pending SET nonce = 'other' WHERE state_sha256 = :s"),
            {"s": hashlib.sha256(state.encode()).hexdigest()},
        )
        assert changed.rowcount == 1
    r = agent.get(back.headers["location"])
    assert r.status_code == 400 and "nonce" in r.text


def test_password_sign_in_is_off_and_the_apps_are_told(site: Site, agent: httpx.Client) -> None:
    methods = agent.get(f"{site.url}/v1/auth/methods").json()
    assert methods == {
        "password": False,
        "oidc": {"name": "测试认证", "start": "/v1/auth/oidc/start"},
    }
    r = agent.post(f"{site.url}/v1/auth/token", json={"person_id": "e1", "password": "x"})
    assert r.status_code == 403 and "OpenID Connect" in r.json()["detail"]


def test_the_person_may_be_named_by_another_claim(
    provider: Provider,
    ports: dict[str, int],
    tmp_path: Path,
    agent: httpx.Client,
) -> None:
    config = OidcConfig(
        provider.issuer,
        "liandong",
        CLIENT_SECRET,
        person_claim="preferred_username",
        keep_password=True,
    )
    s, server = serve(tmp_path, ports["by_username"], config)
    try:
        # oidc-provider puts profile claims in userinfo, not the ID token: dispatch asks there
        code = handoff(sign_in(agent, s, "e2"))
        r = agent.post(f"{s.url}/v1/auth/oidc/exchange", json={"code": code})
        assert r.json()["person"]["person_id"] == "e2"
        assert agent.get(f"{s.url}/v1/auth/methods").json()["password"] is True
    finally:
        server.__exit__()
        s.harness.close()


def test_an_unreachable_provider_is_a_502_page(tmp_path: Path, agent: httpx.Client) -> None:
    config = OidcConfig(f"http://127.0.0.1:{free_port()}", "liandong", timeout_s=2)
    s, server = serve(tmp_path, free_port(), config)
    try:
        r = agent.get(f"{s.url}/v1/auth/oidc/start")
        assert r.status_code == 502 and "text/html" in r.headers["content-type"]
    finally:
        server.__exit__()
        s.harness.close()


async def test_without_a_provider_nothing_changes(tmp_path: Path) -> None:
    h = build(tmp_path)
    app = create_app(h.service, KEY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/v1/auth/methods")).json() == {"password": True, "oidc": None}
        assert (await c.get("/v1/auth/oidc/start")).status_code == 404
    assert not any("/oidc/" in getattr(r, "path", "") for r in app.routes)
    h.close()


def test_the_configuration_comes_from_the_environment() -> None:
    assert OidcConfig.from_env({}) is None
    c = OidcConfig.from_env(
        {
            "LIANDONG_OIDC_ISSUER": "https://id.example.gov.cn/",
            "LIANDONG_OIDC_CLIENT_ID": "liandong",
            "LIANDONG_OIDC_PERSON_CLAIM": "preferred_username",
            "LIANDONG_OIDC_SCOPES": "profile",
        }
    )
    assert c is not None and c.issuer == "https://id.example.gov.cn"
    assert c.person_claim == "preferred_username" and c.scopes == ("openid", "profile")
    assert c.client_secret is None and not c.keep_password
    with pytest.raises(ValueError):
        OidcConfig.from_env({"LIANDONG_OIDC_ISSUER": "https://id.example.gov.cn"})


def test_a_pending_sign_in_and_a_handoff_code_are_spent_once(db_url: str) -> None:
    """On SQLite and PostgreSQL: the delete decides, so a state or a code works once."""
    engine = make_engine(db_url)
    try:
        store = CredentialStore(engine)
        pending = PendingSignIn("nonce", "verifier", "console", "DUTY_MANAGER")
        store.keep_pending("the-state", pending)
        assert store.take_pending("the-state") == pending
        assert store.take_pending("the-state") is None
        later = datetime.now(UTC) + PENDING_TTL + timedelta(seconds=1)
        store.keep_pending("old-state", pending)
        assert store.take_pending("old-state", now=later) is None  # expired
        code = store.issue_handoff("e1", "ENFORCEMENT")
        assert store.take_handoff(code) == ("e1", "ENFORCEMENT")
        assert store.take_handoff(code) is None
        assert store.take_handoff("never-issued") is None
    finally:
        SQLModel.metadata.drop_all(engine, tables=CREDENTIAL_TABLES)
        engine.dispose()
