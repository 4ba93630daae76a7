"""How many copies of each partition the cluster keeps (issue 13, item 5).

Chosen from the cluster unless configured: 3 copies with min.insync.replicas 2 where there are
3 or more brokers (one broker may be lost, or down for a restart, without losing an acked
record or refusing writes), as many as there are brokers below that. A cluster of 3 or more
brokers on 1 copy is refused unless explicitly allowed: a lost disk would lose acked records
and one broker down would make a third of the partitions unavailable.
"""

from __future__ import annotations

from dataclasses import dataclass

from liandong.settings import Settings


class ReplicationError(ValueError):
    """The configured replication does not suit the cluster."""


@dataclass(frozen=True)
class Replication:
    factor: int
    min_insync: int

    def topic_config(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync)}


def choose(brokers: int, configured: int = 0, *, allow_single: bool = False) -> Replication:
    """The replication for a cluster of ``brokers``; ``configured`` 0 means "from the cluster"."""
    if brokers < 1:
        raise ReplicationError("no broker in the cluster")
    factor = configured or min(brokers, 3)
    if factor > brokers:
        raise ReplicationError(f"replication factor {factor} needs {factor} brokers, not {brokers}")
    if brokers >= 3 and factor == 1 and not allow_single:
        raise ReplicationError(
            f"{brokers} brokers but replication factor 1: a lost disk would lose acked records "
            "(set LIANDONG_ALLOW_SINGLE_REPLICA=1 to run so anyway)"
        )
    return Replication(factor, 2 if factor >= 3 else 1)


def broker_count(bootstrap: str) -> int:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="liandong-replication")
    try:
        return len(admin.describe_cluster()["brokers"])
    finally:
        admin.close()


def for_cluster(settings: Settings) -> Replication:
    """The replication for the cluster ``settings`` point at."""
    return choose(
        broker_count(settings.kafka_bootstrap),
        settings.replication,
        allow_single=settings.allow_single_replica,
    )
