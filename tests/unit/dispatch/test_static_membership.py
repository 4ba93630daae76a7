"""Dispatch's consumer joins its group under a stable instance id when one is configured
(static membership: a restarted replica takes its partitions back without a rebalance)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.config import DispatchConfig
from dispatch.entrypoints.alert_consumer import AlertConsumer
from liandong.settings import Settings
from tests.unit.dispatch.harness import build


@pytest.mark.parametrize("instance", ["dispatch-0", None])
async def test_the_group_instance_id_reaches_the_consumer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance: str | None
) -> None:
    monkeypatch.setenv("LIANDONG_DISPATCH_JWT_KEY", "static-membership-test-key-of-32-bytes")
    if instance:
        monkeypatch.setenv("LIANDONG_DISPATCH_GROUP_INSTANCE_ID", instance)
    else:
        monkeypatch.delenv("LIANDONG_DISPATCH_GROUP_INSTANCE_ID", raising=False)
    config = DispatchConfig()
    assert config.group_instance_id == instance
    h = build(tmp_path)
    try:
        consumer = AlertConsumer(Settings(), h.service, "g", config.group_instance_id)
        assert consumer.consumer._group_instance_id == instance  # not started: no broker
    finally:
        h.close()
