"""The managers' console in Debian's Chromium on a 1440x900 laptop screen, against the real
dispatch app on a real port, over the hand-computed dataset of tests/unit/dispatch/report_seed:
the numbers in the tables, the exports, charts drawn with data, a county manager who sees
nothing of the other county, the live overview, and the monthly report printed to PDF."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from openpyxl import load_workbook
from playwright.sync_api import BrowserContext, Page, expect

from casefile.adapters.evidence_store import open_store
from dispatch.adapters.casefile_client import CaseFileClient, CasefileTokens
from dispatch.adapters.credentials import CredentialStore
from dispatch.entrypoints.phone_api import create_app
from liandong.tokens.issuing import issue_service
from liandong.tokens.keys import new_private_key
from liandong.tokens.verifying import AuthConfig
from liandong.v1 import casefile_pb2_grpc
from tests.browser.conftest import LiveServer
from tests.integration.casefile.conftest import KEY as CASEFILE_KEY
from tests.integration.casefile.conftest import running_server
from tests.integration.casefile.test_evidence_upload import config as evidence_config
from tests.integration.dispatch import test_console_cases as cases
from tests.unit.dispatch import report_seed
from tests.unit.dispatch.harness import Harness, alert_event

KEY = "browser-test-signing-key-of-32-bytes!"
PASSWORD = "console-test-password"
person_names = {pid: name for pid, name, _ in report_seed.MANAGERS}
DISPATCH_KEY = new_private_key()  # dispatch's own casefile key; casefile holds the public half
RANGE = "since=2026-03-01&until=2026-03-20"
# LIANDONG_DOC_SCREENSHOTS=docs/img keeps the overview screenshot for the README
DOC_SHOTS = os.environ.get("LIANDONG_DOC_SCREENSHOTS", "")


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """A laptop, not the phone of conftest; reduced motion turns the charts' animations off."""
    args = {k: v for k, v in browser_context_args.items() if k not in ("is_mobile", "has_touch")}
    return {
        **args,
        "viewport": {"width": 1440, "height": 900},
        "device_scale_factor": 1,
        "reduced_motion": "reduce",
        "accept_downloads": True,
    }


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Harness, dict[str, str]]]:
    h, ids = report_seed.seeded_harness(tmp_path)
    yield h, ids
    h.close()


@pytest.fixture
def console(
    seeded: tuple[Harness, dict[str, str]],
    web_dist: Path,
    live_server: Callable[..., LiveServer],
) -> LiveServer:
    credentials = CredentialStore(seeded[0].service.store.engine)
    for pid, _, _ in report_seed.MANAGERS:
        credentials.set_password(pid, PASSWORD)
    return live_server(create_app(seeded[0].service, KEY, web_dist=web_dist))


def sign_in(page: Page, server: LiveServer, person: str = "boss") -> str:
    """Signs in through the console's (shared) sign-in form; returns the access token."""
    page.goto(f"{server.url}/console/")
    page.fill("input[name=person_id]", person)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text(person_names[person])
    return str(page.evaluate("JSON.parse(localStorage.getItem('liandong.session')).access_token"))


def cells(page: Page, table: str, row: str) -> list[str]:
    return page.locator(f"[data-table={table}] tr[data-county='{row}'] td").all_inner_texts()


