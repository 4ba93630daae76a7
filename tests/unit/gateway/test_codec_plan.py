"""The cached key-plan fast path of the data-area parser agrees with the general parser."""

from hypothesis import given, settings
from hypothesis import strategies as st

from liandong.hj212 import decoding as codec
from liandong.hj212.decoding import decode
from liandong.hj212.encoding import build_frame
from liandong.hj212.packets import FactorValue

MN = "010000A8900016F000169DC0"
HEAD = f"QN=20160801085857223;ST=32;CN=2051;PW=123456;MN={MN};Flag=5;"


def _general(cp: str, lenient: bool) -> tuple[dict[str, str], dict[str, FactorValue]]:
    issues = codec._Issues(lenient)
    # loose=True disables the fast path; the data areas here have no whitespace to strip.
    fields, factors = codec._parse_cp(cp, issues, True)
    return fields, factors


def test_typical_minute_area_uses_the_plan_and_maps_2005_codes() -> None:
    cp = "DataTime=20240501103000;011-Avg=21.5,011-Flag=N;w21003-Avg=-0.05,w21003-Flag=N"
    planned = codec._parse_cp_planned(cp, False)
    assert planned is not None
    fields, factors = planned
    assert fields == {"DataTime": "20240501103000"}
    assert list(factors) == ["w01018", "w21003"]  # 011 is the 2005 code of COD
    assert factors["w01018"].original_code == "011"
    assert factors["w01018"].avg == 21.5
    assert factors["w21003"].fields == {"Avg": "-0.05", "Flag": "N"}


def test_odd_layouts_fall_back_to_the_general_parser() -> None:
    for cp in (
        "DataTime=1;a=b=c;x",  # an item without '=' and one with two
        "w01018-Avg=1;DataTime=20240501103000",  # a field after the factors
        "w01018-Avg=1;w21003-Avg=2;w01018-Flag=N",  # a factor interleaved
        "w01018-Avg=1;w01018-Avg=2",  # duplicate key
        "011-Avg=1;w01018-Avg=2",  # 2005 and 2017 code of the same factor
        "w01018-Avg=abc",  # not a number
        "w01018-Avg=",  # empty number
    ):
        assert codec._parse_cp_planned(cp, True) is None, cp


_codes = st.sampled_from(["w01018", "w21003", "011", "a21026", "B01", "x99"])
_suffixes = st.sampled_from(["Rtd", "Avg", "Min", "Max", "Flag", "EFlag", "Cou"])
_values = st.sampled_from(["1", "-0.5", "12.25", "N", "", "abc", "2=3", "7"])
_keys = st.one_of(
    st.sampled_from(["DataTime", "QnRtn", "1x", "-1"]),
    st.tuples(_codes, _suffixes).map("-".join),
)


@settings(max_examples=300)
@given(
    st.lists(st.tuples(_keys, _values), min_size=1, max_size=8),
    st.sampled_from([";", ","]),
    st.booleans(),
)
def test_plan_and_general_parser_agree(
    pairs: list[tuple[str, str]], sep: str, lenient: bool
) -> None:
    cp = sep.join(f"{k}={v}" for k, v in pairs)
    planned = codec._parse_cp_planned(cp, lenient)
    if planned is None:
        return
    fields, factors = _general(cp, lenient)
    assert planned[0] == fields
    assert {c: (f.original_code, dict(f.fields)) for c, f in planned[1].items()} == {
        c: (f.original_code, dict(f.fields)) for c, f in factors.items()
    }


def test_decode_through_the_plan_twice_gives_equal_packets() -> None:
    frame = build_frame(HEAD + "CP=&&DataTime=20240501103000;w01018-Avg=21.5,w01018-Flag=N&&")
    first, second = decode(frame), decode(frame)
    assert first == second
    assert first.packet.factors["w01018"].avg == 21.5
