"""A dispatch service on a database (a temporary SQLite file unless a URL is given) with
in-memory casefile and Kafka fakes.

Geometry as in factories.py: the outlet is at (32.0, 118.8) and people stand due north of it,
0.01 degree of latitude = 1.11195 km."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import trace
from sqlalchemy.engine import Engine

from dispatch.adapters.registry import Reference
from dispatch.adapters.response_metrics import ResponseMetrics
from dispatch.adapters.store import DispatchStore, OutgoingEvent, make_engine
from dispatch.domain.policy import DispatchPolicy
from dispatch.entrypoints.dispatch_service import DispatchService
from liandong.events import new_meta, to_timestamp
from liandong.v1 import alerts_pb2, dispatch_pb2

# Monday 2 March 2026, 10:00 in Shanghai
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
OUTLET = (32.0, 118.8)
COUNTY = "320106"
ALL_DAY = [
    {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
]


def person(pid: str, role: str, north: float, county: str = COUNTY, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": pid,
        "name": f"name of {pid}",
        "roles": [role],
        "jurisdiction": [county],
        "shifts": ALL_DAY,
        "lat": OUTLET[0] + north,
        "lon": OUTLET[1],
    }
    if role == "enforcement":
        doc["certificates"] = [{"kind": "enforcement_cert", "number": pid, "expires": "2030-12-31"}]
    return doc | extra


def entities() -> dict[str, dict[str, dict[str, Any]]]:
    people = [
        person("e1", "enforcement", 0.01),
        person("e2", "enforcement", 0.02),
        person("e3", "enforcement", 0.03),
        person("m1", "monitoring", 0.01),
        person("m2", "monitoring", 0.05),
        person("mgr", "manager", 0.0),
        person("e9", "enforcement", 0.0, county="320115"),  # another county of the same city
    ]
    return {
        "enterprise": {
            "E1": {"id": "E1", "name": "Acme Power", "county": COUNTY, "address": "1 Road"}
        },
        "outlet": {
            "O1": {"id": "O1", "enterprise": "E1", "name": "Stack 1", "lat": 32.0, "lon": 118.8}
        },
        "mark": {},
        "person": {p["id"]: p for p in people},
    }


def alert_event(
    alert_id: str = "A1",
    *,
    event_id: str | None = None,
    change: int = alerts_pb2.ALERT_CHANGE_OPENED,
    kind: str = "EXCEEDANCE",
    severity: str = "MAJOR",
    key_polluter: bool = False,
    at: datetime = T0 - timedelta(minutes=10),
    lat: float = OUTLET[0],
    lon: float = OUTLET[1],
) -> alerts_pb2.AlertEvent:
    return alerts_pb2.AlertEvent(
        meta=new_meta(
            key="O1",
            event_time=at,
            producer="alerts",
            event_id=event_id or f"ev-{alert_id}-{change}",
        ),
        alert_id=alert_id,
        change=change,
        kind=kind,
        severity=severity,
        outlet_id="O1",
        enterprise_id="E1",
        factor="a21026",
        county=COUNTY,
        value=120.0,
        limit=35.0,
        unit="mg/m3",
        explanation="a21026 120 mg/m3 above limit 35",
        key_polluter=key_polluter,
        lat=lat,
        lon=lon,
        window_start=to_timestamp(at),
        window_end=to_timestamp(at),
    )


@dataclass
class FakeCase:
    case_id: str
    state: str = "OPENED"


@dataclass
class FakeCaseFile:
    """Records successful calls; `fail` makes every call fail as if casefile were down,
    `refuse` makes the named method answer with that gRPC status (e.g. FAILED_PRECONDITION)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[dict[str, Any]] = field(default_factory=list)
    teams: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False
    fail_times: int = 0  # the next n calls fail as if casefile were down
    refuse: dict[str, grpc.StatusCode] = field(default_factory=dict)
    attempts: int = 0
    trace_ids: list[int] = field(default_factory=list)  # the trace each call was made in

    def _answer(self, method: str) -> None:
        self.attempts += 1
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        if self.fail or self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("casefile unavailable")
        if method in self.refuse:
            code = self.refuse[method]
            raise grpc.aio.AioRpcError(
                code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=f"{method} refused"
            )

    async def open_case(self, **kwargs: Any) -> FakeCase:
        self._answer("OpenCase")
        self.calls.append(kwargs)
        return FakeCase(f"case-for-{kwargs['task_id'][:8]}")

    async def record_arrival(self, **kwargs: Any) -> FakeCase:
        self._answer("RecordArrival")
        self.arrivals.append(kwargs)
        return FakeCase(kwargs["case_id"], "ON_SITE")

    async def update_team(self, **kwargs: Any) -> FakeCase:
        self._answer("UpdateTeam")
        self.teams.append(kwargs)
        return FakeCase(kwargs["case_id"])

    async def record_site_note(self, **kwargs: Any) -> FakeCase:
        self._answer("RecordSiteNote")
        self.notes.append(kwargs)
        return FakeCase(kwargs["case_id"], "ON_SITE")


@dataclass
class FakeSink:
    """Acknowledges every event, none when ``fail``, none of the keys in ``refused_keys``
    (their partition has no leader)."""

    sent: list[OutgoingEvent] = field(default_factory=list)
    fail: bool = False
    refused_keys: set[str] = field(default_factory=set)
    offered: list[OutgoingEvent] = field(default_factory=list)  # every event handed over

    async def send(self, events: Sequence[OutgoingEvent]) -> set[str]:
        self.offered.extend(events)
        if self.fail:
            raise ConnectionError("broker unavailable")
        acked = [e for e in events if e.key not in self.refused_keys]
        self.sent.extend(acked)
        return {e.event_id for e in acked}

    def decoded(self) -> list[dispatch_pb2.DispatchEvent]:
        return [dispatch_pb2.DispatchEvent.FromString(e.payload) for e in self.sent]

    def kinds(self, task_id: str | None = None) -> list[str]:
        return [e.kind for e in self.decoded() if task_id is None or e.task_id == task_id]


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Harness:
    service: DispatchService
    store: DispatchStore
    reference: Reference
    casefile: FakeCaseFile
    sink: FakeSink
    clock: Clock
    db_url: str
    engines: list[Engine] = field(default_factory=list)  # shared by restarts, for close()

    def restart(self) -> Harness:
        engine = make_engine(self.db_url)
        self.engines.append(engine)
        store = DispatchStore(engine)
        service = DispatchService(
            self.service.policy, store, self.reference,
            sink=self.sink, casefile=self.casefile, clock=self.clock,
            response_metrics=self.service.response_metrics,
        )  # fmt: skip
        return Harness(
            service, store, self.reference, self.casefile, self.sink, self.clock, self.db_url,
            self.engines,
        )  # fmt: skip

    def close(self) -> None:
        """Returns every pooled connection (a PostgreSQL database can then be dropped)."""
        for engine in self.engines:
            engine.dispose()


def build(
    tmp_path: Path,
    policy: DispatchPolicy | None = None,
    db_url: str | None = None,
    response_metrics: ResponseMetrics | None = None,
) -> Harness:
    url = db_url or f"sqlite:///{tmp_path / 'dispatch.db'}"
    engine = make_engine(url)
    store = DispatchStore(engine)
    reference = Reference(entities())
    casefile, sink, clock = FakeCaseFile(), FakeSink(), Clock()
    service = DispatchService(
        policy or DispatchPolicy(version="test-1"), store, reference,
        sink=sink, casefile=casefile, clock=clock, response_metrics=response_metrics,
    )  # fmt: skip
    return Harness(service, store, reference, casefile, sink, clock, url, [engine])
