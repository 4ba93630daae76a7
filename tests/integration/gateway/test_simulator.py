"""The station simulator's scenarios end to end through the gateway into Kafka."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from gateway.bootstrap import Running
from gateway.simulator.station import SimLogger, run_scenario
from liandong.settings import Settings
from liandong.topics import MONITORING_RECORDS
from tests.integration.gateway.conftest import read_topic, records

START = datetime(2024, 5, 1, 10, 0)


async def test_maintenance_scenario_flags_m_after_the_first_minute(
    isolated_settings: Settings, gateway: Running, fleet: list[SimLogger], tmp_path: Path
) -> None:
    report = await run_scenario(
        tmp_path / "registry.yaml",
        "127.0.0.1",
        gateway.gateway.port or 0,
        "maintenance",
        2,
        START,
        loggers=2,
    )
    assert (report.sent, report.acked, report.unacked) == (4, 4, [])
    published = records(await read_topic(isolated_settings, MONITORING_RECORDS, 4))
    flags = {
        (r.mn, r.fields["DataTime"], f.code): f.flag
        for r in published
        for f in r.factors
        if f.code in ("a21026", "w01018")
    }
    gas, water = fleet[0].mn, fleet[1].mn
    assert flags == {
        (gas, "20240501100000", "a21026"): "N",
        (gas, "20240501100100", "a21026"): "M",
        (water, "20240501100000", "w01018"): "N",
        (water, "20240501100100", "w01018"): "M",
    }


async def test_backfill_scenario_sends_day_old_data_times(
    isolated_settings: Settings, gateway: Running, tmp_path: Path
) -> None:
    report = await run_scenario(
        tmp_path / "registry.yaml",
        "127.0.0.1",
        gateway.gateway.port or 0,
        "backfill",
        1,
        START,
        loggers=1,
    )
    assert report.acked == 1
    [record] = records(await read_topic(isolated_settings, MONITORING_RECORDS, 1))
    assert record.fields["DataTime"] == "20240430100000"
