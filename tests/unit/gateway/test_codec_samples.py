"""The public sample packets (hj212_public_packets.jsonl) as test vectors."""

import json
from pathlib import Path
from typing import Any

import pytest

from liandong.hj212.decoding import decode
from liandong.hj212.factors import to_2017
from liandong.hj212.rejects import FrameError, RejectReason

SAMPLES = Path("/work/shared/samples/hj212_public_packets.jsonl")
ROWS: list[dict[str, Any]] = [json.loads(line) for line in SAMPLES.read_text().splitlines()]

# Why each sample fails strict mode, worked out by reading the raw text against the standard:
# lower-case CRC (rows 0, 1, 5, 6), a 15/17/13-char MN with a 2017 Flag (2, 3, 8), no CR LF (4).
STRICT_OUTCOME = {
    0: RejectReason.BAD_CRC,
    1: RejectReason.BAD_CRC,
    2: RejectReason.BAD_FIELD,
    3: RejectReason.BAD_FIELD,
    4: RejectReason.BAD_TAIL,
    5: RejectReason.BAD_CRC,
    6: RejectReason.BAD_CRC,
    7: None,  # the standard's own Appendix A example
    8: RejectReason.BAD_FIELD,
}


def test_sample_file_is_what_the_table_describes() -> None:
    assert len(ROWS) == len(STRICT_OUTCOME)


@pytest.mark.parametrize("index", range(len(ROWS)))
def test_sample_decodes_to_expected_fields(index: int) -> None:
    row = ROWS[index]
    raw = row["raw"].encode("utf-8")
    if not row["crc_ok"]:
        with pytest.raises(FrameError) as exc:
            decode(raw, lenient=True)
        assert exc.value.code is RejectReason.BAD_CRC
        return
    packet = decode(raw, lenient=True).packet
    expect = row["expect"]
    assert packet.qn == expect["QN"]
    assert packet.st == expect["ST"]
    assert packet.cn == expect["CN"]
    assert packet.pw == expect["PW"]
    assert packet.mn == expect["MN"]
    assert packet.flag == (int(expect["Flag"]) if expect["Flag"] is not None else None)
    assert packet.pnum == expect["PNUM"]
    assert packet.pno == expect["PNO"]
    assert packet.fields.get("DataTime") == expect["DataTime"]
    for key, value in expect["values"].items():
        code, dash, suffix = key.partition("-")
        if dash:
            factor = packet.factors[to_2017(code)]
            assert factor.original_code == code
            assert factor.fields[suffix] == value
        else:
            assert packet.fields[key] == value
    factor_keys = sum(len(f.fields) for f in packet.factors.values())
    plain_keys = len(packet.fields) - (1 if "DataTime" in packet.fields else 0)
    assert factor_keys + plain_keys == len(expect["values"])


@pytest.mark.parametrize("index", range(len(ROWS)))
def test_sample_strict_outcome(index: int) -> None:
    raw = ROWS[index]["raw"].encode("utf-8")
    expected = STRICT_OUTCOME[index]
    if expected is None:
        assert decode(raw).warnings == ()
    else:
        with pytest.raises(FrameError) as exc:
            decode(raw)
        assert exc.value.code is expected


@pytest.mark.parametrize("index", range(len(ROWS)))
def test_corrupted_sample_fails_crc_in_both_modes(index: int) -> None:
    raw = ROWS[index]["raw"].encode("utf-8")
    at = raw.index(b"CN=") + 3  # change one digit of the command code, same length
    corrupted = raw[:at] + (b"3" if raw[at : at + 1] != b"3" else b"4") + raw[at + 1 :]
    for lenient in (False, True):
        with pytest.raises(FrameError) as exc:
            decode(corrupted, lenient=lenient)
        if lenient or STRICT_OUTCOME[index] is not RejectReason.BAD_TAIL:
            assert exc.value.code is RejectReason.BAD_CRC


def test_sample_details() -> None:
    packet = decode(ROWS[6]["raw"].encode(), lenient=True).packet  # 17-digit DataTime, no QN
    assert packet.data_time is not None
    assert packet.data_time.isoformat() == "2021-03-05T00:38:17"
    assert packet.flag is None
    assert packet.version.name == "UNKNOWN"
    water = decode(ROWS[8]["raw"].encode(), lenient=True).packet
    cod = water.factors["w01018"]
    assert cod.rtd == 194.2
    assert cod.flag == "N"
    assert cod.sample_time is not None and cod.sample_time.isoformat() == "2021-03-20T01:34:00"
    assert decode(ROWS[5]["raw"].encode(), lenient=True).packet.version.name == "HJ212_2025"
