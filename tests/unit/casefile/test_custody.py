from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from casefile.domain.custody import (
    LabResult,
    Position,
    Sample,
    SampleFlag,
    attach_result,
    confirm_result,
    hand_off,
    new_sample,
)
from casefile.domain.errors import IllegalTransition, InvalidCommand

T0 = datetime(2026, 3, 2, 3, 30, tzinfo=UTC)
H = "ab" * 32


def sample(parameters: tuple[str, ...] = ("COD",), holding: timedelta | None = None) -> Sample:
    return new_sample(
        sample_id="S1",
        point="outlet-1",
        container="glass",
        preservative="H2SO4",
        seal_number="SEAL-1",
        parameters=parameters,
        collected_by="m1",
        witnessed_by="rep",
        collected_at=T0,
        position=Position(31.0, 120.0),
        holding_time=holding,
    )


def move(s: Sample, frm: str, to: str, hours: float, **kw: object) -> Sample:
    args: dict = {
        "to_lab": False,
        "seal_intact": True,
        "seal_number_observed": "SEAL-1",
        "condition_note": "",
    }
    args.update(kw)
    return hand_off(s, from_holder=frm, to_holder=to, at=T0 + timedelta(hours=hours), **args)


def result(parameter: str = "COD", hours: float = 20) -> LabResult:
    return LabResult(
        parameter,
        Decimal("182"),
        "mg/L",
        "HJ 828-2017",
        "lab-A",
        "CMA-1",
        T0 + timedelta(hours=hours),
        H,
    )


def test_holding_time_is_the_shortest_of_the_parameters() -> None:
    assert sample(("COD",)).holding_time == timedelta(days=5)
    assert sample(("NH3-N",)).holding_time == timedelta(days=7)
    assert sample(("COD", "NH3-N", "Cr(VI)")).holding_time == timedelta(hours=24)
    assert sample(("w01018",)).holding_time == timedelta(days=5)
    assert sample(("Hg",), timedelta(days=13)).holding_time == timedelta(days=13)


def test_chain_of_hand_offs_from_collector_to_lab() -> None:
    s = move(sample(), "m1", "o1", 1)
    s = move(s, "o1", "lab-A", 4, to_lab=True)
    assert s.holder == "lab-A" and s.in_lab
    assert [h.seq for h in s.custody] == [1, 2]
    assert s.lab_received_at == T0 + timedelta(hours=4)
    assert not s.compromised


def test_hand_off_must_come_from_the_current_holder() -> None:
    s = move(sample(), "m1", "o1", 1)
    with pytest.raises(IllegalTransition) as err:
        move(s, "m1", "lab-A", 2, to_lab=True)
    assert str(err.value) == (
        "case is sample S1 held by o1; cannot hand off from m1; requires the current holder o1"
    )


def test_hand_off_cannot_go_back_in_time_or_leave_the_lab() -> None:
    s = move(sample(), "m1", "o1", 2)
    with pytest.raises(InvalidCommand, match="precedes"):
        move(s, "o1", "o2", 1)
    lab = move(s, "o1", "lab-A", 3, to_lab=True)
    with pytest.raises(IllegalTransition, match="stays in a lab"):
        move(lab, "lab-A", "o1", 4)
    assert move(lab, "lab-A", "lab-B", 5, to_lab=True).holder == "lab-B"


def test_broken_seal_is_recorded_and_flags_the_sample() -> None:
    with pytest.raises(InvalidCommand, match="condition note"):
        move(sample(), "m1", "o1", 1, seal_intact=False)
    s = move(sample(), "m1", "o1", 1, seal_intact=False, condition_note="tape lifted")
    assert s.custody[-1].seal_intact is False
    assert [f.flag for f in s.flags] == [SampleFlag.SEAL_BROKEN]
    assert s.compromised


def test_seal_number_mismatch_flags_the_sample() -> None:
    s = move(sample(), "m1", "o1", 1, seal_number_observed="SEAL-9")
    assert [f.flag for f in s.flags] == [SampleFlag.SEAL_MISMATCH]


def test_lab_receipt_after_holding_time_is_flagged() -> None:
    s = sample(("Cr(VI)",))
    on_time = move(s, "m1", "lab-A", 23.9, to_lab=True)
    assert not on_time.flags
    late = move(s, "m1", "lab-A", 24.5, to_lab=True)
    assert [f.flag for f in late.flags] == [SampleFlag.RECEIVED_AFTER_HOLDING_TIME]


def test_results_attach_only_in_lab_custody() -> None:
    s = move(sample(), "m1", "o1", 1)
    with pytest.raises(IllegalTransition, match="requires the sample in lab custody"):
        attach_result(s, result())
    lab = move(s, "o1", "lab-A", 2, to_lab=True)
    with pytest.raises(InvalidCommand, match="not taken for 'NH3-N'"):
        attach_result(lab, result("NH3-N"))
    with pytest.raises(InvalidCommand, match="before the lab received"):
        attach_result(lab, result(hours=1))
    done = attach_result(lab, result())
    with pytest.raises(IllegalTransition, match="one result per parameter"):
        attach_result(done, result())
    late = attach_result(lab, result(hours=24 * 5 + 1))
    assert [f.flag for f in late.flags] == [SampleFlag.ANALYSED_AFTER_HOLDING_TIME]


def test_result_needs_cma_and_report_hash() -> None:
    lab = move(sample(), "m1", "lab-A", 2, to_lab=True)
    r = result()
    with pytest.raises(InvalidCommand, match="CMA"):
        attach_result(
            lab, LabResult(r.parameter, r.value, r.unit, r.method, r.lab_id, "", r.analysed_at, H)
        )
    with pytest.raises(InvalidCommand, match="report_sha256"):
        attach_result(
            lab,
            LabResult(
                r.parameter, r.value, r.unit, r.method, r.lab_id, "CMA", r.analysed_at, "nothex"
            ),
        )


def test_confirmation() -> None:
    lab = attach_result(move(sample(), "m1", "lab-A", 2, to_lab=True), result())
    assert not lab.fully_confirmed
    with pytest.raises(IllegalTransition, match="a recorded NH3-N result"):
        confirm_result(lab, "NH3-N", "m1", T0)
    ok = confirm_result(lab, "COD", "m1", T0 + timedelta(days=1))
    assert ok.fully_confirmed and ok.results[0].confirmed_by == "m1"
    with pytest.raises(IllegalTransition, match="confirm COD again"):
        confirm_result(ok, "COD", "m1", T0)