def test_response_times_show_the_hand_computed_numbers(
    page: Page, context: BrowserContext, console: LiveServer, tmp_path: Path
) -> None:
    sign_in(page, console)
    page.goto(f"{console.url}/console/#/response?{RANGE}&bucket=week")
    ranking = "[data-table=ranking]"
    expect(page.locator(f"{ranking} tr[data-county='320115']")).to_be_visible()
    # rank, county, tasks, open, response p50, p90 (min), total p50, breaches, rate
    assert cells(page, "ranking", "320106") == [
        "1", "鼓楼区 320106", "4", "1", "42.0", "61.0", "101.0", "0", "0%",
    ]  # fmt: skip
    assert cells(page, "ranking", "320115") == [
        "2", "江宁区 320115", "4", "1", "95.0", "116.0", "175.0", "2", "50%",
    ]  # fmt: skip
    jn = page.locator("[data-table=stages] tr[data-group='320115']")
    assert jn.locator("[data-stage=acceptance][data-q=p50]").inner_text() == "30.0"
    assert jn.locator("[data-stage=total][data-q=p90]").inner_text() == "176.0"
    assert jn.locator("[data-stage=sampling][data-q=max]").inner_text() == "60.0"
    # the chart over time is drawn, with the three weeks and the p50 line's labels
    chart = page.locator("[data-chart=series] svg")
    expect(chart).to_be_visible()
    text = chart.text_content() or ""
    for week in ("2026-03-02", "2026-03-09", "2026-03-16"):
        assert week in text
    # p50 labels of response per week over both counties: 42 (G1, J1), 61 (G2, J2), 33 (G3, J3)
    assert "426133" in text
    assert page.locator("[data-chart=series] svg path").count() > 5
    # the export a manager downloads from the page carries the same numbers
    with page.expect_download() as got:
        page.locator("[data-export='ranking.csv']").first.click()
    saved = tmp_path / got.value.suggested_filename
    got.value.save_as(saved)
    assert saved.name == "ranking-20260301-20260320.csv"
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert rows[1][:5] == ["1", "320106", "4", "1", "2520.0"]
    assert rows[2][:5] == ["2", "320115", "4", "1", "5700.0"]
    with page.expect_download() as got:
        page.locator("[data-export='response-times.xlsx']").first.click()
    assert got.value.suggested_filename == "response-times-20260301-20260320.xlsx"
    book = load_workbook(io.BytesIO(Path(got.value.path()).read_bytes()))
    found = {(r[0], r[3]): r for r in book.active.iter_rows(min_row=2, values_only=True)}
    assert found[("320106", "response")][4:8] == (3, 2520.0, 3660.0, 3660.0)
    # English on request
    page.locator("[data-lang]").click()
    expect(page.locator("h2").first).to_contain_text("County ranking")
    assert cells(page, "ranking", "320106")[1] == "Gulou 320106"


def test_click_through_to_a_task_timeline(
    page: Page, context: BrowserContext, console: LiveServer, seeded: tuple[Harness, dict[str, str]]
) -> None:
    sign_in(page, console)
    page.goto(f"{console.url}/console/#/response?{RANGE}")
    page.locator(f"[data-task='{seeded[1]['J4']}']").click()
    expect(page.locator("[data-table=timeline] li").first).to_contain_text("告警")
    assert page.locator("[data-table=timeline] li").count() == 3  # alert, created, assigning
    page.goto(f"{console.url}/console/#/task/{seeded[1]['J3']}")
    expect(page.locator("[data-table=timeline] li[data-kind=COMPLETED]")).to_be_visible()
    stages = page.locator("[data-table=task-stages]").inner_text()
    assert "116.0" in stages and "176.0" in stages
    assert "J3: a21026 120 mg/m3" in page.locator("dl.facts").inner_text()


def test_a_county_manager_sees_nothing_of_the_other_county(
    page: Page, context: BrowserContext, console: LiveServer, seeded: tuple[Harness, dict[str, str]]
) -> None:
    token = sign_in(page, console, "jn")
    page.goto(f"{console.url}/console/#/response?{RANGE}")
    expect(page.locator("[data-table=ranking] tr[data-county='320115']")).to_be_visible()
    body = page.locator("main").inner_text()
    assert "320106" not in body and "鼓楼" not in body
    # the API and the exports say the same
    bearer = {"Authorization": f"Bearer {token}"}
    query = "since=2026-03-01T00:00:00%2B08:00&until=2026-03-21T00:00:00%2B08:00"
    for name in ("response-times", "ranking", "series", "tasks"):
        for fmt in ("csv", "xlsx"):
            url = f"{console.url}/v1/reports/export/{name}.{fmt}?{query}"
            r = page.request.get(url, headers=bearer)
            assert r.status == 200
            text = r.text() if fmt == "csv" else _xlsx_text(r.body())
            assert "320106" not in text, (name, fmt)
    url = f"{console.url}/v1/reports/tasks/{seeded[1]['G1']}/timeline"
    r = page.request.get(url, headers=bearer)
    assert r.status == 403
    page.goto(f"{console.url}/console/#/task/{seeded[1]['G1']}")
    expect(page.locator(".problem")).to_contain_text("无权查看")
    page.goto(f"{console.url}/console/#/map")
    expect(page.locator("[data-chart=map] svg")).to_be_visible()
    # both outlines are drawn (the map is geography, not data); no Gulou outlet is on it
    assert "鼓楼" in (page.locator("[data-chart=map] svg").text_content() or "")
    r = page.request.get(f"{console.url}/v1/reports/map", headers=bearer)
    assert [o["id"] for o in r.json()["outlets"]] == ["OJ"]


