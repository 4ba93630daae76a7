"""The phone API matches its OpenAPI document: schemathesis (every check, bounded examples)
against a real uvicorn on a real port, with a valid token per role (issue 12, item 11).

Every operation runs, none excluded. The served task is on site with its case open in a real
casefile, and the hooks (schemathesis_hooks) call every task route on it, so generated
bodies reach casefile's rules: what the document cannot state comes back as 404 or 409 (a
record the case lacks, a conflict with what it holds), and a 422 to a body the document
allows fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from liandong.tokens.phone import issue
from tests.oidc_provider import Provider, free_port, running_provider

pytestmark = pytest.mark.integration
KEY = "contract-test-signing-key-0123456789abcdef"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# Every operation the phone API serves (sign-in, the caller, tasks and their field records,
# evidence uploads, events, the managers' reports): the test below fails when one is added or
# removed without this list, so none goes untested unnoticed.
ROUTES = frozenset(
    {
        "GET /healthz",
        "POST /v1/auth/token",
        "POST /v1/auth/refresh",
        "POST /v1/auth/revoke",
        "GET /v1/auth/methods",
        "GET /v1/auth/oidc/start",
        "GET /v1/auth/oidc/callback",
        "POST /v1/auth/oidc/exchange",
        "GET /v1/me",
        "GET /v1/me/tasks",
        "GET /v1/events",
        "GET /v1/tasks/{task_id}",
        "POST /v1/tasks/{task_id}/accept",
        "POST /v1/tasks/{task_id}/decline",
        "POST /v1/tasks/{task_id}/status",
        "GET /v1/tasks/{task_id}/case",
        "GET /v1/tasks/{task_id}/site-history",
        "POST /v1/tasks/{task_id}/inspection",
        "POST /v1/tasks/{task_id}/evidence",
        "GET /v1/tasks/{task_id}/evidence/{evidence_id}",
        "POST /v1/tasks/{task_id}/evidence/uploads",
        "HEAD /v1/uploads/{upload_id}",
        "PATCH /v1/uploads/{upload_id}",
        "POST /v1/uploads/{upload_id}/complete",
        "POST /v1/tasks/{task_id}/samples",
        "POST /v1/tasks/{task_id}/samples/{sample_id}/custody",
        "POST /v1/tasks/{task_id}/samples/{sample_id}/results",
        "POST /v1/tasks/{task_id}/samples/{sample_id}/results/{parameter}/confirm",
        "GET /v1/reports/response-times",
        "GET /v1/reports/overview",
        "GET /v1/reports/overview/stream",
        "GET /v1/reports/tasks/{task_id}/timeline",
        "GET /v1/reports/map",
        "GET /v1/reports/cases",
        "GET /v1/reports/cases/{case_id}",
        "GET /v1/reports/cases/{case_id}/bundle",
        "GET /v1/reports/export/{name}.{fmt}",
    }
)
ROLES = {
    "ENFORCEMENT": "e1",
    "MONITORING": "m1",
    "OPERATIONS": "o1",
    "DUTY_MANAGER": "mgr",
}


@pytest.fixture(scope="module")
def oidc_provider() -> Iterator[tuple[Provider, int]]:
    """A real OpenID provider, so the OIDC routes are served and /start really redirects."""
    port = free_port()
    client = {
        "client_id": "liandong",
        "redirect_uris": [f"http://127.0.0.1:{port}/v1/auth/oidc/callback"],
    }
    with running_provider([client], {}) as provider:
        yield provider, port


@pytest.fixture(scope="module")
def phone_api(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: tuple[Provider, int]
) -> Iterator[str]:
    provider, port = oidc_provider
    folder = tmp_path_factory.mktemp("phone-api")
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.contract.phone_api_server", str(port), str(folder), KEY],
        cwd=ROOT,
        env={
            **os.environ,
            "LIANDONG_OIDC_ISSUER": provider.issuer,
            "LIANDONG_OIDC_CLIENT_ID": "liandong",
            # the password routes stay in the run with their usual answers
            "LIANDONG_OIDC_KEEP_PASSWORD": "1",
        },
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


def test_the_contract_covers_every_route_served(phone_api: str) -> None:
    document = httpx.get(f"{phone_api}/openapi.json", timeout=10).json()
    served = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert served == ROUTES


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
