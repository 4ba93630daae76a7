"""faust's own topics of the alerts worker, created before the worker starts.

faust creates its table's changelog and its assignor topic itself, just before its consumer
joins the group. The group leader assigns partitions from its cluster metadata, and a topic
created a moment earlier may not be in it yet. faust's assignor then logs "Ignoring missing
topic" and leaves the changelog out of the assignment. With static membership, a restarted
worker gets that stored assignment back, so it recovers no state: `make chaos` lost the state
of every outlet at each SIGKILL (29 HOUR_INCOMPLETE, 24 PREWARNING opened again, 5
exceedances missed). Created here, and waited for until the metadata lists them, they are
in the assignment from the first one on."""

from __future__ import annotations

import logging
import time
from typing import Any

from liandong.replication import Replication

log = logging.getLogger(__name__)

# faust's names: f"{app id}-{table}-changelog" and f"{app id}-__assignor-__leader".
CHANGELOG_CONFIG = {"cleanup.policy": "compact"}


def internal_topics(
    app_id: str, table: str, partitions: int
) -> dict[str, tuple[int, dict[str, str]]]:
    """Name -> (partitions, config) of the worker's faust topics."""
    return {
        f"{app_id}-{table}-changelog": (partitions, dict(CHANGELOG_CONFIG)),
        f"{app_id}-__assignor-__leader": (1, {}),
    }


def ensure_internal_topics(
    bootstrap: str,
    topics: dict[str, tuple[int, dict[str, str]]],
    replication: Replication,
    wait_s: float = 60.0,
) -> None:
    """Creates the topics that are missing, then waits until a metadata request lists every
    one with all its partitions led (at most `wait_s`; logged, not fatal, after that)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="liandong-alerts-topics")
    try:
        existing = set(admin.list_topics())
        for name, (partitions, config) in topics.items():
            if name in existing:
                continue
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            name=name,
                            num_partitions=partitions,
                            replication_factor=replication.factor,
                            topic_configs={**config, **replication.topic_config()},
                        )
                    ]
                )
                log.info("created %s (%d partitions)", name, partitions)
            except TopicAlreadyExistsError:
                pass  # another worker created it meanwhile
        deadline = time.monotonic() + wait_s
        while True:
            missing = _not_ready(admin, topics)
            if not missing:
                return
            if time.monotonic() > deadline:
                log.error("faust topics not in the metadata after %.0f s: %s", wait_s, missing)
                return
            time.sleep(0.2)
    finally:
        admin.close()


def _not_ready(admin: Any, topics: dict[str, tuple[int, dict[str, str]]]) -> list[str]:
    """The topics a metadata request does not list yet with every partition led."""
    described = {t["name"]: t for t in admin.describe_topics(list(topics))}
    missing = []
    for name, (partitions, _) in topics.items():
        t = described.get(name) or {}
        led = [p for p in t.get("partitions", []) if p.get("leader_id", -1) >= 0]
        if t.get("error_code", 0) != 0 or len(led) < partitions:
            missing.append(name)
    return missing
