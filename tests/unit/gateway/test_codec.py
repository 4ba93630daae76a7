import contextlib
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liandong.hj212.crc import CrcVariant
from liandong.hj212.decoding import decode
from liandong.hj212.encoding import build_data_segment, build_frame, encode, render_cp
from liandong.hj212.packets import DecodeResult, FactorValue, Packet, ProtocolVersion
from liandong.hj212.rejects import FrameError, RejectReason
from tests.unit.gateway.reference import appendix_a_crc, frame_with, modbus_crc

MN = "010000A8900016F000169DC0"
HEAD = f"QN=20160801085857223;ST=32;CN=2011;PW=123456;MN={MN};Flag=5;"


def strict_fails(frame: bytes, code: RejectReason) -> None:
    with pytest.raises(FrameError) as exc:
        decode(frame)
    assert exc.value.code is code


def lenient_warns(frame: bytes, code: RejectReason) -> DecodeResult:
    result = decode(frame, lenient=True)
    assert any(w.startswith(f"{code}:") for w in result.warnings), result.warnings
    return result


def test_conformant_frame_decodes_strictly() -> None:
    segment = HEAD + "CP=&&DataTime=20240501103000;w01018-Rtd=-0.052,w01018-Flag=N&&"
    result = decode(frame_with(segment))
    assert result.warnings == ()
    assert result.crc_variant is CrcVariant.HJ212
    packet = result.packet
    assert packet.version is ProtocolVersion.HJ212_2017
    assert packet.needs_ack and not packet.is_split
    assert packet.data_time == datetime(2024, 5, 1, 10, 30)
    assert packet.factors["w01018"].rtd == -0.052
    assert packet.cp == "DataTime=20240501103000;w01018-Rtd=-0.052,w01018-Flag=N"


def test_chinese_info_counts_utf8_bytes() -> None:
    # "设备正常" is 4 characters, 12 UTF-8 bytes; ';' ',' '=' inside //...// are text
    info = "//设备正常;a=1,b//"
    segment = HEAD.replace("2011", "3020") + f"CP=&&DataTime=20240501103000;i11001-Info={info}&&"
    data = segment.encode("utf-8")
    assert len(data) == len(segment) + 8
    frame = build_frame(segment)
    assert frame[2:6] == f"{len(segment) + 8:04d}".encode()
    assert frame[-6:-2] == f"{appendix_a_crc(data):04X}".encode()
    packet = decode(frame).packet
    assert packet.factors["i11001"].fields["Info"] == info
    # a character-counting sender gets the length wrong: lenient accepts, strict refuses
    wrong = b"##" + f"{len(segment):04d}".encode() + frame[6:]
    strict_fails(wrong, RejectReason.LENGTH_MISMATCH)
    lenient_warns(wrong, RejectReason.LENGTH_MISMATCH)


def test_modbus_crcs_are_opt_in_and_reported() -> None:
    segment = HEAD + "CP=&&DataTime=20240501103000;a21026-Rtd=12.5&&"
    crc = modbus_crc(segment.encode())
    msb = frame_with(segment, f"{crc:04X}")
    lsb = frame_with(segment, f"{(crc & 0xFF) << 8 | crc >> 8:04X}")
    strict_fails(msb, RejectReason.BAD_CRC)
    with pytest.raises(FrameError):
        decode(lsb, lenient=True)
    both = frozenset({CrcVariant.MODBUS_MSB, CrcVariant.MODBUS_LSB})
    assert decode(msb, accepted_crcs=both).crc_variant is CrcVariant.MODBUS_MSB
    assert decode(lsb, accepted_crcs=both).crc_variant is CrcVariant.MODBUS_LSB
    with pytest.raises(FrameError):
        decode(lsb, accepted_crcs=frozenset({CrcVariant.MODBUS_MSB}))


def test_bad_crc_fails_in_both_modes() -> None:
    frame = frame_with(HEAD + "CP=&&&&", "0000")
    strict_fails(frame, RejectReason.BAD_CRC)
    with pytest.raises(FrameError) as exc:
        decode(frame, lenient=True)
    assert exc.value.code is RejectReason.BAD_CRC


def test_framing_errors() -> None:
    strict_fails(b"#0012QN=1;CP=&&&&6900\r\n", RejectReason.BAD_HEADER)
    strict_fails(b"##00a2QN=1;CP=&&&&6900\r\n", RejectReason.BAD_LENGTH)
    strict_fails(b"##0000\r\n", RejectReason.BAD_LENGTH)
    strict_fails(frame_with(HEAD + "CP=&&&&", tail=b"\n"), RejectReason.BAD_TAIL)
    lenient_warns(frame_with(HEAD + "CP=&&&&", tail=b"\n"), RejectReason.BAD_TAIL)
    lenient_warns(frame_with(HEAD + "CP=&&&&", tail=b""), RejectReason.BAD_TAIL)


