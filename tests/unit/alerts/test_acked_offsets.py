"""The alerts worker's repairs to faust's acked-offset tracking (issue 13, item 3), on the
consumer's own bookkeeping: deterministic, where the broker test depends on a race."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP
from intervaltree import IntervalTree

from alerts.entrypoints.worker import _PromptFetchConsumer

TP0 = TP("monitoring.records", 0)


def bookkeeping(cls: type, committed: int, acked: list[int]) -> Any:
    """A consumer of `cls` holding only the state `_new_offset` and `hole_at` read."""
    consumer = object.__new__(cls)
    consumer._committed_offset = defaultdict(lambda: None, {TP0: committed})
    consumer._acked = defaultdict(list, {TP0: list(acked)})
    consumer._acked_index = defaultdict(set, {TP0: set(acked)})
    consumer._gap = defaultdict(IntervalTree)
    return consumer


def test_a_duplicate_ack_does_not_hold_the_commit_back() -> None:
    # offset 101 acked twice (a copy acked while a commit was in flight), 100-199 all acked
    acked = [100, 101, 101, *range(102, 200)]
    assert bookkeeping(_PromptFetchConsumer, 100, acked)._new_offset(TP0) == 200
    # faust alone commits only up to the duplicate: the commit creeps one offset at a time
    assert bookkeeping(FaustConsumer, 100, acked)._new_offset(TP0) == 102


def test_offsets_at_or_below_the_commit_are_dropped() -> None:
    acked = [90, 95, *range(100, 150)]  # re-delivered records acked again after a commit
    assert bookkeeping(_PromptFetchConsumer, 100, acked)._new_offset(TP0) == 150


def test_a_hole_at_the_committed_offset_is_found() -> None:
    # records 4026-4112 never reached the agent; later ones were acked
    holed = bookkeeping(_PromptFetchConsumer, 4026, list(range(4113, 4300)))
    assert holed._new_offset(TP0) is None  # faust waits for the hole for ever
    assert holed.hole_at(TP0) == 4026  # the worker's tick reads the partition again from it
    whole = bookkeeping(_PromptFetchConsumer, 4026, list(range(4026, 4300)))
    assert whole.hole_at(TP0) is None
    assert whole._new_offset(TP0) == 4300
