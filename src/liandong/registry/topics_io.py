"""Publishing the registry to its compacted topics and materialising it back (RegistryView)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from liandong.events import new_meta, utcnow
from liandong.registry.document import RegistryDocument, as_document
from liandong.settings import Settings
from liandong.topics import REGISTRY_TOPICS
from liandong.v1 import envelope_pb2

log = logging.getLogger(__name__)

Entities = dict[str, dict[str, dict[str, Any]]]


def encode_entry(kind: str, entity_id: str, doc: dict[str, Any], source_sha256: str) -> bytes:
    body = Struct()
    body.update(doc)
    entry = envelope_pb2.RegistryEntry(
        meta=new_meta(key=entity_id, event_time=utcnow(), producer="registry"),
        kind=kind,
        entity_id=entity_id,
        document=body,
        source_sha256=source_sha256,
    )
    return entry.SerializeToString()


def decode_entry(value: bytes) -> tuple[str, str, dict[str, Any]]:
    entry = envelope_pb2.RegistryEntry.FromString(value)
    return entry.kind, entry.entity_id, json_format.MessageToDict(entry.document)


@dataclass(frozen=True)
class PublishReport:
    published: dict[str, int]
    unchanged: dict[str, int]
    removed: dict[str, int]


async def publish(settings: Settings, document: RegistryDocument, raw: bytes) -> PublishReport:
    """Publishes what changed; an entity missing from the file is removed with a tombstone."""
    current = await read_all(settings)
    sha = hashlib.sha256(raw).hexdigest()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    published: dict[str, int] = {}
    unchanged: dict[str, int] = {}
    removed: dict[str, int] = {}
    try:
        futures = []
        wanted: dict[str, set[str]] = {kind: set() for kind in REGISTRY_TOPICS}
        for kind, entity_id, doc in document.entities():
            wanted[kind].add(entity_id)
            # Struct stores numbers as doubles: compare through the same round trip.
            normalised = json_format.MessageToDict(_struct(doc))
            if current.get(kind, {}).get(entity_id) == normalised:
                unchanged[kind] = unchanged.get(kind, 0) + 1
                continue
            topic = settings.topic(REGISTRY_TOPICS[kind])
            value = encode_entry(kind, entity_id, doc, sha)
            futures.append(await producer.send(topic, value=value, key=entity_id.encode()))
            published[kind] = published.get(kind, 0) + 1
        for kind, known in current.items():
            for entity_id in set(known) - wanted.get(kind, set()):
                topic = settings.topic(REGISTRY_TOPICS[kind])
                futures.append(await producer.send(topic, value=None, key=entity_id.encode()))
                removed[kind] = removed.get(kind, 0) + 1
        for fut in futures:
            await fut
    finally:
        await producer.stop()
    return PublishReport(published, unchanged, removed)


def _struct(doc: dict[str, Any]) -> Struct:
    s = Struct()
    s.update(doc)
    return s


async def read_all(settings: Settings) -> Entities:
    """Reads every registry topic from the beginning to its current end, once."""
    view = RegistryView(settings)
    await view.start()
    await view.stop()
    return view.entities


class RegistryView:
    """A live, in-memory copy of the registry topics.

    Reads from the beginning without a consumer group (every process needs the whole
    registry), signals when it has caught up with the end offsets seen at start, and keeps
    following so a change applies without a restart.
    """

    def __init__(
        self,
        settings: Settings,
        on_change: Callable[[str, str, dict[str, Any] | None], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_change = on_change
        self.entities: Entities = {kind: {} for kind in REGISTRY_TOPICS}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.loaded = asyncio.Event()

    def document(self) -> dict[str, Any]:
        return as_document(self.entities)

    async def start(self, follow: bool = False) -> None:
        topics = {self._settings.topic(t): kind for kind, t in REGISTRY_TOPICS.items()}
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        self._consumer = consumer
        # fetch_all_metadata returns the cluster view without caching it in the consumer.
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        if partitions:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            await self._catch_up(consumer, topics, ends)
        self.loaded.set()
        if follow and partitions:
            self._task = asyncio.create_task(self._follow(consumer, topics))

    async def _catch_up(
        self, consumer: AIOKafkaConsumer, topics: dict[str, str], ends: dict[TopicPartition, int]
    ) -> None:
        pending = {tp for tp, end in ends.items() if end > 0}
        while pending:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    self._apply(topics[tp.topic], record.key, record.value)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)

    async def _follow(self, consumer: AIOKafkaConsumer, topics: dict[str, str]) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    self._apply(topics[tp.topic], record.key, record.value)

    def _apply(self, kind: str, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        entity_id = key.decode()
        if value is None:
            self.entities[kind].pop(entity_id, None)
            doc = None
        else:
            try:
                _, _, doc = decode_entry(value)
            except Exception:  # a bad registry record must not stop the service
                log.exception("undecodable registry record %s/%s", kind, entity_id)
                return
            self.entities[kind][entity_id] = doc
        if self._on_change is not None:
            self._on_change(kind, entity_id, doc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