def test_not_utf8() -> None:
    data = (HEAD + "CP=&&i11001-Info=//").encode() + b"\xc9\xe8//&&"
    frame = b"##%04d%s%04X\r\n" % (len(data), data, appendix_a_crc(data))
    for lenient in (False, True):
        with pytest.raises(FrameError) as exc:
            decode(frame, lenient=lenient)
        assert exc.value.code is RejectReason.NOT_UTF8


def test_segment_size_limits() -> None:
    big = HEAD + "CP=&&DataTime=20240501103000;" + "w01018-Rtd=1.0;" * 80 + "x=1&&"
    assert 1024 < len(big) < 9999
    frame = frame_with(big)
    strict_fails(frame, RejectReason.TOO_LARGE)
    # duplicate w01018-Rtd keys are a second deviation; only size matters here
    assert decode(frame, lenient=True).packet.fields["x"] == "1"
    assert decode(frame_with(HEAD + "CP=&&x=1&&"), max_segment=50, lenient=True).warnings
    huge = b"##9999" + b"x" * 10_000 + b"0000\r\n"
    with pytest.raises(FrameError) as exc:
        decode(huge, lenient=True)
    assert exc.value.code is RejectReason.TOO_LARGE


@pytest.mark.parametrize(
    ("segment", "code"),
    [
        # Appendix C errata and field quirks from hj212.md §11
        (HEAD.replace(";ST=32", ",ST=32") + "CP=&&&&", RejectReason.BAD_SEGMENT),
        (HEAD[:-1] + "CP=&&&&", RejectReason.BAD_SEGMENT),
        (HEAD + "CP=&& PolId=w01018&&", RejectReason.BAD_SEGMENT),
        (HEAD + "CP=&&i13005-Info =40&&", RejectReason.BAD_SEGMENT),
        (HEAD + "CP=&&DataTime=20210305003817000&&", RejectReason.BAD_FIELD),
        (HEAD + "CP=&&DataTime=20241301003817&&", RejectReason.BAD_FIELD),
        (HEAD.replace("QN=20160801085857223;", "") + "CP=&&&&", RejectReason.MISSING_FIELD),
        (HEAD.replace("Flag=5;", "") + "CP=&&&&", RejectReason.MISSING_FIELD),
        (HEAD.replace("ST=32", "ST=101") + "CP=&&&&", RejectReason.BAD_FIELD),
        (HEAD.replace("PW=123456", "PW=BF470F88") + "CP=&&&&", RejectReason.BAD_FIELD),
        (HEAD.replace(MN, "JLYP01_AIR01_0001") + "CP=&&&&", RejectReason.BAD_FIELD),
        (HEAD.replace("Flag=5", "FLAG=5") + "CP=&&&&", RejectReason.BAD_SEGMENT),
        (HEAD + "CP=&&a=1;a=2&&", RejectReason.BAD_SEGMENT),
        (HEAD + "CP=&&w01018-Rtd=1,w01018-Rtd=2&&", RejectReason.BAD_SEGMENT),
        (HEAD + "CP=&&a=1;;b=2&&", RejectReason.BAD_SEGMENT),
        (HEAD + "CP=&&a=1;b&&", RejectReason.BAD_SEGMENT),
        (HEAD + "CP=&&w01018-Rtd=abc&&", RejectReason.BAD_FIELD),
        (HEAD + "CP=&&w01018-Avg=&&", RejectReason.BAD_FIELD),
        (HEAD + "CP=&&a=1", RejectReason.BAD_SEGMENT),
        (HEAD.replace("Flag=5", "Flag=7") + "CP=&&&&", RejectReason.MISSING_FIELD),
        (HEAD.replace("Flag=5", "Flag=7;PNUM=2;PNO=3") + "CP=&&&&", RejectReason.BAD_FIELD),
        (HEAD + "PNUM=2;PNO=1;CP=&&&&", RejectReason.BAD_FIELD),
        (HEAD.replace("Flag=5", "Flag=x") + "CP=&&&&", RejectReason.BAD_FIELD),
        (HEAD.replace("Flag=5", "Flag=300") + "CP=&&&&", RejectReason.BAD_FIELD),
    ],
)
def test_tolerable_deviations(segment: str, code: RejectReason) -> None:
    frame = frame_with(segment)
    strict_fails(frame, code)
    lenient_warns(frame, code)