def _xlsx_text(body: bytes) -> str:
    sheet = load_workbook(io.BytesIO(body)).active
    return " ".join(str(v) for row in sheet.iter_rows(values_only=True) for v in row)


def test_the_overview_updates_live_when_an_alarm_arrives(
    page: Page,
    context: BrowserContext,
    console: LiveServer,
    seeded: tuple[Harness, dict[str, str]],
    tmp_path: Path,
) -> None:
    sign_in(page, console)
    page.goto(f"{console.url}/console/#/overview")
    today = page.locator("[data-card=alarms-today] .value")
    expect(today).to_have_text("2")
    expect(page.locator("[data-card=alarms-week] .value")).to_have_text("4")
    expect(page.locator("[data-card=open-tasks] .value")).to_have_text("2")
    expect(page.locator("[data-card=open-breached] .value")).to_have_text("1")
    expect(page.locator("[data-live=on]")).to_be_visible()
    for chart in ("alarms-by-kind", "open-by-stage"):
        svg = page.locator(f"[data-chart={chart}] svg")
        expect(svg).to_be_visible()
        assert svg.locator("path").count() > 3
    assert "超标" in (page.locator("[data-chart=alarms-by-kind] svg").text_content() or "")
    # the slowest list numbers from the slowest county (the full ranking from the fastest)
    assert cells(page, "slowest-counties", "320115")[4] == "116.0"
    assert cells(page, "slowest-counties", "320115")[0] == "1"
    assert cells(page, "slowest-counties", "320106")[0] == "2"
    header = page.locator("[data-table=slowest-counties] th").first
    expect(header).to_have_text("名次(最慢为1)")
    if DOC_SHOTS:
        page.screenshot(path=str(Path(DOC_SHOTS) / "console-overview.png"), full_page=True)
    # a new alarm reaches dispatch (on the server's own event loop, as the consumer would)
    h = seeded[0]
    alarm = alert_event("A-live", at=report_seed.NOW - timedelta(minutes=1))
    loop = console.server.servers[0].get_loop()
    asyncio.run_coroutine_threadsafe(h.service.on_alert_event(alarm), loop).result(30)
    expect(today).to_have_text("3")  # no reload: the SSE stream brought it
    expect(page.locator("[data-card=alarms-week] .value")).to_have_text("5")


def test_the_monthly_report_prints_to_pdf(
    page: Page, context: BrowserContext, console: LiveServer, tmp_path: Path
) -> None:
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is missing: run `make browser` (deploy/browser/chromium.sh)")
    sign_in(page, console)
    page.goto(f"{console.url}/console/#/report?month=2026-03")
    expect(page.locator("[data-table=report-ranking] tr[data-county='320115']")).to_be_visible()
    pdf = tmp_path / "report.pdf"
    page.pdf(path=str(pdf), format="A4", landscape=True, print_background=True)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "月度响应时效报告" in text and "2026-03" in text
    assert "联动 · 管理驾驶舱" not in text  # the screen header is not printed
    lines = [line.split() for line in text.splitlines()]
    gulou = next(words for words in lines if words[:2] == ["1", "鼓楼区"])
    assert gulou[2:] == ["320106", "4", "1", "42.0", "61.0", "101.0", "0", "0%"]
    jiangning = next(words for words in lines if words[:2] == ["2", "江宁区"])
    assert jiangning[2:] == ["320115", "4", "1", "95.0", "116.0", "175.0", "2", "50%"]


