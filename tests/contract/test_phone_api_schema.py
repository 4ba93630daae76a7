"""The phone API matches its OpenAPI document: schemathesis (every check, bounded examples)
against a real uvicorn on a real port, with a valid token per role (issue 12, item 11)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from liandong.tokens.phone import issue

pytestmark = pytest.mark.integration
KEY = "contract-test-signing-key-0123456789abcdef"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PHONE_PATHS = (
    r"^/(healthz|v1/me/tasks|v1/tasks/\{task_id\}(/accept|/decline|/status)?|v1/events"
    r"|v1/reports/response-times)$"
)
ROLES = {
    "ENFORCEMENT": "e1",
    "MONITORING": "m1",
    "OPERATIONS": "o1",
    "DUTY_MANAGER": "mgr",
}


@pytest.fixture(scope="module")
def phone_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("phone-api")
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.contract.phone_api_server", str(port), str(folder), KEY],
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise RuntimeError("the phone API did not start")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_phone_api_matches_its_openapi_document(phone_api: str, role: str) -> None:
    token = issue(ROLES[role], role, ["320106"], key=KEY)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{phone_api}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "10",
            "--seed",
            "212",
            "--request-timeout",
            "10",
            "--phases",
            # the coverage phase (every boundary of every parameter, ~2.5 min here) once, as
            # the manager who may call every operation; fuzzing for every role
            "examples,coverage,fuzzing" if role == "DUTY_MANAGER" else "examples,fuzzing",
            "--generation-deterministic",
            # the phone API of issue 12 (tasks, answers, events, the response-time report); the
            # console, sign-in and evidence routes added beside it are their owners' to cover
            "--include-path-regex",
            PHONE_PATHS,
            "--header",
            f"Authorization: Bearer {token}",
            "--no-color",
        ],
        cwd=ROOT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.contract.schemathesis_hooks"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
