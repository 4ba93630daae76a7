from datetime import datetime, timedelta

import pytest

from alerts.domain.periods import CST
from alerts.domain.registry import (
    AveragingBasis,
    LimitKind,
    MarkKind,
    Medium,
    RegistryError,
    limit_in_force,
    registry_from_dict,
)
from tests.unit.alerts.scenario import COD, PH, SO2, registry_doc


def test_parses_outlets_limits_and_enterprise_attributes() -> None:
    reg = registry_from_dict(registry_doc())
    gas = reg.outlet_by_mn("MN-GAS-0001")
    assert gas is not None and gas.outlet_id == "OUT-G1"
    assert gas.medium is Medium.GAS and gas.averaging is AveragingBasis.HOURLY
    assert gas.reference_o2 == 6.0 and gas.key_polluter and gas.county == "320506"
    assert gas.ranges == {SO2: 200.0}
    assert gas.expected_factors() == (SO2, "a19001")
    water = reg.outlet("OUT-W1")
    assert water is not None and water.averaging is AveragingBasis.DAILY
    ph = limit_in_force(water, PH, datetime(2025, 1, 1, tzinfo=CST))
    assert ph is not None and (ph.low, ph.high) == (6.0, 9.0)


def test_limit_versions_change_mid_day_and_are_end_exclusive() -> None:
    doc = registry_doc(
        limits=[
            {
                "factor": SO2,
                "value": 100,
                "unit": "mg/m3",
                "kind": "national",
                "clause": "GB 13223",
                "effective_from": "2024-01-01",
                "effective_to": "2025-03-10T12:00:00",
            },
            {
                "factor": SO2,
                "value": 35,
                "unit": "mg/m3",
                "kind": "ultra_low",
                "clause": "UL",
                "effective_from": "2025-03-10T12:00:00",
            },
        ]
    )
    reg = registry_from_dict(doc)
    noon = datetime(2025, 3, 10, 12, 0, tzinfo=CST)
    before = reg.limit_in_force("OUT-G1", SO2, noon - timedelta(seconds=1))
    after = reg.limit_in_force("OUT-G1", SO2, noon)
    assert before is not None and before.value == 100.0 and before.kind is LimitKind.NATIONAL
    assert after is not None and after.value == 35.0
    assert reg.limit_in_force("OUT-G1", SO2, datetime(2023, 1, 1, tzinfo=CST)) is None
    assert reg.limit_in_force("OUT-G1", COD, noon) is None


def test_overlapping_versions_and_other_problems_are_all_reported() -> None:
    doc = registry_doc(
        medium="air",
        reference_o2=21,
        limits=[
            {
                "factor": SO2,
                "value": 100,
                "unit": "mg/m3",
                "kind": "national",
                "clause": "a",
                "effective_from": "2024-01-01",
            },
            {
                "factor": SO2,
                "value": 35,
                "unit": "mg/m3",
                "kind": "ultra_low",
                "clause": "b",
                "effective_from": "2025-01-01",
            },
        ],
    )
    doc["enterprises"][0]["county"] = "32"
    doc["marks"] = [
        {"outlet": "NOPE", "kind": "holiday", "start": "2025-01-01", "end": "2024-01-01"}
    ]
    with pytest.raises(RegistryError) as err:
        registry_from_dict(doc)
    text = " | ".join(err.value.problems)
    for needle in (
        "overlap",
        "medium",
        "reference_o2",
        "county",
        "unknown outlet",
        "holiday",
        "end must be after start",
    ):
        assert needle in text


def test_ph_needs_a_range() -> None:
    doc = registry_doc()
    doc["outlets"][1]["limits"][1] = {
        "factor": PH,
        "value": 9,
        "unit": "",
        "kind": "national",
        "clause": "x",
        "effective_from": "2024-01-01",
    }
    with pytest.raises(RegistryError, match="pH limits need low and high"):
        registry_from_dict(doc)


def test_only_approved_marks_cover_and_factor_none_means_all() -> None:
    doc = registry_doc()
    doc["marks"] = [
        {
            "outlet": "OUT-G1",
            "kind": "maintenance",
            "start": "2025-03-10T10:00:00",
            "end": "2025-03-10T11:00:00",
            "approved": True,
            "reference": "MK-1",
        },
        {
            "outlet": "OUT-G1",
            "factor": SO2,
            "kind": "calibration",
            "start": "2025-03-10T10:00:00",
            "end": "2025-03-10T11:00:00",
            "approved": False,
            "reference": "MK-2",
        },
    ]
    reg = registry_from_dict(doc)
    marks = reg.marks_covering("OUT-G1", SO2, datetime(2025, 3, 10, 10, 30, tzinfo=CST))
    assert [m.reference for m in marks] == ["MK-1"]
    assert marks[0].kind is MarkKind.MAINTENANCE
    assert reg.marks_covering("OUT-G1", SO2, datetime(2025, 3, 10, 11, 0, tzinfo=CST)) == []
