"""The casefile gRPC server: CaseFile service plus gRPC health checking and reflection.

Status codes: missing/invalid token UNAUTHENTICATED; a role or team that may not act
PERMISSION_DENIED (and the attempt is audited); malformed input INVALID_ARGUMENT; a request
id reused with another payload, or an evidence/sample/finding id already on the case,
ALREADY_EXISTS; unknown case NOT_FOUND; an illegal transition FAILED_PRECONDITION with the
domain's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import message_factory
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from casefile.adapters.codec import LIST_FIELDS, fill_message, from_message, list_field_chunks
from casefile.adapters.evidence_store import EvidenceStore
from casefile.adapters.group_commit import GroupCommitter
from casefile.adapters.store import (
    CaseNotFound,
    CaseStore,
    CaseTampered,
    Denied,
    OpenFields,
    RequestConflict,
    StoredCase,
    WriteJob,
)
from casefile.domain import commands, kinds
from casefile.domain.access import Action, Scope, authorize
from casefile.domain.clocks import LegalClock, clocks
from casefile.domain.errors import (
    AlreadyRecorded,
    ConflictsWithRecord,
    IllegalTransition,
    InvalidCommand,
    NotOnRecord,
)
from casefile.domain.requests import fingerprint
from casefile.entrypoints import reflection
from casefile.entrypoints.bundle_calls import export_bundle
from casefile.entrypoints.evidence_calls import EvidenceCalls
from casefile.evidence_config import EvidenceConfig
from liandong.events import deterministic_id
from liandong.tokens.claims import Principal, Role, Unauthenticated
from liandong.tokens.verifying import AuthConfig, TokenVerifier
from liandong.v1 import casefile_pb2, casefile_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = casefile_pb2.DESCRIPTOR.services_by_name["CaseFile"].full_name

# gRPC method -> domain command (the method is named after the command)
COMMANDS: dict[str, type] = {
    c.__name__: c
    for c in (
        commands.RecordArrival,
        commands.RecordInspection,
        commands.AddEvidence,
        commands.RecordSample,
        commands.HandOffCustody,
        commands.RecordLabResult,
        commands.ConfirmResult,
        commands.RecordFinding,
        commands.FileCase,
        commands.ServeNotice,
        commands.RequestHearing,
        commands.ScheduleHearing,
        commands.RecordHearing,
        commands.DecidePenalty,
        commands.ServeDecision,
        commands.RecordEnforcement,
        commands.TransferCase,
        commands.CloseCase,
        commands.ExtendClock,
        commands.PauseClock,
        commands.ResumeClock,
        commands.RecordSiteNote,
        commands.RecordTaskCancelled,
    )
}
OFFICER_ROLES = {"ENFORCEMENT", "ENFORCEMENT_OFFICER"}
MONITORING_ROLES = {"MONITORING", "MONITORING_STAFF"}
ANONYMOUS = Principal("anonymous", frozenset({Role.ADMIN}))


def case_id_for_task(task_id: str) -> str:
    # Deterministic: the same task always names the same case.
    return "case-" + deterministic_id("case", task_id)[:18]


class ChangeFeed:
    """Wakes WatchCase streams when a case changes in this process (others are polled)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def notify(self, case_ids: set[str] | list[str]) -> None:
        for case_id in case_ids:
            waiting = self._events.pop(case_id, None)
            if waiting is not None:
                waiting.set()

    async def wait(self, case_id: str, timeout: float) -> None:
        waiting = self._events.setdefault(case_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiting.wait(), timeout)


def _fingerprint(request: Any) -> str:
    """SHA-256 of the request without its request id, in protobuf's deterministic encoding
    (same message type and field values -> same bytes, within one schema version)."""
    body = type(request)()
    body.CopyFrom(request)
    body.ClearField("request_id")
    return fingerprint(body.SerializeToString(deterministic=True))


