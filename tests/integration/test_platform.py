"""Topic set-up and the registry on the real broker."""

from __future__ import annotations

from pathlib import Path

import yaml
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from liandong.registry.document import RegistryDocument
from liandong.registry.topics_io import RegistryView, publish, read_all
from liandong.settings import Settings
from liandong.topics import CATALOGUE, ensure_topics

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "registry" / "demo.yaml"


def test_topics_ensure_is_idempotent_and_compacts_the_registry(isolated_settings: Settings) -> None:
    again = ensure_topics(isolated_settings)  # the fixture already ran it once
    assert {o.action for o in again} == {"exists"}
    assert len(again) == len(CATALOGUE)
    admin = KafkaAdminClient(bootstrap_servers=isolated_settings.kafka_bootstrap)
    try:
        name = isolated_settings.topic("registry.outlets")
        described = {
            t["name"]: t
            for t in admin.describe_topics([name, isolated_settings.topic("alerts.events")])
        }
        assert len(described[name]["partitions"]) == 1
        assert (
            len(described[isolated_settings.topic("alerts.events")]["partitions"])
            == isolated_settings.partitions
        )
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        text = str(configs)
        assert "cleanup.policy" in text and "compact" in text
    finally:
        admin.close()


async def test_registry_load_publishes_changes_only_and_tombstones_removals(
    isolated_settings: Settings,
) -> None:
    raw = DEMO.read_bytes()
    doc = yaml.safe_load(raw)
    first = await publish(isolated_settings, RegistryDocument.model_validate(doc), raw)
    assert first.published == {"enterprise": 2, "outlet": 2, "person": 5}

    second = await publish(isolated_settings, RegistryDocument.model_validate(doc), raw)
    assert second.published == {} and second.unchanged == {
        "enterprise": 2,
        "outlet": 2,
        "person": 5,
    }

    changes: list[tuple[str, str, object]] = []
    view = RegistryView(isolated_settings, on_change=lambda k, i, d: changes.append((k, i, d)))
    await view.start(follow=True)
    try:
        doc["roster"] = [p for p in doc["roster"] if p["id"] != "p-enf-03"]
        doc["outlets"][0]["limits"][0]["value"] = 30
        changed = yaml.safe_dump(doc, allow_unicode=True).encode()
        third = await publish(isolated_settings, RegistryDocument.model_validate(doc), changed)
        assert third.published == {"outlet": 1} and third.removed == {"person": 1}
        import asyncio

        for _ in range(50):  # the live view follows the change
            if ("person", "p-enf-03", None) in changes and view.entities["outlet"][
                "out-jn-power-1"
            ]["limits"][0]["value"] == 30:
                break
            await asyncio.sleep(0.1)
        assert "p-enf-03" not in view.entities["person"]
        assert view.entities["outlet"]["out-jn-power-1"]["limits"][0]["value"] == 30
    finally:
        await view.stop()
    state = await read_all(isolated_settings)
    assert sorted(state["person"]) == ["p-enf-01", "p-enf-02", "p-mgr-01", "p-mon-01"]
