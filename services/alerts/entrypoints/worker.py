"""The alerts faust worker: monitoring.records in, the domain Judge, alerts.events out.

Fault tolerance (at-least-once; faust's exactly-once mode has open duplicate bugs):
- each outlet's judgement state lives in the `judge-state` table (changelog topic), written
  (re-assigned, never mutated) at a checkpoint about every second for every outlet judged
  since the last one;
- the alert events a batch produced are acknowledged by the broker (acks=all) BEFORE the
  state that records them as published is written, and records are acked (so their offsets
  become committable) only after the broker acknowledged the checkpoint's changelog writes
  that hold their effect (faust's own flush before a commit gives up after 0.1 s);
- after a crash the worker recovers the table and re-reads records from the last commit:
  minutes already in the state are duplicates to the judge, and a change that was published
  but not yet recorded is re-derived with the same deterministic event id (episode id from
  outlet, factor, kind and start; event id from episode, change and content).

A timer drives wall-clock duties (hours past their timeout, offline loggers) only for the
outlets of the record partitions this worker holds, so several workers never judge an
outlet twice; registry changes re-judge the retained hours of the outlets they affect.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaDriverConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP
from opentelemetry import metrics, trace

from alerts.adapters.codec import event_from_change
from alerts.adapters.faust_topics import ensure_internal_topics, internal_topics
from alerts.domain.episodes import AlertChange
from alerts.domain.registry import Registry, RegistryError, registry_from_dict
from alerts.entrypoints.backlog import BacklogGate
from alerts.entrypoints.judging import PartitionedJudge
from liandong.heap import settle_heap
from liandong.registry.topics_io import RegistryView
from liandong.settings import Settings
from liandong.telemetry import context_from_headers, trace_headers
from liandong.topics import ALERTS_EVENTS, MONITORING_RECORDS
from liandong.v1 import alerts_pb2, records_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer("liandong.alerts")
meter = metrics.get_meter("liandong.alerts")
bad_records = meter.create_counter(
    "alerts.records.bad", description="records that could not be judged (skipped)"
)
alert_events = meter.create_counter("alerts.events.published", description="alert events sent")

STATE_TABLE = "judge-state"
BATCH_MAX = int(os.environ.get("LIANDONG_ALERTS_BATCH", "1000"))
BATCH_WITHIN_S = float(os.environ.get("LIANDONG_ALERTS_BATCH_WITHIN_S", "0.05"))
# State is written at most this often (and the records judged since then acked after it):
# alert events go out with every batch, state writes are coalesced across batches.
PERSIST_EVERY_S = float(os.environ.get("LIANDONG_ALERTS_PERSIST_S", "1.0"))
# A checkpoint re-encodes the whole state of every outlet judged since the last one (about
# 0.5-0.8 ms each), so with thousands of outlets each sending every second a 1 s interval
# spent most of the worker on checkpoints (bench/e2e_stack.py: ~1/3 of the alerts CPU at 600
# loggers, all of it at 3,000). The interval stretches to PERSIST_COST_FACTOR times the last
# checkpoint's duration (until its writes were acked), up to PERSIST_MAX_S: an outlet's frames
# within the interval share one encode and one write. Only the re-read after a crash grows
# (records since the last checkpoint); the order of effects is unchanged.
PERSIST_MAX_S = float(os.environ.get("LIANDONG_ALERTS_PERSIST_MAX_S", "10.0"))
PERSIST_COST_FACTOR = 5.0
PRODUCER_BATCH_BYTES = int(os.environ.get("LIANDONG_ALERTS_PRODUCER_BATCH_BYTES", str(512 * 1024)))
# Outlets whose wall-clock duties one tick does under the lock at a time (see tick).
TICK_SLICE = 100
# Records judged but not yet acked (held until the checkpoint) force one beyond this count.
UNACKED_MAX = 50 * BATCH_MAX


# How long the broker may hold a fetch that finds nothing new. faust hard-codes 1500 ms; a
# fetch for partitions with nothing new then holds back the next fetch of those whose records
# are still buffered, so records waited up to 1.5 s before being judged (bench: p99 1.3-1.7 s
# from the completing record to its alert, 0.2 s with 100 ms). Costs an idle worker ~10
# empty fetches a second.
FETCH_MAX_WAIT_MS = int(os.environ.get("LIANDONG_ALERTS_FETCH_WAIT_MS", "100"))


class _PromptFetchThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # The constructor argument's attribute; read when the consumer starts its fetcher.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


# How long records a partition's committed offset waits on may stay unacked, while later
# records of the partition are acked, before they count as lost and are read again (see
# _PromptFetchConsumer). Records are acked at a checkpoint, at most PERSIST_MAX_S apart.
HOLE_REPAIR_S = float(os.environ.get("LIANDONG_ALERTS_HOLE_REPAIR_S", "30"))
# A record that reaches the agent beyond a hole makes it seek back to the hole; the records
# still on their way from before that seek would ask again, so it is asked once this often.
RESEEK_S = float(os.environ.get("LIANDONG_ALERTS_RESEEK_S", "5"))


class _PromptFetchConsumer(AIOKafkaDriverConsumer):
    """faust's consumer with two repairs to its acked-offset tracking (issue 13, item 3).

    faust commits a partition only up to the first offset not acked (`_new_offset`: the
    first run of consecutive acked offsets after the committed one). Observed on the real
    broker with a worker restarted on a backlog (tests/integration/alerts/
    test_worker_offsets.py; docs/alerts.md): records of the first fetch after the
    assignment are delivered twice or not at all (87 per partition right after the first
    batch in one run). Then
    - an offset never delivered is never acked, so the committed offset stops there for
      the life of the worker, and every restart re-reads from it;
    - an offset delivered twice can be acked twice (a second copy acked while a commit is
      in flight passes faust's duplicate check), and a duplicate in `_acked` cuts the runs
      of consecutive offsets to two: the commit then advances one offset per commit.
    """

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _PromptFetchThread(self, loop=self.loop, beacon=self.beacon)

    # partition -> first offset of a hole being read again (see reread_from)
    _rereading: dict[TP, int]

    def _new_offset(self, tp: TP) -> int | None:
        committed = self._committed_offset[tp]
        rereading = getattr(self, "_rereading", {})
        if tp in rereading:
            if committed is not None and committed > rereading[tp]:
                del rereading[tp]  # the hole is acked and committed
            else:
                # Records fetched before the seek and delivered after it make faust note
                # the offsets between as a gap, which counts as acked: the hole would be
                # committed before its records are judged again.
                self._gap.pop(tp, None)
        # Duplicates and offsets already committed carry no information: drop them before
        # faust looks for the run of consecutive offsets.
        acked = self._acked[tp]
        if acked:
            unique = sorted({o for o in acked if committed is None or o >= committed})
            acked[:] = unique
            self._acked_index[tp] = set(unique)
        return super()._new_offset(tp)  # type: ignore[no-any-return]

    def hole_at(self, tp: TP) -> int | None:
        """The committed offset of `tp` when the records from it were not acked although
        later ones were (faust's own slack of one offset aside), else None."""
        acked = self._acked.get(tp)
        committed = self._committed_offset.get(tp)
        if not acked or committed is None or min(acked) - committed <= 1:
            return None
        return int(committed)

    async def reread_from(self, tp: TP, offset: int) -> int:
        """Read `tp` again from `offset` (not below the log start: records removed by
        retention cannot come back); returns the offset reading starts from."""
        earliest = (await self.earliest_offsets(tp)).get(tp)
        if earliest is not None and earliest > offset:
            offset = int(earliest)
        if not hasattr(self, "_rereading"):
            self._rereading = {}
        self._rereading[tp] = offset
        # Gap intervals faust noted while the records beyond the hole arrived would count
        # the hole as acked once read again; the records of the hole must be acked for real.
        self._gap.pop(tp, None)
        await self.seek(tp, offset)  # also resets faust's read offset, so none is dropped
        return offset

    # ---- delivery to the streams without a task per record ------------------------------
    # faust's drainer hands every record to the streams through
    # `wait_first(callback(message), suspend_flow.wait())`: two tasks and an asyncio.wait per
    # record, 15 % of the worker's main thread in a py-spy profile of a backlog (issue 17).
    # Here the callback is awaited in the drainer's own task; when the flow is stopped (a
    # rebalance) while a record waits in it, stop_flow cancels that wait, which is what
    # wait_first's losing branch did: the record is dropped, and the partitions are sought
    # to their committed offsets before the flow resumes. The loop is faust 0.15.3's
    # Consumer._drain_messages otherwise.

    _in_callback: asyncio.Task[Any] | None = None
    _flow_cancelled = False

    def stop_flow(self) -> None:
        super().stop_flow()
        task = self._in_callback
        if task is not None and not self._flow_cancelled:
            self._flow_cancelled = True
            task.cancel()

    async def _deliver(self, callback: Any, message: Any) -> bool:
        """Hand `message` to the streams; False when the flow stopped first (dropped)."""
        if self.suspend_flow.is_set():
            # Stopped already: faust's own race, which the callback wins unless it waits
            # (on flow control, during a rebalance's recovery).
            delivery = callback(message)
            raced = await self.wait_first(delivery, self.suspend_flow.wait())
            return delivery in raced.done
        task = asyncio.current_task()
        self._in_callback = task
        try:
            await callback(message)
            return True
        except asyncio.CancelledError:
            if not self._flow_cancelled or task is None:
                raise
            if task.uncancel() > 0:
                raise  # cancelled for another reason as well (the worker stopping)
            return False
        finally:
            self._in_callback = None
            self._flow_cancelled = False

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - faust's loop
        from faust.transport.consumer import CONSUMER_FETCHING

        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        deliver = self._deliver
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    reading_again: set[Any] = set()  # partitions sought back in this batch
                    async for tp, message in ait:
                        # Yield after every record, as wait_first's tasks did: the agent's
                        # batch then fills while the drainer runs (yielding every 100 records
                        # instead left the worker idle ~30 % of a backlog, 3,900 records/s
                        # against 5,900-7,500 with a yield per record).
                        await sleep(0)
                        if tp in reading_again:
                            continue  # beyond a hole: comes again, in order, after the seek
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        acked_topic = acks_enabled_for(message.topic)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acked_topic:
                                # Records never delivered: faust's getmany discards those of
                                # partitions not yet active after an assignment, and records
                                # fetched before its seek to the committed offsets arrive
                                # after it. faust would count the hole as acked (it takes
                                # gaps for transaction markers; this topic has none) and
                                # commit past records never judged; judging what follows
                                # first would close hours without them. So the partition is
                                # read again from the hole, in order (the restart test:
                                # offsets 991-1007 judged by no one, hours closed short).
                                log.warning(
                                    "%s[%s]: offsets %d-%d not delivered; reading again",
                                    tp.topic,
                                    tp.partition,
                                    r_offset + 1,
                                    offset - 1,
                                )
                                reading_again.add(tp)
                                await self.seek(tp, r_offset)  # r_offset itself again too
                                continue
                            if gap > 1 and r_offset:
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if await deliver(callback, message) or not acked_topic:
                                set_read_offset(tp, offset)
                            else:
                                # Dropped while the flow was stopped (a rebalance). faust
                                # moves its read offset past it all the same and counts on
                                # the seek to the committed offset; a partition with no
                                # committed offset is not sought, and its first records were
                                # lost (a restarted worker judged nothing: CI, 2026-12-07).
                                # Read again from here once the flow resumes.
                                reading_again.add(tp)
                                try:
                                    await self.seek(tp, offset)
                                except Exception as err:  # revoked: its new owner reads it
                                    log.info("%s not read again here: %r", tp, err)
                        # else: below the read offset, delivered before a seek: dropped
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class _PromptFetchTransport(AIOKafkaTransport):
    Consumer = _PromptFetchConsumer


class _AlertsApp(faust.App):
    def _new_transport(self) -> Any:
        transport = super()._new_transport()
        if type(transport) is AIOKafkaTransport:
            return _PromptFetchTransport(self.conf.broker_consumer, self)
        return transport


def next_persist_interval(last_checkpoint_s: float) -> float:
    """Seconds until the next checkpoint: PERSIST_EVERY_S, stretched to PERSIST_COST_FACTOR
    times what the last one took (at most PERSIST_MAX_S); 0 stays 0 (every batch)."""
    if PERSIST_EVERY_S <= 0:
        return PERSIST_EVERY_S
    stretched = min(PERSIST_MAX_S, PERSIST_COST_FACTOR * last_checkpoint_s)
    return max(PERSIST_EVERY_S, stretched)


def tick_interval() -> float:
    """Seconds between wall-clock duties (LIANDONG_ALERTS_TICK_S, default 5)."""
    return float(os.environ.get("LIANDONG_ALERTS_TICK_S", "5"))


Outgoing = tuple[alerts_pb2.AlertEvent, Any]  # event, headers of the record that caused it


class AlertsRuntime:
    """What the agent, the timer and the registry follower share (one per worker)."""

    def __init__(self, app: faust.App, settings: Settings, table: Any, out: Any) -> None:
        self.app = app
        self.table = table
        self.out = out
        self.records_topic = settings.topic(MONITORING_RECORDS)
        self.view = RegistryView(settings, on_change=self.on_registry_change)
        self.lock = asyncio.Lock()
        self.pj: PartitionedJudge | None = None
        self.ready = asyncio.Event()
        self._affected: set[str] = set()
        self._registry_dirty = False
        self._mark_outlets: dict[str, str] = {}
        self._revoked: set[int] = set()
        self.backlog = BacklogGate(self._highwaters, self._committed)
        self.unacked: list[tuple[Any, Any]] = []  # (stream, event) judged, not yet acked
        self.last_checkpoint = time.monotonic()
        self.persist_interval = PERSIST_EVERY_S
        self.last_write_s = 0.0  # the last checkpoint's time from its start to its writes acked
        self._committing: asyncio.Future[bool] | None = None
        self._acking: asyncio.Future[None] | None = None  # the last checkpoint's acks
        self._holes: dict[int, tuple[int, float]] = {}  # partition -> (offset, since)
        self._reread_asked: dict[int, tuple[int, float]] = {}  # partition -> (offset, when)
        self.clock = time.monotonic

    # ---- registry --------------------------------------------------------------------

    def on_registry_change(self, kind: str, entity_id: str, doc: dict[str, Any] | None) -> None:
        if kind == "person":
            return
        self._registry_dirty = True
        if kind == "outlet":
            self._affected.add(entity_id)
        elif kind == "mark":
            old = self._mark_outlets.pop(entity_id, None)
            if old:
                self._affected.add(old)
            if doc is not None and doc.get("outlet"):
                self._mark_outlets[entity_id] = str(doc["outlet"])
                self._affected.add(str(doc["outlet"]))

    def build_registry(self) -> Registry | None:
        try:
            return registry_from_dict(self.view.document())
        except RegistryError as err:
            # A bad registry version must not stop judging: keep the last good one.
            log.error("registry not applied, keeping the previous one: %s", err)
            return None

    async def start_registry(self) -> None:
        await self.view.start(follow=True)
        registry = self.build_registry() or Registry()
        self._registry_dirty = False
        self._affected.clear()
        self.pj = PartitionedJudge.create(registry)
        log.info("registry loaded: %d outlets", len(registry.outlets))
        settle_heap()
        self.ready.set()

    def _sync_registry(self, now: datetime) -> list[AlertChange]:
        assert self.pj is not None
        if not self._registry_dirty:
            return []
        self._registry_dirty = False
        affected, self._affected = self._affected, set()
        registry = self.build_registry()
        if registry is None:
            return []
        log.info("registry changed; re-judging %d outlet(s)", len(affected))
        return self.pj.apply_registry(registry, affected, now)

    # ---- state -----------------------------------------------------------------------

    def stored(self, outlet_id: str) -> bytes | None:
        value = self.table.data.get(outlet_id)
        return bytes(value) if value is not None else None

    async def persist(self, items: Iterable[tuple[str, int, bytes]]) -> list[tuple[str, Any]]:
        """Write each outlet's state to the store and its changelog; returns (outlet, the
        changelog write's future), which the broker's ack resolves."""
        written = []
        for oid, partition, raw in items:
            self.table.data[oid] = raw
            try:
                fut = await self.write_state(partition, oid, raw)
            except Exception as err:  # not even queued (producer closed, no metadata)
                fut = asyncio.get_running_loop().create_future()
                fut.set_exception(err)  # a failed write: its outlet is written again
            written.append((oid, fut))
        return written

    async def write_state(self, partition: int, oid: str, raw: bytes) -> Any:
        """Hand one changelog write to the producer (in the partition of the outlet's
        records, so the timer, outside any stream event, can write too); returns its future,
        which the broker's ack resolves. Not faust's `send_changelog`: that queues the write
        in faust's producer buffer, whose conductor then holds every record back from the
        agent (up to 0.1 s each) while more than 100 writes wait, and after a checkpoint of
        hundreds of outlets that held judging for over a second (bench/e2e_stack.py: bursts
        of ~10 alerts 1.14 s late, p99 frame -> alert 1.14 s)."""
        table = self.table
        return await table.changelog_topic.send(
            key=oid,
            value=raw,
            partition=partition,
            key_serializer=table.key_serializer,
            value_serializer="raw",
            callback=table._on_changelog_sent,  # what send_changelog passes (store offsets)
        )

    def owned_partitions(self) -> set[int]:
        return {
            tp.partition
            for tp in self.app.assignor.assigned_actives()
            if tp.topic == self.records_topic
        }

    async def on_revoked(self, revoked: Iterable[Any]) -> None:
        partitions = {tp.partition for tp in revoked if tp.topic == self.records_topic}
        self._revoked |= partitions
        self.backlog.forget(partitions)
        for p in partitions:
            self._reread_asked.pop(p, None)

    async def _highwaters(self, partitions: list[int]) -> dict[int, int]:
        tps = [TP(self.records_topic, p) for p in partitions]
        ends = await self.app.consumer.highwaters(*tps)
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    def _committed(self, partition: int) -> int | None:
        # faust's own record of the committed offset, set when the partition was assigned
        committed = getattr(self.app.consumer, "_committed_offset", {})
        offset = committed.get(TP(self.records_topic, partition))
        return int(offset) if offset is not None else None

    async def repair_holes(self) -> None:
        """Read a partition again from its committed offset when the records there stayed
        unacked for HOLE_REPAIR_S while later ones were acked: they never reached the agent
        (see _PromptFetchConsumer), and the commit would wait for them for ever. Read again,
        they are judged (later ones again too: duplicates to the judge) and acked, and the
        commit moves on."""
        consumer = self.app.consumer
        if not isinstance(consumer, _PromptFetchConsumer):
            return
        now = time.monotonic()
        holes: dict[int, tuple[int, float]] = {}
        # The partitions the assignor gave this worker: asking the consumer for its
        # assignment raises before it has started.
        for partition in sorted(self.owned_partitions()):
            tp = TP(self.records_topic, partition)
            at = consumer.hole_at(tp)
            if at is None:
                continue
            seen = self._holes.get(tp.partition)
            since = seen[1] if seen is not None and seen[0] == at else now
            if now - since < HOLE_REPAIR_S:
                holes[tp.partition] = (at, since)
                continue
            log.warning(
                "records from %s[%s]@%s were never acked while later ones were "
                "(lost between fetch and agent); reading them again",
                tp.topic,
                tp.partition,
                at,
            )
            self.backlog.reading_from(tp.partition, await consumer.reread_from(tp, at))
        self._holes = holes

    def _forget_revoked(self) -> None:
        if self._revoked and self.pj is not None:
            self.pj.forget(self._revoked)
            self._revoked = set()

    # ---- output ------------------------------------------------------------------------

    async def publish(self, outgoing: list[Outgoing]) -> None:
        """Send, then wait for the broker's ack of every event (see the module docstring)."""
        pending = []
        for event, headers in outgoing:
            ctx = context_from_headers(_header_pairs(headers)) if headers else None
            with tracer.start_as_current_span(
                "alerts judge",
                context=ctx,
                attributes={
                    "alert.id": event.alert_id,
                    "alert.kind": event.kind,
                    "alert.change": alerts_pb2.AlertChange.Name(event.change),
                    "outlet.id": event.outlet_id,
                },
            ):
                # Trace context injected here, in the judge span: the process does not
                # instrument aiokafka (that would trace every changelog write as well).
                pending.append(
                    await self.out.send(
                        key=event.outlet_id.encode(),
                        value=event.SerializeToString(),
                        headers=trace_headers(),
                    )
                )
        for fut in pending:
            await fut
        if outgoing:
            alert_events.add(len(outgoing))

    def _events(self, changes: list[AlertChange], cause: str, headers: Any) -> list[Outgoing]:
        assert self.pj is not None
        registry = self.pj.registry
        return [(event_from_change(c, registry, cause), headers) for c in changes]

    # ---- the agent's batch and the timer ----------------------------------------------

    async def process(self, stream: Any, events: list[Any]) -> None:
        await self.ready.wait()
        assert self.pj is not None
        now = datetime.now(UTC)
        holes: dict[int, tuple[int, int]] = {}  # partition -> (expected offset, offset come)
        async with self.lock:
            self._forget_revoked()
            outgoing = self._events(self._sync_registry(now), "", None)
            judged = []
            for event in events:
                partition, offset = event.message.partition, event.message.offset
                if not self.backlog.admits(partition, offset):
                    # Beyond a hole: not judged, not acked; the partition is read again from
                    # the hole (below), and this record comes again after it, in order.
                    expected = self.backlog.expected(partition)
                    assert expected is not None
                    holes.setdefault(partition, (expected, offset))
                    continue
                judged.append(event)
                self.backlog.judged(partition, offset)
                try:
                    record = records_pb2.MonitoringRecord.FromString(event.value)
                    changes = self.pj.on_record(record, event.message.partition, now, self.stored)
                except Exception:
                    # A bad record never stops the stream: logged, counted, skipped.
                    self.pj.counters["bad_records"] += 1
                    bad_records.add(1)
                    log.exception(
                        "record at %s[%s]@%s not judged",
                        event.message.topic,
                        event.message.partition,
                        event.message.offset,
                    )
                    continue
                if changes:
                    outgoing += self._events(changes, record.meta.event_id, event.headers)
            await self.publish(outgoing)
            self.unacked += [(stream, event) for event in judged]
        for partition, (expected, offset) in holes.items():
            await self.read_again_from(partition, expected, offset)

    async def read_again_from(self, partition: int, expected: int, offset: int) -> None:
        """Seek `partition` back to the record the agent expected next, once per hole every
        RESEEK_S: the records beyond it, still on their way to the agent, are skipped too."""
        now = self.clock()
        asked = self._reread_asked.get(partition)
        if asked is not None and asked[0] == expected and now - asked[1] < RESEEK_S:
            return
        self._reread_asked[partition] = (expected, now)
        log.warning(
            "%s[%s]: offset %d came before %d-%d (lost between fetch and agent); "
            "reading again from %d",
            self.records_topic,
            partition,
            offset,
            expected,
            offset - 1,
            expected,
        )
        consumer = self.app.consumer
        if not isinstance(consumer, _PromptFetchConsumer):
            return  # not on a broker (unit tests replace this method)
        tp = TP(self.records_topic, partition)
        try:
            start = await consumer.reread_from(tp, expected)
        except Exception as err:  # revoked meanwhile: its new owner reads it
            log.info("%s not read again here: %r", tp, err)
            return
        if start != expected:  # removed by retention: reading starts at the log's start
            self.backlog.reading_from(partition, start)

    async def checkpoint(self) -> None:
        """Write the state of every outlet judged since the last checkpoint; the records
        judged since then are acked (their offsets become committable) once the broker has
        acknowledged those writes, in the background (see _ack_when_written)."""
        if self.pj is None:
            return
        async with self.lock:
            started = time.monotonic()
            dirty = self.pj.take_dirty()
            written = await self.persist(dirty)
            unacked, self.unacked = self.unacked, []
            log.debug("checkpoint: %d outlet(s), %d record(s)", len(dirty), len(unacked))
            self.last_checkpoint = time.monotonic()
            # The writes' cost shows when they are acked (faust's producer buffer sends them
            # one by one, and holds up delivery to the agent while it is over 100): the last
            # checkpoint written counts with its whole time, this one with its encoding.
            self.persist_interval = next_persist_interval(
                max(self.last_checkpoint - started, self.last_write_s)
            )
        # Chained: a later checkpoint's acks must not overtake an earlier one's writes.
        self._acking = asyncio.ensure_future(
            self._ack_when_written(self._acking, written, unacked, started)
        )
        self._acking.add_done_callback(_log_ack_failure)

    async def acks_settled(self) -> None:
        """Returns once the records of every checkpoint so far are acked (or put back)."""
        if self._acking is not None:
            await asyncio.shield(self._acking)

    async def _ack_when_written(
        self,
        previous: asyncio.Future[None] | None,
        written: list[tuple[str, Any]],
        unacked: list[tuple[Any, Any]],
        started: float | None = None,
    ) -> None:
        # The records are acked only once the broker holds the state they changed. faust's
        # commit flushes the producer first, but its buffer's flush gives up after 0.1 s
        # (ProducerBuffer.flush_atmost): a changelog write still waiting there (the first
        # one to a just-created changelog waits for its metadata) was committed past, and a
        # worker SIGKILLed then left its successor the offsets without the state (CI,
        # 2026-12-07: the restart test's second hour opened no joined episode). Waiting
        # here, not in the agent: judging goes on while the broker acknowledges.
        if previous is not None:
            await asyncio.wait([previous])
        failed = await _failed_writes(written)
        if started is not None and written:
            self.last_write_s = time.monotonic() - started
        if failed:
            log.error(
                "state of %d outlet(s) not written to the changelog (%s); "
                "their records stay unacked and are written again at the next checkpoint",
                len(failed),
                next(iter(failed.values())),
            )
            async with self.lock:
                assert self.pj is not None
                self.pj.dirty.update(failed)
                self.unacked = unacked + self.unacked
            return
        for stream, event in unacked:
            await stream.ack(event)
        if unacked:
            self._commit_soon()

    def _commit_soon(self) -> None:
        """Commit the offsets just acked now rather than at faust's next commit timer
        (every 2.8 s): the acks follow the broker's ack of the changelog writes, so the
        order of effects is unchanged; fewer records are re-read after a crash. In the
        background, so the agent does not wait for the commit."""
        consumer = self.app.consumer
        if not consumer.started or (self._committing and not self._committing.done()):
            return  # a commit in flight takes these acks too, or faust's timer will
        self._committing = asyncio.ensure_future(consumer.commit())
        self._committing.add_done_callback(_log_commit_failure)

    def checkpoint_due(self) -> bool:
        pending = bool(self.unacked) or (self.pj is not None and bool(self.pj.dirty))
        return pending and (
            time.monotonic() - self.last_checkpoint >= self.persist_interval
            or len(self.unacked) >= UNACKED_MAX
        )

    async def tick(self) -> None:
        if self.pj is None or not self.ready.is_set() or self.app.rebalancing:
            return
        await self.repair_holes()
        # Outside the lock: asking the broker must not hold up judging.
        close_hours = await self.backlog.caught_up(self.owned_partitions())
        now = datetime.now(UTC)
        async with self.lock:
            self._forget_revoked()
            self.pj.retain(self.owned_partitions(), list(self.table.data.items()))
            await self._tick_step(lambda: self._sync_registry(now))
            outlets = list(self.pj.judge.states) if close_hours else []
        # In slices, the lock released in between: thousands of outlets falling silent at
        # once (a network outage) have their hours closed in one tick, seconds of work that
        # held up judging every record (bench/e2e_stack.py: p99 frame -> alert 4.4 s).
        pj = self.pj
        for i in range(0, len(outlets), TICK_SLICE):
            await asyncio.sleep(0)  # the agent, if records came, takes the lock first
            async with self.lock:
                if self.app.rebalancing:
                    return  # the next tick does the rest, for the partitions still held
                self._forget_revoked()  # a partition revoked since is not judged here
                await self._tick_step(functools.partial(pj.tick, now, outlets[i : i + TICK_SLICE]))

    async def _tick_step(self, step: Callable[[], list[AlertChange]]) -> None:
        """One step of the tick under the lock: publish its alerts, write what it changed.
        Outlets with judged records pending are written by the checkpoint that acks those
        records (encoding them here too was a second encode per interval: ~8 % of the
        worker's CPU with 3,000 outlets); the tick writes the outlets only it changed."""
        assert self.pj is not None
        pending = set(self.pj.dirty)
        changes = step()
        await self.publish(self._events(changes, "", None))
        written = await self.persist(self.pj.take_dirty(keep=pending))
        if written:
            check = asyncio.ensure_future(self._written_again_if_failed(written))
            check.add_done_callback(_log_ack_failure)

    async def _written_again_if_failed(self, written: list[tuple[str, Any]]) -> None:
        """A tick's state write the broker did not take marks its outlet for the next
        checkpoint (the tick acks no records, so nothing else would write it again)."""
        failed = await _failed_writes(written)
        if failed and self.pj is not None:
            log.error(
                "state of %d outlet(s) not written to the changelog (%s); written again at the "
                "next checkpoint",
                len(failed),
                next(iter(failed.values())),
            )
            self.pj.dirty.update(o for o in failed if o in self.pj.judge.states)


async def _failed_writes(written: list[tuple[str, Any]]) -> dict[str, BaseException]:
    """Wait for every changelog write; returns the outlets whose write failed, with why."""
    if not written:
        return {}
    await asyncio.wait([fut for _, fut in written])
    failed: dict[str, BaseException] = {}
    for oid, fut in written:
        if fut.cancelled():
            failed[oid] = asyncio.CancelledError("changelog write cancelled")
        elif fut.exception() is not None:
            failed[oid] = fut.exception()
    return failed


def _log_ack_failure(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        # The records stay unacked: the hole repair reads them again (HOLE_REPAIR_S).
        log.error("acking a checkpoint's records failed", exc_info=fut.exception())


def _log_commit_failure(fut: asyncio.Future[bool]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        # Not fatal: the acks stay and faust's commit timer retries them.
        log.error("offset commit after checkpoint failed", exc_info=fut.exception())


def _header_pairs(headers: Any) -> list[tuple[str, bytes]]:
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def create_app(settings: Settings, replication_factor: int = 0) -> faust.App:
    app = _AlertsApp(
        f"{settings.topic_prefix}liandong-alerts",
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        processing_guarantee="at_least_once",
        topic_partitions=settings.partitions,
        # faust's changelog and assignor topics get the same copies as the catalogue's.
        topic_replication_factor=replication_factor or settings.replication or 1,
        web_port=settings.alerts_web_port,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",  # the worker web port is local-only; faust binds 0.0.0.0 by default
        datadir=settings.alerts_data_dir,
        producer_acks=-1,
        # aiokafka keeps one produce request in flight per broker, with at most one batch per
        # partition in it: with faust's 16 KiB batches a checkpoint of thousands of outlet
        # states (a few KiB each) took hundreds of round trips. Within the broker's 1 MiB
        # message.max.bytes.
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        consumer_auto_offset_reset="earliest",
    )
    # No faust OpenTelemetry sensor: a span per record cost more than judging the record.
    # The trace is continued only where it leads somewhere: the `alerts judge` span of an
    # alert event is parented on the headers of the record that caused it (publish).
    records = app.topic(
        settings.topic(MONITORING_RECORDS),
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
    )
    alerts_out = app.topic(
        settings.topic(ALERTS_EVENTS),
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
    )
    # Judgement state per outlet id, in the partition of the outlet's records (keyed by MN).
    table = app.Table(
        STATE_TABLE,
        default=None,
        partitions=settings.partitions,
        key_type=str,
        value_type=bytes,  # raw: the encoded state (judging.encode_state)
    )
    rt = AlertsRuntime(app, settings, table, alerts_out)

    @app.task
    async def load_registry() -> None:
        await rt.start_registry()

    @app.agent(records)
    async def judge(stream: Any) -> Any:
        # Manual acks: a record's offset may be committed only once the state it changed is
        # written (checkpoint), and its alert events were acked by the broker (process).
        async for events in stream.noack_take(BATCH_MAX, within=BATCH_WITHIN_S):
            await rt.process(stream, events)
            if rt.checkpoint_due():
                await rt.checkpoint()
            if events:
                # "judged", once a batch (for agent.test_context; no sink is attached): faust
                # formats a debug line and looks for reply headers for every value yielded
                yield events[-1].value

    @app.timer(interval=PERSIST_EVERY_S)
    async def checkpoint_when_idle() -> None:
        if rt.checkpoint_due():
            await rt.checkpoint()

    @app.timer(interval=tick_interval())
    async def wall_clock() -> None:
        await rt.tick()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode types receivers narrowly
    async def forget_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # mode's signal calls receivers as (sender, revoked, signal=...).
        revoked = args[0] if args else kwargs["revoked"]
        await rt.on_revoked(revoked)

    app.liandong_runtime = rt  # type: ignore[attr-defined]
    app.liandong_view = rt.view  # type: ignore[attr-defined]
    return app


def run(settings: Settings) -> None:
    from liandong.broker_wait import needed_topics, wait_for_broker
    from liandong.replication import for_cluster
    from liandong.telemetry import setup_telemetry

    # Kafka sends are not instrumented: alert events carry the judge span's context
    # themselves (publish), changelog writes carry none.
    telemetry = setup_telemetry("alerts", instrument_kafka=False)
    # faust exits within seconds when the broker does not answer: wait first (the web port,
    # which the TCP probes watch, opens only with the worker).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s alerts %(levelname)s %(message)s")
    # A loop of its own, never set as current: faust builds and owns the worker's loop.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(
            wait_for_broker(settings.kafka_bootstrap, "alerts", topics=needed_topics(settings))
        )
    finally:
        loop.close()
    replication = for_cluster(settings)
    app = create_app(settings, replication.factor)
    # Before faust joins the group, so the first assignment has the changelog (faust_topics).
    ensure_internal_topics(
        settings.kafka_bootstrap,
        internal_topics(app.conf.id, STATE_TABLE, settings.partitions),
        replication,
    )
    try:
        app.main()
    finally:
        telemetry.shutdown()
