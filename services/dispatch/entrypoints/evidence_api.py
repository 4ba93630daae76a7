"""Evidence through the phone API: resumable uploads handed to casefile, and downloads with
HTTP range requests (docs/dispatch.md, "Evidence uploads and downloads").

Upload protocol (offsets, in the manner of tus 1.0 core, without its discovery headers):
  POST  /v1/tasks/{task}/evidence/uploads   JSON metadata -> 201 (200: the same upload again)
        {upload_id, offset, size, location}; header Location: /v1/uploads/{id}, Upload-Offset
  HEAD  /v1/uploads/{id}                    -> 200, Upload-Offset, Upload-Length
  PATCH /v1/uploads/{id}   Upload-Offset: N, Content-Type: application/offset+octet-stream,
        body = the next bytes -> 204, Upload-Offset: N + bytes stored
        (409 + Upload-Offset when N is not the server's offset)
  POST  /v1/uploads/{id}/complete           -> 200 the evidence record casefile made
A dropped PATCH keeps what reached the disk: HEAD tells where to go on from.
Download: GET /v1/tasks/{task}/evidence/{evidence_id}[?preview=true], `Range: bytes=a-b`.
Each call is made in casefile acting for the signed-in person (their access to the case).
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, which name
# the local `Caller` dependency

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from dispatch.adapters.upload_spool import Upload, UploadRefused, UploadSpool
from dispatch.domain.dispatcher import UnknownTask
from liandong.tokens.phone import Principal

OFFSET_TYPE = "application/offset+octet-stream"
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
EVIDENCE_KINDS = (
    "PHOTO VIDEO INSTRUMENT_SCREENSHOT DAS_LOG ONLINE_MONITORING_DATA INTERVIEW_RECORD "
    "SURVEY_RECORD DOCUMENT ELECTRONIC_DATA LAB_REPORT PARTY_STATEMENT"
)


class UploadBody(BaseModel):
    evidence_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    kind: str = Field(description=EVIDENCE_KINDS)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the whole file, hex")
    size: int = Field(gt=0, description="bytes of the whole file")
    media_type: str = Field("", max_length=100, description="informative; the bytes decide")
    captured_at: datetime = Field(description="when it was taken, ISO 8601 with offset")
    description: str = Field("", max_length=2000)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class UploadView(BaseModel):
    upload_id: str
    offset: int = Field(description="bytes the server holds; the next PATCH starts here")
    size: int
    location: str
    completed: bool


class EvidenceView(BaseModel):
    evidence_id: str
    case_id: str
    task_id: str
    sha256: str = Field(description="recomputed by casefile from the bytes")
    size: int
    media_type: str = Field(description="read from the bytes (magic numbers)")
    already_stored: bool = Field(description="identical bytes were held already: stored once")
    flags: list[str] = Field(description="EXIF time/position disagreements with the report")
    download_url: str
    preview_url: str | None


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


OFFSET_HEADER = {"Upload-Offset": _header("bytes the server holds: the next PATCH starts here")}
_GRPC_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.DATA_LOSS: 422,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.OUT_OF_RANGE: 416,
}


def _from_grpc(err: grpc.aio.AioRpcError) -> HTTPException:
    status = _GRPC_HTTP.get(err.code(), 503)
    headers = {"Retry-After": "30"} if status == 503 else None
    return HTTPException(status, f"casefile: {err.details()}", headers)


def _view(spool: UploadSpool, up: Upload) -> UploadView:
    return UploadView(
        upload_id=up.upload_id,
        offset=up.size if up.result else spool.offset(up.upload_id),
        size=up.size,
        location=f"/v1/uploads/{up.upload_id}",
        completed=up.result is not None,
    )


def evidence_router(
    service: Any, spool: UploadSpool, caller: Callable[..., Principal]
) -> APIRouter:
    """The evidence routes; `caller` is the phone API's bearer-token dependency."""
    router = APIRouter(tags=["evidence"])
    Caller = Annotated[Principal, Depends(caller)]
    # one transfer per upload at a time: a PATCH whose connection dropped may still be writing
    # what arrived when the phone asks where to resume
    transfers: dict[str, asyncio.Lock] = {}

    def transfer(upload_id: str) -> asyncio.Lock:
        return transfers.setdefault(upload_id, asyncio.Lock())

    def team_role(p: Principal, task_id: str) -> str:
        """The caller's role on the task's team (ENFORCEMENT, MONITORING); 403/404 else."""
        try:
            service.task(task_id)
        except UnknownTask as e:
            raise HTTPException(404, str(e)) from e
        roles = service.dispatcher.state.acceptance[task_id].roles_of(p.person_id)
        if not roles:
            raise HTTPException(403, f"evidence of task {task_id} is for its team members")
        return str(sorted(r.value for r in roles)[0])

    def owned(p: Principal, upload_id: str) -> Upload:
        up = spool.get(upload_id)
        if up is None or up.person_id != p.person_id:
            raise HTTPException(404, f"no upload {upload_id} of yours")
        return up

    def client() -> Any:
        if service.casefile is None:
            raise HTTPException(503, "casefile is not configured", {"Retry-After": "30"})
        return service.casefile

    class SizedUploadBody(UploadBody):
        # this spool's limit in the document; a larger declared size is answered 413 (payload
        # too large, the precise status) by the handler, before any byte is sent
        size: int = Field(
            gt=0,
            description="bytes of the whole file (over the maximum: 413)",
            json_schema_extra={"maximum": spool.max_bytes},
        )

    @router.post(
        "/v1/tasks/{task_id}/evidence/uploads",
        status_code=201,
        responses={
            200: {"model": UploadView},
            401: {},
            403: {},
            404: {},
            409: {},
            413: {},
            422: {},
            507: {},
        },
        summary="Start (or find again) a resumable upload of one evidence file",
    )
    async def create_upload(
        task_id: str, body: SizedUploadBody, p: Caller, response: Response
    ) -> UploadView:
        role = team_role(p, task_id)
        meta = service.metas.get(task_id)
        case_id = meta.case_id if meta is not None else ""
        if not case_id or (meta is not None and getattr(meta, "case_pending", False)):
            raise HTTPException(409, f"the case of task {task_id} is not open yet; retry later")
        if body.captured_at.utcoffset() is None:
            raise HTTPException(422, "captured_at needs a UTC offset")
        try:
            up, new = spool.create(
                person_id=p.person_id,
                role=role,
                task_id=task_id,
                case_id=case_id,
                evidence_id=body.evidence_id,
                kind=body.kind,
                sha256=body.sha256,
                size=body.size,
                media_type=body.media_type,
                captured_at=body.captured_at.isoformat(),
                description=body.description,
                lat=body.lat,
                lon=body.lon,
            )
        except UploadRefused as e:
            raise HTTPException(e.status, e.reason) from e
        view = _view(spool, up)
        response.status_code = 201 if new else 200
        response.headers["Location"] = view.location
        response.headers["Upload-Offset"] = str(view.offset)
        return view

    @router.head(
        "/v1/uploads/{upload_id}",
        responses={
            200: {"headers": {**OFFSET_HEADER, "Upload-Length": _header("the declared size")}},
            401: {},
            404: {"description": "no such upload of the caller's"},
        },
        summary="Where a dropped upload resumes: headers Upload-Offset and Upload-Length",
        description="Waits until a transfer of this upload still being received has ended.",
    )
    async def upload_offset(upload_id: str, p: Caller) -> Response:
        up = owned(p, upload_id)
        async with transfer(upload_id):  # after a transfer still being received
            view = _view(spool, up)
        return Response(
            status_code=200,
            headers={
                "Upload-Offset": str(view.offset),
                "Upload-Length": str(view.size),
                "Cache-Control": "no-store",
            },
        )

    @router.patch(
        "/v1/uploads/{upload_id}",
        status_code=204,
        responses={
            204: {"headers": OFFSET_HEADER},
            401: {},
            404: {},
            409: {
                "description": "Upload-Offset is not the server's (its header is), or completed",
                "headers": OFFSET_HEADER,
            },
            413: {"description": "more bytes than declared; this PATCH discarded"},
            415: {"description": "Content-Type is not application/offset+octet-stream"},
            422: {},
            423: {"description": "an earlier transfer is still being received: HEAD, resume"},
        },
        summary="Append bytes at Upload-Offset (Content-Type application/offset+octet-stream)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/offset+octet-stream": {
                        "schema": {"type": "string", "format": "binary"}
                    }
                },
            }
        },
        description=(
            "The body is the next bytes of the file from Upload-Offset; what reaches the "
            "server's disk counts even if the connection drops."
        ),
    )
    async def append(
        upload_id: str,
        request: Request,
        p: Caller,
        upload_offset: Annotated[int, Header(alias="Upload-Offset", ge=0)],
        content_type: Annotated[str, Header(alias="Content-Type")] = "",
    ) -> Response:
        up = owned(p, upload_id)
        if content_type.split(";")[0].strip().lower() != OFFSET_TYPE:
            raise HTTPException(415, f"Content-Type must be {OFFSET_TYPE}")
        lock = transfer(upload_id)
        if lock.locked():
            raise HTTPException(
                423, "a transfer of this upload is still being received; HEAD, then resume"
            )
        async with lock:
            return await _append(up, upload_offset, request)

    async def _append(up: Upload, upload_offset: int, request: Request) -> Response:
        try:
            f = spool.append(up, upload_offset)
        except UploadRefused as e:
            raise HTTPException(
                e.status, e.reason, {"Upload-Offset": str(_view(spool, up).offset)}
            ) from e
        held = upload_offset
        try:
            with f:
                async for chunk in request.stream():
                    if held + len(chunk) > up.size:
                        f.truncate(upload_offset)
                        raise HTTPException(
                            413,
                            f"more than the declared {up.size} bytes",
                            {"Upload-Offset": str(upload_offset)},
                        )
                    f.write(chunk)
                    held += len(chunk)
        except ClientDisconnect:
            # what arrived is on disk (closed above): the phone resumes from HEAD's offset
            return Response(status_code=204, headers={"Upload-Offset": str(held)})
        return Response(status_code=204, headers={"Upload-Offset": str(held)})

    @router.post(
        "/v1/uploads/{upload_id}/complete",
        responses={
            401: {},
            403: {"description": "casefile refused the person"},
            404: {},
            409: {
                "description": "not all bytes have arrived (Upload-Offset says how many), or "
                "casefile refused for the case's records: the evidence id is taken, the case "
                "is not in a state to take evidence (reason)",
                "headers": OFFSET_HEADER,
            },
            413: {"description": "over casefile's size limit for the media type"},
            422: {
                "description": "the bytes do not hash to the declared sha256 (dropped: start "
                "again at 0), or casefile refused the content",
                "headers": OFFSET_HEADER,
            },
            503: {"description": "casefile unreachable: call again later (Retry-After)"},
        },
        summary="Hand the complete file to casefile; answers the evidence record",
        description=(
            "Dispatch re-hashes the file and streams it to casefile (UploadEvidence) acting "
            "for the caller; the answer has the evidence id and hash casefile recorded, the "
            "media type read from the bytes and any EXIF disagreement flags. Repeatable."
        ),
    )
    async def complete(upload_id: str, p: Caller) -> EvidenceView:
        up = owned(p, upload_id)
        if up.result is not None:
            return EvidenceView(**up.result)
        async with transfer(upload_id):  # not while bytes are still arriving
            view = await _complete(up)
        transfers.pop(upload_id, None)
        return view

    async def _complete(up: Upload) -> EvidenceView:
        held = spool.offset(up.upload_id)
        if held != up.size:
            raise HTTPException(
                409, f"incomplete: {held} of {up.size} bytes", {"Upload-Offset": str(held)}
            )
        path = spool.part(up.upload_id)
        # casefile re-hashes while it receives (DATA_LOSS on a mismatch): hashing here too
        # would only add a pass over the file
        position = (up.lat, up.lon) if up.lat is not None and up.lon is not None else None
        try:
            reply = await client().upload_evidence(
                request_id=f"evidence:{up.upload_id}",
                case_id=up.case_id,
                evidence_id=up.evidence_id,
                kind=up.kind,
                sha256=up.sha256,
                size=up.size,
                media_type=up.media_type,
                captured_at=datetime.fromisoformat(up.captured_at),
                captured_by=up.person_id,
                role=up.role,
                description=up.description,
                position=position,
                path=path,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.DATA_LOSS, grpc.StatusCode.INVALID_ARGUMENT):
                spool.discard(up.upload_id)  # these bytes will never do: start again
                refused = _from_grpc(err)
                raise HTTPException(
                    422,
                    f"{refused.detail}; send the file again from offset 0",
                    {"Upload-Offset": "0"},
                ) from err
            raise _from_grpc(err) from err
        base = f"/v1/tasks/{up.task_id}/evidence/{up.evidence_id}"
        view = EvidenceView(
            evidence_id=reply.evidence_id,
            case_id=up.case_id,
            task_id=up.task_id,
            sha256=reply.sha256,
            size=reply.size_bytes,
            media_type=reply.media_type,
            already_stored=reply.already_stored,
            flags=list(reply.flags),
            download_url=base,
            preview_url=f"{base}?preview=true" if reply.preview_sha256 else None,
        )
        spool.complete(up, view.model_dump())
        return view

    @router.get(
        "/v1/tasks/{task_id}/evidence/{evidence_id}",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"application/octet-stream": {}}},
            206: {"description": "the requested range"},
            401: {},
            403: {},
            404: {},
            416: {},
        },
        summary="The evidence file (or its preview); Range: bytes=a-b for video",
    )
    async def download(
        task_id: str,
        evidence_id: str,
        p: Caller,
        preview: Annotated[bool, Query(description="the scaled photo preview")] = False,
        range_: Annotated[str | None, Header(alias="Range")] = None,
    ) -> Any:
        role = team_role(p, task_id)
        meta = service.metas.get(task_id)
        if meta is None or not meta.case_id:
            raise HTTPException(404, f"task {task_id} has no case")
        offset, length, ranged = 0, 0, False
        match = _RANGE.match(range_.strip()) if range_ else None
        if match:  # one range a-b or a-; anything else is answered with the whole file
            offset = int(match.group(1))
            end = match.group(2)
            if end:
                if int(end) < offset:
                    raise HTTPException(416, "range end before its start")
                length = int(end) - offset + 1
            ranged = True
        call = client().download_evidence(
            case_id=meta.case_id,
            evidence_id=evidence_id,
            person_id=p.person_id,
            role=role,
            offset=offset,
            length=length,
            preview=preview,
        )
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as err:
            if err.code() is grpc.StatusCode.OUT_OF_RANGE:
                return JSONResponse({"detail": err.details()}, status_code=416)
            raise _from_grpc(err) from err
        if first is grpc.aio.EOF:
            raise HTTPException(502, "casefile sent no content")
        size = first.size_bytes
        length = min(length or size - offset, size - offset)
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Length": str(length),
            "ETag": f'"{first.sha256}"',
            "Cache-Control": "private, max-age=31536000, immutable",
        }
        if ranged:
            headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{size}"

        async def body() -> AsyncIterator[bytes]:
            try:
                yield first.data
                while (chunk := await call.read()) is not grpc.aio.EOF:
                    yield chunk.data
            finally:
                call.cancel()

        return StreamingResponse(
            body(),
            status_code=206 if ranged else 200,
            media_type=first.media_type or "application/octet-stream",
            headers=headers,
        )

    return router
