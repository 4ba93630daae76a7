"""`liandong alerts replay` over a generated capture of HJ 212 frames."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from alerts.domain.episodes import episode_id
from alerts.entrypoints.replay_cli import app

from .hj212 import NOX, nox_minutes
from .scenario import T0, registry_doc

runner = CliRunner()


def gas_registry(tmp_path: Path) -> Path:
    doc = registry_doc(
        limits=[
            {
                "factor": NOX,
                "value": 50,
                "unit": "mg/m3",
                "kind": "ultra_low",
                "clause": "NOx 50",
                "effective_from": "2024-01-01T00:00:00",
            }
        ]
    )
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_a_capture_with_an_hour_over_the_limit_prints_the_opened_exceedance(
    tmp_path: Path,
) -> None:
    capture = tmp_path / "day.hj212"
    # Hour T0 at NOx ~80 mg/m3, O2 ~7.6 %, then minutes 0..5 of the next hour close it; a
    # corrupt frame in between is skipped, not fatal.
    frames = nox_minutes(T0, range(30), 80.0)
    frames.append(b"##0010garbage\r\n")
    frames += nox_minutes(T0, range(30, 66), 80.0)
    capture.write_bytes(b"".join(frames))
    result = runner.invoke(app, ["--registry", str(gas_registry(tmp_path)), str(capture)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    exc = [c for c in lines if c["kind"] == "exceedance_hourly"]
    assert [c["change"] for c in exc] == ["opened"]
    opened = exc[0]
    assert opened["episode_id"] == episode_id("OUT-G1", NOX, "exceedance_hourly", T0)
    # mean NOx 80 + 0.1 * 174 / 60 = 80.29 at mean O2 7.6: 80.29 * 15 / 13.4 = 89.88 mg/m3
    assert abs(opened["explanation"]["values"]["corrected"] - 89.88) < 0.01
    assert opened["explanation"]["valid_minutes"] == 60
    assert opened["explanation"]["window_start"] == T0.isoformat()
    assert "skipped frame" in result.stderr


def test_replay_reads_stdin_and_a_compliant_hour_raises_nothing(tmp_path: Path) -> None:
    frames = b"".join(nox_minutes(T0, range(66), 30.0))
    result = runner.invoke(app, ["--registry", str(gas_registry(tmp_path))], input=frames)
    assert result.exit_code == 0, result.output
    kinds = {json.loads(line)["kind"] for line in result.stdout.splitlines()}
    assert "exceedance_hourly" not in kinds


def test_an_invalid_registry_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\n", encoding="utf-8")
    result = runner.invoke(app, ["--registry", str(bad)], input=b"")
    assert result.exit_code == 2


def test_hourly_only_water_data_over_its_daily_limit_gets_a_daily_judgement(
    tmp_path: Path,
) -> None:
    """Issue 12, item 13: most water COD analysers upload only hourly records (2061). The
    replay used to tick only at record times, so the outlet never looked quiet and its hours
    never closed: no daily judgement. An hour closes when the next hour record arrives, and
    the replay's clock runs on through quiet time, as the worker's does."""
    from datetime import timedelta

    from .hj212 import upload_frame
    from .scenario import COD

    doc = registry_doc()
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    day = T0.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    frames = [
        upload_frame(
            "2061",
            day + timedelta(hours=h),
            [(f"{COD}-Avg", "80.0"), (f"{COD}-Cou", "8.0"), (f"{COD}-Flag", "N")],
            mn="MN-WATER-0001",
        )
        for h in range(24)
    ]
    capture = tmp_path / "hourly.hj212"
    capture.write_bytes(b"".join(frames))
    result = runner.invoke(app, ["--registry", str(path), str(capture)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    daily = [c for c in lines if c["kind"] == "exceedance_daily" and c["change"] == "opened"]
    assert len(daily) == 1, lines
    assert daily[0]["factor"] == COD
