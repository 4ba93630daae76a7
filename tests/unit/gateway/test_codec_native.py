"""The native decoder (src/liandong/hj212/rust) against the pure-Python one: same results and
the same errors, on generated frames, mutated frames and the public samples."""

import json
from pathlib import Path

import hj212_native
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from liandong.hj212.crc import CrcVariant
from liandong.hj212.decoding import decode, decode_python
from liandong.hj212.native import _from_native, native_available
from liandong.hj212.packets import DecodeResult
from liandong.hj212.rejects import FrameError
from tests.unit.gateway.reference import appendix_a_crc, frame_with

SAMPLES = Path("/work/shared/samples/hj212_public_packets.jsonl")
MN = "010000A8900016F000169DC0"
ALL = frozenset({CrcVariant.MODBUS_MSB, CrcVariant.MODBUS_LSB})


def outcome(fn: object, frame: bytes, lenient: bool) -> DecodeResult | tuple[str, str]:
    try:
        return fn(frame, lenient=lenient, accepted_crcs=ALL)  # type: ignore[operator]
    except FrameError as err:
        return (str(err.code), err.detail)


def assert_parity(frame: bytes) -> None:
    for lenient in (False, True):
        assert outcome(decode, frame, lenient) == outcome(decode_python, frame, lenient)


def test_the_gateway_uses_the_native_decoder() -> None:
    assert native_available()


