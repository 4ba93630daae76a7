from datetime import datetime

import pytest

from gateway.domain.replies import (
    QnRtn,
    command_request,
    data_ack_9014,
    execution_result_9012,
    history_request,
    notify_ack_9013,
    refusal,
    request_reply_9011,
    set_time_1012,
)
from liandong.hj212.decoding import decode, peek_header
from liandong.hj212.encoding import build_frame
from tests.unit.gateway.reference import appendix_a_crc

MN = "010000A8900016F000169DC0"
UPLOAD = decode(
    build_frame(
        f"QN=20160801085857223;ST=32;CN=2011;PW=123456;MN={MN};Flag=5;"
        "CP=&&DataTime=20160801085800;w01018-Rtd=50&&"
    )
).packet


def check_frame(frame: bytes) -> str:
    """Validate a reply independently of the codec; return its data segment."""
    assert frame[:2] == b"##" and frame[-2:] == b"\r\n"
    segment = frame[6:-6]
    assert int(frame[2:6]) == len(segment)
    assert frame[-6:-2] == f"{appendix_a_crc(segment):04X}".encode()
    return segment.decode()


def test_9014_echoes_qn_with_st91_flag4() -> None:
    assert check_frame(data_ack_9014(UPLOAD)) == (
        f"QN=20160801085857223;ST=91;CN=9014;PW=123456;MN={MN};Flag=4;CP=&&&&"
    )
    assert decode(data_ack_9014(UPLOAD)).warnings == ()


def test_9013_9011_9012() -> None:
    ack = check_frame(notify_ack_9013(UPLOAD))
    assert ack.endswith(f"CN=9013;PW=123456;MN={MN};Flag=4;CP=&&&&")
    reply = decode(request_reply_9011(UPLOAD, QnRtn.READY)).packet
    assert (reply.qn, reply.st, reply.cn, reply.flag) == ("20160801085857223", "91", "9011", 4)
    assert reply.fields == {"QnRtn": "1"}
    result = decode(execution_result_9012(UPLOAD, 100)).packet
    assert result.fields == {"ExeRtn": "100"}


def test_2005_notification_carries_qn_in_cp() -> None:
    old = decode(
        build_frame("QN=20120101120000001;ST=32;CN=1013;PW=123456;MN=88888880000001;Flag=1;CP=&&&&")
    ).packet
    assert check_frame(notify_ack_9013(old)).endswith("CP=&&QN=20120101120000001&&")


def test_refusals() -> None:
    wrong_pw = decode(refusal(UPLOAD, QnRtn.PW_ERROR)).packet
    assert wrong_pw.fields == {"QnRtn": "3"} and wrong_pw.qn == UPLOAD.qn
    bad_crc_frame = b"##0040QN=20160801085857999;CN=2011;MN=ABC;CP=&&&&0000\r\n"
    reply = check_frame(refusal(peek_header(bad_crc_frame), QnRtn.CRC_ERROR))
    assert reply == "QN=20160801085857999;ST=91;CN=9011;MN=ABC;Flag=4;CP=&&QnRtn=9&&"
    with pytest.raises(ValueError):
        refusal(UPLOAD, QnRtn.READY)


def test_commands() -> None:
    frame = set_time_1012(MN, "123456", datetime(2016, 8, 1, 8, 58, 57), "20160801085857223")
    assert check_frame(frame) == (
        f"QN=20160801085857223;ST=32;CN=1012;PW=123456;MN={MN};Flag=5;"
        "CP=&&SystemTime=20160801085857&&"
    )
    history = history_request(
        "2061", MN, "123456", "20160801085857224", datetime(2016, 8, 1), datetime(2016, 8, 1, 6)
    )
    assert check_frame(history).endswith("CP=&&BeginTime=20160801000000;EndTime=20160801060000&&")
    sample = command_request("3015", MN, "123456", "20160801085857225", {"VaseNo": "1"}, st="31")
    packet = decode(sample).packet
    assert (packet.cn, packet.st, packet.needs_ack, packet.fields) == (
        "3015",
        "31",
        True,
        {"VaseNo": "1"},
    )
