"""A new version of the field app is offered, never forced: the page keeps what the officer
typed until they tap 更新 (update); then the new service worker takes over."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from dispatch.adapters.credentials import CredentialStore
from dispatch.entrypoints.phone_api import create_app
from tests.browser.conftest import LiveServer
from tests.unit.dispatch.harness import build

KEY = "browser-test-signing-key-of-32-bytes!"


def test_a_new_version_waits_for_the_person(
    page: Page, tmp_path: Path, web_dist: Path, live_server: Callable[..., LiveServer]
) -> None:
    dist = tmp_path / "dist"
    shutil.copytree(web_dist, dist)
    (tmp_path / "h").mkdir()
    h = build(tmp_path / "h")
    try:
        CredentialStore(h.service.store.engine).set_password("e1", "update-test-password")
        server = live_server(create_app(h.service, KEY, web_dist=dist))
        page.goto(server.url + "/")
        page.fill("input[name=person_id]", "e1")
        page.fill("input[name=password]", "update-test-password")
        page.click("button[type=submit]")
        expect(page.get_by_text("暂无任务")).to_be_visible()
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        # the officer is typing when a new version is published
        page.evaluate("document.title = 'mid-form'")
        sw = dist / "sw.js"
        sw.write_text(sw.read_text().replace('const VERSION = "', 'const VERSION = "next-', 1))
        page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update())")
        banner = page.get_by_text("有新版本可用")
        expect(banner).to_be_visible(timeout=20_000)
        page.wait_for_timeout(1000)
        assert page.evaluate("document.title") == "mid-form"  # not reloaded behind their back
        with page.expect_navigation():
            page.get_by_role("button", name="更新").click()
        page.wait_for_function(
            "navigator.serviceWorker.controller && "
            "navigator.serviceWorker.controller.scriptURL.endsWith('/sw.js')"
        )
        expect(page.get_by_text("有新版本可用")).to_have_count(0)
        version = page.evaluate(
            "caches.keys().then((ks) => ks.filter((k) => k.startsWith('liandong-field-')))"
        )
        assert version and all("next-" in k for k in version), version
    finally:
        h.close()
