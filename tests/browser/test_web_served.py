"""Dispatch serves both front ends from the web build on the API's origin, and a real browser
renders them in Chinese with nothing fetched from another origin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, Request

from dispatch.entrypoints.phone_api import create_app
from tests.browser.conftest import LiveServer
from tests.unit.dispatch.harness import build

KEY = "browser-test-signing-key-of-32-bytes!"


def test_dispatch_serves_the_field_app_and_console(
    page: Page, tmp_path: Path, web_dist: Path, live_server: Callable[..., LiveServer]
) -> None:
    h = build(tmp_path)
    try:
        server = live_server(create_app(h.service, KEY, web_dist=web_dist))
        requested: list[str] = []

        def seen(r: Request) -> None:
            requested.append(r.url)

        page.on("request", seen)
        page.goto(server.url + "/")
        assert page.locator("h1").first.inner_text().startswith("联动")
        page.goto(server.url + "/console/")
        assert page.locator("h1").first.inner_text().startswith("联动")
        # the API still answers beside the apps
        assert page.request.get(server.url + "/v1/me/tasks").status == 401
        assert requested and all(u.startswith(server.url) for u in requested), requested
    finally:
        h.close()