class CaseFileService(casefile_pb2_grpc.CaseFileServicer):
    def __init__(
        self,
        store: CaseStore,
        auth: AuthConfig | None = None,
        *,
        feed: ChangeFeed | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        watch_poll_s: float = 1.0,
        evidence: tuple[EvidenceStore, EvidenceConfig] | None = None,
    ) -> None:
        self.store = store
        self.evidence = EvidenceCalls(self, *evidence) if evidence is not None else None
        self.auth = auth or AuthConfig(required=True)
        self.verifier = TokenVerifier(self.auth)
        self.feed = feed or ChangeFeed()
        self.now = now
        self.watch_poll_s = watch_poll_s
        self.committer = GroupCommitter(store)

    # ---- helpers ----------------------------------------------------------------------------

    async def _principal(
        self, context: grpc.aio.ServicerContext, *, write: bool, opened_by: str = ""
    ) -> Principal:
        metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
        header = metadata.get("authorization", "")
        if header:
            scheme, _, token = str(header).partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "expected: Bearer <JWT>")
            try:
                if self.auth.jwks_url:
                    return await asyncio.to_thread(self.verifier.verify, token.strip())
                return self.verifier.verify(token.strip())
            except Unauthenticated as err:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(err))
        if self.auth.required:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a bearer token is required")
        if not write:
            return ANONYMOUS
        # a write without a verified token is impossible in every mode: an opened_by naming
        # a service proves nothing (it would put that service's name in the audit chain)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a write needs a bearer token")
        raise AssertionError("unreachable")

    def case_reply(
        self, sc: StoredCase, scope: Scope, now: datetime, legal: list[LegalClock] | None = None
    ) -> bytes:
        """The encoded Case reply of a write; the list items' encodings come from the memo.
        `legal`: the case's clocks at `now` when the caller has them already."""
        if sc.memo is None or scope is not Scope.FULL:
            return self.case_message(sc, scope, now, legal=legal).SerializeToString()
        msg = self.case_message(sc, scope, now, skip=LIST_FIELDS, legal=legal)
        return msg.SerializeToString() + list_field_chunks(casefile_pb2.Case, sc.case, sc.memo)

    def case_message(
        self,
        sc: StoredCase,
        scope: Scope,
        now: datetime,
        skip: frozenset[str] = frozenset(),
        legal: list[LegalClock] | None = None,
    ) -> casefile_pb2.Case:
        case = sc.case
        msg = casefile_pb2.Case(
            task_id=sc.task_id,
            alert_ids=sc.alert_ids,
            county=case.county_code,
            team=[casefile_pb2.Party(**p) for p in sc.team],
            summary=sc.summary,
            opened_by=sc.opened_by,
            view=scope.value if scope is Scope.SAMPLES_AND_RESULTS else Scope.FULL.value,
        )
        if legal is None:
            legal = clocks(case, now, self.store.calendar)
        if scope is Scope.SAMPLES_AND_RESULTS:
            for name in ("case_id", "state", "enterprise_id", "outlet_id", "version"):
                value = getattr(case, name)
                setattr(msg, name, value.value if isinstance(value, kinds.State) else value)
            msg.discovered_at.FromDatetime(case.discovered_at)
            msg.opened_at.FromDatetime(case.opened_at)
            msg.officers.extend(case.officers)
            msg.monitoring_staff.extend(case.monitoring_staff)
            for sample in case.samples:
                fill_message(msg.samples.add(), sample)
            legal = [c for c in legal if c.clock is kinds.ClockName.SAMPLE_HOLDING]
        else:
            fill_message(msg, case, skip)
        for clock in legal:
            fill_message(msg.clocks.add(), clock)
        return msg

    async def _run(self, context: grpc.aio.ServicerContext, job: Callable[[], WriteJob]) -> Any:
        """Commits the write `job()` builds (grouped with concurrent ones) and maps
        domain/store errors to status codes."""
        code: grpc.StatusCode
        try:
            return await self.committer.write(job())
        except CaseNotFound as err:
            code, detail = grpc.StatusCode.NOT_FOUND, str(err)
        except Denied as err:
            code, detail = grpc.StatusCode.PERMISSION_DENIED, err.reason
        except (IllegalTransition, ConflictsWithRecord) as err:
            code, detail = grpc.StatusCode.FAILED_PRECONDITION, str(err)
        except NotOnRecord as err:
            code, detail = grpc.StatusCode.NOT_FOUND, str(err)
        except (AlreadyRecorded, RequestConflict) as err:
            # a conflict with what is on record, not a malformed request: the phone API's 409
            code, detail = grpc.StatusCode.ALREADY_EXISTS, str(err)
        except (InvalidCommand, ValueError) as err:
            code, detail = grpc.StatusCode.INVALID_ARGUMENT, str(err)
        await context.abort(code, detail)

    async def _readable(
        self, context: grpc.aio.ServicerContext, principal: Principal, case_id: str, action: Action
    ) -> tuple[StoredCase, Scope]:
        if not case_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "case_id is required")
        try:
            sc = await asyncio.to_thread(self.store.get, case_id)
        except CaseTampered as err:
            log.error("refused to serve %s", err)
            await context.abort(grpc.StatusCode.DATA_LOSS, str(err))
        if sc is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no case {case_id}")
        assert sc is not None
        decision = authorize(principal, action, sc.case)
        if not decision.allowed:
            await self.committer.write(
                self.store.denial_job(
                    principal, action.value, case_id, decision.reason, "", self.now()
                )
            )
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, decision.reason)
        return sc, decision.scope

    # ---- calls ------------------------------------------------------------------------------

    async def OpenCase(
        self, request: casefile_pb2.OpenCaseRequest, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        principal = await self._principal(context, write=True, opened_by=request.opened_by)
        missing = [f for f in ("request_id", "task_id", "enterprise_id") if not getattr(request, f)]
        if missing:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"missing {', '.join(missing)}")
        if not request.team:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "a case needs its inspection team"
            )
        now = self.now()
        roles = [(p.person_id, p.role.upper()) for p in request.team]
        command = commands.OpenCase(
            case_id=case_id_for_task(request.task_id),
            source_ref=request.task_id,
            enterprise_id=request.enterprise_id,
            outlet_id=request.outlet_id,
            county_code=request.county,
            discovered_at=request.discovered_at.ToDatetime(tzinfo=UTC)
            if request.HasField("discovered_at")
            else now,
            officers=tuple(p for p, r in roles if r in OFFICER_ROLES),
            monitoring_staff=tuple(p for p, r in roles if r in MONITORING_ROLES),
        )
        fields = OpenFields(
            task_id=request.task_id,
            alert_ids=list(request.alert_ids),
            team=[{"person_id": p.person_id, "name": p.name, "role": p.role} for p in request.team],
            summary=request.summary,
            opened_by=request.opened_by or principal.subject,
        )
        result = await self._run(
            context,
            lambda: self.store.open_job(
                principal=principal,
                request_id=request.request_id,
                fingerprint=_fingerprint(request),
                command=command,
                fields=fields,
                now=now,
                respond=lambda sc, scope, legal: self.case_reply(sc, scope, now, legal),
            ),
        )
        self.feed.notify([command.case_id])
        return result  # type: ignore[no-any-return]  # encoded Case, sent as is

    async def _write(
        self,
        name: str,
        request: Any,
        context: grpc.aio.ServicerContext,
        build: Callable[[Any], Any] | None = None,
        team: list[dict[str, str]] | None = None,
    ) -> casefile_pb2.Case:
        """`build` turns the request into the domain command when the generic mapping cannot
        (UpdateTeam's parties); `team` is stored beside the case (UpdateTeam)."""
        principal = await self._principal(context, write=True)
        if not request.request_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "request_id is required")
        if not request.case_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "case_id is required")
        try:
            command = build(request) if build else from_message(COMMANDS[name], request)
        except InvalidCommand as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        now = self.now()
        result = await self._run(
            context,
            lambda: self.store.command_job(
                principal=principal,
                request_id=request.request_id,
                fingerprint=_fingerprint(request),
                case_id=request.case_id,
                command=command,
                now=now,
                respond=lambda sc, scope, legal: self.case_reply(sc, scope, now, legal),
                team=team,
            ),
        )
        self.feed.notify([request.case_id])
        return result  # type: ignore[no-any-return]  # encoded Case, sent as is

    async def GetCase(
        self, request: casefile_pb2.GetCaseRequest, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        principal = await self._principal(context, write=False)
        sc, scope = await self._readable(context, principal, request.case_id, Action.READ)
        return self.case_message(sc, scope, self.now())

    async def ListCases(
        self, request: casefile_pb2.ListCasesRequest, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.ListCasesResponse:
        principal = await self._principal(context, write=False)
        size = request.page_size or 50
        if not 0 < size <= 500:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must be 1..500")
        if request.state and request.state not in kinds.State.__members__:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"state {request.state!r} is not a case state ({', '.join(kinds.State)})",
            )
        if request.county and not (request.county.isascii() and request.county.isdigit()):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"county {request.county!r} is not a division code (digits, e.g. 3201)",
            )
        listing = authorize(principal, Action.LIST, None)
        if not listing.allowed:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, listing.reason)
        if request.due_within_days < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "due_within_days must be >= 0")
        now = self.now()
        listed = asyncio.to_thread(
            lambda: self.store.list_cases(
                scope=listing.scope,
                # a service reading for a manager lists within the manager's jurisdiction
                principal=principal.on_behalf_of or principal,
                state=request.state,
                county=request.county,
                enterprise_id=request.enterprise_id,
                outlet_id=request.outlet_id,
                limit=size + 1,
                after=request.page_token,
                due_within_days=request.due_within_days,
                now=now,
            )
        )
        try:
            found = await listed
        except CaseTampered as err:
            log.error("refused to serve %s", err)
            await context.abort(grpc.StatusCode.DATA_LOSS, str(err))
        page, more = found[:size], len(found) > size
        if request.due_within_days > 0:
            offset = int(request.page_token) if request.page_token.isdigit() else 0
            token = str(offset + size) if more else ""
        else:
            token = page[-1].case.case_id if more and page else ""
        out = casefile_pb2.ListCasesResponse(next_page_token=token)
        for sc in page:
            decision = authorize(principal, Action.READ, sc.case)
            if decision.allowed:
                out.cases.append(self.case_message(sc, decision.scope, now))
        return out

    async def VerifyCase(
        self, request: casefile_pb2.GetCaseRequest, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.VerifyCaseResponse:
        principal = await self._principal(context, write=False)
        await self._readable(context, principal, request.case_id, Action.VERIFY)
        report, document = await asyncio.to_thread(self.store.verify_case, request.case_id)
        problem = report.problem.value if report.problem is not None else ""
        return casefile_pb2.VerifyCaseResponse(
            case_id=request.case_id,
            ok=report.ok and not document,
            entries=report.checked,
            problem=problem or ("DOCUMENT_MISMATCH" if document else ""),
            detail=report.detail or document,
        )

    async def WatchCase(
        self, request: casefile_pb2.WatchCaseRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[casefile_pb2.CaseEvent]:
        principal = await self._principal(context, write=False)
        await self._readable(context, principal, request.case_id, Action.STREAM)
        last = request.after_sequence
        while True:
            rows = await asyncio.to_thread(
                self.store.events_after, request.case_id, last, request.after_version
            )
            closed = False
            for sequence, data in rows:
                event = casefile_pb2.CaseEvent.FromString(data)
                last = sequence
                closed = event.state == kinds.State.CLOSED.value
                yield event
            if closed and len(rows) < 500:
                return  # a closed case changes no more
            if not rows:
                await self.feed.wait(request.case_id, self.watch_poll_s)

    # ---- one write call per domain command ---------------------------------------------------

    async def RecordArrival(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("RecordArrival", request, context)

    async def RecordInspection(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("RecordInspection", request, context)

    async def AddEvidence(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("AddEvidence", request, context)

    async def RecordSample(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("RecordSample", request, context)

    async def HandOffCustody(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("HandOffCustody", request, context)

    async def RecordLabResult(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("RecordLabResult", request, context)

    async def ConfirmResult(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("ConfirmResult", request, context)

    async def RecordFinding(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("RecordFinding", request, context)

    async def FileCase(self, request: Any, context: grpc.aio.ServicerContext) -> casefile_pb2.Case:
        return await self._write("FileCase", request, context)

    async def ServeNotice(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("ServeNotice", request, context)

    async def RequestHearing(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("RequestHearing", request, context)

    async def ScheduleHearing(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("ScheduleHearing", request, context)

    async def RecordHearing(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("RecordHearing", request, context)

    async def DecidePenalty(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("DecidePenalty", request, context)

    async def ServeDecision(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("ServeDecision", request, context)

    async def RecordEnforcement(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("RecordEnforcement", request, context)

    async def TransferCase(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("TransferCase", request, context)

    async def CloseCase(self, request: Any, context: grpc.aio.ServicerContext) -> casefile_pb2.Case:
        return await self._write("CloseCase", request, context)

    async def ExtendClock(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("ExtendClock", request, context)

    async def PauseClock(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("PauseClock", request, context)

    async def ResumeClock(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("ResumeClock", request, context)

    async def UpdateTeam(
        self, request: casefile_pb2.UpdateTeamRequest, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        roles = [(p.person_id, p.role.upper()) for p in request.team]
        team = [{"person_id": p.person_id, "name": p.name, "role": p.role} for p in request.team]

        def build(r: casefile_pb2.UpdateTeamRequest) -> commands.UpdateTeam:
            return commands.UpdateTeam(
                officers=tuple(p for p, role in roles if role in OFFICER_ROLES),
                monitoring_staff=tuple(p for p, role in roles if role in MONITORING_ROLES),
                reason=r.reason,
            )

        return await self._write("UpdateTeam", request, context, build, team)

    async def RecordSiteNote(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("RecordSiteNote", request, context)

    async def RecordTaskCancelled(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.Case:
        return await self._write("RecordTaskCancelled", request, context)

    # ---- evidence content (entrypoints/evidence_calls) -----------------------------------------

    async def UploadEvidence(
        self, request_iterator: Any, context: grpc.aio.ServicerContext
    ) -> casefile_pb2.UploadEvidenceResponse:
        if self.evidence is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no evidence store configured")
        assert self.evidence is not None
        return await self.evidence.upload(request_iterator, context)

    async def DownloadEvidence(
        self, request: casefile_pb2.DownloadEvidenceRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[casefile_pb2.EvidenceChunk]:
        if self.evidence is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no evidence store configured")
        assert self.evidence is not None
        async for chunk in self.evidence.download(request, context):
            yield chunk

    async def ExportBundle(
        self, request: casefile_pb2.ExportBundleRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[casefile_pb2.BundleChunk]:
        if self.evidence is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no evidence store configured")
        assert self.evidence is not None
        async for chunk in export_bundle(self, self.evidence.store, request, context):
            yield chunk


def _serializer(message_type: Any) -> Callable[[Any], bytes]:
    def serialize(value: Any) -> bytes:
        # writes answer with the stored, already encoded reply (also what a retry replays)
        return value if isinstance(value, bytes) else message_type.SerializeToString(value)

    return serialize


def add_service(service: CaseFileService, server: grpc.aio.Server) -> None:
    """Registers the CaseFile methods like the generated add_CaseFileServicer_to_server, but
    with response serializers that pass encoded replies through unchanged."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in casefile_pb2.DESCRIPTOR.services_by_name["CaseFile"].methods:
        request_type = message_factory.GetMessageClass(method.input_type)
        make = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(
            getattr(service, method.name),
            request_deserializer=request_type.FromString,
            response_serializer=_serializer(message_factory.GetMessageClass(method.output_type)),
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


def tune_gc() -> None:
    """Fewer full collections in the server process. A write allocates many short-lived
    objects and the caches hold many long-lived ones, so CPython's default thresholds run a
    full collection every few hundred writes, and each one stalls every waiting call
    (measured: p99 111 ms with the defaults, 48-55 ms with these, 32 clients on SQLite)."""
    gc.collect()
    gc.freeze()  # what is loaded at start-up is never scanned again
    gc.set_threshold(10_000, 20, 20)


async def clock_checker(
    store: CaseStore,
    feed: ChangeFeed,
    stop: asyncio.Event,
    interval_s: float,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Periodically announces breached clocks (CLOCK_BREACHED, once per clock)."""
    while not stop.is_set():
        try:
            found = await asyncio.to_thread(store.check_clocks, now())
            if found:
                feed.notify({case_id for case_id, _ in found})
                log.warning("clock breaches: %s", [(c, k.name) for c, k in found])
        except Exception:
            log.exception("clock check failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


async def serve(
    store: CaseStore,
    address: str,
    stop: asyncio.Event | None = None,
    *,
    auth: AuthConfig | None = None,
    relay: Any = None,
    clock_interval_s: float | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ready: Callable[[int], None] | None = None,
    evidence: tuple[EvidenceStore, EvidenceConfig] | None = None,
) -> None:
    """Serves until `stop` is set. `relay` (outbox.OutboxRelay) and the clock checker run
    beside the server when given; `ready` receives the bound port; `evidence`: the evidence
    store and its settings (UploadEvidence/DownloadEvidence answer UNIMPLEMENTED without)."""
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", 8 * 2**20)]  # upload chunks up to 8 MiB
    )
    feed = ChangeFeed()
    service = CaseFileService(store, auth, feed=feed, now=now, evidence=evidence)
    add_service(service, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable((SERVICE_NAME, health.SERVICE_NAME), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"cannot listen on {address}")
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    if relay is not None:

        def wake(_ids: set[str]) -> None:
            loop.call_soon_threadsafe(relay.wake.set)

        store.on_commit = wake
    await server.start()
    for name in (SERVICE_NAME, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("casefile gRPC listening on %s", address)
    if ready is not None:
        ready(port)
    tasks = []
    if relay is not None:
        tasks.append(asyncio.create_task(relay.run(stop)))
    if clock_interval_s:
        tasks.append(asyncio.create_task(clock_checker(store, feed, stop, clock_interval_s, now)))
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    except (RuntimeError, ValueError):  # not the main thread (in-process tests)
        pass
    await stop.wait()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=5)
    service.committer.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
