import itertools
from datetime import datetime, timedelta

from gateway.domain.reassembly import SubpacketAssembler
from liandong.hj212.decoding import decode
from liandong.hj212.encoding import build_data_segment, build_frame
from liandong.hj212.packets import Packet
from liandong.hj212.rejects import RejectReason

MN = "010000A8900016F000169DC0"
T0 = datetime(2024, 5, 1, 10, 0, 0)


def sub(pno: int, pnum: int, cp: str, data_time: str = "20240501100000") -> Packet:
    segment = build_data_segment(
        qn=f"20240501100000{530 + pno}",
        st="32",
        cn="2061",
        pw="123456",
        mn=MN,
        flag=7,
        pnum=pnum,
        pno=pno,
        cp_fields=f"DataTime={data_time};{cp}",
    )
    return decode(build_frame(segment)).packet


PARTS = [
    sub(1, 3, "w01018-Avg=20.1,w01018-Flag=N"),
    sub(2, 3, "w21003-Avg=0.5,w21003-Flag=N"),
    sub(3, 3, "w00000-Cou=120.5;w01018-Max=25"),
]


def test_any_order_completes_with_union() -> None:
    for order in itertools.permutations(PARTS):
        assembler = SubpacketAssembler(timedelta(minutes=5))
        results = [assembler.add(p, T0) for p in order]
        assert results[:2] == [None, None]
        merged = results[2]
        assert merged is not None
        assert merged.qn == "20240501100000531"  # header of PNO 1
        assert merged.flag == 5 and not merged.is_split and merged.pnum is None
        assert list(merged.factors) == ["w01018", "w21003", "w00000"]
        assert merged.factors["w01018"].fields == {"Avg": "20.1", "Flag": "N", "Max": "25"}
        assert merged.fields == {"DataTime": "20240501100000"}
        assert assembler.pending() == 0
        # the merged packet's data area is consistent with its parsed view
        assert decode(build_frame(f"QN=1;CN=2061;MN=X;CP=&&{merged.cp}&&"), lenient=True)


def test_duplicate_subpacket_keeps_first_and_groups_are_separate() -> None:
    assembler = SubpacketAssembler(timedelta(minutes=5))
    other_hour = sub(1, 3, "w01018-Avg=99", data_time="20240501110000")
    assert assembler.add(PARTS[0], T0) is None
    assert assembler.add(sub(1, 3, "w01018-Avg=77"), T0) is None
    assert assembler.add(other_hour, T0) is None
    assert assembler.pending() == 2
    assert assembler.add(PARTS[1], T0) is None
    merged = assembler.add(PARTS[2], T0)
    assert merged is not None and merged.factors["w01018"].fields["Avg"] == "20.1"
    assert assembler.pending() == 1


def test_timeout_returns_partial_group() -> None:
    assembler = SubpacketAssembler(timedelta(minutes=5))
    assembler.add(PARTS[2], T0)
    assembler.add(PARTS[0], T0 + timedelta(minutes=1))
    assert assembler.expire(T0 + timedelta(minutes=4, seconds=59)) == []
    (group,) = assembler.expire(T0 + timedelta(minutes=5))
    assert group.reason is RejectReason.INCOMPLETE_SUBPACKETS
    assert group.missing == (2,)
    assert [p.pno for p in group.packets] == [1, 3]
    partial = group.partial_packet()
    assert set(partial.factors) == {"w01018", "w00000"}
    assert assembler.pending() == 0
    # a late subpacket starts a new group rather than resurrecting the expired one
    assert assembler.add(PARTS[1], T0 + timedelta(minutes=6)) is None


def test_unsplit_packets_pass_through_and_eviction_is_reported() -> None:
    assembler = SubpacketAssembler(timedelta(minutes=5), max_groups=1)
    plain = decode(
        build_frame(
            f"QN=20240501100000531;ST=32;CN=2011;PW=123456;MN={MN};Flag=4;"
            "CP=&&DataTime=20240501100000;a=1&&"
        )
    ).packet
    assert assembler.add(plain, T0) is plain
    assembler.add(PARTS[0], T0)
    assembler.add(sub(1, 2, "x-Rtd=1", data_time="20240501120000"), T0 + timedelta(seconds=1))
    evicted = assembler.expire(T0 + timedelta(seconds=2))
    assert [g.key[3] for g in evicted] == ["20240501100000"]
    assert assembler.pending() == 1
