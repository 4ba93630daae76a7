"""Auth is on by default and an unauthenticated write is impossible in every mode
(issue 12, item 2)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from casefile.config import auth_config
from liandong.cli import app
from liandong.tokens.operator import operator_token, people_signing_key
from liandong.tokens.verifying import AuthConfig
from liandong.v1 import casefile_pb2
from tests.integration.casefile.conftest import running_server
from tests.integration.casefile.test_grpc_calls import code_of
from tests.integration.casefile.walk import open_request

pytestmark = pytest.mark.integration


def test_default_is_required_and_the_key_is_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LIANDONG_CASEFILE_AUTH", "LIANDONG_JWT_KEY", "LIANDONG_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIANDONG_JWT_KEY_FILE", str(tmp_path / "a" / "casefile-jwt.key"))
    monkeypatch.setenv("LIANDONG_CASEFILE_SERVICE_KEYS", "none")
    config = auth_config()
    assert config.required
    assert config.hs_key == people_signing_key() and len(config.hs_key) >= 32
    assert (tmp_path / "a" / "casefile-jwt.key").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("LIANDONG_JWT_KEY_FILE", str(tmp_path / "b" / "casefile-jwt.key"))
    assert auth_config().hs_key != config.hs_key  # per state folder, never a constant


@pytest.mark.parametrize("required", [True, False])
async def test_unauthenticated_open_case_is_refused_in_every_mode(
    db_url: str, required: bool
) -> None:
    auth = AuthConfig(required=required, hs_key="k" * 40)
    async with (
        running_server(db_url, auth) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        stub = server.stub(channel)
        code, _ = await code_of(stub.OpenCase(open_request()))  # opened_by: dispatch
        assert code is grpc.StatusCode.UNAUTHENTICATED
        assert server.store.audit_entries() == []
        listing = stub.ListCases(casefile_pb2.ListCasesRequest())
        if required:
            code, _ = await code_of(listing)
            assert code is grpc.StatusCode.UNAUTHENTICATED
        else:
            assert list((await listing).cases) == []


async def test_cli_lists_cases_with_an_operator_token(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    monkeypatch.delenv("LIANDONG_TOKEN", raising=False)
    monkeypatch.delenv("LIANDONG_JWT_KEY", raising=False)
    monkeypatch.setenv("LIANDONG_JWT_KEY_FILE", str(tmp_path / "casefile-jwt.key"))
    auth = AuthConfig(required=True, hs_key=people_signing_key())
    async with running_server(db_url, auth) as server:
        monkeypatch.setenv("LIANDONG_CASEFILE_GRPC", server.address)
        result = await asyncio.to_thread(CliRunner().invoke, app, ["cases", "list", "--json"])
        assert result.exit_code == 0, result.output
    assert operator_token()  # minted from the same key file
