"""The simulator's hourly records (2061) summarise the minute records (2051) of the hour they
close, so the alerts judge's recomputation of the hour agrees with them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from alerts.adapters.records import parameter_reports_from_record, readings_from_record
from alerts.domain.episodes import AlertChange
from alerts.domain.findings import FindingKind
from alerts.domain.judge import Judge
from alerts.domain.periods import HOUR, epoch
from alerts.domain.registry import registry_from_dict
from gateway.simulator.hourly import FactorPeriod, hour_flag, summarise_hour
from gateway.simulator.station import (
    SCENARIOS,
    STATION_TZ,
    SimLogger,
    data_frame,
    loggers_from_registry,
    minute_record,
    period_frame,
    scenario_frames,
    scenario_values,
    synthetic_registry,
    write_synthetic_registry,
)
from liandong.hj212.decoding import decode
from liandong.hj212.packets import Packet
from liandong.hj212.records import to_record

WATER = SimLogger("MN-WATER-SIM", "123456", "water", {"w01018": 50.0})
GAS = SimLogger("MN-GAS-SIM", "123456", "gas", {"a21026": 35.0})
T0 = datetime(2025, 3, 10, 10, 0)  # station local time, an hour start


def packet(frame: bytes) -> Packet:
    return decode(frame, lenient=True).packet


def fields(p: Packet, code: str) -> dict[str, str]:
    return dict(p.factors[code].fields)


# ---- the summary, by hand -------------------------------------------------------------


def test_hour_of_varying_minutes_summarised_by_hand() -> None:
    # COD rises 0.1 a minute from 20.0 to 25.9; flow alternates 10 and 11 L/s.
    minutes = [minute_record({"w01018": 20 + m / 10, "w00000": 10.0 + m % 2}) for m in range(60)]
    qn, frame = period_frame(WATER, "2061", T0, summarise_hour(minutes, "water"))
    p = packet(frame)
    assert p.cn == "2061" and p.qn == qn and p.fields["DataTime"] == "20250310100000"
    assert fields(p, "w01018") == {
        "Min": "19.40",  # 20.0 x 0.97
        "Avg": "22.95",  # (20.0 + 25.9) / 2
        "Max": "26.68",  # 25.9 x 1.03 = 26.677, as the minute record printed it
        "Flag": "N",
    }
    assert fields(p, "w00000") == {
        "Min": "9.70",  # 10 x 0.97
        "Avg": "10.50",
        "Max": "11.33",  # 11 x 1.03
        "Cou": "37.800",  # 30 x 0.600 m3 + 30 x 0.660 m3 (L/s x 60 s / 1000)
        "Flag": "N",
    }


def test_minute_records_carry_the_flow_total_of_the_minute() -> None:
    p = packet(data_frame(WATER, "2051", T0, {"w00000": 12.5, "w01018": 30.0})[1])
    assert fields(p, "w00000") == {
        "Min": "12.12",
        "Avg": "12.50",
        "Max": "12.88",
        "Cou": "0.750",
        "Flag": "N",
    }
    assert "Cou" not in fields(p, "w01018")


def test_zs_avg_is_the_mean_over_the_normal_minutes() -> None:
    minutes = [
        {"a21026": FactorPeriod(avg=30.0, min=29.0, max=31.0, zs_avg=40.0)},
        {"a21026": FactorPeriod(avg=32.0, min=31.5, max=33.0, zs_avg=42.0)},
        {"a21026": FactorPeriod(avg=34.0, min=33.0, max=35.5, zs_avg=44.0)},
        {"a21026": FactorPeriod(avg=90.0, min=1.0, max=99.0, flag="M", zs_avg=120.0)},
    ]
    hour = summarise_hour(minutes, "gas")["a21026"]
    # 3 of 4 minutes normal = 75 %: N; the maintenance minute counts in no value.
    assert hour == FactorPeriod(avg=32.0, min=29.0, max=35.5, flag="N", zs_avg=42.0)
    p = packet(period_frame(GAS, "2061", T0, {"a21026": hour})[1])
    assert fields(p, "a21026") == {
        "Min": "29.00",
        "Avg": "32.00",
        "Max": "35.50",
        "ZsAvg": "42.00",
        "Flag": "N",
    }


def test_zs_avg_left_out_when_a_counted_minute_lacks_it() -> None:
    minutes = [
        {"a21026": FactorPeriod(avg=30.0, min=29.0, max=31.0, zs_avg=40.0)},
        {"a21026": FactorPeriod(avg=32.0, min=31.0, max=33.0)},
    ]
    assert summarise_hour(minutes, "gas")["a21026"].zs_avg is None


def test_cou_sums_every_minute_whatever_its_flag() -> None:
    minutes = [
        FactorPeriod(avg=10.0, min=9.0, max=11.0, cou=0.6),
        FactorPeriod(avg=50.0, min=49.0, max=51.0, flag="C", cou=3.0),
    ]
    hour = summarise_hour([{"w00000": m} for m in minutes], "water")["w00000"]
    assert hour.cou == pytest.approx(3.6) and hour.avg == 10.0 and hour.flag == "C"


@pytest.mark.parametrize(
    ("flags", "medium", "expected"),
    [
        (["N"] * 60, "gas", "N"),
        (["N"] * 45 + ["M"] * 15, "gas", "N"),  # 75 % normal
        (["N"] * 44 + ["M"] * 16, "gas", "M"),
        (["N"] * 44 + ["C"] * 10 + ["M"] * 6, "gas", "C"),  # the most common reason
        (["N"] * 59 + ["D"], "water", "D"),  # wastewater: any abnormal minute
        (["N"] * 60, "water", "N"),
    ],
)
def test_hour_flag(flags: list[str], medium: str, expected: str) -> None:
    assert hour_flag(flags, medium) == expected


def test_hour_without_a_normal_minute_reports_what_was_measured() -> None:
    minutes = [{"w01018": FactorPeriod(avg=v, min=v, max=v, flag="C")} for v in (4.0, 6.0)]
    assert summarise_hour(minutes, "water")["w01018"] == FactorPeriod(
        avg=5.0, min=4.0, max=6.0, flag="C"
    )


# ---- scenario frames -------------------------------------------------------------------


def _check_hours(frames: list[tuple[str, bytes]]) -> list[Packet]:
    """Every 2061 against the 2051s of its hour sent before it, recomputed here."""
    packets = [packet(f) for _, f in frames]
    hours = []
    for i, p in enumerate(packets):
        if p.cn != "2061":
            continue
        assert p.data_time is not None and p.data_time.minute == 0
        end = p.data_time + timedelta(hours=1)
        minutes = [
            q
            for q in packets[:i]
            if q.cn == "2051" and q.data_time is not None and p.data_time <= q.data_time < end
        ]
        assert minutes and set(p.factors) == set(minutes[0].factors)
        for code, hour in p.factors.items():
            sent = [q.factors[code] for q in minutes if q.factors[code].flag == "N"] or [
                q.factors[code] for q in minutes
            ]
            avgs = [float(f.fields["Avg"]) for f in sent]
            assert float(hour.fields["Avg"]) == pytest.approx(sum(avgs) / len(avgs), abs=0.005)
            assert float(hour.fields["Min"]) == min(float(f.fields["Min"]) for f in sent)
            assert float(hour.fields["Max"]) == max(float(f.fields["Max"]) for f in sent)
            cous = [
                float(q.factors[code].fields["Cou"])
                for q in minutes
                if "Cou" in q.factors[code].fields
            ]
            if cous:
                assert float(hour.fields["Cou"]) == pytest.approx(sum(cous), abs=0.0005)
            else:
                assert "Cou" not in hour.fields
        hours.append(p)
    return hours


def test_full_hour_record_follows_minute_59_and_covers_the_hour_it_ends() -> None:
    frames = scenario_frames(WATER, "normal", 60, T0)
    packets = [packet(f) for _, f in frames]
    assert [p.cn for p in packets] == ["2051"] * 60 + ["2061"]
    assert packets[-1].fields["DataTime"] == "20250310100000"
    [hour] = _check_hours(frames)
    # Not a copy of one minute: the values vary through the hour.
    assert hour.factors["w01018"].fields["Avg"] != packets[59].factors["w01018"].fields["Avg"]


def test_a_run_starting_mid_hour_summarises_only_the_minutes_it_sent() -> None:
    frames = scenario_frames(GAS, "normal", 62, T0 + timedelta(minutes=30))
    hours = _check_hours(frames)
    # 10:30-10:59, then 11:00-11:31 closed at the end of the run.
    assert [h.fields["DataTime"] for h in hours] == ["20250310100000", "20250310110000"]
    assert sum(1 for _, f in frames if packet(f).cn == "2051") == 62


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("logger", [GAS, WATER], ids=["gas", "water"])
def test_every_scenario_sends_hour_summaries(scenario: str, logger: SimLogger) -> None:
    assert len(_check_hours(scenario_frames(logger, scenario, 61, T0))) == 2


def test_maintenance_hour_is_flagged_m_and_averages_its_normal_minute() -> None:
    frames = scenario_frames(GAS, "maintenance", 60, T0)
    hour = packet(frames[-1][1])
    first = packet(frames[0][1])
    assert hour.factors["a21026"].flag == "M" and hour.factors["a19001"].flag == "N"
    # Only minute 0 is normal (maintenance starts at minute 1).
    assert hour.factors["a21026"].fields["Avg"] == first.factors["a21026"].fields["Avg"]


# ---- through the alerts judge ------------------------------------------------------------


def _judge_frames(frames: list[tuple[str, bytes]], judge: Judge) -> list[AlertChange]:
    """Each frame as the gateway publishes it and alerts reads it, received just after the
    period it covers ends."""
    changes: list[AlertChange] = []
    for _, frame in frames:
        result = decode(frame, lenient=True)
        assert result.packet.data_time is not None
        start = result.packet.data_time.replace(tzinfo=STATION_TZ)
        length = timedelta(hours=1) if result.packet.cn == "2061" else timedelta(minutes=1)
        received = start + length + timedelta(seconds=30)
        record = to_record(result, frame, peer="test", received_at=received, station_tz=STATION_TZ)
        for reading in readings_from_record(record, received):
            changes += judge.on_reading(reading, received)
        for report in parameter_reports_from_record(record, received):
            changes += judge.on_parameter(report, received)
    return changes


def _mismatches(changes: list[AlertChange]) -> set[str]:
    return {c.factor for c in changes if c.kind is FindingKind.LOGGER_HOUR_MISMATCH}


@pytest.fixture
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Judge, list[SimLogger]]:
    path = write_synthetic_registry(tmp_path_factory.mktemp("sim") / "registry.yaml", 2)
    return Judge(registry_from_dict(synthetic_registry(2))), loggers_from_registry(path)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_judge_finds_no_logger_hour_mismatch_in_simulated_hours(
    scenario: str, fleet: tuple[Judge, list[SimLogger]]
) -> None:
    judge, loggers = fleet
    for logger in loggers:
        # 66 minutes: the 10:00 hour and the 5-minute grace that closes it.
        changes = _judge_frames(scenario_frames(logger, scenario, 66, T0), judge)
        assert _mismatches(changes) == set(), (logger.medium, changes)
    start = T0 - timedelta(days=1) if scenario == "backfill" else T0  # history a day old
    hour = int(epoch(start.replace(tzinfo=STATION_TZ)) // HOUR)
    assert all(st.closed_through >= hour for st in judge.states.values())
    assert len(judge.states) == 2


def test_judge_flags_an_hourly_avg_20_percent_off(
    fleet: tuple[Judge, list[SimLogger]],
) -> None:
    judge, loggers = fleet
    gas = next(lg for lg in loggers if lg.medium == "gas")
    frames = scenario_frames(gas, "normal", 66, T0)
    [i] = [n for n, (_, f) in enumerate(frames) if packet(f).cn == "2061"][:1]
    hour = summarise_hour(
        [minute_record(scenario_values(gas, "normal", m)) for m in range(60)], "gas"
    )
    hour["a21026"] = replace(hour["a21026"], avg=hour["a21026"].avg * 1.2)
    frames[i] = period_frame(gas, "2061", T0, hour)
    assert _mismatches(_judge_frames(frames, judge)) == {"a21026"}


def test_judge_flagged_the_old_copy_of_one_minute(fleet: tuple[Judge, list[SimLogger]]) -> None:
    # Before the fix the 2061 carried minute 59's values: the recomputation disagrees.
    judge, loggers = fleet
    gas = next(lg for lg in loggers if lg.medium == "gas")
    frames = scenario_frames(gas, "normal", 66, T0)
    [i] = [n for n, (_, f) in enumerate(frames) if packet(f).cn == "2061"][:1]
    frames[i] = data_frame(gas, "2061", T0, scenario_values(gas, "normal", 59))
    assert _mismatches(_judge_frames(frames, judge))


def test_parameter_scenario_reports_the_analyser_parameter_and_its_change() -> None:
    frames = scenario_frames(WATER, "parameter", 66, T0)
    info = [packet(f) for _, f in frames if packet(f).cn == "3020"]
    assert [(p.data_time, p.fields["PolId"], p.factors["i13004"].fields["Info"]) for p in info] == [
        (T0, "w01018", "165.0"),
        (T0 + timedelta(minutes=33), "w01018", "120.0"),
    ]  # at the start and halfway (66 // 2), for the first limited factor


def test_judge_opens_one_parameter_change_per_logger_of_the_parameter_scenario(
    fleet: tuple[Judge, list[SimLogger]],
) -> None:
    judge, loggers = fleet
    for logger in loggers:
        changes = _judge_frames(scenario_frames(logger, "parameter", 66, T0), judge)
        opened = [c for c in changes if c.kind is FindingKind.PARAMETER_CHANGED]
        assert [(c.change.value, c.factor) for c in opened] == [("opened", min(logger.limits))], (
            logger.medium
        )
        values = opened[0].explanation.values
        assert (values["previous"], values["current"]) == ("165.0", "120.0")
