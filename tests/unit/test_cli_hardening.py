"""CLI answers bad input and unreachable parts with one line and a distinct exit code, not
a traceback (issue 12, item 12)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liandong.cli import app

runner = CliRunner()


def one_line_error(output: str) -> None:
    assert "Traceback" not in output
    assert len([line for line in output.splitlines() if line.strip()]) <= 3, output


def test_verify_bundle_missing_file_is_exit_3(tmp_path: Path) -> None:
    result = runner.invoke(app, ["casefile", "verify", "--bundle", str(tmp_path / "nope.json")])
    assert result.exit_code == 3, result.output
    one_line_error(result.output)


@pytest.mark.parametrize("content", [b"not json at all", b"\xff\xfe\x00garbage", b""])
def test_verify_bundle_not_json_is_exit_3(tmp_path: Path, content: bytes) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(content)
    result = runner.invoke(app, ["casefile", "verify", "--bundle", str(bundle)])
    assert result.exit_code == 3, result.output
    one_line_error(result.output)


def test_verify_unreadable_database_is_exit_3(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'casefile.db'}"
    result = runner.invoke(app, ["casefile", "verify", "--db", url])
    assert result.exit_code == 3, result.output
    assert "cannot read the database" in result.output


def test_verify_usage_error_is_exit_2() -> None:
    assert runner.invoke(app, ["casefile", "verify", "--no-such-option"]).exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["response-times", "--by", "bogus"],
        ["response-times", "--county", "abc"],
        ["tokens", "issue", "--sub", "p1", "--role", "manager", "--jurisdiction", "abc"],
    ],
)
def test_bad_option_values_are_usage_errors(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_simulate_with_the_gateway_down_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("LIANDONG_GATEWAY_PORT", str(port))
    result = runner.invoke(app, ["simulate", "--minutes", "1", "--timeout", "1"])
    assert result.exit_code == 3, result.output
    assert "cannot reach the gateway" in result.output
    assert "Traceback" not in result.output
