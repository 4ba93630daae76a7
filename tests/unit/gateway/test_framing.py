from hypothesis import given, settings
from hypothesis import strategies as st

from liandong.hj212.encoding import build_frame
from liandong.hj212.framing import FrameChunk, FrameReader
from liandong.hj212.rejects import RejectReason

F1 = b"##0012QN=1;CP=&&&&6900\r\n"  # CRC checked against the Appendix A reference in test_crc
F2 = build_frame("QN=2;ST=32;CN=2011;PW=1;MN=X;Flag=4;CP=&&a=1&&")


def feed_all(reader: FrameReader, pieces: list[bytes]) -> list[FrameChunk]:
    out: list[FrameChunk] = []
    for piece in pieces:
        out += reader.feed(piece)
    return out


def test_several_frames_in_one_read_and_garbage_before() -> None:
    chunks = FrameReader().feed(b"AT+OK\r\n" + F1 + F2 + F1)
    assert chunks[0] == FrameChunk(garbage=b"AT+OK\r\n", reason=RejectReason.GARBAGE)
    assert [c.frame for c in chunks[1:]] == [F1, F2, F1]


def test_frame_split_byte_by_byte() -> None:
    reader = FrameReader()
    chunks = feed_all(reader, [bytes([b]) for b in F2])
    assert chunks == [FrameChunk(frame=F2)]
    assert reader.pending() == 0


def test_bad_length_resyncs_on_next_header() -> None:
    chunks = FrameReader().feed(b"##12ab" + F1)
    assert chunks[0].reason is RejectReason.BAD_LENGTH
    assert chunks[-1].frame == F1
    assert b"".join(c.garbage or b"" for c in chunks[:-1]) == b"##12ab"


def test_wrong_length_frame_is_cut_at_its_tail_for_decode_to_judge() -> None:
    wrong = b"##0013" + F1[6:]  # declared 13, segment 12 bytes
    chunks = FrameReader().feed(wrong + F2)
    assert [c.frame for c in chunks] == [wrong, F2]


def test_missing_tail_before_next_frame_and_lf_only_tail() -> None:
    no_tail = F1[:-2]
    lf_only = F1[:-2] + b"\n"
    chunks = FrameReader().feed(no_tail + lf_only + F2)
    assert [c.frame for c in chunks] == [no_tail, lf_only, F2]


def test_garbage_instead_of_tail_is_skipped_with_reason() -> None:
    chunks = FrameReader().feed(F1[:-2] + b"XYZ" + F2)
    assert chunks[0] == FrameChunk(garbage=F1[:-2] + b"XYZ", reason=RejectReason.BAD_TAIL)
    assert chunks[1].frame == F2


def test_oversized_frame_is_dropped_and_buffer_stays_bounded() -> None:
    reader = FrameReader(max_frame=64)
    body = b"##0900" + b"x" * 900 + b"0000\r\n"
    chunks = feed_all(reader, [body[i : i + 50] for i in range(0, len(body), 50)] + [F1])
    assert all(c.reason is RejectReason.TOO_LARGE for c in chunks[:-1])
    assert b"".join(c.garbage or b"" for c in chunks[:-1]) == body
    assert chunks[-1].frame == F1
    assert reader.pending() == 0


def test_pending_never_exceeds_max_frame() -> None:
    reader = FrameReader(max_frame=100)
    for _ in range(50):
        reader.feed(b"##0050" + b"y" * 37)
        assert reader.pending() <= 100


def test_flush_hands_over_tailless_final_frame_or_truncation() -> None:
    reader = FrameReader()
    assert reader.feed(F1[:-2]) == []
    assert reader.flush() == [FrameChunk(frame=F1[:-2])]
    reader.feed(F1[:10])
    assert reader.flush() == [FrameChunk(garbage=F1[:10], reason=RejectReason.TRUNCATED)]
    assert reader.pending() == 0


_FRAMES = st.lists(
    st.builds(
        lambda text: build_frame(f"QN=1;CN=2011;MN=X;CP=&&i11001-Info=//{text}//&&"),
        st.text(max_size=60).filter(lambda t: "##" not in t),
    ),
    min_size=1,
    max_size=6,
)
_GARBAGE = st.binary(max_size=40).filter(lambda g: b"##" not in g)


@settings(max_examples=300)
@given(_FRAMES, st.data())
def test_arbitrary_splits_with_garbage_yield_exactly_the_frames(
    frames: list[bytes], data: st.DataObject
) -> None:
    stream = b""
    for frame in frames:
        stream += data.draw(_GARBAGE) + frame
    stream += data.draw(_GARBAGE)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    reader = FrameReader()
    chunks = feed_all(reader, pieces) + reader.flush()
    assert [c.frame for c in chunks if c.frame is not None] == frames
    rebuilt = b"".join(c.frame if c.frame is not None else c.garbage or b"" for c in chunks)
    assert rebuilt == stream  # nothing lost or duplicated


def test_a_hash_flood_is_one_skipped_run_not_one_per_byte() -> None:
    """Issue 12, item 8: 64 KiB of '#' used to come back as 65,535 one-byte chunks (each a
    dead letter and a log line)."""
    reader = FrameReader()
    chunks = reader.feed(b"#" * 65536)
    assert len(chunks) <= 1 and reader.pending() <= 2  # a "##" waits for its digits
    more = reader.feed(b"#" * 65536 + F1)
    assert [c.frame for c in more if c.frame is not None] == [F1]
    assert len(more) <= 2  # the skipped run, then the frame


def test_resync_stops_at_a_plausible_frame_start() -> None:
    reader = FrameReader()
    chunks = reader.feed(b"##xx####" + F1)
    assert [c.frame for c in chunks if c.frame is not None] == [F1]
    assert len([c for c in chunks if c.frame is None]) == 1
