"""A private single-node Kafka for fault tests: its own ports (outside the ephemeral range, see
liandong.ports) and state directory, started and stopped by deploy/kafka/kafka.sh, never the
shared broker the other tests use."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from liandong.ports import free_port
from tests.conftest import ROOT

SHARED_PORT = 19092


def _free_run(nodes: int) -> int:
    """A base port whose node ports (base + 10 i) and controller ports (+1) are all free."""
    for _ in range(200):
        base = free_port()
        wanted = [base + 10 * i + d for i in range(nodes) for d in (0, 1)]
        if max(wanted) > 32767 or SHARED_PORT in wanted:
            continue
        try:
            for port in wanted:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free run of ports for a private cluster")


class PrivateKafka:
    def __init__(self, state: Path, nodes: int = 1) -> None:
        self.nodes = nodes
        if nodes == 1:
            self.port = free_port()
            self.controller_port = free_port()
        else:
            self.port = _free_run(nodes)
            self.controller_port = self.port + 1
        assert SHARED_PORT not in (self.port, self.controller_port)
        self.env = {
            **os.environ,
            "KAFKA_NODES": str(nodes),
            "LIANDONG_KAFKA_PORT": str(self.port),
            "LIANDONG_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "LIANDONG_KAFKA_STATE": str(state),
        }

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + 10 * i}" for i in range(self.nodes))

    def run(self, action: str, *args: str) -> None:
        subprocess.run(
            ["bash", str(ROOT / "deploy/kafka/kafka.sh"), action, *args],
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
def private_cluster(tmp_path: Path) -> Iterator[PrivateKafka]:
    """Three KRaft nodes of its own (kafka.sh with KAFKA_NODES=3)."""
    kafka = PrivateKafka(tmp_path / "cluster", nodes=3)
    kafka.run("up")
    try:
        yield kafka
    finally:
        kafka.run("down")


@pytest.fixture()
def private_kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    kafka = PrivateKafka(tmp_path / "kafka")
    kafka.run("up")
    try:
        yield kafka
    finally:
        kafka.run("down")
