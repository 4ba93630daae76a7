"""Wires the dispatch service from the environment."""

from __future__ import annotations

import asyncio
import logging

from liandong.settings import Settings
from liandong.telemetry import setup_telemetry


def run(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s dispatch %(levelname)s %(message)s")
    telemetry = setup_telemetry("dispatch", instrument_grpc=True)
    from dispatch.entrypoints.alert_consumer import main

    try:
        asyncio.run(main(settings))
    finally:
        telemetry.shutdown()
