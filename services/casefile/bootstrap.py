"""Wires the casefile service from the environment."""

from __future__ import annotations

import asyncio
import logging
import os

from casefile import migrations
from casefile.adapters.store import CaseStore, make_engine
from casefile.config import CasefileConfig, key_file
from casefile.domain.workdays import WorkCalendar
from liandong.settings import Settings
from liandong.telemetry import setup_telemetry
from liandong.topics import CASEFILE_EVENTS


def build_store(settings: Settings, calendar: WorkCalendar | None = None) -> CaseStore:
    """Engine, schema at Alembic head, SQLAlchemy instrumentation."""
    engine = make_engine(settings.casefile_db)
    if settings.casefile_db.startswith("sqlite:///"):
        from pathlib import Path

        Path(settings.casefile_db.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    migrations.upgrade(engine)
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine)
    return CaseStore(engine, calendar or CasefileConfig.from_env(settings).calendar)


def run(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s casefile %(levelname)s %(message)s")
    telemetry = setup_telemetry("casefile", instrument_kafka=False, instrument_grpc=True)
    from casefile.adapters.outbox import OutboxRelay
    from casefile.entrypoints.grpc_server import serve, tune_gc

    config = CasefileConfig.from_env(settings)
    log = logging.getLogger(__name__)
    if not config.auth.required:
        log.warning(
            "LIANDONG_CASEFILE_AUTH=off: reads without a token are answered as a platform "
            "operator's (writes still need one); the default is required"
        )
    if config.auth.hs_key is not None and not os.environ.get("LIANDONG_JWT_KEY"):
        log.warning(
            "LIANDONG_JWT_KEY unset: people's tokens are verified with the embedded key %s "
            "(one machine only; set LIANDONG_JWT_KEY or LIANDONG_JWKS_URL elsewhere)",
            key_file(),
        )
    store = build_store(settings, config.calendar)
    relay = (
        OutboxRelay(store, settings.kafka_bootstrap, settings.topic(CASEFILE_EVENTS))
        if config.outbox
        else None
    )
    from casefile.entrypoints.evidence_calls import store_from_env
    from casefile.evidence_config import EvidenceConfig

    evidence_config = EvidenceConfig.from_env()
    evidence_store = store_from_env(evidence_config)
    logging.getLogger(__name__).info(
        "evidence store: %s (%s)", evidence_store.name, evidence_config.store_url
    )
    tune_gc()
    try:
        asyncio.run(
            serve(
                store,
                settings.casefile_grpc,
                auth=config.auth,
                relay=relay,
                clock_interval_s=config.clock_interval_s,
                evidence=(evidence_store, evidence_config),
            )
        )
    finally:
        telemetry.shutdown()
