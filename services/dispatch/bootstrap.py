"""Wires the dispatch service from the environment: one asyncio loop runs the alert
consumer, the SLA/acceptance ticker and the phone API (uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import uvicorn

from dispatch.adapters.casefile_client import CaseFileClient, CasefileTokens
from dispatch.adapters.kafka_out import KafkaSink
from dispatch.adapters.oidc import OidcClient
from dispatch.adapters.policy_file import load_policy
from dispatch.adapters.push import PushHub
from dispatch.adapters.registry import Reference
from dispatch.adapters.store import DispatchStore, make_engine
from dispatch.adapters.upload_spool import UploadSpool
from dispatch.config import DispatchConfig
from dispatch.entrypoints.alert_consumer import AlertConsumer
from dispatch.entrypoints.dispatch_service import DispatchService
from dispatch.entrypoints.phone_api import create_app
from liandong.broker_wait import needed_topics, wait_for_broker
from liandong.registry.topics_io import RegistryView
from liandong.renewing_producer import RenewingProducer
from liandong.settings import Settings
from liandong.telemetry import setup_telemetry
from liandong.topics import DISPATCH_EVENTS

log = logging.getLogger(__name__)


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


async def serve(
    settings: Settings,
    config: DispatchConfig | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Runs until `stop` is set (or SIGINT/SIGTERM when no event is given)."""
    config = config or DispatchConfig()
    policy = load_policy(config.policy_file)
    await wait_for_broker(
        settings.kafka_bootstrap,
        "dispatch",
        topics=needed_topics(settings),
        health=(settings.dispatch_http_host, settings.dispatch_http_port),
    )
    _ensure_sqlite_dir(settings.dispatch_db)
    store = DispatchStore(make_engine(settings.dispatch_db))
    reference = Reference(timezone=config.timezone)
    view = RegistryView(settings, on_change=reference.changed)
    reference.entities = view.entities
    await view.start(follow=True)
    reference.changed()
    # Renewed after a failed batch (aiokafka leaves a sequence gap: see renewing_producer).
    producer = RenewingProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=10_000,
    )
    await producer.start()
    casefile = CaseFileClient(settings.casefile_grpc, CasefileTokens.from_env())
    service = DispatchService(
        policy,
        store,
        reference,
        hub=PushHub(),
        sink=KafkaSink(producer, settings.topic(DISPATCH_EVENTS)),
        casefile=casefile,
    )
    group = config.consumer_group or f"{settings.topic_prefix}liandong-dispatch"
    consumer = AlertConsumer(settings, service, group, config.group_instance_id)
    await consumer.start()
    uploads = UploadSpool(
        config.uploads_dir,
        max_bytes=config.upload_max_bytes,
        quota_bytes=config.upload_quota_bytes,
    )
    app = create_app(
        service,
        config.jwt_key,
        web_dist=config.web_dist,
        uploads=uploads,
        oidc=OidcClient(config.oidc) if config.oidc else None,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.dispatch_http_host,
            port=settings.dispatch_http_port,
            log_level="warning",
            lifespan="off",
        )
    )
    # this process handles SIGINT/SIGTERM itself (stop event) for all three tasks
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    tasks = [
        asyncio.create_task(consumer.run(stop), name="alert-consumer"),
        asyncio.create_task(service.run_ticks(stop, config.tick_seconds), name="ticker"),
        asyncio.create_task(service.run_casefile_calls(stop), name="casefile-calls"),
        asyncio.create_task(server.serve(), name="phone-api"),
    ]
    if store.shared:  # replicas may share the database: hear their push wake-ups too
        from dispatch.adapters.push_listener import DatabaseWakeups

        wakeups = DatabaseWakeups(store.engine, service.hub)
        tasks.append(asyncio.create_task(wakeups.run(stop), name="push-wakeups"))
    log.info(
        "dispatch: policy %s, phone API on %s:%s",
        policy.version,
        settings.dispatch_http_host,
        settings.dispatch_http_port,
    )
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        if ready is not None:
            ready.set()
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not stopper and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
    finally:
        stop.set()
        server.should_exit = True
        for t in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t, 10)
        await consumer.stop()
        await service.flush()
        await producer.stop()
        await casefile.close()
        await view.stop()


def run(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s dispatch %(levelname)s %(message)s")
    telemetry = setup_telemetry("dispatch", instrument_grpc=True)
    try:
        asyncio.run(serve(settings))
    finally:
        telemetry.shutdown()
