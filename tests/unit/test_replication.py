"""Replication chosen from the cluster (issue 13, item 5)."""

from __future__ import annotations

import pytest

from liandong.replication import Replication, ReplicationError, choose


def test_three_copies_and_two_in_sync_on_three_or_more_brokers() -> None:
    assert choose(3) == Replication(3, 2)
    assert choose(5) == Replication(3, 2)
    assert choose(3).topic_config() == {"min.insync.replicas": "2"}


def test_as_many_copies_as_brokers_below_three() -> None:
    assert choose(1) == Replication(1, 1)
    assert choose(2) == Replication(2, 1)


def test_one_copy_on_a_cluster_is_refused_unless_allowed() -> None:
    with pytest.raises(ReplicationError, match="lost disk"):
        choose(3, 1)
    assert choose(3, 1, allow_single=True) == Replication(1, 1)


def test_more_copies_than_brokers_is_refused() -> None:
    with pytest.raises(ReplicationError, match="needs 3 brokers"):
        choose(2, 3)
