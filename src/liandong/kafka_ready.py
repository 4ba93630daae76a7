"""Readiness probe for the broker: a real Metadata request, not a port probe.

A TCP connect succeeds long before a KRaft broker can serve clients, so the probe only
reports ready once the broker answers a metadata request naming itself.
"""

from __future__ import annotations

import argparse
import sys
import time


def broker_answers(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True when the broker at `bootstrap` answers a Metadata request with at least one broker."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    ms = max(int(timeout_s * 1000), 500)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=ms,
            client_id="liandong-ready",
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        cluster = admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        admin.close()


def wait_ready(bootstrap: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if broker_answers(bootstrap, timeout_s=min(2.0, max(timeout_s, 0.5))):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    return 0 if wait_ready(args.bootstrap, args.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
