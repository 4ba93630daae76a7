"""The whole joint inspection from three phones, in Chromium, on the real stack.

Real Kafka, gateway, alerts, dispatch (phone API + web app) and casefile (gRPC, SQLite), each a
process. The simulator raises an NOx exceedance at the Jiangning power plant; the task reaches
two officers and the monitoring staff over SSE (three browser contexts, no reload); they accept,
go en route, check in (one attempt from 3 km away is refused with the distance), record the
inspection with three signatures, a photo, a sample handed to the lab, its lab result confirmed;
one officer adds evidence offline, reloads and comes back online; the task completes. The case
read back through the phone API holds every record exactly once and `liandong casefile verify`
passes on casefile's database."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, Page, expect

from dispatch.adapters.credentials import CredentialStore
from dispatch.adapters.store import make_engine
from liandong.registry.document import RegistryDocument
from liandong.registry.topics_io import publish
from liandong.settings import Settings
from liandong.stack import Stack

REPO = Path(__file__).resolve().parents[2]
REGISTRY = REPO / "deploy" / "registry" / "demo.yaml"
# out-jn-power-1 in the demo registry; the check-in fence is 500 m around it
OUTLET = {"latitude": 31.9331, "longitude": 118.8420, "accuracy": 12}
FAR = {"latitude": 31.9600, "longitude": 118.8420, "accuracy": 12}  # ~3 km north
PASSWORD = "field-test-password"
PHOTO_CAP = 1_000_000  # a 12-megapixel photo of noise is well over it
# LIANDONG_DOC_SCREENSHOTS=docs/img keeps the README's screenshots of the task and the inbox;
# otherwise they go to the test's own folder (a test run leaves the repository as it was)
DOC_SHOTS = os.environ.get("LIANDONG_DOC_SCREENSHOTS", "")


def run_async(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Playwright's sync API owns this thread's event loop: async set-up runs on another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result()


@pytest.fixture
def stack(
    isolated_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    # Stack.isolated leaves the upload spool and the evidence store at their .state defaults:
    # a task id repeats across runs (same scenario hour), so give this run its own
    monkeypatch.setenv("LIANDONG_DISPATCH_UPLOADS", str(tmp_path / "uploads"))
    monkeypatch.setenv("LIANDONG_EVIDENCE_STORE", str(tmp_path / "evidence"))
    monkeypatch.setenv("LIANDONG_FIELD_PHOTO_MAX_BYTES", str(PHOTO_CAP))
    s = Stack.isolated(
        tmp_path / "stack", isolated_settings.topic_prefix, isolated_settings.kafka_bootstrap
    )
    raw = REGISTRY.read_bytes()
    run_async(
        lambda: publish(s.settings, RegistryDocument.model_validate(yaml.safe_load(raw)), raw)
    )
    s.start()
    try:
        run_async(lambda: s.wait_ready(timeout=120))
        credentials = CredentialStore(make_engine(s.settings.dispatch_db))
        for pid in ("p-enf-01", "p-enf-02", "p-enf-03", "p-mon-01"):
            credentials.set_password(pid, PASSWORD)
        yield s
    finally:
        s.stop()


def phone(browser: Browser, args: dict[str, Any], base: str, person: str) -> Page:
    context: BrowserContext = browser.new_context(**{**args, "geolocation": OUTLET})
    page = context.new_page()
    page.goto(base + "/")
    page.fill("input[name=person_id]", person)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("conn")).to_have_text("实时", timeout=20_000)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    return page


def sign(page: Page, selector: str) -> None:
    canvas = page.locator(f"{selector} canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    x, y = box["x"], box["y"]
    page.mouse.move(x + 20, y + 30)
    page.mouse.down()
    for i in range(1, 12):
        page.mouse.move(x + 20 + i * 25, y + 30 + (i % 3) * 20)
    page.mouse.up()


def jpeg(seed: int) -> bytes:
    """A small distinct photo (casefile reads the media type from the bytes)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (640, 480), (seed * 70 % 256, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def add_photo(page: Page, name: str, content: bytes, description: str) -> None:
    page.fill("[data-form=evidence] input[name=description]", description)
    page.set_input_files(
        "input[name=evidence-file]",
        files=[{"name": name, "mimeType": "image/jpeg", "buffer": content}],
    )


def case_of(page: Page, task_id: str) -> dict[str, Any]:
    return page.evaluate(
        """async (id) => {
          const s = JSON.parse(localStorage.getItem('liandong.session'));
          const headers = {authorization: `Bearer ${s.access_token}`};
          const r = await fetch(`/v1/tasks/${id}/case`, {headers});
          return await r.json();
        }""",
        task_id,
    )


def open_task(page: Page) -> str:
    link = page.locator("a.task", has_text="江宁热电").first
    expect(link).to_be_visible(timeout=180_000)
    task_id = str(link.get_attribute("data-task"))
    link.click()
    expect(page.locator(".taskview")).to_be_visible()
    return task_id


def test_joint_inspection_from_three_phones(
    browser: Browser, browser_context_args: dict[str, Any], stack: Stack, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{stack.settings.dispatch_http_port}"
    wang = phone(browser, browser_context_args, base, "p-enf-01")  # 王强
    li = phone(browser, browser_context_args, base, "p-enf-02")  # 李娜
    chen = phone(browser, browser_context_args, base, "p-mon-01")  # 陈静
    for p in (wang, li, chen):
        expect(p.get_by_text("暂无任务")).to_be_visible()

    async def exceed() -> Any:
        from gateway.simulator.station import run_scenario
        from liandong.demo import scenario_start

        return await run_scenario(
            REGISTRY,
            "127.0.0.1",
            stack.settings.gateway_port,
            "exceedance",
            minutes=70,
            start=scenario_start(),
        )

    report = run_async(exceed)
    assert report.acked == report.sent and not report.unacked

    # the offer arrives over SSE on all three phones (no reload), with a badge
    task_id = ""
    for p in (wang, li, chen):
        expect(p.get_by_test_id("badge")).to_be_visible(timeout=180_000)
        task_id = open_task(p)
    expect(wang.locator(".alarm")).to_contain_text("氮氧化物")
    expect(wang.locator(".alarm")).to_contain_text("限值 50")
    expect(wang.locator(".alarm")).to_contain_text("折算浓度")
    expect(wang.locator(".alarm")).to_contain_text("实测浓度")
    expect(wang.locator(".alarm")).to_contain_text("基准含氧量 6%")
    expect(wang.locator(".alarm")).to_contain_text("北京时间")
    expect(wang.locator(".nav")).to_contain_text("GCJ-02")
    expect(wang.locator("[data-clock=ACCEPT]")).to_be_visible()
    shots = Path(DOC_SHOTS) if DOC_SHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    for p in (wang, li, chen):
        p.get_by_role("button", name="接受").click()
        expect(p.locator("p.ok[role=status]").first).to_contain_text("已提交")
    wang.get_by_role("button", name="出发").click()
    expect(wang.get_by_test_id("state")).to_have_text("在途")
    wang.evaluate("window.scrollTo(0, 0)")
    wang.screenshot(path=str(shots / "field-task.png"))

    # 李娜 tries from 3 km away: the app shows the verdict, dispatch refuses with the distance
    li.context.set_geolocation(FAR)
    li.reload()
    li.get_by_role("button", name="获取位置").click()
    expect(li.locator("[data-verdict]")).to_have_attribute("data-verdict", "outside")
    li.get_by_role("button", name="发送签到").click()
    expect(li.locator(".checkin [role=alert]")).to_contain_text("签到被拒绝：距排口")
    expect(li.locator(".checkin [role=alert]")).to_contain_text("超出围栏 500 米")
    li.context.set_geolocation(OUTLET)
    for p in (wang, li, chen):
        p.reload()
        p.get_by_role("button", name="获取位置").click()
        expect(p.locator("[data-verdict]")).to_have_attribute("data-verdict", "inside")
        expect(p.locator("[data-verdict]")).to_contain_text("精度 ±12 m")
        p.get_by_role("button", name="发送签到").click()
        expect(p.locator("p.ok[role=status]").first).to_contain_text("已提交")

    # the case's arrival is recorded by dispatch once both officers checked in
    for _ in range(60):
        wang.reload()
        if wang.locator("[data-case-state=ON_SITE]").count():
            break
        wang.wait_for_timeout(500)
    expect(wang.locator("[data-case-state=ON_SITE]")).to_be_visible()

    # 现场检查笔录, signed by both officers on 王强's phone and by the plant's representative
    form = "[data-form=inspection]"
    wang.fill(f"{form} textarea[name=production]", "1# 机组正常生产，负荷约 80%")
    wang.fill(f"{form} textarea[name=facility]", "SCR 脱硝设施运行，喷氨量偏低")
    wang.fill(f"{form} textarea[name=equipment]", "CEMS 运行正常，标定记录齐全")
    wang.fill(f"{form} textarea[name=findings]", "氮氧化物小时均值超过超低排放限值")
    sign(wang, f"{form} [data-signer=p-enf-01]")
    sign(wang, f"{form} [data-signer=p-enf-02]")
    wang.fill(f"{form} input[name=party]", "赵经理")
    sign(wang, f"{form} [data-signer=party]")
    wang.click(f"{form} button[type=submit]")
    expect(wang.locator("[data-inspection]")).to_be_visible(timeout=20_000)

    photo = jpeg(1)
    add_photo(wang, "stack.jpg", photo, "1# 烟囱 CEMS 小屋")
    shown = wang.locator(f"[data-evidence=ev-{hashlib.sha256(photo).hexdigest()[:16]}]")
    expect(wang.locator("[data-form=evidence] p.ok")).to_contain_text("已提交", timeout=20_000)
    for _ in range(20):
        if shown.count():
            break
        wang.wait_for_timeout(500)
        wang.reload()
    expect(shown).to_be_visible()

    # over the cap: kept scaled to 2000 px, and the record says so
    from PIL import Image

    big = io.BytesIO()
    Image.effect_noise((4000, 3000), 80).convert("RGB").save(big, "JPEG", quality=95)
    assert len(big.getvalue()) > PHOTO_CAP
    add_photo(wang, "big.jpg", big.getvalue(), "全景")
    expect(wang.locator("[data-evidence]", has_text="已缩放")).to_be_visible(timeout=30_000)

    # 陈静 takes a sample, hands it to the lab, records and confirms the result
    chen.reload()
    chen.get_by_role("button", name="开始采样").click()
    expect(chen.get_by_test_id("state")).to_have_text("采样中")
    sample = "[data-form=sample]"
    chen.fill(f"{sample} input[name=sample_id]", "JN-2026-0001")
    chen.fill(f"{sample} input[name=container]", "气袋 3 L")
    chen.fill(f"{sample} input[name=preservative]", "无")
    chen.fill(f"{sample} input[name=seal_number]", "F-000123")
    chen.click(f"{sample} button[type=submit]")
    expect(chen.locator(f"{sample} p.ok")).to_contain_text("已提交", timeout=20_000)
    card = chen.locator("[data-sample=JN-2026-0001]")
    expect(card).to_be_visible(timeout=20_000)
    card.locator("input[name=to_holder]").fill("lab-js-01")
    card.locator("[data-form=handoff] button").click()
    expect(card).to_contain_text("已在实验室")
    card.locator("[data-form=result] input[name=value]").fill("88.9")
    for name, value in (("method", "HJ 693-2014"), ("lab_id", "lab-js-01"), ("cma_no", "CMA-1234")):
        card.locator(f"[data-form=result] input[name={name}]").fill(value)
    card.locator("[data-form=result] input[name=report]").set_input_files(
        files=[{"name": "report.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 lab"}]
    )
    card.locator("[data-form=result] button").click()
    expect(card.locator("[data-result=a21002]")).to_be_visible(timeout=20_000)
    card.get_by_role("button", name="确认结果").click()
    expect(card).to_contain_text("确认人 p-mon-01")

    # 李娜 offline: two photos queue in the outbox, survive a reload, go out once back online
    li.reload()
    expect(li.locator("[data-form=evidence]")).to_be_visible()
    li.context.set_offline(True)
    offline_photos = [jpeg(2), jpeg(3)]
    add_photo(li, "seal.jpg", offline_photos[0], "采样封条")
    expect(li.get_by_test_id("outbox")).to_have_text("待发送 1")
    add_photo(li, "panel.jpg", offline_photos[1], "DCS 画面")
    expect(li.get_by_test_id("outbox")).to_have_text("待发送 2")
    # the same photo 王强 already recorded: casefile will refuse it, after the sync
    add_photo(li, "stack-again.jpg", photo, "重复的照片")
    expect(li.get_by_test_id("outbox")).to_have_text("待发送 3")
    li.reload()  # offline: the service worker serves the shell, IndexedDB keeps the queue
    expect(li.get_by_test_id("outbox")).to_have_text("待发送 3")
    expect(li.get_by_test_id("conn")).to_have_text("离线")
    li.context.set_offline(False)
    expect(li.get_by_test_id("outbox")).to_have_text("待发送 0", timeout=30_000)
    refusal = li.locator("[data-refused]")
    expect(refusal).to_contain_text("被拒绝 (409)")  # shown to the person, not dropped
    expect(refusal).to_contain_text("already exists")
    refusal.get_by_role("button", name="知道了").click()
    expect(refusal).to_have_count(0)

    wang.reload()
    wang.get_by_role("button", name="完成任务").click()
    expect(wang.get_by_test_id("state")).to_have_text("已完成")
    wang.goto(base + "/#/")
    wang.get_by_label("显示已结束").check()
    wang.screenshot(path=str(shots / "field-inbox.png"), full_page=True)

    case = case_of(wang, task_id)
    assert case["arrival"]["officers_present"] == ["p-enf-02", "p-enf-01"] or sorted(
        case["arrival"]["officers_present"]
    ) == ["p-enf-01", "p-enf-02"]
    inspection = case["inspection"]
    assert sorted(s["signer"] for s in inspection["signatures"]) == ["p-enf-01", "p-enf-02"]
    assert inspection["party_signed_by"] == "赵经理"
    shas = [e["sha256"] for e in case["evidence"]]
    for content in (photo, *offline_photos):
        assert shas.count(hashlib.sha256(content).hexdigest()) == 1  # exactly once
    verify = subprocess.run(
        [
            str(Path(sys.executable).parent / "liandong"),
            "casefile",
            "verify",
            "--db",
            stack.settings.casefile_db,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # the photos' original bytes went up too (resumable upload): casefile holds their content
    by_sha = {e["sha256"]: e for e in case["evidence"]}
    for content in (photo, *offline_photos):
        item = by_sha[hashlib.sha256(content).hexdigest()]
        assert int(item["content"]["size_bytes"]) == len(content), item
    kinds = sorted(e["kind"] for e in case["evidence"])
    assert kinds == ["DOCUMENT"] * 3 + ["PHOTO"] * 4 + ["SURVEY_RECORD"]
    scaled = next(e for e in case["evidence"] if "已缩放" in e["description"])
    assert int(scaled["content"]["size_bytes"]) < len(big.getvalue())
    record = next(e for e in case["evidence"] if e["kind"] == "SURVEY_RECORD")
    assert record["sha256"] == inspection["record_sha256"]
    (sample_doc,) = case["samples"]
    assert sample_doc["in_lab"] and sample_doc["custody"][0]["to_holder"] == "lab-js-01"
    (result,) = sample_doc["results"]
    assert result["value"] == "88.9" and result["confirmed_by"] == "p-mon-01"
