"""The task's deadlines on the officer's phone read as days and hours beyond a day (已超时 3 天
4 小时, not "-76:05:10"), as H:MM:SS within a day, in Chinese and in English. The phone's
clock is set (Playwright's fixed time), so the texts do not depend on when the test runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from dispatch.adapters.credentials import CredentialStore
from dispatch.domain.tasks import task_id_for
from dispatch.entrypoints.phone_api import create_app
from tests.browser.conftest import LiveServer
from tests.unit.dispatch.harness import T0, alert_event, build

KEY = "browser-test-signing-key-of-32-bytes!"
PASSWORD = "clocks-test-password"


def shown(clock: str) -> str:
    """The clock's time left or overdue (beside its name and its due time)."""
    return f"[data-clock={clock}] > span:nth-child(2)"


def test_deadlines_read_as_days_and_hours_beyond_a_day(
    page: Page, tmp_path: Path, web_dist: Path, live_server: Callable[..., LiveServer]
) -> None:
    h = build(tmp_path)
    try:
        CredentialStore(h.service.store.engine).set_password("e1", PASSWORD)
        server = live_server(create_app(h.service, KEY, web_dist=web_dist))
        loop = server.server.servers[0].get_loop()
        # a P2 joint inspection raised at T0: accept by +30 min, arrive by +8 h, finish by +48 h
        asyncio.run_coroutine_threadsafe(h.service.on_alert_event(alert_event("A1")), loop).result(
            30
        )
        page.goto(server.url + "/")
        page.fill("input[name=person_id]", "e1")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{server.url}/#/task/{task_id_for('A1')}")
        accept, arrive, finish = (page.locator(shown(c)) for c in ("ACCEPT", "ARRIVE", "FINISH"))
        expect(accept).to_be_visible()

        # days later, nothing done
        page.clock.set_fixed_time(T0 + timedelta(days=3, hours=4, minutes=35, seconds=10))
        expect(accept).to_have_text("已超时 3 天 4 小时")  # 3 d 4 h 5 min 10 s
        expect(arrive).to_have_text("已超时 2 天 20 小时")
        expect(finish).to_have_text("已超时 1 天 4 小时")
        expect(page.locator("[data-clock=ACCEPT]")).to_have_class("late")
        # in the order the team meets them, whatever order dispatch sends them in
        order = page.locator("[data-clock]").evaluate_all("els => els.map(e => e.dataset.clock)")
        assert order == ["ACCEPT", "ARRIVE", "FINISH"], order
        # within a day: hours, minutes and seconds, late or left
        page.clock.set_fixed_time(T0 + timedelta(hours=1, minutes=2, seconds=3))
        expect(accept).to_have_text("已超时 0:32:03")
        expect(arrive).to_have_text("剩余 6:57:57")
        expect(finish).to_have_text("剩余 1 天 22 小时")  # 46 h 57 min 57 s

        page.get_by_role("button", name="English").click()
        expect(accept).to_have_text("overdue 0:32:03")
        expect(arrive).to_have_text("6:57:57 left")
        expect(finish).to_have_text("1 d 22 h left")
        page.clock.set_fixed_time(T0 + timedelta(days=3, hours=4, minutes=35, seconds=10))
        expect(accept).to_have_text("overdue 3 d 4 h")
        expect(finish).to_have_text("overdue 1 d 4 h")
    finally:
        h.close()
