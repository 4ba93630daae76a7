"""A private single-node Kafka for fault tests: its own ports (outside the ephemeral range, see
liandong.ports) and state directory, started and stopped by deploy/kafka/kafka.sh, never the
shared broker the other tests use."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from liandong.ports import free_port
from tests.conftest import ROOT

SHARED_PORT = 19092


class PrivateKafka:
    def __init__(self, state: Path) -> None:
        self.port = free_port()
        self.controller_port = free_port()
        assert SHARED_PORT not in (self.port, self.controller_port)
        self.env = {
            **os.environ,
            "LIANDONG_KAFKA_PORT": str(self.port),
            "LIANDONG_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "LIANDONG_KAFKA_STATE": str(state),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, action: str) -> None:
        subprocess.run(
            ["bash", str(ROOT / "deploy/kafka/kafka.sh"), action],
            env=self.env,
            cwd=ROOT,
            check=True,
            timeout=150,
        )

    async def up(self) -> None:
        await asyncio.to_thread(self.run, "up")

    async def down(self) -> None:
        await asyncio.to_thread(self.run, "down")


@pytest.fixture()
def private_kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    kafka = PrivateKafka(tmp_path / "kafka")
    kafka.run("up")
    try:
        yield kafka
    finally:
        kafka.run("down")