def test_lenient_repairs() -> None:
    comma = decode(frame_with(HEAD.replace(";ST=32", ",ST=32") + "CP=&&&&"), lenient=True)
    assert comma.packet.qn == "20160801085857223" and comma.packet.st == "32"
    spaced = decode(frame_with(HEAD + "CP=&& PolId=w01018;i13005-Info =40&&"), lenient=True)
    assert spaced.packet.fields == {"PolId": "w01018"}
    assert spaced.packet.factors["i13005"].fields == {"Info": "40"}
    dup = decode(frame_with(HEAD + "CP=&&a=1;a=2&&"), lenient=True)
    assert dup.packet.fields == {"a": "1"}
    upper = decode(frame_with(HEAD.replace("Flag=5", "FLAG=5") + "CP=&&&&"), lenient=True)
    assert upper.packet.flag == 5
    bad_number = decode(frame_with(HEAD + "CP=&&w01018-Rtd=abc&&"), lenient=True)
    assert bad_number.packet.factors["w01018"].rtd is None
    assert bad_number.packet.factors["w01018"].fields["Rtd"] == "abc"


def test_required_fields_fail_in_both_modes() -> None:
    for segment, code in [
        ("QN=20160801085857223;ST=32;PW=1;MN=X;Flag=4;CP=&&&&", RejectReason.MISSING_FIELD),
        ("QN=20160801085857223;ST=32;CN=2011;PW=1;Flag=4;CP=&&&&", RejectReason.MISSING_FIELD),
        ("QN=20160801085857223;ST=32;CN=20x1;PW=1;MN=X;Flag=4;CP=&&&&", RejectReason.BAD_FIELD),
        ("QN=20160801085857223;ST=32;CN=2011;PW=1;MN=X;Flag=4", RejectReason.BAD_SEGMENT),
    ]:
        for lenient in (False, True):
            with pytest.raises(FrameError) as exc:
                decode(frame_with(segment), lenient=lenient)
            assert exc.value.code is code


def test_2005_codes_are_mapped_and_kept() -> None:
    segment = (
        "ST=32;CN=2011;PW=123456;MN=88888880000001;Flag=1;"
        "CP=&&DataTime=20120101120000;011-Rtd=50.2,011-Flag=N;B01-Rtd=3.5;02-Rtd=40;O3-Rtd=7&&"
    )
    packet = decode(frame_with(segment), lenient=True).packet
    assert packet.version is ProtocolVersion.HJT212_2005
    assert packet.needs_ack
    assert packet.factors["w01018"].original_code == "011"
    assert packet.factors["w01018"].fields == {"Rtd": "50.2", "Flag": "N"}
    assert packet.factors["w00000"].original_code == "B01"
    assert packet.factors["a21026"].rtd == 40.0
    assert packet.factors["O3"].original_code == "O3"  # unknown codes are never dropped
    assert list(packet.factors) == ["w01018", "w00000", "a21026", "O3"]


def test_2005_and_2017_code_for_the_same_factor_merge() -> None:
    frame = frame_with(HEAD + "CP=&&011-Rtd=1;w01018-Rtd=2,w01018-Flag=N&&")
    strict_fails(frame, RejectReason.BAD_SEGMENT)
    factor = decode(frame, lenient=True).packet.factors["w01018"]
    assert factor.fields == {"Rtd": "1", "Flag": "N"}


@pytest.mark.parametrize(
    ("flag", "version", "ack", "split"),
    [
        (0, ProtocolVersion.HJT212_2005, False, False),
        (3, ProtocolVersion.HJT212_2005, True, True),
        (4, ProtocolVersion.HJ212_2017, False, False),
        (7, ProtocolVersion.HJ212_2017, True, True),
        (9, ProtocolVersion.HJ212_2025, True, False),
        (12, ProtocolVersion.UNKNOWN, False, False),
    ],
)
def test_flag_bits(flag: int, version: ProtocolVersion, ack: bool, split: bool) -> None:
    packet = Packet("1", "32", "2011", "1", "M", flag, None, None, "")
    assert (packet.version, packet.needs_ack, packet.is_split) == (version, ack, split)


def test_unknown_header_keys_are_kept_and_encoded() -> None:
    segment = HEAD + "RF=1;CP=&&DataTime=20160801085800&&"
    result = decode(frame_with(segment))
    assert result.packet.header_extra == {"RF": "1"}
    assert any("unknown header keys RF" in w for w in result.warnings)
    assert encode(result.packet) == frame_with(segment)