def test_native_crc_is_appendix_a() -> None:
    # The standard's own example segment (hj212.md Appendix A) has check code 1C80.
    segment = (
        b"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;"
        b"Flag=5;CP=&&RtdInterval=30&&"
    )
    assert hj212_native.crc16(segment) == 0x1C80
    for n in range(0, 40):
        data = bytes(range(200, 200 + n % 56)) * (n // 7 + 1)
        assert hj212_native.crc16(data) == appendix_a_crc(data)


def test_clean_frame_is_split_natively_with_2005_codes_mapped() -> None:
    segment = (
        f"QN=20240501103000123;ST=32;CN=2051;PW=123456;MN={MN};Flag=5;"
        "CP=&&DataTime=20240501103000;011-Avg=21.5,011-Flag=N;w01001-Avg=7.2&&"
    )
    frame = frame_with(segment)
    split = hj212_native.decode_clean(frame, 1024)
    assert split is not None
    assert split[:8] == ("20240501103000123", "32", "2051", "123456", MN, 5, None, None)
    assert split[9] == {"DataTime": "20240501103000"}
    assert split[10] == [("011", {"Avg": "21.5", "Flag": "N"}), ("w01001", {"Avg": "7.2"})]
    packet = decode(frame).packet
    assert list(packet.factors) == ["w01018", "w01001"]  # 011 is the 2005 code of COD
    assert packet.factors["w01018"].original_code == "011"
    assert packet.factors["w01018"].avg == 21.5
    assert_parity(frame)


@pytest.mark.parametrize(
    "segment",
    [
        # each one a deviation the native path must leave to Python
        f"QN=20240501103000123;ST=32;CN=2051;PW=123456;MN={MN};Flag=5;CP=&&w01018-Avg=1e5&&",
        f"QN=20240501103000123;ST=32;CN=2051;PW=123456;MN={MN};Flag=05;CP=&&a=1&&",
        f"ST=32;QN=20240501103000123;CN=2051;PW=123456;MN={MN};Flag=5;CP=&&a=1&&",
        f"QN=20240501103000123;ST=32;CN=2051;PW=123456;MN={MN};Flag=5;CP=&&DataTime=20240231000000&&",
        f"QN=20240501103000123;ST=32;CN=2051;PW=123456;MN={MN};Flag=5;CP=&&w01018-Avg=1;a=2&&",
        f"QN=20240501103000123;ST=32;CN=2051;PW=123456;MN={MN};Flag=5;CP=&&011-Avg=1;w01018-Max=2&&",
        f"QN=20240501103000123;ST=32;CN=2051;PW=123456;MN={MN};Flag=5;CP=&&a = 1&&",
        f"QN=20240501103000123;ST=32;CN=2051;PW=123456;MN={MN};Flag=7;CP=&&a=1&&",
        f"QN=20240501103000123;ST=32;CN=2051;PW=1234567;MN={MN};Flag=5;CP=&&a=1&&",
    ],
)
def test_deviations_are_left_to_python_and_agree(segment: str) -> None:
    frame = frame_with(segment)
    # None from the extension, or from the wrapper (DataTime, 2005/2017 collision): Python decides
    assert _from_native(hj212_native.decode_clean(frame, 1024)) is None
    assert_parity(frame)


def test_public_samples_agree() -> None:
    rows = [json.loads(line) for line in SAMPLES.read_text().splitlines()]
    assert rows
    for row in rows:
        raw = row["raw"].encode("utf-8")
        assert_parity(raw)
        assert_parity(raw.rstrip(b"\r\n") + b"\r\n")


_code = st.sampled_from(["w01018", "a21026", "011", "w01001", "001", "B01", "a01012", "x9"])
_suffix = st.sampled_from(["Rtd", "Min", "Avg", "Max", "Cou", "Flag", "EFlag", "ZsAvg", "SN"])
_number = st.from_regex(r"[-+]?[0-9]{1,5}(\.[0-9]{0,3})?", fullmatch=True)


def pick(draw: st.DrawFn, good: object, bad: list[str]) -> str:
    """Mostly the conformant value (so many frames take the native path), sometimes a quirk."""
    if draw(st.integers(0, 24)):
        return good if isinstance(good, str) else draw(good)  # type: ignore[arg-type]
    return draw(st.sampled_from(bad))


@st.composite
def segments(draw: st.DrawFn) -> str:
    flag = pick(draw, st.sampled_from(["5", "4", "1"]), ["0", "7", "05", "300", "9", "x"])
    head = [
        ("QN", pick(draw, "20240501103000123", ["2024", "2024050110300012３"])),
        ("ST", pick(draw, st.sampled_from(["32", "91", "2A"]), ["3a", "3"])),
        ("CN", pick(draw, "2051", ["205", "20５1"])),
        ("PW", pick(draw, st.sampled_from(["123456", "", "密码"]), ["1234567", "a,b"])),
        ("MN", pick(draw, MN, ["88888880000001", MN.lower(), "ABC", ""])),
        ("Flag", flag),
    ]
    if flag in ("7", "300") or not draw(st.integers(0, 5)):
        head += [("PNUM", pick(draw, "2", ["02", "x"])), ("PNO", pick(draw, "1", ["3", "0"]))]
    if not draw(st.integers(0, 9)):
        head = draw(st.permutations(head))
    pairs: list[tuple[str, str]] = []
    if draw(st.booleans()):
        bad_times = ["20230229000000", "20240501103000123", "2024", "2024050110300０"]
        pairs.append(("DataTime", pick(draw, "20240229235959", bad_times)))
    for code in draw(st.lists(_code, max_size=5)):
        for suffix in draw(st.lists(_suffix, min_size=1, max_size=4)):
            bad_values = ["", ".5", "1.", "1e5", "N", "--1", "1.2.3", "０", "1 "]
            pairs.append((f"{code}-{suffix}", pick(draw, _number, bad_values)))
    if not draw(st.integers(0, 9)):
        pairs.append(("Extra", "1"))
    separator = pick(draw, ";", [",", "", ";;"])
    item = pick(draw, ";", [",", " ;"])
    cp = item.join(f"{k}={v}" for k, v in pairs)
    return separator.join(f"{k}={v}" for k, v in head) + f";CP=&&{cp}&&"


@settings(max_examples=300, deadline=None)
@given(segments())
def test_generated_frames_agree(segment: str) -> None:
    assert_parity(frame_with(segment))


@settings(max_examples=300, deadline=None)
@given(segments(), st.integers(min_value=0), st.integers(0, 255))
@example(f"QN=20240501103000123;ST=32;CN=2051;PW=123456;MN={MN};Flag=5;CP=&&a=1&&", 3, 0x30)
def test_mutated_frames_agree(segment: str, at: int, byte: int) -> None:
    frame = bytearray(frame_with(segment))
    frame[at % len(frame)] = byte
    assert_parity(bytes(frame))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_agree(data: bytes) -> None:
    assert_parity(data)
    assert_parity(b"##" + f"{len(data):04d}".encode() + data + b"0000\r\n")
