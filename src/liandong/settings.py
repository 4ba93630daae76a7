"""Configuration from the environment, one place for every process (12-factor)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = field(
        default_factory=lambda: _env("LIANDONG_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    )
    # Lets tests and parallel stacks share one broker without seeing each other's data.
    topic_prefix: str = field(default_factory=lambda: _env("LIANDONG_TOPIC_PREFIX", ""))
    partitions: int = field(default_factory=lambda: int(_env("LIANDONG_PARTITIONS", "3")))
    # Copies of each partition: 0 chooses from the cluster (liandong.replication).
    replication: int = field(default_factory=lambda: int(_env("LIANDONG_REPLICATION", "0")))
    allow_single_replica: bool = field(
        default_factory=lambda: _env("LIANDONG_ALLOW_SINGLE_REPLICA", "0") == "1"
    )
    gateway_host: str = field(default_factory=lambda: _env("LIANDONG_GATEWAY_HOST", "127.0.0.1"))
    gateway_port: int = field(default_factory=lambda: int(_env("LIANDONG_GATEWAY_PORT", "9212")))
    casefile_grpc: str = field(
        default_factory=lambda: _env("LIANDONG_CASEFILE_GRPC", "127.0.0.1:50061")
    )
    casefile_db: str = field(
        default_factory=lambda: _env(
            "LIANDONG_CASEFILE_DB", f"sqlite:///{ROOT / '.state' / 'casefile.db'}"
        )
    )
    dispatch_http_host: str = field(
        default_factory=lambda: _env("LIANDONG_DISPATCH_HOST", "127.0.0.1")
    )
    dispatch_http_port: int = field(
        default_factory=lambda: int(_env("LIANDONG_DISPATCH_PORT", "8061"))
    )
    dispatch_db: str = field(
        default_factory=lambda: _env(
            "LIANDONG_DISPATCH_DB", f"sqlite:///{ROOT / '.state' / 'dispatch.db'}"
        )
    )
    alerts_web_port: int = field(
        default_factory=lambda: int(_env("LIANDONG_ALERTS_WEB_PORT", "6066"))
    )
    alerts_data_dir: str = field(
        default_factory=lambda: _env("LIANDONG_ALERTS_DATA", str(ROOT / ".state" / "alerts"))
    )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def load() -> Settings:
    return Settings()
