"""The topic catalogue: every topic the platform uses, with its layout, as code.

`liandong topics ensure` creates missing topics and corrects configs; it is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from liandong.replication import ReplicationError, for_cluster
from liandong.settings import Settings

DAY_MS = 24 * 3600 * 1000

MONITORING_RECORDS = "monitoring.records"
MONITORING_REJECTED = "monitoring.rejected"
GATEWAY_COMMANDS = "gateway.commands"
GATEWAY_COMMAND_RESULTS = "gateway.command-results"
ALERTS_EVENTS = "alerts.events"
DISPATCH_EVENTS = "dispatch.events"
CASEFILE_EVENTS = "casefile.events"
REGISTRY_ENTERPRISES = "registry.enterprises"
REGISTRY_OUTLETS = "registry.outlets"
REGISTRY_MARKS = "registry.marks"
REGISTRY_ROSTER = "registry.roster"

REGISTRY_TOPICS = {
    "enterprise": REGISTRY_ENTERPRISES,
    "outlet": REGISTRY_OUTLETS,
    "mark": REGISTRY_MARKS,
    "person": REGISTRY_ROSTER,
}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str  # what the record key is: order is kept per key
    partitions: int | None = None  # None: the configured default
    config: dict[str, str] = field(default_factory=dict)
    purpose: str = ""


def _retained(days: int) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS)}


# Registry topics are compacted and single-partition: every service reads all of them.
_COMPACTED = {
    "cleanup.policy": "compact",
    "min.compaction.lag.ms": "0",
    "segment.ms": str(DAY_MS),
    "delete.retention.ms": str(DAY_MS),
}

CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(
        MONITORING_RECORDS, "MN", None, _retained(30), "decoded HJ 212 uploads, raw frame kept"
    ),
    TopicSpec(MONITORING_REJECTED, "peer or MN", None, _retained(90), "dead letters with reason"),
    TopicSpec(GATEWAY_COMMANDS, "MN", None, _retained(7), "requests to data loggers"),
    TopicSpec(GATEWAY_COMMAND_RESULTS, "MN", None, _retained(30), "outcomes of those requests"),
    TopicSpec(ALERTS_EVENTS, "outlet id", None, _retained(365), "alert episode changes"),
    TopicSpec(DISPATCH_EVENTS, "task id", None, _retained(365), "inspection task steps"),
    # kept for ever: its records carry the audit chain's (seq, hash) that verify checks the
    # database against, out of reach of whoever owns the database
    TopicSpec(
        CASEFILE_EVENTS,
        "case id",
        None,
        {"cleanup.policy": "delete", "retention.ms": "-1"},
        "committed case changes (outbox), with the audit chain's seq and hash",
    ),
    TopicSpec(REGISTRY_ENTERPRISES, "enterprise id", 1, _COMPACTED, "enterprises"),
    TopicSpec(REGISTRY_OUTLETS, "outlet id", 1, _COMPACTED, "outlets, loggers, limits"),
    TopicSpec(REGISTRY_MARKS, "mark id", 1, _COMPACTED, "approved data marks"),
    TopicSpec(REGISTRY_ROSTER, "person id", 1, _COMPACTED, "people, roles, shifts"),
)


@dataclass(frozen=True)
class EnsureOutcome:
    topic: str
    action: str  # created | exists | config-updated | partitions-increased
    detail: str = ""


def ensure_topics(settings: Settings) -> list[EnsureOutcome]:
    """Creates every catalogue topic that is missing and aligns configs of existing ones."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    replication = for_cluster(settings)
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="liandong-topics"
    )
    outcomes: list[EnsureOutcome] = []
    try:
        existing = set(admin.list_topics())
        wanted = {settings.topic(s.name): s for s in CATALOGUE}
        missing = [
            NewTopic(
                name=name,
                num_partitions=spec.partitions or settings.partitions,
                replication_factor=replication.factor,
                topic_configs={**spec.config, **replication.topic_config()},
            )
            for name, spec in wanted.items()
            if name not in existing
        ]
        for new in missing:
            try:
                admin.create_topics([new])
                outcomes.append(EnsureOutcome(new.name, "created"))
            except TopicAlreadyExistsError:
                # created concurrently, or the broker that listed topics had not yet heard of
                # it: check it like any existing topic (its copies included)
                existing.add(new.name)
        present = [n for n in wanted if n in existing]
        if present:
            described = {t["name"]: t for t in admin.describe_topics(present)}
            for name in present:
                spec = wanted[name]
                have = len(described[name]["partitions"])
                copies = min(len(p["replica_nodes"]) for p in described[name]["partitions"])
                if copies < replication.factor and copies == 1 and replication.factor >= 3:
                    # Adding copies is a partition reassignment, an operator's decision.
                    raise ReplicationError(
                        f"{name} has 1 copy on a cluster that wants {replication.factor}: "
                        "reassign its partitions (kafka-reassign-partitions) or set "
                        "LIANDONG_REPLICATION=1 LIANDONG_ALLOW_SINGLE_REPLICA=1"
                    )
                want = spec.partitions or settings.partitions
                if have < want:
                    admin.create_partitions({name: NewPartitions(total_count=want)})
                    outcomes.append(EnsureOutcome(name, "partitions-increased", f"{have}->{want}"))
                config = {**spec.config, **replication.topic_config()}
                admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, config)])
                outcomes.append(EnsureOutcome(name, "exists", f"{have} partitions"))
    finally:
        admin.close()
    return outcomes
