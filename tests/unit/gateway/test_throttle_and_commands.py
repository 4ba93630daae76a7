from datetime import datetime, timedelta

from gateway.domain.commands import CommandState, CommandTracker, PendingCommand
from gateway.domain.throttle import TokenBucket
from liandong.hj212.decoding import decode
from liandong.hj212.encoding import build_data_segment, build_frame

MN = "010000A8900016F000169DC0"
T0 = datetime(2024, 5, 1, 10, 0)


def reply(cn: str, qn: str, cp: str) -> object:
    segment = build_data_segment(qn=qn, st="91", cn=cn, pw="123456", mn=MN, flag=4, cp_fields=cp)
    return decode(build_frame(segment)).packet


def test_bucket_allows_a_burst_then_paces_to_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == 0.1  # one token short at 10/s
    assert bucket.take(0.0) == 0.2  # booked even when late: a flood is paced, not bursted
    assert bucket.available(0.5) == 3.0  # -2 + 0.5 s x 10, capped at the burst
    assert bucket.take(10.0, 4) == 0.1


def test_command_follows_9011_then_uploads_then_9012() -> None:
    tracker = CommandTracker()
    tracker.delivered(PendingCommand("c1", MN, "2061", "20240501100000001", T0))
    accepted = tracker.on_packet(reply("9011", "20240501100000001", "QnRtn=1"))
    assert accepted is not None and accepted.state is CommandState.ACCEPTED
    segment = build_data_segment(
        qn="20240501100000001",
        st="32",
        cn="2061",
        pw="1",
        mn=MN,
        flag=4,
        cp_fields="DataTime=20240501000000;w01018-Avg=1",
    )
    assert tracker.on_packet(decode(build_frame(segment)).packet) is None
    done = tracker.on_packet(reply("9012", "20240501100000001", "ExeRtn=1"))
    assert done is not None
    assert (done.state, done.exe_rtn, done.detail) == (
        CommandState.SUCCEEDED,
        1,
        "1 data upload(s)",
    )
    assert tracker.pending() == 0


def test_refused_failed_and_expired_commands() -> None:
    tracker = CommandTracker()
    tracker.delivered(PendingCommand("c1", MN, "3012", "20240501100000001", T0))
    tracker.delivered(PendingCommand("c2", MN, "3015", "20240501100000002", T0))
    tracker.delivered(PendingCommand("c3", MN, "1012", "20240501100000003", T0 + timedelta(1)))
    rejected = tracker.on_packet(reply("9011", "20240501100000001", "QnRtn=3"))
    assert rejected is not None and (rejected.state, rejected.qn_rtn) == (CommandState.REJECTED, 3)
    assert tracker.on_packet(reply("9011", "20240501100000002", "QnRtn=1")) is not None
    failed = tracker.on_packet(reply("9012", "20240501100000002", "ExeRtn=5"))
    assert failed is not None and failed.state is CommandState.FAILED
    assert failed.detail.startswith("ExeRtn 5 (BUSY)")
    assert tracker.expire(T0 + timedelta(hours=1)) == []
    [expired] = tracker.expire(T0 + timedelta(days=1))
    assert (expired.command_id, expired.state) == ("c3", CommandState.EXPIRED)
