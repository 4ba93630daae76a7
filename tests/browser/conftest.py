"""Browser tests: Playwright drives Debian's Chromium (`make browser` installs it), on a phone
viewport in zh-CN with a fake position, against the real dispatch app on a real port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

CHROMIUM = Path("/usr/bin/chromium")
WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"

# the outlet of tests/unit/dispatch/harness.py, where a check-in is inside the fence
SITE = {"latitude": 32.0, "longitude": 118.8, "accuracy": 8}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's Chromium is missing: run `make browser` (make test does)")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM)}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_context_args,
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
        "locale": "zh-CN",
        "timezone_id": "Asia/Shanghai",
        "permissions": ["geolocation"],
        "geolocation": SITE,
    }


@pytest.fixture(scope="session")
def web_dist() -> Path:
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail("web/dist is not built: run `make web` (make install does)")
    return WEB_DIST


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A uvicorn server in a thread on a real port; stopped without waiting for SSE streams."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        # a port chosen before the app exists, when something else must know it first (the
        # OpenID provider registers the callback URL)
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server() -> Iterator[Callable[[FastAPI], LiveServer]]:
    started: list[LiveServer] = []

    def start(app: FastAPI, port: int | None = None) -> LiveServer:
        server = LiveServer(app, port).__enter__()
        started.append(server)
        return server

    yield start
    for s in started:
        s.__exit__()
