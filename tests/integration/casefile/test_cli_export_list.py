"""`casefile export` writes 0600, never over an existing file without --force, never through
a symlink, with one-line errors; `cases list --json` gives whole ids (issue 12, item 12)."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import tarfile
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from liandong.cli import app
from tests.integration.casefile.conftest import Server, token
from tests.integration.casefile.walk import CASE, walk

pytestmark = pytest.mark.integration
runner = CliRunner()


def members(archive: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return sorted(tar.getnames())


async def test_export_is_private_and_refuses_to_overwrite(
    server: Server, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    await walk(server, server.stub(channel), upto=3)

    def export(out: Path, *extra: str) -> object:
        return runner.invoke(
            app, ["casefile", "export", CASE, "--out", str(out), "--db", server.url, *extra]
        )

    out = tmp_path / "case.tar"
    result = await asyncio.to_thread(export, out)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    first = out.read_bytes()
    out.write_text("keep me")
    again = await asyncio.to_thread(export, out)
    assert again.exit_code == 1 and "--force" in again.output
    assert out.read_text() == "keep me"
    forced = await asyncio.to_thread(export, out, "--force")
    # the same bundle again (its manifest says when it was exported, so bytes differ)
    assert forced.exit_code == 0 and members(out.read_bytes()) == members(first)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    target = tmp_path / "elsewhere.txt"
    target.write_text("not yours")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    for extra in ((), ("--force",)):
        through = await asyncio.to_thread(export, link, *extra)
        assert through.exit_code == 1 and "symbolic link" in through.output
    assert target.read_text() == "not yours"
    missing = await asyncio.to_thread(export, tmp_path / "no-such-folder" / "case.json")
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert "no folder" in missing.output


async def test_cases_list_json_has_whole_ids(
    server: Server, channel: grpc.aio.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    await walk(server, server.stub(channel), upto=1)
    monkeypatch.setenv("LIANDONG_CASEFILE_GRPC", server.address)
    monkeypatch.setenv("LIANDONG_TOKEN", token("mgr", "manager", jurisdictions=["3205"]))
    as_json = await asyncio.to_thread(runner.invoke, app, ["cases", "list", "--json"])
    assert as_json.exit_code == 0, as_json.output
    rows = [json.loads(line) for line in as_json.output.splitlines() if line.strip()]
    assert [r["caseId"] for r in rows] == [CASE]
    table = await asyncio.to_thread(runner.invoke, app, ["cases", "list"], env={"COLUMNS": "80"})
    assert table.exit_code == 0
    assert CASE in table.output.replace("│", "").replace(" ", "").replace("\n", "") or all(
        part in table.output for part in CASE.split("-")
    )
