"""Both apps on a 390x844 phone: no view scrolls sideways. The managers' console (every view,
reached through its own navigation) over the report dataset of tests/unit/dispatch/report_seed
and the cases of a real casefile; the field app's inbox and task. What is wider than the
screen (a table of many columns) scrolls inside its own box, never the page."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from dispatch.adapters.casefile_client import CaseFileClient, CasefileTokens
from dispatch.adapters.credentials import CredentialStore
from dispatch.domain.tasks import task_id_for
from dispatch.entrypoints.phone_api import create_app
from tests.browser import test_console as laptop
from tests.browser.conftest import LiveServer
from tests.unit.dispatch import report_seed
from tests.unit.dispatch.harness import Harness, alert_event, build

KEY = "browser-test-signing-key-of-32-bytes!"
WIDTH = 390
# the console's data, server and casefile as in test_console.py (fixtures found by name)
seeded = laptop.seeded
console = laptop.console
casefile_address = laptop.casefile_address


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """The phone of conftest (390x844); reduced motion turns the charts' animations off."""
    return {**browser_context_args, "reduced_motion": "reduce"}


def fits(page: Page, view: str) -> None:
    """The page is no wider than the screen (a mobile browser would otherwise zoom out or
    scroll sideways)."""
    sizes = page.evaluate(
        "({scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth})"
    )
    assert sizes["inner"] == WIDTH, (view, sizes)
    assert sizes["scroll"] <= sizes["inner"], (view, sizes)


def test_every_console_view_fits_a_phone(
    page: Page,
    console: LiveServer,
    seeded: tuple[Harness, dict[str, str]],
    casefile_address: tuple[str, dict[str, str]],
) -> None:
    address, ids = casefile_address

    async def connect() -> None:  # the client's channel lives on the server's own loop
        seeded[0].service.casefile = CaseFileClient(address, CasefileTokens(laptop.DISPATCH_KEY), 5)  # type: ignore[assignment]

    loop = console.server.servers[0].get_loop()
    asyncio.run_coroutine_threadsafe(connect(), loop).result(10)
    # the views' default periods (the last 30 days, this month) then hold the seeded tasks
    page.clock.set_fixed_time(report_seed.NOW)
    laptop.sign_in(page, console, "gl")
    fits(page, "sign-in")
    expect(page.locator("[data-card=alarms-today] .value")).to_be_visible()
    expect(page.locator("[data-chart=alarms-by-kind] svg")).to_be_visible()
    fits(page, "overview")
    # every view through the header's own navigation, as a manager's thumb would
    views = {
        "response": "[data-table=stages]",
        "map": "[data-chart=map] svg",
        "cases": "[data-table=cases] tbody tr",
        "report": "[data-table=report-ranking]",
        "overview": "[data-card=open-tasks] .value",
    }
    for view, ready in views.items():
        link = page.locator(f"header nav a[href='#/{view}']")
        link.click()
        expect(link).to_have_class("here")
        expect(page.locator(ready).first).to_be_visible()
        fits(page, view)
    page.locator("header nav a[href='#/response']").click()
    page.locator("[data-table=slowest-open] [data-task]").first.click()
    expect(page.locator("[data-table=timeline] li").first).to_be_visible()
    fits(page, "task")
    page.goto(f"{console.url}/console/#/case/{ids['C1']}")
    expect(page.locator("[data-audit=ok]")).to_be_visible()
    fits(page, "case")
    # in English too (longer words in the navigation and the headings)
    page.locator("[data-lang]").click()
    for view, ready in views.items():
        page.locator(f"header nav a[href='#/{view}']").click()
        expect(page.locator(ready).first).to_be_visible()
        fits(page, f"{view} (en)")


def test_the_field_inbox_and_task_fit_a_phone(
    page: Page, tmp_path: Path, web_dist: Path, live_server: Callable[..., LiveServer]
) -> None:
    h = build(tmp_path)
    try:
        CredentialStore(h.service.store.engine).set_password("e1", "narrow-test-password")
        server = live_server(create_app(h.service, KEY, web_dist=web_dist))
        loop = server.server.servers[0].get_loop()
        asyncio.run_coroutine_threadsafe(h.service.on_alert_event(alert_event("A1")), loop).result(
            30
        )
        page.goto(server.url + "/")
        fits(page, "field sign-in")
        page.fill("input[name=person_id]", "e1")
        page.fill("input[name=password]", "narrow-test-password")
        page.click("button[type=submit]")
        link = page.locator(f"a.task[data-task='{task_id_for('A1')}']")
        expect(link).to_be_visible()
        fits(page, "inbox")
        link.click()
        expect(page.locator("[data-clock=FINISH]")).to_be_visible()
        fits(page, "task")
    finally:
        h.close()
