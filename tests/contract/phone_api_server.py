"""The phone API on a real port for the contract test: `python -m tests.contract.phone_api_server
PORT DIR KEY`. A dispatch service over SQLite in DIR with one open joint inspection (the
dispatch test harness: the roster and registry of tests/unit/dispatch), served by uvicorn."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import uvicorn

from dispatch.entrypoints.phone_api import create_app
from tests.unit.dispatch.harness import alert_event, build


async def main(port: int, folder: Path, key: str) -> None:
    harness = build(folder)
    await harness.service.on_alert_event(alert_event("A1"))
    app = create_app(harness.service, key)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    await server.serve()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
