"""Wires the casefile service from the environment."""

from __future__ import annotations

import asyncio
import logging

from liandong.settings import Settings
from liandong.telemetry import setup_telemetry

from casefile.adapters.store import CaseStore, create_schema, make_engine


def build_store(settings: Settings) -> CaseStore:
    engine = make_engine(settings.casefile_db)
    create_schema(engine)
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine)
    return CaseStore(engine)


def run(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s casefile %(levelname)s %(message)s")
    telemetry = setup_telemetry("casefile", instrument_kafka=False, instrument_grpc=True)
    from casefile.entrypoints.grpc_server import serve

    try:
        asyncio.run(serve(build_store(settings), settings.casefile_grpc))
    finally:
        telemetry.shutdown()
