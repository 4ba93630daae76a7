"""The phone API: tasks, answers, status with position, and live push over server-sent events.

Bearer tokens (JWT HS256, see liandong.tokens.phone) carry the person id, role and
jurisdiction. Field staff (ENFORCEMENT, MONITORING, OPERATIONS) see only the tasks they hold
or were offered; a DUTY_MANAGER sees every task inside their jurisdiction. Status codes:
401 no or bad token, 403 not yours (a check-in only by a member of the team), 404 unknown
task, 409 not allowed in the task's current state (with the reason; also completing a joint
inspection before two enforcement officers have checked in), 422 check-in outside the
geofence or an invalid body. Everyone checks in from their own phone (status ON_SITE): the
task's presence list is who did, and a repeated check-in answers as the first did.

GET /v1/reports/... (entrypoints/reports_api) is for duty managers only (field staff 403):
response times, overview, timelines, map and exports over the tasks of their jurisdiction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from dispatch.adapters.credentials import CredentialStore
from dispatch.adapters.field_files import FieldFiles
from dispatch.adapters.oidc import OidcClient
from dispatch.adapters.upload_spool import UploadSpool
from dispatch.domain.acceptance import NotOffered
from dispatch.domain.dispatcher import NotOnTeam, TooFewOfficersPresent, UnknownTask
from dispatch.domain.roster import normalise_code
from dispatch.domain.status_rights import NotPermitted, ReasonRequired
from dispatch.domain.tasks import IllegalTransition, OutsideGeofence, Task, TaskState
from dispatch.entrypoints.auth_api import auth_router
from dispatch.entrypoints.dispatch_service import DispatchService, NotAnswerable
from dispatch.entrypoints.evidence_api import evidence_router
from dispatch.entrypoints.field_api import FieldCaseFile, field_router
from dispatch.entrypoints.oidc_api import oidc_router
from liandong.tokens.phone import InvalidToken, Principal, verify

# A stream re-reads the log at least this often even without a wake-up (belt and braces).
REREAD_S = 30.0
# SSE ids are 64-bit database ids; a bigger Last-Event-ID cannot be a real one
MAX_EVENT_ID = 2**63 - 1


class Coordinates(BaseModel):
    lat: float
    lon: float


class Navigation(BaseModel):
    geo: str = Field(description="RFC 5870 geo: URI, opens the phone's map app")
    amap: str = Field(description="Amap (高德) web marker, WGS-84 input")
    baidu: str = Field(description="Baidu map web marker, WGS-84 input")


class TeamMemberView(BaseModel):
    person_id: str
    name: str
    role: str
    slot_id: str
    status: str = Field(description="OFFERED, ACCEPTED")


class PresenceView(BaseModel):
    person_id: str
    name: str
    role: str
    checked_in_at: datetime
    distance_m: float = Field(description="from the outlet, at the check-in")
    position: Coordinates


class StepView(BaseModel):
    seq: int
    from_state: str | None
    to_state: str
    actor: str
    at: datetime
    note: str
    position: Coordinates | None


class ClockView(BaseModel):
    clock: str
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None
    breached: bool


class TaskSummary(BaseModel):
    task_id: str
    route: str
    priority: str
    state: str
    enterprise_id: str
    enterprise_name: str = ""
    outlet_id: str
    county: str
    created_at: datetime
    case_id: str
    my_slot: str | None = Field(None, description="the caller's slot and its status, if any")


class PlaceView(BaseModel):
    id: str
    name: str
    address: str = ""


class TaskDetail(TaskSummary):
    alert_ids: list[str]
    alert_time: datetime
    enterprise: PlaceView
    outlet: PlaceView
    evidence: dict[str, Any]
    coordinates: Coordinates | None
    navigation: Navigation | None
    team: list[TeamMemberView]
    presence: list[PresenceView] = Field(
        description="who checked in on site, from their own phone, in the order they came"
    )
    history: list[StepView]
    sla: list[ClockView]
    policy_version: str
    geofence_m: float = Field(description="check-in radius around the outlet")


class DeclineBody(BaseModel):
    reason: str = Field("", max_length=500)


class FieldStatusBody(BaseModel):
    status: Literal["EN_ROUTE", "ON_SITE", "SAMPLING", "COMPLETED"]
    # strict: a JSON number only (not true/false or "1.5")
    lat: float | None = Field(None, ge=-90, le=90, strict=True)
    lon: float | None = Field(None, ge=-180, le=180, strict=True)
    note: str = Field("", max_length=4000, description="what was found or done, for the case")


class CancelBody(BaseModel):
    status: Literal["CANCELLED"]
    # strict: a JSON number only (not true/false or "1.5")
    lat: float | None = Field(None, ge=-90, le=90, strict=True)
    lon: float | None = Field(None, ge=-180, le=180, strict=True)
    note: str = Field(
        min_length=1,
        max_length=4000,
        pattern=r"\S",
        description="why the duty manager cancels the task (required)",
    )


StatusBody = Annotated[FieldStatusBody | CancelBody, Field(discriminator="status")]


class Health(BaseModel):
    status: str
    tasks: int
    policy_version: str


def navigation(lat: float, lon: float, label: str) -> Navigation:
    name = quote(label)
    return Navigation(
        geo=f"geo:{lat:.6f},{lon:.6f}?q={lat:.6f},{lon:.6f}({name})",
        amap=f"https://uri.amap.com/marker?position={lon:.6f},{lat:.6f}&name={name}&coordinate=wgs84",
        baidu=(
            f"https://api.map.baidu.com/marker?location={lat:.6f},{lon:.6f}&title={name}"
            f"&content={name}&coord_type=wgs84&output=html&src=liandong"
        ),
    )


def _within(county: str, jurisdiction: tuple[str, ...]) -> bool:
    try:
        code = normalise_code(county)
        return any(code.startswith(normalise_code(j)) for j in jurisdiction)
    except ValueError:
        return False


_bearer = HTTPBearer(auto_error=False, description="JWT HS256: sub, role, jurisdiction")


def principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if creds is None:
        raise HTTPException(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
    try:
        return verify(creds.credentials, request.app.state.signing_key)
    except InvalidToken as e:
        raise HTTPException(
            401, f"invalid token: {e}", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from e


class ErrorView(BaseModel):
    detail: Any = Field(description="the reason (a text, or the validation errors)")


_ERROR_TEXT = {
    400: "the body is not JSON",
    401: "no bearer token, or an invalid one (`WWW-Authenticate` says why)",
    403: "the caller may not do this",
    404: "no such task",
    409: "the task is not in a state for this",
    422: "invalid parameters or body, with the reason",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for the error statuses an operation answers, each `{detail}`."""
    # errors are JSON also on the event stream (whose 200 is text/event-stream)
    return {
        c: {
            "model": ErrorView,
            "description": _ERROR_TEXT[c],
            "content": {"application/json": {}},
        }
        for c in codes
    }


