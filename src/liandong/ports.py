"""Picking a free TCP port for a test broker or service that may have to restart on it.

A port handed out by ``bind(0)`` lies in Linux's ephemeral range (32768-60999 by default), the
range the kernel also draws client source ports from. A client that keeps reconnecting to a
stopped listener on such a port can be given that very port as its source port and connect to
itself (a TCP self-connection), which then holds the port for minutes: the broker cannot come
back. Ports below the ephemeral range are never used as source ports, so they stay restartable.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 20000  # well above the registered services people run on a workstation
_KEEP_FREE = frozenset({19092, 19093, 55432})  # the shared broker and PostgreSQL


def ephemeral_range() -> tuple[int, int]:
    """The kernel's source-port range (inclusive); Linux's default when it cannot be read."""
    try:
        low, high = (int(part) for part in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def _candidates() -> list[int]:
    low, high = ephemeral_range()
    below = range(_LOWEST, low) if low > _LOWEST else range(0)
    above = range(max(high + 1, _LOWEST), 65536)
    ports = [p for p in (*below, *above) if p not in _KEEP_FREE]
    if not ports:
        raise RuntimeError(f"no TCP ports outside the ephemeral range {low}-{high}")
    return ports


def free_port(host: str = "127.0.0.1") -> int:
    """A port outside the ephemeral range that nothing listens on or is bound to right now.

    Random rather than sequential so that several test runs on one machine rarely race for the
    same port; the bind check skips ports in use.
    """
    ports = _candidates()
    for port in random.sample(ports, min(len(ports), 500)):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port outside the ephemeral range after 500 tries")
