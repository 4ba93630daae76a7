"""Services started before the broker wait for it instead of exiting (issue 13, item 6).

Before: alerts, gateway and dispatch exited within 3 s when Kafka did not answer at start.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from liandong.stack import Stack
from liandong.topics import ensure_topics
from tests.integration.private_kafka import PrivateKafka

WAITING = ("gateway", "alerts", "dispatch")


def _health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def test_services_wait_for_a_late_broker_then_serve(tmp_path: Path) -> None:
    kafka = PrivateKafka(tmp_path / "kafka")  # not started yet: nothing answers on its port
    stack = Stack.isolated(tmp_path / "stack", "late.", kafka.bootstrap)
    stack.traces_file = None
    stack.start(WAITING)
    try:
        # Each would have exited by now; all wait, and dispatch says why on its health port.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            stack.check_alive()
            await asyncio.sleep(0.5)
        status, body = await asyncio.to_thread(_health, stack.settings.dispatch_http_port)
        assert status == 503
        assert body["status"] == "not-ready" and kafka.bootstrap in str(body["reason"])
        logs = {name: "" for name in WAITING}
        deadline = time.monotonic() + 30  # each says why it waits (a slow first try is fine)
        while time.monotonic() < deadline and not all(
            "does not answer" in v for v in logs.values()
        ):
            stack.check_alive()
            logs = {n: (stack.state_dir / f"{n}.log").read_text() for n in WAITING}
            await asyncio.sleep(0.5)
        assert all("does not answer" in v for v in logs.values()), logs

        await kafka.up()
        await asyncio.to_thread(ensure_topics, stack.settings)
        await stack.wait_ready(timeout=240)  # gateway listens, dispatch and alerts joined
        status, body = 0, {}
        deadline = time.monotonic() + 60  # the phone API starts just after the consumer joins
        while time.monotonic() < deadline and status != 200:
            stack.check_alive()
            try:
                status, body = await asyncio.to_thread(_health, stack.settings.dispatch_http_port)
            except OSError:
                await asyncio.sleep(0.5)
        assert status == 200 and body["status"] == "ok"
    finally:
        stack.stop()
        await kafka.down()