def document_body_errors(app: FastAPI) -> None:
    """FastAPI answers 400 to a body that is not JSON before any handler runs: the OpenAPI
    document says so for every operation with a JSON body (routes added later included)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                body = op.get("requestBody", {}) if isinstance(op, dict) else {}
                if "application/json" in body.get("content", {}):
                    op.setdefault("responses", {}).setdefault(
                        "400",
                        {
                            "description": _ERROR_TEXT[400],
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/ErrorView"}
                                }
                            },
                        },
                    )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def allow_every_method_of_the_path(app: FastAPI) -> None:
    """A 405 names every method the path has: Starlette's names only the first route whose
    path matched (HEAD of /v1/uploads/{id}, not its PATCH), and RFC 9110 wants them all."""

    @app.exception_handler(StarletteHTTPException)
    async def with_allow(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            methods: set[str] = set()
            for route in app.router.routes:
                match, _ = route.matches(request.scope)
                if match is not Match.NONE:
                    methods |= getattr(route, "methods", None) or set()
            exc = StarletteHTTPException(405, exc.detail, {"Allow": ", ".join(sorted(methods))})
        return await http_exception_handler(request, exc)


def resume_point(
    # typed `int` (not `int | None`) so the OpenAPI document declares an integer, not "null"
    last_event_id: Annotated[
        int,  # noqa: RUF013
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=MAX_EVENT_ID,
            description="resume after this notification id (what the browser's EventSource sends)",
        ),
    ] = None,  # type: ignore[assignment]
    after: Annotated[
        int,  # noqa: RUF013
        Query(ge=0, le=MAX_EVENT_ID, description="resume after this id (clients without headers)"),
    ] = None,  # type: ignore[assignment]
) -> int:
    """Where a reconnecting stream resumes: the Last-Event-ID header wins over `after`."""
    if last_event_id is not None:
        return last_event_id
    return after or 0


Caller = Annotated[Principal, Depends(principal)]


def create_app(
    service: DispatchService,
    signing_key: str | None = None,
    web_dist: Path | None = None,
    *,
    credentials: CredentialStore | None = None,
    casefile: FieldCaseFile | None = None,
    uploads: UploadSpool | None = None,
    oidc: OidcClient | None = None,
) -> FastAPI:
    """`credentials` default to dispatch's own database; `casefile` (for the on-site records)
    to the service's casefile client when it can pass them on; `uploads`: where partial
    evidence uploads are kept (the evidence routes need it); `oidc`: the OpenID Connect
    provider people sign in through, when one is configured."""
    app = FastAPI(
        title="Liandong dispatch phone API",
        version="1.0.0",
        description=__doc__,
    )
    app.state.signing_key = signing_key

    @app.middleware("http")
    async def fresh_state(request: Request, call_next: Any) -> Any:
        # another replica may have stored steps this one has not seen (issue 13, item 10)
        if request.url.path.startswith("/v1/"):
            await service.refresh()
        return await call_next(request)

    def may_see(p: Principal, task: Task) -> bool:
        acc = service.dispatcher.state.acceptance[task.task_id]
        if p.person_id in acc.members():
            return True
        return p.role.manager and (
            acc.manager_id == p.person_id or _within(task.county_code, p.jurisdiction)
        )

    def visible(p: Principal, task_id: str) -> Task:
        try:
            task = service.task(task_id)
        except UnknownTask as e:
            raise HTTPException(404, str(e)) from e
        if not may_see(p, task):
            raise HTTPException(403, f"task {task_id} is not yours to see")
        return task

    def my_slot(p: Principal, task_id: str) -> str | None:
        for s in service.dispatcher.state.acceptance[task_id].slots:
            if s.person_id == p.person_id:
                return f"{s.slot_id} {s.status.value}"
        return None

    def summary(p: Principal, task: Task) -> TaskSummary:
        return TaskSummary(
            task_id=task.task_id,
            route=task.route.value,
            priority=task.priority.value,
            state=task.state.value,
            enterprise_id=task.enterprise_id,
            enterprise_name=str(
                (service.reference.enterprise(task.enterprise_id) or {}).get("name", "")
            ),
            outlet_id=task.outlet_id,
            county=task.county_code,
            created_at=task.created_at,
            case_id=service.metas[task.task_id].case_id,
            my_slot=my_slot(p, task.task_id),
        )

    def detail(p: Principal, task: Task) -> TaskDetail:
        meta = service.metas[task.task_id]
        acc = service.dispatcher.state.acceptance[task.task_id]
        roster = service.dispatcher.roster
        ent = service.reference.enterprise(task.enterprise_id) or {}
        out = service.reference.outlet(task.outlet_id) or {}
        lat = task.lat if task.lat is not None else out.get("lat")
        lon = task.lon if task.lon is not None else out.get("lon")
        label = str(out.get("name") or ent.get("name") or task.outlet_id)
        has_pos = lat is not None and lon is not None
        clocks = service.dispatcher.state.clocks[task.task_id].clocks.values()
        return TaskDetail(
            **summary(p, task).model_dump(),
            alert_ids=list(task.alert_ids),
            alert_time=meta.alert_time,
            enterprise=PlaceView(
                id=task.enterprise_id,
                name=str(ent.get("name", "")),
                address=str(ent.get("address", "")),
            ),
            outlet=PlaceView(id=task.outlet_id, name=str(out.get("name", ""))),
            evidence=meta.evidence,
            coordinates=Coordinates(lat=float(lat), lon=float(lon)) if has_pos else None,  # type: ignore[arg-type]
            navigation=navigation(float(lat), float(lon), label) if has_pos else None,  # type: ignore[arg-type]
            team=[
                TeamMemberView(
                    person_id=s.person_id,
                    name=(person.name if (person := roster.get(s.person_id)) else ""),
                    role=s.role.value,
                    slot_id=s.slot_id,
                    status=s.status.value,
                )
                for s in acc.slots
                if s.person_id is not None
            ],
            presence=[
                PresenceView(
                    person_id=c.person_id,
                    name=(person.name if (person := roster.get(c.person_id)) else ""),
                    role=c.role.value,
                    checked_in_at=c.at,
                    distance_m=round(c.distance_m, 1),
                    position=Coordinates(lat=c.position[0], lon=c.position[1]),
                )
                for c in task.presence.check_ins
            ],
            history=[
                StepView(
                    seq=e.seq,
                    from_state=e.from_state.value if e.from_state else None,
                    to_state=e.to_state.value,
                    actor=e.actor,
                    at=e.at,
                    note=e.note,
                    position=Coordinates(lat=e.position[0], lon=e.position[1])
                    if e.position
                    else None,
                )
                for e in task.history
            ],
            sla=[
                ClockView(
                    clock=c.name.value,
                    started_at=c.started_at,
                    due_at=c.due_at,
                    stopped_at=c.stopped_at,
                    breached=c.breach_emitted,
                )
                for c in clocks
            ],
            policy_version=meta.policy_version,
            geofence_m=service.policy.geofence_m,
        )

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> Health:
        return Health(
            status="ok",
            tasks=len(service.dispatcher.state.tasks),
            policy_version=service.policy.version,
        )

    @app.get(
        "/v1/me/tasks",
        tags=["tasks"],
        responses=errors(401, 422),
        summary="Tasks I hold or was offered (managers: my jurisdiction)",
    )
    async def my_tasks(
        p: Caller,
        include_closed: Annotated[bool, Query(description="also completed/cancelled")] = False,
    ) -> list[TaskSummary]:
        tasks = [
            t
            for t in service.dispatcher.state.tasks.values()
            if (include_closed or t.open) and may_see(p, t)
        ]
        tasks.sort(key=lambda t: (t.priority.rank, t.created_at, t.task_id))
        return [summary(p, t) for t in tasks]

    @app.get(
        "/v1/tasks/{task_id}",
        tags=["tasks"],
        responses=errors(401, 403, 404),
        summary="Task detail: enterprise, outlet, evidence, coordinates, navigation, team, history",
    )
    async def get_task(task_id: str, p: Caller) -> TaskDetail:
        return detail(p, visible(p, task_id))

    def _conflict(e: Exception) -> HTTPException:
        if isinstance(e, UnknownTask):
            return HTTPException(404, str(e))
        if isinstance(e, NotOffered | NotOnTeam | NotPermitted):
            return HTTPException(403, str(e))
        if isinstance(e, ReasonRequired):
            return HTTPException(422, str(e))
        if isinstance(e, OutsideGeofence):
            return HTTPException(
                422,
                {"reason": str(e), "distance_m": e.distance_m, "geofence_m": e.radius_m},
            )
        return HTTPException(409, str(e))

    _answers = (
        UnknownTask,
        NotOffered,
        NotOnTeam,
        NotAnswerable,
        IllegalTransition,
        OutsideGeofence,
        TooFewOfficersPresent,
        NotPermitted,
        ReasonRequired,
    )

    @app.post(
        "/v1/tasks/{task_id}/accept",
        tags=["answers"],
        responses=errors(400, 401, 403, 404, 409, 422),
    )
    async def accept(task_id: str, p: Caller) -> TaskDetail:
        visible(p, task_id)
        try:
            await service.accept(task_id, p.person_id)
        except _answers as e:
            raise _conflict(e) from e
        return detail(p, service.task(task_id))

    @app.post(
        "/v1/tasks/{task_id}/decline",
        tags=["answers"],
        responses=errors(400, 401, 403, 404, 409, 422),
    )
    async def decline(task_id: str, body: DeclineBody, p: Caller) -> TaskSummary:
        task = visible(p, task_id)
        try:
            await service.decline(task_id, p.person_id, body.reason)
        except _answers as e:
            raise _conflict(e) from e
        return summary(p, task)

    @app.post(
        "/v1/tasks/{task_id}/status",
        tags=["answers"],
        responses=errors(400, 401, 403, 404, 409, 422),
        summary=(
            "Move the task on; ON_SITE is the caller's own check-in, with a position inside "
            "the outlet's geofence"
        ),
    )
    async def update_status(task_id: str, body: StatusBody, p: Caller) -> TaskDetail:
        visible(p, task_id)
        position = (body.lat, body.lon) if body.lat is not None and body.lon is not None else None
        try:
            await service.update_status(
                task_id, p.person_id, TaskState(body.status), position, body.note
            )
        except _answers as e:
            raise _conflict(e) from e
        return detail(p, service.task(task_id))

    @app.get(
        "/v1/events",
        response_class=EventSourceResponse,
        tags=["push"],
        summary="Live task notifications (server-sent events), resumable with Last-Event-ID",
        responses=errors(401, 422),
    )
    async def events(
        request: Request,
        p: Caller,
        last: Annotated[int, Depends(resume_point)],
        follow: Annotated[
            bool, Query(description="false: send what is pending and close (polling clients)")
        ] = True,
    ) -> AsyncIterable[ServerSentEvent]:
        with service.hub.subscribe(p.person_id) as woken:
            while True:
                woken.clear()  # cleared before reading: a commit after the read wakes us
                rows = await asyncio.to_thread(service.store.notifications_after, p.person_id, last)
                for n in rows:
                    last = n.id
                    yield ServerSentEvent(id=str(n.id), event=n.kind, data={"id": n.id, **n.body})
                if len(rows) >= 200:
                    continue  # more backlog than one page
                if not follow or await request.is_disconnected():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), REREAD_S)

    credentials = credentials or CredentialStore(service.store.engine)
    app.include_router(
        auth_router(
            credentials,
            lambda person_id: service.dispatcher.roster.get(person_id),
            lambda: app.state.signing_key,
            principal,
            oidc.config if oidc else None,
        )
    )
    if oidc is not None:
        app.include_router(
            oidc_router(
                oidc,
                credentials,
                lambda person_id: service.dispatcher.roster.get(person_id),
                lambda: app.state.signing_key,
            )
        )
    field_casefile = casefile
    if field_casefile is None and hasattr(service.casefile, "field_call"):
        field_casefile = service.casefile  # type: ignore[assignment]
    app.include_router(
        field_router(
            service,
            lambda: field_casefile,
            FieldFiles(service.store.engine),
            visible,
            principal,
        )
    )
    from dispatch.entrypoints.reports_api import reports_router  # it imports this module

    app.include_router(reports_router(service, principal))
    if uploads is not None:
        app.include_router(evidence_router(service, uploads, principal))

    document_body_errors(app)
    allow_every_method_of_the_path(app)
    # The web apps (web/dist: field app at /, console at /console/) share the API's origin, so
    # tokens, SSE and the service worker need no CORS. Mounted last: API routes win.
    if web_dist is not None and (web_dist / "index.html").is_file():
        app.mount("/", StaticFiles(directory=web_dist, html=True), name="web")
    return app
