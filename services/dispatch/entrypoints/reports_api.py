"""The managers' console API: response-time report (stages, time buckets, county ranking),
overview (also live over SSE), one task's timeline, the map's points, CSV/XLSX exports, and
the cases with legal clocks due, one case and its signed bundle (read from casefile over gRPC
acting for the signed-in manager).

Duty managers only (field staff 403). Every answer is scoped to the token's jurisdiction: a
provincial manager (code 32) sees every county of the province, a county manager (320115)
only that county; the optional `county` query narrows the jurisdiction and never widens it.
Aggregates are SQL over dispatch's own report tables (adapters/report_store), never a pass
over every task in memory.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import grpc
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from google.protobuf import json_format
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from dispatch.adapters import exports
from dispatch.adapters.report_store import GroupAggregate, ReportQueries
from dispatch.domain.dispatcher import UnknownTask
from dispatch.domain.report_facts import CST, REPORT_STAGES, local_midnight, task_fact
from dispatch.domain.roster import normalise_code
from dispatch.entrypoints.dispatch_service import REPORTS_LISTENER, DispatchService
from liandong.events import from_timestamp
from liandong.tokens.phone import Principal
from liandong.v1 import casefile_pb2, dispatch_pb2

REPORT_WINDOW = timedelta(days=30)
# times a report may ask for: anything outside is a typo, and near datetime.min/max the
# default window (until - 30 d) would overflow
REPORT_EARLIEST = datetime(1969, 12, 30, tzinfo=UTC)  # 1970 at any offset
REPORT_LATEST = datetime(9000, 1, 2, tzinfo=UTC)  # 8999 at any offset
# RFC 3339 date-time (the OpenAPI format) in those years; the parser checks the rest
REPORT_TIME_PATTERN = r"^(19[7-9][0-9]|[2-8][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt]"
_DATETIME = TypeAdapter(datetime)


def _report_time(name: str, text: str | None) -> datetime | None:
    """An RFC 3339 date-time with its offset (a number such as 0.5 is not one)."""
    if text is None:
        return None
    try:
        return _DATETIME.validate_python(text)
    except ValidationError as err:
        raise HTTPException(422, f"{name}: not an RFC 3339 date-time: {text!r}") from err


SLOWEST_WINDOW = timedelta(days=7)
# a live overview is recomputed at most this often, however busy dispatch is
OVERVIEW_MIN_INTERVAL_S = 1.0
OVERVIEW_REREAD_S = 30.0

Bucket = Literal["day", "week", "month"]
By = Literal["county", "priority", "route", "all"]


class StageStatsView(BaseModel):
    stage: str = Field(
        description="dispatch, acceptance, travel, response, on site, sampling, "
        "on site to done, total"
    )
    count: int = Field(description="tasks that went through the stage")
    p50_s: float | None = Field(description="nearest-rank median, seconds; null when count is 0")
    p90_s: float | None
    max_s: float | None


class GroupView(BaseModel):
    group: str = Field(description="county code, priority, route, `all`, or a time bucket")
    tasks: int
    open_tasks: int
    stages: list[StageStatsView]
    sla_breaches: dict[str, int] = Field(description="breached SLA clocks: ACCEPT, ARRIVE, FINISH")


class OpenTaskView(BaseModel):
    task_id: str
    county: str
    priority: str
    route: str
    state: str
    raised_at: datetime
    age_s: float = Field(description="seconds since the alarm was raised")


class RankingView(BaseModel):
    rank: int = Field(description="1 = fastest median response (raised to on site)")
    county: str
    tasks: int
    open_tasks: int
    response_p50_s: float | None
    response_p90_s: float | None
    total_p50_s: float | None
    sla_breaches: int = Field(description="breached clocks, all kinds")
    breach_rate: float = Field(description="breached clocks per task")


class ResponseTimesView(BaseModel):
    by: str
    since: datetime
    until: datetime
    generated_at: datetime
    groups: list[GroupView]
    slowest_open: list[OpenTaskView] = Field(
        description="the ten open tasks raised longest ago, oldest first, across all groups"
    )
    bucket: str = Field("day", description="day, week (ISO, from Monday) or month, in CST")
    series: list[GroupView] = Field(
        default_factory=list, description="the whole selection per time bucket, oldest first"
    )
    ranking: list[RankingView] = Field(
        default_factory=list, description="counties, fastest median response first (通报排名)"
    )


class PeriodView(BaseModel):
    since: datetime
    alarms: int
    alarms_by_kind: dict[str, int]


class OverviewView(BaseModel):
    generated_at: datetime
    today: PeriodView
    week: PeriodView
    open_tasks: int
    open_by_state: dict[str, int]
    open_breached: dict[str, int] = Field(description="open tasks past a clock, per clock")
    week_breaches: dict[str, int] = Field(description="breached clocks of this week's tasks")
    slowest_counties: list[RankingView] = Field(
        description="the last 7 days, slowest median response first (at most 5)"
    )


class TimelineItem(BaseModel):
    at: datetime
    kind: str = Field(
        description="ALERT, CREATED, TEAM_PROPOSED, ACCEPTED, DECLINED, CHECKED_IN, "
        "a task state, CASE_OPENED, CASE_RECORDED, SLA_BREACHED, ..."
    )
    actor: str = ""
    note: str = ""


class TimelineView(BaseModel):
    task_id: str
    county: str
    route: str
    priority: str
    state: str
    enterprise_id: str
    outlet_id: str
    raised_at: datetime
    alert: dict[str, Any] = Field(description="the opening alert's evidence and explanation")
    case_id: str
    case_state: str = Field(description="the case's state as casefile last answered dispatch")
    items: list[TimelineItem]
    stages: dict[str, float | None] = Field(description="this task's stage durations, seconds")


class MapPoint(BaseModel):
    id: str
    name: str
    county: str
    lat: float
    lon: float
    open_tasks: int
    worst_state: str = Field(description="the least advanced open task's state, '' if none")


class MapView(BaseModel):
    datum: str = Field(description="coordinates as the registry holds them")
    outlets: list[MapPoint]


def scope_prefixes(p: Principal, county: str | None) -> list[str]:
    """The county prefixes a manager may see, narrowed (never widened) by `county`."""
    mine = []
    for j in p.jurisdiction:
        with contextlib.suppress(ValueError):
            mine.append(normalise_code(j))
    if county is None:
        return mine
    try:
        wanted = normalise_code(county)
    except ValueError as e:
        raise HTTPException(422, str(e)) from e
    if any(wanted.startswith(j) for j in mine):
        return [wanted]
    return [j for j in mine if j.startswith(wanted)]


STAGE_NAMES = [stage for stage, *_ in REPORT_STAGES]
RANKED = ("response_s", "total_s")  # the stages a ranking reads
StageName = Literal[
    "dispatch", "acceptance", "travel", "response", "on site", "sampling", "on site to done",
    "total",
]  # fmt: skip


def _stage_views(g: GroupAggregate, only: Sequence[str] | None = None) -> list[StageStatsView]:
    views = []
    for stage, _, _, column in REPORT_STAGES:
        if only is not None and stage not in only:
            continue
        s = (g.stages or {}).get(column)
        views.append(
            StageStatsView(stage=stage, count=s.count, p50_s=s.p50_s, p90_s=s.p90_s, max_s=s.max_s)
            if s is not None
            else StageStatsView(stage=stage, count=0, p50_s=None, p90_s=None, max_s=None)
        )
    return views


def group_view(g: GroupAggregate, only: Sequence[str] | None = None) -> GroupView:
    return GroupView(
        group=g.group,
        tasks=g.tasks,
        open_tasks=g.open_tasks,
        stages=_stage_views(g, only),
        sla_breaches=dict(g.breaches or {}),
    )


def ranking(groups: list[GroupAggregate]) -> list[RankingView]:
    """Counties by median response (raised to on site), then p90, then code; none last."""

    def stat(g: GroupAggregate, column: str, field: str) -> float | None:
        s = (g.stages or {}).get(column)
        return getattr(s, field) if s is not None else None

    def key(g: GroupAggregate) -> tuple[bool, float, float, str]:
        p50, p90 = stat(g, "response_s", "p50_s"), stat(g, "response_s", "p90_s")
        return (p50 is None, p50 or 0.0, p90 or 0.0, g.group)

    out = []
    for i, g in enumerate(sorted(groups, key=key), start=1):
        breaches = sum((g.breaches or {}).values())
        out.append(
            RankingView(
                rank=i,
                county=g.group,
                tasks=g.tasks,
                open_tasks=g.open_tasks,
                response_p50_s=stat(g, "response_s", "p50_s"),
                response_p90_s=stat(g, "response_s", "p90_s"),
                total_p50_s=stat(g, "total_s", "p50_s"),
                sla_breaches=breaches,
                breach_rate=round(breaches / g.tasks, 4) if g.tasks else 0.0,
            )
        )
    return out


def _needs_offset(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise HTTPException(422, f"{name} needs a UTC offset, e.g. 2026-03-01T00:00+08:00")
    if value is not None and not REPORT_EARLIEST <= value <= REPORT_LATEST:
        raise HTTPException(
            422, f"{name} must lie between {REPORT_EARLIEST.date()} and {REPORT_LATEST.date()}"
        )


def reports_router(service: DispatchService, principal: Callable[..., Principal]) -> APIRouter:
    router = APIRouter(tags=["reports"], responses={401: {}, 403: {}, 422: {}})
    queries = ReportQueries(service.store.engine)

    def manager(p: Annotated[Principal, Depends(principal)]) -> Principal:
        if not p.role.manager:
            raise HTTPException(403, "reports are for duty managers")
        return p

    Manager = Annotated[Principal, Depends(manager)]

    class Window:
        def __init__(
            self,
            since_text: Annotated[
                str | None,
                Query(
                    alias="since",
                    pattern=REPORT_TIME_PATTERN,
                    json_schema_extra={"format": "date-time"},
                    description="alarms raised from (RFC 3339, years 1970-8999); "
                    "default until - 30 d",
                ),
            ] = None,
            until_text: Annotated[
                str | None,
                Query(
                    alias="until",
                    pattern=REPORT_TIME_PATTERN,
                    json_schema_extra={"format": "date-time"},
                    description="alarms raised before (RFC 3339, years 1970-8999); default now",
                ),
            ] = None,
            county: Annotated[
                str,
                Query(
                    pattern=r"^(|[0-9]{2}|[0-9]{4}|[0-9]{6,})$",
                    description="division code prefix, e.g. 3201 or 320106 (empty: all)",
                ),
            ] = "",
        ) -> None:
            since, until = _report_time("since", since_text), _report_time("until", until_text)
            _needs_offset("since", since)
            _needs_offset("until", until)
            self.until = until or service.clock()
            self.since = since or self.until - REPORT_WINDOW
            # since >= until is an empty window, in which no alarm was raised: an empty report
            # (the OpenAPI document cannot say "before", so the request is answered, issue 12)
            self.county = county or None

    Win = Annotated[Window, Depends()]

    def response_times(
        p: Principal, w: Window, by: str, bucket: str, series_stage: str | None = None
    ) -> ResponseTimesView:
        prefixes = scope_prefixes(p, w.county)
        now = service.clock()
        # independent queries, each on its own pooled connection: the database works on
        # them side by side
        with ThreadPoolExecutor(max_workers=3) as pool:
            chosen = pool.submit(queries.groups, by, prefixes, w.since, w.until, now)
            per_county = (
                chosen
                if by == "county"
                else pool.submit(queries.groups, "county", prefixes, w.since, w.until, now)
            )
            only = [series_stage] if series_stage else STAGE_NAMES
            columns = [c for stage, *_, c in REPORT_STAGES if stage in only]
            per_bucket = pool.submit(
                queries.groups, bucket, prefixes, w.since, w.until, now, columns
            )
            oldest = pool.submit(queries.slowest_open, prefixes, w.since, w.until)
            groups, counties = chosen.result(), per_county.result()
            series, slowest = per_bucket.result(), oldest.result()
        return ResponseTimesView(
            by=by,
            since=w.since,
            until=w.until,
            generated_at=now,
            groups=[group_view(g) for g in groups],
            slowest_open=[
                OpenTaskView(**r, age_s=(now - r["raised_at"]).total_seconds()) for r in slowest
            ],
            bucket=bucket,
            series=[group_view(g, only) for g in series],
            ranking=ranking(counties),
        )

    @router.get(
        "/v1/reports/response-times",
        summary="How fast alarms in my jurisdiction were answered: per stage, per time bucket, "
        "and the county ranking",
    )
    async def get_response_times(
        p: Manager,
        w: Win,
        by: Annotated[By, Query()] = "all",
        bucket: Annotated[Bucket, Query(description="time series buckets (CST)")] = "day",
        series_stage: Annotated[
            StageName | None,
            Query(description="only this stage in `series` (the chart shows one); default all"),
        ] = None,
    ) -> ResponseTimesView:
        return await asyncio.to_thread(response_times, p, w, by, bucket, series_stage)

    def overview(p: Principal) -> OverviewView:
        now = service.clock()
        prefixes = scope_prefixes(p, None)
        today = local_midnight(now)
        week = local_midnight(now, now.astimezone(today.tzinfo).weekday())
        end = now + timedelta(seconds=1)
        with ThreadPoolExecutor(max_workers=3) as pool:  # independent queries, side by side
            kinds_today = pool.submit(queries.alarms_by_kind, prefixes, today, end)
            kinds_week = pool.submit(queries.alarms_by_kind, prefixes, week, end)
            by_state = pool.submit(queries.open_by_state, prefixes)
            breached_now = pool.submit(queries.open_breached, prefixes, now)
            # breaches only; the ranking needs response and total
            this_week = pool.submit(queries.groups, "all", prefixes, week, end, now, ())
            last_days = pool.submit(
                queries.groups, "county", prefixes, now - SLOWEST_WINDOW, now, now, RANKED
            )
            by_kind_today, by_kind_week = kinds_today.result(), kinds_week.result()
            open_by_state, week_all, recent = (
                by_state.result(),
                this_week.result(),
                last_days.result(),
            )
            open_breached = breached_now.result()
        slowest = [r for r in reversed(ranking(recent)) if r.response_p50_s is not None][:5]
        return OverviewView(
            generated_at=now,
            today=PeriodView(
                since=today, alarms=sum(by_kind_today.values()), alarms_by_kind=by_kind_today
            ),
            week=PeriodView(
                since=week, alarms=sum(by_kind_week.values()), alarms_by_kind=by_kind_week
            ),
            open_tasks=sum(open_by_state.values()),
            open_by_state=open_by_state,
            open_breached=open_breached,
            week_breaches=dict(week_all[0].breaches or {}) if week_all else {},
            slowest_counties=slowest,
        )

    @router.get("/v1/reports/overview", summary="Today's and this week's alarms, open work, SLA")
    async def get_overview(p: Manager) -> OverviewView:
        return await asyncio.to_thread(overview, p)

    @router.get(
        "/v1/reports/overview/stream",
        response_class=EventSourceResponse,
        summary="The overview, sent at once and again whenever a task or alarm changes (SSE)",
    )
    async def overview_stream(
        request: Request,
        p: Manager,
        follow: Annotated[
            bool,
            Query(description="false: send the overview once and end (a polling client)"),
        ] = True,
    ) -> AsyncIterable[ServerSentEvent]:
        seq = 0
        with service.hub.subscribe(REPORTS_LISTENER) as woken:
            while True:
                woken.clear()  # before reading: a commit after the read wakes us again
                view = await asyncio.to_thread(overview, p)
                seq += 1
                yield ServerSentEvent(
                    id=str(seq), event="overview", data=view.model_dump(mode="json")
                )
                if not follow:
                    return
                await asyncio.sleep(OVERVIEW_MIN_INTERVAL_S)
                if await request.is_disconnected():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), OVERVIEW_REREAD_S)

    def timeline(p: Principal, task_id: str) -> TimelineView:
        try:
            task = service.task(task_id)
        except UnknownTask as e:
            raise HTTPException(404, str(e)) from e
        if not scope_prefixes(p, None) or not any(
            task.county_code.startswith(j) for j in scope_prefixes(p, None)
        ):
            raise HTTPException(403, f"task {task_id} is outside your jurisdiction")
        meta = service.meta(task_id)
        items = [
            TimelineItem(
                at=meta.alert_time,
                kind="ALERT",
                note=str(meta.evidence.get("explanation", "")),
            )
        ]
        for step in task.history:
            items.append(
                TimelineItem(at=step.at, kind=step.to_state.value, actor=step.actor, note=step.note)
            )
        case_state = ""
        shown = {
            "TEAM_PROPOSED",
            "ACCEPTED",
            "DECLINED",
            "CHECKED_IN",
            "SLOT_VACATED",
            "CASE_OPENED",
            "CASE_RECORDED",
            "CASEFILE_REJECTED",
            "SLA_BREACHED",
            "ESCALATED",
        }
        for stored in service.store.events_for(task_id):
            event = dispatch_pb2.DispatchEvent.FromString(stored.payload)
            if event.kind in ("CASE_OPENED", "CASE_RECORDED"):
                case_state = _case_state(event.note) or case_state or "OPENED"
            if event.kind in shown:
                items.append(
                    TimelineItem(
                        at=from_timestamp(event.meta.event_time),
                        kind=event.kind,
                        actor=event.actor,
                        note=event.note,
                    )
                )
        items.sort(key=lambda i: i.at)
        fact = task_fact(
            task,
            meta.alert_time,
            service.dispatcher.state.clocks[task_id],
            str(meta.evidence.get("kind", "")),
            meta.case_id,
        )
        return TimelineView(
            task_id=task.task_id,
            county=task.county_code,
            route=task.route.value,
            priority=task.priority.value,
            state=task.state.value,
            enterprise_id=task.enterprise_id,
            outlet_id=task.outlet_id,
            raised_at=meta.alert_time,
            alert=meta.evidence,
            case_id=meta.case_id,
            case_state=case_state,
            items=items,
            stages={stage: fact.durations[col] for stage, _, _, col in REPORT_STAGES},
        )

    @router.get(
        "/v1/reports/tasks/{task_id}/timeline",
        responses={404: {}},
        summary="One task from alarm to case: alert, dispatch, each acceptance, arrivals, "
        "samples, completion, the case",
    )
    async def get_timeline(task_id: str, p: Manager) -> TimelineView:
        return timeline(p, task_id)

    @router.get("/v1/reports/map", summary="Outlets with their open tasks, for the map")
    async def get_map(p: Manager) -> MapView:
        prefixes = scope_prefixes(p, None)
        rows = await asyncio.to_thread(queries.open_tasks, prefixes)
        order = ["CREATED", "ASSIGNING", "ASSIGNED", "EN_ROUTE", "ON_SITE", "SAMPLING"]
        per_outlet: dict[str, list[str]] = {}
        for r in rows:
            per_outlet.setdefault(r["outlet_id"], []).append(r["state"])
        points = []
        entities = service.reference.entities
        for oid, outlet in sorted(entities.get("outlet", {}).items()):
            ent = entities.get("enterprise", {}).get(str(outlet.get("enterprise", ""))) or {}
            county = str(outlet.get("county") or ent.get("county") or "")
            if not any(county.startswith(j) for j in prefixes):
                continue
            if outlet.get("lat") is None or outlet.get("lon") is None:
                continue
            states = per_outlet.get(oid, [])
            worst = min(states, key=lambda s: order.index(s) if s in order else 99, default="")
            points.append(
                MapPoint(
                    id=oid,
                    name=str(outlet.get("name") or oid),
                    county=county,
                    lat=float(outlet["lat"]),
                    lon=float(outlet["lon"]),
                    open_tasks=len(states),
                    worst_state=worst,
                )
            )
        return MapView(datum="WGS-84 (registry coordinates, as GPS reports them)", outlets=points)

    # ---- cases and legal clocks, read from casefile over gRPC acting for the manager ----------

    def reader() -> Any:
        client = service.casefile
        if not hasattr(client, "cases_due"):
            raise HTTPException(503, "casefile is not connected to this dispatch")
        return client

    @router.get(
        "/v1/reports/cases",
        responses={502: {}, 503: {}},
        summary="Cases with a legal clock due within N days, overdue first (from casefile)",
    )
    async def get_cases(
        p: Manager,
        due_within_days: Annotated[int, Query(ge=1, le=365)] = 7,
    ) -> CasesView:
        try:
            cases = await reader().cases_due(
                person_id=p.person_id, jurisdiction=p.jurisdiction, due_within_days=due_within_days
            )
        except grpc.aio.AioRpcError as e:
            raise _from_grpc(e) from e
        return CasesView(due_within_days=due_within_days, cases=[case_row(c) for c in cases])

    @router.get(
        "/v1/reports/cases/{case_id}",
        responses={404: {}, 502: {}, 503: {}},
        summary="One case: its records, legal clocks and audit verification (from casefile)",
    )
    async def get_case(case_id: str, p: Manager) -> CaseDetailView:
        try:
            case, verified = await reader().case_for_manager(
                person_id=p.person_id, jurisdiction=p.jurisdiction, case_id=case_id
            )
        except grpc.aio.AioRpcError as e:
            raise _from_grpc(e) from e
        return CaseDetailView(
            **case_row(case).model_dump(),
            records=case_records(case),
            audit=AuditView(
                ok=verified.ok,
                checked=verified.entries,
                problem=verified.problem,
                detail=verified.detail,
            ),
            bundle_command=f"liandong casefile export {case.case_id}",
            bundle_url=f"/v1/reports/cases/{case.case_id}/bundle",
        )

    @router.get(
        "/v1/reports/cases/{case_id}/bundle",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"application/x-tar": {}},
                "description": "the case's signed bundle (liandong casefile verify --bundle)",
            },
            404: {},
            502: {},
            503: {},
        },
        summary="One case's signed bundle as a tar, exported by casefile (audited there)",
    )
    async def get_case_bundle(case_id: str, p: Manager) -> StreamingResponse:
        call = reader().bundle_for_manager(
            person_id=p.person_id, jurisdiction=p.jurisdiction, case_id=case_id
        )
        # the first chunk before the answer starts: casefile's refusal becomes its status
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as e:
            raise _from_grpc(e) from e
        if first is grpc.aio.EOF:
            call.cancel()
            raise HTTPException(502, "casefile: the bundle stream ended before its first chunk")

        async def body() -> AsyncIterable[bytes]:
            try:
                yield first.data
                # read() throughout: grpc.aio allows no mix of read() and iteration on a call
                while (chunk := await call.read()) is not grpc.aio.EOF:
                    yield chunk.data
            finally:
                call.cancel()  # a client gone half-way stops casefile's stream too

        name = first.file_name or f"{case_id}.tar"
        return StreamingResponse(
            body(),
            media_type="application/x-tar",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Content-Length": str(first.size_bytes),
                "X-Content-SHA256": first.sha256,
            },
        )

    # ---- exports ---------------------------------------------------------------------------

    def table(p: Principal, name: str, w: Window, by: str, bucket: str) -> exports.Table:
        if name == "tasks":
            rows = queries.tasks_in(scope_prefixes(p, w.county), w.since, w.until, limit=100_000)
            head = ["task_id", "county", "priority", "route", "state", "alert_kind", "raised_at"]
            cols = [c for *_, c in REPORT_STAGES]
            return exports.Table("tasks", head + cols, [[r[c] for c in head + cols] for r in rows])
        report = response_times(p, w, by, bucket)
        if name == "ranking":
            return exports.Table(
                "ranking",
                ["rank", "county", "tasks", "open_tasks", "response_p50_s", "response_p90_s",
                 "total_p50_s", "sla_breaches", "breach_rate"],
                [list(r.model_dump().values()) for r in report.ranking],
            )  # fmt: skip
        groups = report.series if name == "series" else report.groups
        first = "bucket" if name == "series" else by
        return exports.Table(
            name,
            [first, "tasks", "open_tasks", "stage", "count", "p50_s", "p90_s", "max_s",
             "breaches_accept", "breaches_arrive", "breaches_finish"],
            [
                [g.group, g.tasks, g.open_tasks, s.stage, s.count, s.p50_s, s.p90_s, s.max_s,
                 g.sla_breaches.get("ACCEPT", 0), g.sla_breaches.get("ARRIVE", 0),
                 g.sla_breaches.get("FINISH", 0)]
                for g in groups
                for s in g.stages
            ],
        )  # fmt: skip

    @router.get(
        "/v1/reports/export/{name}.{fmt}",
        summary="A console table as CSV or XLSX: response-times, series, ranking or tasks",
        responses={404: {}},
    )
    async def export(
        name: str,
        fmt: str,
        p: Manager,
        w: Win,
        by: Annotated[By, Query()] = "county",
        bucket: Annotated[Bucket, Query()] = "day",
    ) -> Response:
        if name not in ("response-times", "series", "ranking", "tasks"):
            raise HTTPException(404, f"no table {name!r}: response-times, series, ranking, tasks")
        if fmt not in exports.FORMATS:
            raise HTTPException(404, f"no format {fmt!r}: csv or xlsx")
        t = await asyncio.to_thread(table, p, name, w, by, bucket)
        body = exports.render(t, fmt)
        # the days covered, in CST: since's day to the day before an exclusive midnight `until`
        first = w.since.astimezone(CST).strftime("%Y%m%d")
        last = (w.until - timedelta(microseconds=1)).astimezone(CST).strftime("%Y%m%d")
        stamp = f"{first}-{last}"
        return Response(
            body,
            media_type=exports.FORMATS[fmt],
            headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt}"'},
        )

    return router


class CaseClockView(BaseModel):
    name: str
    state: str = Field(description="RUNNING MET BREACHED EXTENDED PAUSED LAPSED")
    due_at: datetime | None
    due_date: str = Field(description="last allowed local (CST) day")
    remaining_s: float


class CaseRowView(BaseModel):
    case_id: str
    county: str
    state: str
    enterprise_id: str
    task_id: str
    overdue: bool = Field(description="a legal clock is breached")
    clocks: list[CaseClockView] = Field(description="overdue first, then by due time")


class CasesView(BaseModel):
    due_within_days: int
    cases: list[CaseRowView]


class CaseRecordView(BaseModel):
    kind: str
    at: datetime | None
    actor: str
    summary: str


class AuditView(BaseModel):
    ok: bool
    checked: int
    problem: str
    detail: str


class CaseDetailView(CaseRowView):
    records: list[CaseRecordView]
    audit: AuditView
    bundle_command: str = Field(description="how an operator exports the case's bundle")
    bundle_url: str = Field(description="where the signed-in manager downloads the bundle")


def _at(ts: Any) -> datetime | None:
    return from_timestamp(ts) if ts is not None and (ts.seconds or ts.nanos) else None


def case_row(case: casefile_pb2.Case) -> CaseRowView:
    clocks = [
        CaseClockView(
            name=c.name,
            state=c.state,
            due_at=_at(c.due_at),
            due_date=c.due_date,
            remaining_s=c.remaining.seconds + c.remaining.nanos / 1e9,
        )
        for c in case.clocks
        if c.state in ("RUNNING", "BREACHED", "EXTENDED", "PAUSED")
    ]
    clocks.sort(key=lambda c: (c.state != "BREACHED", c.remaining_s))
    return CaseRowView(
        case_id=case.case_id,
        county=case.county,
        state=case.state,
        enterprise_id=case.enterprise_id,
        task_id=case.task_id,
        overdue=any(c.state == "BREACHED" for c in clocks),
        clocks=clocks,
    )


# the parts of a case that are records of what was done, in the order a case goes
RECORD_FIELDS = ("arrival", "inspection", "samples", "evidence", "findings", "notice", "hearing",
                 "decision", "decision_service", "enforcement", "transfer", "closure")  # fmt: skip


def case_records(case: casefile_pb2.Case) -> list[CaseRecordView]:
    out = [CaseRecordView(kind="opened", at=_at(case.opened_at), actor="", summary=case.summary)]
    for name in RECORD_FIELDS:
        value: Any = getattr(case, name, None)
        if value is None:
            continue
        if hasattr(value, "ListFields"):  # one message: present only when set
            items = [value] if value.ListFields() else []
        else:
            items = list(value)
        for item in items:
            body = json_format.MessageToDict(item)
            stamp = next(
                (v for k, v in body.items() if k.endswith("At") and isinstance(v, str)), None
            )
            actor = next((str(body[k]) for k in ("by", "recordedBy", "actor") if k in body), "")
            summary = json.dumps(body, ensure_ascii=False)
            out.append(
                CaseRecordView(
                    kind=name,
                    at=datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None,
                    actor=actor,
                    summary=summary[:500],
                )
            )
    return out


def _from_grpc(e: grpc.aio.AioRpcError) -> HTTPException:
    status = {
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.INVALID_ARGUMENT: 422,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    }.get(e.code(), 502)
    return HTTPException(status, f"casefile: {e.details()}")


def _case_state(note: str) -> str:
    """CASE_RECORDED notes end with the case's state ("...: case C1 is ON_SITE")."""
    _, sep, state = note.rpartition(" is ")
    return state.strip() if sep else ""
