"""The checkpoint interval stretches with the cost of the last checkpoint (worker.py)."""

from __future__ import annotations

import pytest

from alerts.entrypoints import worker


def test_a_cheap_checkpoint_keeps_the_base_interval() -> None:
    assert worker.next_persist_interval(0.001) == worker.PERSIST_EVERY_S


def test_a_costly_checkpoint_stretches_the_interval_up_to_the_cap() -> None:
    assert worker.next_persist_interval(0.6) == pytest.approx(0.6 * worker.PERSIST_COST_FACTOR)
    assert worker.next_persist_interval(60.0) == worker.PERSIST_MAX_S


def test_zero_means_every_batch_whatever_the_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "PERSIST_EVERY_S", 0.0)
    assert worker.next_persist_interval(5.0) == 0.0
