"""An officer signs in to the field app through the OpenID Connect provider, on a phone (390x844,
zh-CN) in Chromium: the 统一身份认证 button, the provider's real login and consent pages
(panva's oidc-provider on its own port, tests/oidc_provider), back in the inbox as the right
roster person; then the app refreshes its short-lived access token and stays signed in."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from dispatch.adapters.oidc import OidcClient, OidcConfig
from dispatch.entrypoints.phone_api import create_app
from tests.browser.conftest import LiveServer, free_port
from tests.oidc_provider import Provider, running_provider
from tests.unit.dispatch.harness import Harness, alert_event, build

KEY = secrets.token_urlsafe(32)
# LIANDONG_DOC_SCREENSHOTS=DIR keeps the sign-in screen and the provider's page
DOC_SHOTS = os.environ.get("LIANDONG_DOC_SCREENSHOTS", "")
PASSWORD = secrets.token_urlsafe(12)


def run_async(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Playwright's sync API owns this thread's event loop: async set-up runs on another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def provider(port: int) -> Iterator[Provider]:
    # a public client (no secret), as a phone app's would be: PKCE alone binds the code
    client = {
        "client_id": "liandong-app",
        "redirect_uris": [f"http://127.0.0.1:{port}/v1/auth/oidc/callback"],
    }
    with running_provider([client], {"e1": {"password": PASSWORD}}) as p:
        yield p


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = build(tmp_path)
    run_async(lambda: h.service.on_alert_event(alert_event("A1")))  # offered to e1
    yield h
    h.close()


def test_an_officer_signs_in_through_the_provider_and_stays_signed_in(
    page: Page,
    provider: Provider,
    port: int,
    harness: Harness,
    web_dist: Path,
    live_server: Callable[..., LiveServer],
) -> None:
    config = OidcConfig(provider.issuer, "liandong-app", display_name="测试认证")
    app = create_app(harness.service, KEY, web_dist=web_dist, oidc=OidcClient(config))
    server = live_server(app, port)
    page.goto(server.url + "/")

    button = page.get_by_role("button", name="使用统一身份认证登录")
    expect(button).to_be_visible()
    expect(page.locator("input[name=password]")).to_have_count(0)  # OIDC only by default
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("button", name="Sign in with 测试认证")).to_be_visible()
    page.get_by_role("button", name="中文").click()
    if DOC_SHOTS:
        page.screenshot(path=str(Path(DOC_SHOTS) / "field-oidc-sign-in.png"))

    button.click()
    page.wait_for_url(f"{provider.issuer}/interaction/**")
    page.fill("input[name=login]", "e1")
    page.fill("input[name=password]", PASSWORD)
    if DOC_SHOTS:
        page.screenshot(path=str(Path(DOC_SHOTS) / "oidc-provider-login.png"))
    page.get_by_role("button", name="登录 / Sign in").click()
    page.get_by_role("button", name="同意 / Allow").click()  # the provider's consent page

    page.wait_for_url(f"{server.url}/")  # the one-time code is off the address bar
    expect(page.get_by_text("当前用户: name of e1")).to_be_visible()
    expect(page.get_by_text("Acme Power").first).to_be_visible()  # the task offered to e1
    expect(page.get_by_test_id("conn")).to_have_text("实时", timeout=20_000)
    first = page.evaluate("JSON.parse(localStorage.getItem('liandong.session'))")
    assert first["person"]["person_id"] == "e1" and first["person"]["role"] == "ENFORCEMENT"
    assert "#" not in page.url
    if DOC_SHOTS:
        page.screenshot(path=str(Path(DOC_SHOTS) / "field-oidc-inbox.png"))

    # the access token runs out: the app spends its refresh token for a new pair on reload
    # (a second on: a token is the same bytes when issued in the same second to the same claims)
    page.wait_for_timeout(1100)
    page.evaluate(
        "const s = JSON.parse(localStorage.getItem('liandong.session'));"
        "s.expires_at = Date.now() - 1000;"
        "localStorage.setItem('liandong.session', JSON.stringify(s));"
    )
    page.reload()
    expect(page.get_by_text("当前用户: name of e1")).to_be_visible()
    expect(page.get_by_text("Acme Power").first).to_be_visible()
    page.wait_for_function(
        "(old) => JSON.parse(localStorage.getItem('liandong.session')).refresh_token !== old",
        arg=first["refresh_token"],
    )
    second = page.evaluate("JSON.parse(localStorage.getItem('liandong.session'))")
    assert second["access_token"] != first["access_token"]
    assert second["expires_at"] > first["expires_at"]
