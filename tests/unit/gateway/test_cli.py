import json
from pathlib import Path

from typer.testing import CliRunner

from gateway.entrypoints.hj212_cli import app
from tests.unit.gateway.reference import frame_with, modbus_crc

MN = "010000A8900016F000169DC0"
# CN 9014 (a data reply): these frames test framing and CRCs, and carry no DataTime, which
# an upload (2011) must (issue 12, item 9)
GOOD = frame_with(f"QN=20160801085857223;ST=32;CN=9014;PW=123456;MN={MN};Flag=4;CP=&&a=1&&")
_UPPER = frame_with(f"QN=20160801085857223;ST=32;CN=9014;PW=123456;MN={MN};Flag=4;CP=&&b=2&&")
LOWER = _UPPER[:-6] + _UPPER[-6:-2].lower() + b"\r\n"
SEG = f"QN=20160801085857223;ST=32;CN=9014;PW=123456;MN={MN};Flag=4;CP=&&c=3&&"
MODBUS = frame_with(SEG, f"{modbus_crc(SEG.encode()):04X}")

runner = CliRunner()


def lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines()]


def test_decode_stdin_several_frames_per_line_and_across_lines() -> None:
    half = len(GOOD) // 2
    stream = GOOD + GOOD[:half] + b"\n" + GOOD[half:] + b"junk" + GOOD
    result = runner.invoke(app, ["decode"], input=stream)
    assert result.exit_code == 0, result.output
    records = lines(result.output)
    assert records[0]["fields"] == {"a": "1"} and records[0]["crc_variant"] == "hj212"
    # the line break inside the second frame corrupts it: the reader skips, then resyncs
    assert [r.get("error") for r in records[1:]] == ["bad_tail", "garbage", None]
    assert records[-1]["mn"] == MN


def test_decode_file_lenient_and_accept_crc(tmp_path: Path) -> None:
    assert LOWER != _UPPER  # the CRC of this segment has hex letters
    capture = tmp_path / "capture.txt"
    capture.write_bytes(LOWER + b"\n" + MODBUS + b"\n")
    strict = lines(runner.invoke(app, ["decode", str(capture)]).output)
    assert [r["error"] for r in strict] == ["bad_crc", "bad_crc"]
    assert "raw" in strict[0] and strict[0]["detail"]
    result = runner.invoke(app, ["decode", "--lenient", "--accept-crc", "modbus-msb", str(capture)])
    assert result.exit_code == 0, result.output
    lenient = lines(result.output)
    assert lenient[0]["warnings"] == ["bad_crc: lower-case CRC " + LOWER[-6:-2].decode()]
    assert lenient[1]["crc_variant"] == "modbus-msb" and lenient[1]["fields"] == {"c": "3"}


def test_bad_option_is_rejected() -> None:
    assert runner.invoke(app, ["decode", "--accept-crc", "crc32"], input=b"").exit_code != 0
