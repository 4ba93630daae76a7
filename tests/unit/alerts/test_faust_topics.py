"""The names of faust's own topics that the worker creates before faust starts must be the
ones faust uses, or faust creates its own at start and the race comes back."""

from __future__ import annotations

from alerts.adapters.faust_topics import internal_topics
from alerts.entrypoints.worker import STATE_TABLE, create_app
from liandong.settings import Settings


def test_the_topics_created_first_are_faust_s_changelog_and_assignor_topics() -> None:
    app = create_app(Settings(topic_prefix="unit.", partitions=6))
    table = app.tables[STATE_TABLE]
    topics = internal_topics(app.conf.id, STATE_TABLE, 6)
    assert topics == {
        table.changelog_topic.get_topic_name(): (6, {"cleanup.policy": "compact"}),
        f"{app.conf.id}-__assignor-__leader": (1, {}),
    }
    assert table.changelog_topic.partitions == 6