@pytest.fixture
def casefile_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, dict[str, str]]]:
    """A real casefile gRPC server (tokens required, dispatch's own key, an evidence store,
    its bundle key under tmp_path) on its own thread and loop, holding the cases of
    tests/integration/dispatch/test_console_cases.py."""
    ready: list[str] = []
    started, stop = threading.Event(), threading.Event()
    config = AuthConfig(required=True, hs_key=CASEFILE_KEY,
                        service_keys={"dispatch": DISPATCH_KEY.public_key()})  # fmt: skip
    monkeypatch.setenv("LIANDONG_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("LIANDONG_CASEFILE_BUNDLE_KEY", str(tmp_path / "bundle.key"))
    evidence_url = str(tmp_path / "evidence")
    evidence = (open_store(evidence_url, tmp_path), evidence_config(evidence_url))

    async def serve() -> None:
        db = f"sqlite:///{tmp_path / 'casefile.db'}"
        async with running_server(db, config, evidence=evidence) as server:
            server.clock.at = cases.NOW
            ready.append(server.address)
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(20), "casefile did not start"
    service = (("authorization", f"Bearer {issue_service(DISPATCH_KEY, service='dispatch')}"),)
    ids: dict[str, str] = {}
    with grpc.insecure_channel(ready[0]) as channel:
        stub = casefile_pb2_grpc.CaseFileStub(channel)
        for name, (county, discovered) in cases.CASES.items():
            ids[name] = stub.OpenCase(
                cases.open_request(name, county, discovered), metadata=service
            ).case_id
    yield ready[0], ids
    stop.set()
    thread.join(20)


def test_cases_with_legal_deadlines_and_a_case_page(
    page: Page,
    context: BrowserContext,
    console: LiveServer,
    seeded: tuple[Harness, dict[str, str]],
    casefile_address: tuple[str, dict[str, str]],
    tmp_path: Path,
) -> None:
    address, ids = casefile_address

    async def connect() -> None:  # the client's channel lives on the server's own loop
        seeded[0].service.casefile = CaseFileClient(address, CasefileTokens(DISPATCH_KEY), 5)  # type: ignore[assignment]

    loop = console.server.servers[0].get_loop()
    asyncio.run_coroutine_threadsafe(connect(), loop).result(10)
    sign_in(page, console, "gl")
    page.goto(f"{console.url}/console/#/cases?days=7")
    rows = page.locator("[data-table=cases] tbody tr")
    expect(rows).to_have_count(2)
    assert rows.nth(0).get_attribute("data-case") == ids["C1"]  # overdue first
    assert "已超期" in rows.nth(0).inner_text() and "2026-03-16" in rows.nth(0).inner_text()
    assert rows.nth(1).get_attribute("data-case") == ids["C2"]
    assert "2026-03-27" in rows.nth(1).inner_text() and "已超期" not in rows.nth(1).inner_text()
    page.locator("input[name=days]").fill("14")
    expect(rows).to_have_count(3)  # C4's last day is 14 days on; Jiangning's C3 never shows
    rows.nth(0).locator("a").first.click()
    expect(page.locator("[data-audit=ok]")).to_contain_text("审计链完整")
    assert "FILING" in page.locator("[data-table=clocks]").inner_text()
    assert "C1 SO2 over limit" in page.locator("[data-table=records]").inner_text()
    # the case's signed bundle, exported by casefile for this manager
    button = page.locator("[data-bundle-download]")
    expect(button).to_have_text("下载案卷包（签名 tar）")
    with page.expect_download() as got:
        button.click()
    assert got.value.suggested_filename == f"{ids['C1']}.tar"
    bundle = tmp_path / "bundle.tar"
    got.value.save_as(bundle)
    with tarfile.open(bundle) as tar:
        members = set(tar.getnames())
    assert {f"{ids['C1']}/SHA256SUMS", f"{ids['C1']}/case.json"} <= members
    checked = subprocess.run(
        [str(Path(sys.executable).with_name("liandong")), "casefile", "verify", "--bundle",
         str(bundle)],
        env={**os.environ, "LIANDONG_CASEFILE_BUNDLE_KEY": str(tmp_path / "bundle.key")},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    page.goto(f"{console.url}/console/#/case/{ids['C3']}")
    expect(page.locator(".problem")).to_contain_text("无权查看")
