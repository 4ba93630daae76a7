"""Replication on a three-node cluster (issue 13, items 5 and 9).

Before: `topics ensure` created every topic with one copy and the alerts worker set faust's own
topics to one copy, so one broker down made a third of the partitions unavailable.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from alerts.entrypoints.worker import create_app
from liandong.replication import ReplicationError, for_cluster
from liandong.settings import Settings
from liandong.topics import CATALOGUE, MONITORING_RECORDS, ensure_topics
from tests.integration.private_kafka import PrivateKafka


def _copies_and_min_isr(bootstrap: str, topics: list[str]) -> dict[str, tuple[int, str]]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        for _ in range(60):  # new topics reach every broker's metadata a moment later
            described = {t["name"]: t for t in admin.describe_topics(topics)}
            if all(described[t]["partitions"] for t in topics):
                break
            time.sleep(0.5)
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        )
        # kafka-python 3 answers {"topic": {name: {config: {"value": ...}}}}
        min_isr = {
            name: entries["min.insync.replicas"]["value"]
            for name, entries in configs["topic"].items()
        }
        return {
            t: (min(len(p["replica_nodes"]) for p in described[t]["partitions"]), min_isr[t])
            for t in topics
        }
    finally:
        admin.close()


async def test_three_brokers_get_three_copies_and_two_in_sync(
    private_cluster: PrivateKafka,
) -> None:
    settings = Settings(kafka_bootstrap=private_cluster.bootstrap, topic_prefix="rf.")
    await asyncio.to_thread(ensure_topics, settings)
    topics = [settings.topic(spec.name) for spec in CATALOGUE]
    layout = await asyncio.to_thread(_copies_and_min_isr, settings.kafka_bootstrap, topics)
    assert layout == dict.fromkeys(topics, (3, "2"))
    # faust's changelog and assignor topics: the worker is built with the cluster's factor
    app = create_app(settings, for_cluster(settings).factor)
    assert app.conf.topic_replication_factor == 3

    # One copy on this cluster is refused unless asked for.
    single = Settings(kafka_bootstrap=private_cluster.bootstrap, topic_prefix="one.", replication=1)
    with pytest.raises(ReplicationError, match="lost disk"):
        await asyncio.to_thread(ensure_topics, single)
    # A topic left with one copy from before is refused too.
    admin = KafkaAdminClient(bootstrap_servers=private_cluster.bootstrap)
    try:
        admin.create_topics([NewTopic("old." + MONITORING_RECORDS, 3, 1)])
        for _ in range(60):  # visible to every broker before ensure looks
            (topic,) = admin.describe_topics(["old." + MONITORING_RECORDS])
            if topic["partitions"] and "old." + MONITORING_RECORDS in admin.list_topics():
                break
            time.sleep(0.5)
    finally:
        admin.close()
    old = Settings(kafka_bootstrap=private_cluster.bootstrap, topic_prefix="old.")
    with pytest.raises(ReplicationError, match="1 copy"):
        await asyncio.to_thread(ensure_topics, old)
