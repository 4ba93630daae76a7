"""While the field app is open, a task offered over SSE vibrates the phone, says so in a toast
and counts in the badge; when the app is in the background, a reminder to answer comes as a
system notification too, and tapping it opens the task."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from dispatch.adapters.credentials import CredentialStore
from dispatch.domain.tasks import task_id_for
from dispatch.entrypoints.phone_api import create_app
from tests.browser.conftest import LiveServer
from tests.unit.dispatch.harness import alert_event, build

KEY = "browser-test-signing-key-of-32-bytes!"

# Chromium headless has no notification service and no vibration motor: the page's own
# Notification and navigator.vibrate are replaced by recorders before the app loads, with the
# permission granted, and the page's visibility is switchable (window.__hidden).
RECORDERS = """
window.__vibrations = [];
window.__notifications = [];
window.__hidden = false;
navigator.vibrate = (pattern) => { window.__vibrations.push(pattern); return true; };
class RecordedNotification {
  constructor(title, options) {
    this.title = title; this.options = options || {}; this.onclick = null;
    window.__notifications.push(this);
  }
  close() {}
  static requestPermission() { return Promise.resolve("granted"); }
}
RecordedNotification.permission = "granted";
window.Notification = RecordedNotification;
Object.defineProperty(document, "visibilityState", {
  configurable: true, get: () => (window.__hidden ? "hidden" : "visible"),
});
"""


def test_an_offer_vibrates_notifies_in_the_background_and_counts_in_the_badge(
    page: Page, tmp_path: Path, web_dist: Path, live_server: Callable[..., LiveServer]
) -> None:
    h = build(tmp_path)
    try:
        CredentialStore(h.service.store.engine).set_password("e1", "notify-test-password")
        server = live_server(create_app(h.service, KEY, web_dist=web_dist))
        loop = server.server.servers[0].get_loop()

        def on_server_loop(coro: Coroutine[Any, Any, Any]) -> None:  # as the consumer's
            asyncio.run_coroutine_threadsafe(coro, loop).result(30)

        page.add_init_script(RECORDERS)
        page.goto(server.url + "/")
        page.fill("input[name=person_id]", "e1")
        page.fill("input[name=password]", "notify-test-password")
        page.click("button[type=submit]")
        expect(page.get_by_text("暂无任务")).to_be_visible()
        expect(page.get_by_test_id("conn")).to_have_text("实时")  # the SSE stream is open
        expect(page.get_by_test_id("badge")).to_have_count(0)

        # in the foreground: the toast and a vibration, no system notification
        on_server_loop(h.service.on_alert_event(alert_event("A1")))
        expect(page.get_by_text("新任务待接受").first).to_be_visible()
        expect(page.get_by_test_id("badge")).to_have_text("1")
        page.wait_for_function("window.__vibrations.length === 1")
        assert page.evaluate("window.__vibrations") == [[200, 100, 200]]
        assert page.evaluate("window.__notifications.length") == 0
        assert page.title().startswith("(1) ")

        # in the background: the reminder two minutes on is a system notification, which
        # opens the task when tapped
        page.evaluate("window.__hidden = true")
        h.clock.advance(minutes=2)
        on_server_loop(h.service.tick())
        page.wait_for_function("window.__notifications.length === 1")
        note = page.evaluate(
            "({title: window.__notifications[0].title, tag: window.__notifications[0].options.tag})"
        )
        assert note == {"title": "任务提醒", "tag": task_id_for("A1")}
        assert page.evaluate("window.__vibrations.length") == 2
        expect(page.get_by_test_id("badge")).to_have_text("1")
        page.evaluate("window.__hidden = false; window.__notifications[0].onclick()")
        expect(page).to_have_url(f"{server.url}/#/task/{task_id_for('A1')}")
    finally:
        h.close()
