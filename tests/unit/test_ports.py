"""Ports for test brokers and services lie outside the kernel's ephemeral range (issue 13, 8)."""

from __future__ import annotations

import socket

from liandong.ports import ephemeral_range, free_port
from liandong.stack import free_port as stack_free_port
from tests.integration.private_kafka import PrivateKafka


def _outside(port: int) -> bool:
    low, high = ephemeral_range()
    return not low <= port <= high


def test_free_ports_are_outside_the_ephemeral_range_and_bindable() -> None:
    for _ in range(50):
        port = free_port()
        assert _outside(port), port
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_stack_services_get_ports_outside_the_ephemeral_range() -> None:
    assert all(_outside(stack_free_port()) for _ in range(50))


def test_private_brokers_listen_outside_the_ephemeral_range(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for n in range(20):
        kafka = PrivateKafka(tmp_path / str(n))
        assert _outside(kafka.port) and _outside(kafka.controller_port)
        assert kafka.port != kafka.controller_port
