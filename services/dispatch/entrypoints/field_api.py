"""What the team records on site, passed on to casefile acting for the signed-in person.

Each endpoint turns the phone's form into one casefile command (or, for the inspection
record, the record and then its evidence) and calls casefile with dispatch's service key and
`act` naming the person and their role on the task; casefile decides whether that person may
(team, role, the case's state) and keeps the audit chain. The phone's request id is
casefile's request id, so a resent action (an outbox flushed twice, a lost answer) is
recorded once. casefile's refusals come back as HTTP with its reason:
FAILED_PRECONDITION/ALREADY_EXISTS 409, PERMISSION_DENIED 403, INVALID_ARGUMENT/OUT_OF_RANGE
422, NOT_FOUND 404; casefile unreachable or refusing dispatch's key 503 (try again later)."""

# no `from __future__ import annotations`: the routes' caller dependency is a local type
# FastAPI must see evaluated

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

import grpc
from fastapi import APIRouter, Depends, HTTPException
from google.protobuf.json_format import MessageToDict
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from dispatch.adapters.field_files import FieldFiles
from dispatch.domain.tasks import Task
from dispatch.entrypoints.dispatch_service import DispatchService
from liandong.events import to_timestamp
from liandong.tokens.phone import Principal
from liandong.v1 import casefile_pb2


class FieldCaseFile(Protocol):
    async def field_call(self, method: str, request: Any, *, person_id: str, role: str) -> Any: ...

    async def get_case_for(self, case_id: str, *, person_id: str, role: str) -> Any: ...

    async def cases_of_enterprise(self, enterprise_id: str, limit: int = 50) -> list[Any]: ...


def _aware(t: datetime) -> datetime:
    if t.utcoffset() is None:
        raise ValueError("a time needs its UTC offset, e.g. 2026-03-01T10:00:00+08:00")
    return t


