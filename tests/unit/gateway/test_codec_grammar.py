"""Strict decoding checks the data area's grammar; lenient decoding (the gateway's default)
accepts with a warning where a real device deviates, and never lets a malformed factor code
into a record (issue 12, item 9)."""

from __future__ import annotations

import pytest

from liandong.hj212.decoding import decode
from liandong.hj212.rejects import FrameError, RejectReason
from tests.unit.gateway.reference import frame_with

MN = "010000A8900016F000169DC0"
HEAD = f"QN=20240501103000123;ST=32;CN=2051;PW=123456;MN={MN};Flag=5;"


def frame(cp: str, head: str = HEAD) -> bytes:
    return frame_with(f"{head}CP=&&{cp}&&")


@pytest.mark.parametrize(
    "code",
    ["a21026\r\nw01018", "a21\x00026", "a21026\tx", "a 21026"],
)
def test_a_factor_code_with_control_characters_is_refused_or_dropped(code: str) -> None:
    raw = frame(f"DataTime=20240501103000;{code}-Avg=12.5;a21002-Avg=40.1")
    with pytest.raises(FrameError) as refused:
        decode(raw)
    assert refused.value.code is RejectReason.BAD_FIELD
    lenient = decode(raw, lenient=True)
    assert set(lenient.packet.factors) == {"a21002"}  # the malformed one never gets in
    assert any("malformed factor code" in w for w in lenient.warnings)


def test_full_width_digits_are_not_numbers() -> None:
    raw = frame("DataTime=20240501103000;a21026-Avg=４０.１")
    with pytest.raises(FrameError):
        decode(raw)
    lenient = decode(raw, lenient=True)
    assert lenient.packet.factors["a21026"].number("Avg") is None
    assert lenient.warnings


@pytest.mark.parametrize("cn", ["2011", "2051", "2061", "2031"])
def test_an_upload_without_data_time_is_refused_strictly(cn: str) -> None:
    raw = frame("a21026-Avg=12.5", head=HEAD.replace("CN=2051", f"CN={cn}"))
    with pytest.raises(FrameError) as refused:
        decode(raw)
    assert refused.value.code is RejectReason.MISSING_FIELD
    lenient = decode(raw, lenient=True)
    assert any("without DataTime" in w for w in lenient.warnings)
    assert lenient.packet.factors["a21026"].number("Avg") == 12.5


def test_a_clean_upload_still_decodes_in_both_modes() -> None:
    raw = frame("DataTime=20240501103000;a21026-Avg=12.5")
    for lenient in (False, True):
        result = decode(raw, lenient=lenient)
        assert result.warnings == () and result.packet.factors["a21026"].number("Avg") == 12.5
