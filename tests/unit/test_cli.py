"""Every CLI command answers --help."""

from __future__ import annotations

import typer
from typer.main import get_command
from typer.testing import CliRunner

from liandong.cli import app


def command_paths(group: typer.Typer) -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(cmd: object, prefix: list[str]) -> None:
        sub = getattr(cmd, "commands", None)
        paths.append(prefix)
        if sub:
            for name, child in sub.items():
                walk(child, [*prefix, name])

    walk(get_command(group), [])
    return paths


def test_every_command_has_help() -> None:
    runner = CliRunner()
    paths = command_paths(app)
    names = {" ".join(p) for p in paths}
    for expected in (
        "topics ensure",
        "registry load",
        "cases list",
        "run gateway",
        "demo",
        "simulate",
        "hj212 decode",
    ):
        assert expected in names
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_registry_load_dry_run_reports_validation_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\noutlets:\n"
        "  - {id: o1, enterprise: nope, name: x, mn: ABCDEF12, password: p, medium: gas}\n"
    )
    result = CliRunner().invoke(app, ["registry", "load", "--dry-run", str(bad)])
    assert result.exit_code == 2
    assert "unknown enterprise nope" in result.output


def test_simulate_help_names_every_scenario() -> None:
    from gateway.simulator.station import SCENARIOS

    result = CliRunner().invoke(app, ["simulate", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    for scenario in SCENARIOS:
        assert scenario in result.output
