"""A real OpenID Connect provider for tests: panva's oidc-provider run by node on a real port
(provider.mjs; `make oidc-provider` installs it, `make test` does too).

Its login page knows the users given here; a consent page follows the first sign-in of a user.
Both are plain HTML forms: `sign_in_at_provider` drives them with httpx as a browser would."""

from __future__ import annotations

import json
import re
import select
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

HERE = Path(__file__).resolve().parent


START_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Provider:
    issuer: str
    process: subprocess.Popen[str]


@contextmanager
def running_provider(
    clients: list[dict[str, Any]], users: dict[str, dict[str, str]]
) -> Iterator[Provider]:
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("the test OpenID provider is not installed: run `make oidc-provider`")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing (the web build needs it too)")
    config = json.dumps({"clients": clients, "users": users})
    # node 20 with oidc-provider was seen to hang at start-up (its main thread on a lock,
    # never listening): a start that says nothing in START_S is killed and tried again
    for _attempt in range(3):
        port = free_port()
        process = subprocess.Popen(
            [node, str(HERE / "provider.mjs"), str(port), config],
            cwd=HERE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        said, _, _ = select.select([process.stdout], [], [], START_S)
        line = process.stdout.readline() if said else ""  # "ready <issuer>", "" if it died
        if line.startswith("ready "):
            break
        process.kill()
        process.wait(10)
    else:
        raise RuntimeError(f"the OpenID provider did not start in 3 tries: {line!r}")
    try:
        yield Provider(line.split()[1], process)
    finally:
        process.terminate()
        process.wait(10)


def form_action(page: httpx.Response) -> str:
    found = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert found, page.text
    return urljoin(str(page.url), found.group(1))


def sign_in_at_provider(
    browser: httpx.Client, authorize_url: str, login: str, password: str
) -> httpx.Response:
    """From the provider's authorization URL through its login (and consent) forms; returns
    the provider's final redirect to the client's callback, not followed."""
    page = browser.get(authorize_url, follow_redirects=True)
    assert page.status_code == 200, page.text
    r = browser.post(form_action(page), data={"login": login, "password": password})
    provider = str(page.url.copy_with(path="/", query=None))
    while r.is_redirect and urljoin(str(r.url), r.headers["location"]).startswith(provider):
        # the provider's own hops (resume the authorization, show consent)
        r = browser.get(urljoin(str(r.url), r.headers["location"]))
        if r.status_code == 200:
            r = browser.post(form_action(r))
    assert r.is_redirect, r.text
    return r
