"""A phone connected to one dispatch replica hears the pushes another replica's steps make
(issue 13, item 10): two service instances on one PostgreSQL database, the phone's server-sent
event stream on a real HTTP server of the second, the alert handled by the first."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from dispatch.adapters.push_listener import DatabaseWakeups
from dispatch.entrypoints import phone_api
from dispatch.entrypoints.phone_api import create_app
from liandong.ports import free_port
from tests.integration.dispatch.test_service_store import TID, Build
from tests.unit.dispatch.harness import alert_event
from tests.unit.dispatch.test_phone_api import KEY, auth

GUARD_S = 60.0  # fails the test instead of hanging it; far below the re-read interval


async def first_event(lines: AsyncIterator[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            if "event" in fields:
                return fields
            fields = {}
            continue
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    raise AssertionError("the stream ended")


# SQLite is one file on one machine: replicas are a PostgreSQL matter
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_phone_on_one_replica_hears_the_other_replicas_pushes(
    harness: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    # only a wake-up delivers within the guard: the stream's own re-read waits an hour
    monkeypatch.setattr(phone_api, "REREAD_S", 3600.0)
    a = harness()
    b = a.restart()  # the replica the phone is connected to
    stop = asyncio.Event()
    wakeups = DatabaseWakeups(b.store.engine, b.service.hub)
    listening = asyncio.create_task(wakeups.run(stop))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(b.service, KEY),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        await asyncio.wait_for(wakeups.listening.wait(), GUARD_S)
        while not server.started:
            await asyncio.sleep(0.02)
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=None) as client,
            client.stream("GET", "/v1/events", headers=auth("e2")) as stream,
        ):
            assert stream.status_code == 200
            while b.service.hub.listeners("e2") == 0:  # the stream has read its (empty) log
                await asyncio.sleep(0.02)
            await a.service.on_alert_event(alert_event("A1"))  # offers e2 the task, on `a`
            event = await asyncio.wait_for(first_event(stream.aiter_lines()), GUARD_S)
            assert event["event"] == "offer"
            assert json.loads(event["data"])["task_id"] == TID
            # the phone opens the task on the replica it is connected to, which has made
            # no step since `a` created it
            detail = await client.get(f"/v1/tasks/{TID}", headers=auth("e2"))
            assert detail.status_code == 200, detail.text
            assert detail.json()["task_id"] == TID
            mine = await client.get("/v1/me/tasks", headers=auth("e2"))
            assert [t["task_id"] for t in mine.json()] == [TID]
    finally:
        stop.set()
        server.should_exit = True
        await serving
        await listening