Aware = Annotated[datetime, AfterValidator(_aware)]
RequestId = Annotated[str, Field(min_length=8, max_length=200, description="the phone's id")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Text = Annotated[str, Field(max_length=4000)]
Short = Annotated[str, Field(max_length=200)]
# Whitespace spelled out: JSON Schema's \s (ECMA), pydantic's (Rust) and Python's differ at
# the edges (U+001C-U+001F, U+0085, U+FEFF), and the document and the check must agree.
_BLANK_CHARS = (
    "\\u0009-\\u000d\\u001c-\\u001f\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029"
    "\\u202f\\u205f\\u3000\\ufeff"
)
_NON_BLANK = f"[^{_BLANK_CHARS}]"
_BLANK = f"^[{_BLANK_CHARS}]*$"


def _is_blank(text: str) -> bool:
    return re.search(_NON_BLANK, text) is None


def _distinct(items: list[str]) -> list[str]:
    if len(set(items)) != len(items):
        raise ValueError("each parameter once")
    return items


# what casefile requires to be there: at least one character that is not whitespace
NonBlank = Annotated[str, Field(min_length=1, max_length=200, pattern=_NON_BLANK)]
# what casefile reads as a finite decimal (its refusal of other text would be a 422 the
# document did not announce)
DecimalText = Annotated[
    str, Field(max_length=60, pattern=r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?$")
]
# a PNG in base64 (its 8-byte signature encodes as iVBORw0KGgo), optionally as a data: URL
PngBase64 = Annotated[
    str,
    Field(
        max_length=2_000_000,
        pattern=r"^(data:image/png;base64,)?iVBORw0KGgo"
        r"(=|[A-Za-z0-9+/]([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$",
        description="PNG, base64 or a data: URL",
    ),
]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or invalid token"},
    403: {"description": "not on the task's team, or casefile's PERMISSION_DENIED (reason)"},
    404: {"description": "unknown task, or casefile's NOT_FOUND"},
    409: {
        "description": "the task's case is not open yet, or casefile's FAILED_PRECONDITION "
        "(the case's state does not allow it; reason)"
    },
    422: {"description": "malformed body, or casefile's INVALID_ARGUMENT (reason)"},
    503: {"description": "casefile unreachable or not accepting dispatch's key: send again later"},
}
_HTTP = {
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.OUT_OF_RANGE: 422,
    grpc.StatusCode.NOT_FOUND: 404,
}


# (0, 0) is how an empty position arrives from a phone that had no fix; casefile refuses it
# as no place (it is in the Gulf of Guinea), so the document says so too
_NOT_NULL_ISLAND: dict[str, Any] = {
    "not": {
        "required": ["lat", "lon"],
        "properties": {"lat": {"const": 0}, "lon": {"const": 0}},
    }
}


class Position(BaseModel):
    model_config = ConfigDict(json_schema_extra=_NOT_NULL_ISLAND)

    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    accuracy_m: float | None = Field(None, ge=0, description="as the phone reported it")

    @model_validator(mode="after")
    def _a_real_place(self) -> "Position":
        if self.lat == 0 and self.lon == 0:
            raise ValueError("a position of 0, 0 is no reading (the phone had no fix)")
        return self


class InspectionText(BaseModel):
    present: Text = Field(description="who is present")
    production_status: Text = ""
    facility_status: Text = Field("", description="treatment facilities")
    equipment_status: Text = Field("", description="monitoring equipment")
    findings: Text = Field(min_length=1)


class SignatureIn(BaseModel):
    image_png: PngBase64
    signed_at: Aware


# The enterprise's representative signs (a name and the signature image), or refuses, and
# the refusal is recorded with a witness: exactly one of the two, as casefile requires.
_SIGNED_OR_REFUSED: dict[str, Any] = {
    "oneOf": [
        {
            "title": "the representative signs",
            "required": ["party_signed_by", "party_signature_png"],
            "properties": {
                "party_signed_by": {"pattern": _NON_BLANK},
                "party_signature_png": {"type": "string"},
                "party_refusal_witness": {"pattern": _BLANK},
            },
        },
        {
            "title": "the representative refuses; a witness is named",
            "required": ["party_refusal_witness"],
            "properties": {
                "party_refusal_witness": {"pattern": _NON_BLANK},
                "party_signed_by": {"pattern": _BLANK},
                "party_signature_png": {"type": "null"},
            },
        },
    ]
}


class InspectionBody(BaseModel):
    model_config = ConfigDict(json_schema_extra=_SIGNED_OR_REFUSED)

    request_id: RequestId
    record_id: NonBlank
    record: InspectionText
    # keyed by the officer's person id, so that no one signs twice
    signatures: dict[NonBlank, SignatureIn] = Field(
        min_length=2,
        max_length=6,
        description="each signing officer's signature, by person id: two officers on site at "
        "least (执法人员不得少于两人)",
    )
    party_signed_by: Short = Field("", description="the representative who signs")
    party_signature_png: PngBase64 | None = None
    party_refusal_witness: Short = Field(
        "", description="when the representative refuses to sign: who witnessed the refusal"
    )

    @model_validator(mode="after")
    def _signed_or_refused(self) -> "InspectionBody":
        signed = not _is_blank(self.party_signed_by)
        refused = not _is_blank(self.party_refusal_witness)
        if signed == refused:
            raise ValueError(
                "either the representative signs (party_signed_by with party_signature_png) "
                "or the refusal is recorded with a witness (party_refusal_witness)"
            )
        if signed != (self.party_signature_png is not None):
            raise ValueError("party_signature_png goes with party_signed_by, and only with it")
        return self


class EvidenceBody(Position):
    request_id: RequestId
    evidence_id: NonBlank
    kind: Literal[
        "PHOTO",
        "VIDEO",
        "INSTRUMENT_SCREENSHOT",
        "DAS_LOG",
        "ONLINE_MONITORING_DATA",
        "SURVEY_RECORD",
        "DOCUMENT",
        "ELECTRONIC_DATA",
        "PARTY_STATEMENT",
    ]
    sha256: Sha256 = Field(description="of the original bytes")
    media_type: Short = "application/octet-stream"
    size_bytes: int | None = Field(None, ge=0)
    captured_at: Aware
    description: Annotated[Text, Field(min_length=1, pattern=_NON_BLANK)]


class SampleBody(Position):
    # where it was collected is part of the sample record (casefile requires it)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    request_id: RequestId
    sample_id: NonBlank
    point: NonBlank
    container: NonBlank
    preservative: NonBlank = Field(description="无 when none is added")
    seal_number: NonBlank
    parameters: Annotated[
        list[NonBlank],
        Field(min_length=1, max_length=50, json_schema_extra={"uniqueItems": True}),
        AfterValidator(_distinct),
    ]
    collected_by: NonBlank
    witnessed_by: NonBlank = Field(description="someone other than the collector")
    collected_at: Aware
    holding_hours: float | None = Field(
        None, gt=0, le=8760, description="unset: casefile's holding time for the parameters"
    )


# a broken seal is described (casefile requires the note)
_BROKEN_SEAL_DESCRIBED: dict[str, Any] = {
    "if": {"required": ["seal_intact"], "properties": {"seal_intact": {"const": False}}},
    "then": {
        "required": ["condition_note"],
        "properties": {"condition_note": {"pattern": _NON_BLANK}},
    },
}


class CustodyBody(BaseModel):
    model_config = ConfigDict(json_schema_extra=_BROKEN_SEAL_DESCRIBED)

    request_id: RequestId
    to_holder: NonBlank
    to_lab: bool = False
    at: Aware
    seal_intact: bool = True
    seal_number_observed: Short = ""
    condition_note: Text = ""

    @model_validator(mode="after")
    def _broken_seal_described(self) -> "CustodyBody":
        if not self.seal_intact and _is_blank(self.condition_note):
            raise ValueError("a broken seal needs a condition_note describing it")
        return self


class LabResultBody(BaseModel):
    request_id: RequestId
    parameter: NonBlank
    value: DecimalText = Field(description="decimal text")
    unit: Short = ""
    method: NonBlank
    lab_id: NonBlank
    cma_no: NonBlank = Field(description="the lab's CMA accreditation number")
    analysed_at: Aware
    report_sha256: Sha256 = Field(description="of the lab's report")


class ConfirmBody(BaseModel):
    request_id: RequestId


class HistoryTask(BaseModel):
    task_id: str
    state: str
    priority: str
    route: str
    created_at: datetime
    kinds: list[str]
    factors: list[str]


class HistoryCase(BaseModel):
    case_id: str
    state: str
    opened_at: str
    summary: str


class SiteHistory(BaseModel):
    tasks: list[HistoryTask] = Field(description="the enterprise's other tasks, newest first")
    cases: list[HistoryCase] = Field(description="the enterprise's other cases in casefile")
    cases_error: str = Field("", description="why cases are missing, if casefile did not answer")


def _png(data: str) -> bytes:
    raw = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        content = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as e:
        raise HTTPException(422, "a signature image is not base64") from e
    if not content.startswith(b"\x89PNG\r\n\x1a\n"):
        raise HTTPException(422, "a signature image must be a PNG")
    return content


def _position(p: Position) -> casefile_pb2.SitePosition | None:
    if p.lat is None or p.lon is None:
        return None
    return casefile_pb2.SitePosition(lat=p.lat, lon=p.lon)


def case_view(case: Any) -> dict[str, Any]:
    return MessageToDict(case, preserving_proto_field_name=True)


def field_router(
    service: DispatchService,
    casefile: Callable[[], FieldCaseFile | None],
    files: FieldFiles,
    visible: Callable[[Principal, str], Task],
    caller: Callable[..., Principal],
) -> APIRouter:
    router = APIRouter(tags=["on site"])
    Caller = Annotated[Principal, Depends(caller)]

    def client() -> FieldCaseFile:
        c = casefile()
        if c is None:
            raise HTTPException(503, "casefile is not configured")
        return c

    def team_role(p: Principal, task_id: str) -> str:
        for s in service.dispatcher.state.acceptance[task_id].slots:
            if s.person_id == p.person_id:
                return s.role.value
        raise HTTPException(403, f"{p.person_id} is not on the team of task {task_id}")

    def case_of(p: Principal, task_id: str) -> tuple[str, str]:
        visible(p, task_id)
        role = team_role(p, task_id)
        case_id = service.metas[task_id].case_id
        if not case_id:
            raise HTTPException(409, f"the case of task {task_id} is not open yet")
        return case_id, role

    async def send(method: str, request: Any, p: Principal, role: str) -> Any:
        try:
            return await client().field_call(method, request, person_id=p.person_id, role=role)
        except grpc.aio.AioRpcError as e:
            status = _HTTP.get(e.code(), 503)
            raise HTTPException(status, f"casefile {method}: {e.details()}") from e

    async def call(method: str, request: Any, p: Principal, role: str) -> dict[str, Any]:
        return case_view(await send(method, request, p, role))

    @router.get(
        "/v1/tasks/{task_id}/case",
        summary="The task's case file as I may read it (monitoring staff: samples and results)",
        responses=ERRORS,
    )
    async def get_case(task_id: str, p: Caller) -> dict[str, Any]:
        case_id, role = case_of(p, task_id)
        try:
            case = await client().get_case_for(case_id, person_id=p.person_id, role=role)
        except grpc.aio.AioRpcError as e:
            raise HTTPException(_HTTP.get(e.code(), 503), f"casefile: {e.details()}") from e
        return case_view(case)

    @router.get(
        "/v1/tasks/{task_id}/site-history",
        summary="Earlier tasks and cases of the task's enterprise",
        responses={k: ERRORS[k] for k in (401, 403, 404)},
    )
    async def site_history(task_id: str, p: Caller) -> SiteHistory:
        task = visible(p, task_id)
        others = [
            t
            for t in service.dispatcher.state.tasks.values()
            if t.enterprise_id == task.enterprise_id and t.task_id != task_id
        ]
        others.sort(key=lambda t: t.created_at, reverse=True)
        tasks = []
        for t in others[:50]:
            ev = service.metas[t.task_id].evidence if t.task_id in service.metas else {}
            tasks.append(
                HistoryTask(
                    task_id=t.task_id,
                    state=t.state.value,
                    priority=t.priority.value,
                    route=t.route.value,
                    created_at=t.created_at,
                    kinds=[str(ev["kind"])] if ev.get("kind") else [],
                    factors=[str(ev["factor"])] if ev.get("factor") else [],
                )
            )
        cases: list[HistoryCase] = []
        error = ""
        own = service.metas[task_id].case_id
        c = casefile()
        if c is not None:
            try:
                for case in await c.cases_of_enterprise(task.enterprise_id):
                    if case.case_id != own:
                        cases.append(
                            HistoryCase(
                                case_id=case.case_id,
                                state=case.state,
                                opened_at=case.opened_at.ToJsonString(),
                                summary=case.summary,
                            )
                        )
            except grpc.aio.AioRpcError as e:
                error = f"casefile: {e.code().name} {e.details()}"
        return SiteHistory(tasks=tasks, cases=cases, cases_error=error)

    @router.post(
        "/v1/tasks/{task_id}/inspection",
        summary="The on-site inspection record (现场检查笔录), signed by both officers and the "
        "enterprise's representative (or its refusal, with a witness)",
        description="The record's text (canonical JSON) and each signature image are kept by "
        "dispatch by hash; RecordInspection names the record's hash and the officers' "
        "signatures, and once casefile has accepted it the record and the signatures are added "
        "to the case as evidence (SURVEY_RECORD, DOCUMENT). A refused record leaves nothing on "
        "the case; sent again with the same request id, it is recorded once.",
        responses=ERRORS,
    )
    async def inspection(task_id: str, body: InspectionBody, p: Caller) -> dict[str, Any]:
        case_id, role = case_of(p, task_id)
        roster = service.dispatcher.roster
        task = service.task(task_id)
        images = [(pid, s, _png(s.image_png)) for pid, s in body.signatures.items()]
        party_png = _png(body.party_signature_png) if body.party_signature_png else None
        # blank by the document's definition is sent as empty (casefile strips Python's way)
        party = "" if _is_blank(body.party_signed_by) else body.party_signed_by
        witness = "" if _is_blank(body.party_refusal_witness) else body.party_refusal_witness
        document = {
            "form": "现场检查笔录",
            "record_id": body.record_id,
            "task_id": task_id,
            "case_id": case_id,
            "enterprise_id": task.enterprise_id,
            "outlet_id": task.outlet_id,
            **body.record.model_dump(),
            "officers": list(body.signatures),
            "party_signed_by": party,
            "party_refusal_witness": witness,
        }
        content = json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
        record_sha = files.put(content, "application/json", case_id)
        signatures = []
        for pid, s in body.signatures.items():
            person = roster.get(pid)
            certificate = next((c.number for c in (person.certificates if person else ())), "")
            signatures.append(
                casefile_pb2.Signature(
                    signer=pid,
                    certificate_no=certificate,
                    signed_at=to_timestamp(s.signed_at),
                )
            )
        # The record first: casefile checks it (team, presence, state, signatures) without
        # needing its evidence on the case, so a refusal leaves no orphaned evidence behind.
        # Sent again with the same request id, casefile answers from its idempotency record.
        case = await send(
            "RecordInspection",
            casefile_pb2.RecordInspectionRequest(
                request_id=body.request_id,
                case_id=case_id,
                record_id=body.record_id,
                record_sha256=record_sha,
                signatures=signatures,
                party_signed_by=party,
                party_refusal_witness=witness,
            ),
            p,
            role,
        )
        # casefile's time of the record, the same in every answer to this request: a resent
        # request then sends the same evidence requests, which casefile also answers once
        recorded_at = case.inspection.recorded_at.ToDatetime(tzinfo=UTC)
        evidence = [
            casefile_pb2.AddEvidenceRequest(
                request_id=f"{body.request_id}:record",
                case_id=case_id,
                evidence_id=body.record_id,
                kind="SURVEY_RECORD",
                sha256=record_sha,
                captured_at=to_timestamp(recorded_at),
                captured_by=p.person_id,
                description=f"现场检查笔录 {body.record_id}",
                media_type="application/json",
            )
        ]
        signed: list[tuple[str, bytes, datetime]] = [
            (pid, png, s.signed_at) for pid, s, png in images
        ]
        if party_png is not None:
            signed.append((party, party_png, recorded_at))
        for signer, png, at in signed:
            digest = files.put(png, "image/png", case_id)
            evidence.append(
                casefile_pb2.AddEvidenceRequest(
                    request_id=f"{body.request_id}:sig:{signer}",
                    case_id=case_id,
                    evidence_id=f"{body.record_id}:sig:{signer}",
                    kind="DOCUMENT",
                    sha256=digest,
                    captured_at=to_timestamp(min(at, recorded_at)),
                    captured_by=p.person_id,
                    description=f"签名 {signer}（现场检查笔录 {body.record_id}）",
                    media_type="image/png",
                )
            )
        for request in evidence:
            case = await send("AddEvidence", request, p, role)
        return case_view(case)

    @router.post(
        "/v1/tasks/{task_id}/evidence",
        summary="Evidence (photo, video, audio, ...): its hash, capture time and position",
        responses=ERRORS,
    )
    async def evidence(task_id: str, body: EvidenceBody, p: Caller) -> dict[str, Any]:
        case_id, role = case_of(p, task_id)
        request = casefile_pb2.AddEvidenceRequest(
            request_id=body.request_id,
            case_id=case_id,
            evidence_id=body.evidence_id,
            kind=body.kind,
            sha256=body.sha256,
            captured_at=to_timestamp(body.captured_at),
            captured_by=p.person_id,
            description=body.description,
            media_type=body.media_type,
        )
        if (pos := _position(body)) is not None:
            request.position.CopyFrom(pos)
        return await call("AddEvidence", request, p, role)

    @router.post(
        "/v1/tasks/{task_id}/samples",
        summary="A sample taken on site (monitoring staff)",
        responses=ERRORS,
    )
    async def sample(task_id: str, body: SampleBody, p: Caller) -> dict[str, Any]:
        case_id, role = case_of(p, task_id)
        request = casefile_pb2.RecordSampleRequest(
            request_id=body.request_id,
            case_id=case_id,
            sample_id=body.sample_id,
            point=body.point,
            container=body.container,
            preservative=body.preservative,
            seal_number=body.seal_number,
            parameters=body.parameters,
            collected_by=body.collected_by,
            witnessed_by=body.witnessed_by,
            collected_at=to_timestamp(body.collected_at),
        )
        if (pos := _position(body)) is not None:
            request.position.CopyFrom(pos)
        if body.holding_hours is not None:
            request.holding_time.FromTimedelta(timedelta(hours=body.holding_hours))
        return await call("RecordSample", request, p, role)

    @router.post(
        "/v1/tasks/{task_id}/samples/{sample_id}/custody",
        summary="Hand a sample on (to the lab): I am the one handing it over",
        responses=ERRORS,
    )
    async def custody(task_id: str, sample_id: str, body: CustodyBody, p: Caller) -> dict[str, Any]:
        case_id, role = case_of(p, task_id)
        return await call(
            "HandOffCustody",
            casefile_pb2.HandOffCustodyRequest(
                request_id=body.request_id,
                case_id=case_id,
                sample_id=sample_id,
                from_holder=p.person_id,
                to_holder=body.to_holder,
                to_lab=body.to_lab,
                at=to_timestamp(body.at),
                seal_intact=body.seal_intact,
                seal_number_observed=body.seal_number_observed,
                condition_note=body.condition_note,
            ),
            p,
            role,
        )

    @router.post(
        "/v1/tasks/{task_id}/samples/{sample_id}/results",
        summary="The lab's result for one parameter of a sample (monitoring staff)",
        responses=ERRORS,
    )
    async def lab_result(
        task_id: str, sample_id: str, body: LabResultBody, p: Caller
    ) -> dict[str, Any]:
        case_id, role = case_of(p, task_id)
        return await call(
            "RecordLabResult",
            casefile_pb2.RecordLabResultRequest(
                request_id=body.request_id,
                case_id=case_id,
                sample_id=sample_id,
                parameter=body.parameter,
                value=body.value,
                unit=body.unit,
                method=body.method,
                lab_id=body.lab_id,
                cma_no=body.cma_no,
                analysed_at=to_timestamp(body.analysed_at),
                report_sha256=body.report_sha256 or "",
            ),
            p,
            role,
        )

    @router.post(
        "/v1/tasks/{task_id}/samples/{sample_id}/results/{parameter}/confirm",
        summary="Monitoring staff confirm a lab result",
        responses=ERRORS,
    )
    async def confirm(
        task_id: str, sample_id: str, parameter: str, body: ConfirmBody, p: Caller
    ) -> dict[str, Any]:
        case_id, role = case_of(p, task_id)
        return await call(
            "ConfirmResult",
            casefile_pb2.ConfirmResultRequest(
                request_id=body.request_id,
                case_id=case_id,
                sample_id=sample_id,
                parameter=parameter,
            ),
            p,
            role,
        )

    return router