def test_reordered_header_is_accepted_with_a_note() -> None:
    cp = "CP=&&DataTime=20160801085800&&"
    segment = f"QN=20160801085857223;ST=32;CN=2011;MN={MN};PW=123456;Flag=5;{cp}"
    result = decode(frame_with(segment))
    assert result.packet.pw == "123456"
    assert any("Table 3 order" in w for w in result.warnings)
    assert encode(result.packet) == frame_with(HEAD + cp)


def test_build_data_segment_groups_factor_values() -> None:
    segment = build_data_segment(
        qn="20240501103012345",
        st="32",
        cn="2051",
        pw="123456",
        mn=MN,
        flag=4,
        cp_fields=[
            ("DataTime", "20240501103000"),
            ("w01018-Avg", "21.5"),
            ("w01018-Flag", "N"),
            ("w21003-Avg", "0.8"),
        ],
    )
    assert segment == (
        f"QN=20240501103012345;ST=32;CN=2051;PW=123456;MN={MN};Flag=4;"
        "CP=&&DataTime=20240501103000;w01018-Avg=21.5,w01018-Flag=N;w21003-Avg=0.8&&"
    )


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.binary(max_size=300), st.booleans())
def test_decode_arbitrary_bytes_only_raises_frame_error(data: bytes, lenient: bool) -> None:
    for frame in (data, b"##" + data, b"##%04d" % len(data) + data):
        with contextlib.suppress(FrameError):
            assert isinstance(decode(frame, lenient=lenient), DecodeResult)


_SEGMENT_TEXT = st.text(
    alphabet=st.sampled_from("QNSTCPWMFlagPNUMO=;,&-/ 0123456789.abcw设\t"), max_size=200
)


@settings(max_examples=300)
@given(_SEGMENT_TEXT, st.booleans())
def test_decode_valid_frames_of_arbitrary_text_only_raise_frame_error(
    text: str, lenient: bool
) -> None:
    for segment in (text, HEAD + text, HEAD + "CP=&&" + text + "&&"):
        try:
            result = decode(build_frame(segment), lenient=lenient)
        except FrameError:
            continue
        assert result.packet.cn and result.packet.mn


_DIGITS = "0123456789"
_HEX = "0123456789ABCDEF"
_CODES = st.sampled_from(["w01018", "w21003", "a21026", "a34013", "a19001", "011", "02", "O3"])
_SUFFIXES = st.sampled_from(["Rtd", "Min", "Avg", "Max", "Cou", "ZsAvg", "Flag", "EFlag", "SN"])
_NUMBERS = st.decimals(min_value=-1000, max_value=100000, places=3, allow_nan=False).map(str)


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    split = draw(st.booleans())
    flag = 4 | (2 if split else 0) | draw(st.sampled_from([0, 1]))
    pnum = draw(st.integers(1, 99)) if split else None
    pno = draw(st.integers(1, pnum)) if pnum else None
    fields = {"DataTime": draw(st.datetimes(datetime(2000, 1, 1))).strftime("%Y%m%d%H%M%S")}
    factors: dict[str, FactorValue] = {}
    for code in draw(st.lists(_CODES, unique=True, max_size=6)):
        suffixes = draw(st.lists(_SUFFIXES, unique=True, min_size=1, max_size=4))
        values = {
            s: draw(st.sampled_from("NDFMSCTB")) if s == "Flag" else draw(_NUMBERS)
            for s in suffixes
        }
        values = {s: ("ABC123" if s in ("EFlag", "SN") else v) for s, v in values.items()}
        mapped = {"011": "w01018", "02": "a21026"}.get(code, code)
        if mapped in factors:
            continue
        factors[mapped] = FactorValue(mapped, code, values)
    return Packet(
        qn=draw(st.text(_DIGITS, min_size=17, max_size=17)),
        st=draw(st.sampled_from(["21", "22", "31", "32", "91"])),
        cn=draw(st.sampled_from(["2011", "2051", "2061", "2031", "3020"])),
        pw=draw(st.text(_DIGITS + "abc", max_size=6)),
        mn=draw(st.text(_HEX, min_size=24, max_size=24)),
        flag=flag,
        pnum=pnum,
        pno=pno,
        cp=render_cp(fields, factors),
        fields=fields,
        factors=factors,
    )


@settings(max_examples=200)
@given(packets())
def test_encode_decode_round_trip(packet: Packet) -> None:
    frame = encode(packet)
    result = decode(frame)
    assert result.warnings == ()
    assert result.packet == packet
    assert encode(result.packet) == frame
