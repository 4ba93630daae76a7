"""UploadEvidence (client stream) and DownloadEvidence (server stream) of the CaseFile service.

Upload: the header is checked and the caller authorised (as AddEvidence) before any byte is
taken; the bytes are spooled to the store's incoming folder while hashed and counted, so an
oversize or mislabelled stream stops early. Status codes: INVALID_ARGUMENT (no header first,
missing fields, a byte count other than the declared size, content of no accepted media
type), RESOURCE_EXHAUSTED (over the media type's size limit), DATA_LOSS (the bytes hash to
something other than the declared sha256), then AddEvidence's own (NOT_FOUND,
PERMISSION_DENIED, FAILED_PRECONDITION, ALREADY_EXISTS for a reused request id or evidence id).

Download: the case's read rules (officers on the team, managers of its county, operators,
services; not monitoring staff, who see samples only), OUT_OF_RANGE past the end, NOT_FOUND
for an unknown item or content the store does not hold. Every download is an audit entry
`EvidenceDownloaded` of the case (who, which item, which bytes), written before the bytes go.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc

from casefile.adapters.evidence_store import EvidenceStore, ObjectMissing
from casefile.adapters.photo_metadata import PHOTO_TYPES, PhotoFacts, read_photo
from casefile.adapters.store import WriteJob
from casefile.adapters.write_tx import WriteTx
from casefile.domain import commands, custody, kinds, records
from casefile.domain.access import Action, Principal
from casefile.domain.evidence import SNIFF_BYTES, disagreements, media_type_of
from casefile.domain.requests import fingerprint
from casefile.evidence_config import EvidenceConfig
from liandong.v1 import casefile_pb2

DOWNLOAD_CHUNK = 256 * 1024
THREAD_CHUNK = 256 * 1024


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _header_fingerprint(header: casefile_pb2.EvidenceUpload) -> str:
    body = casefile_pb2.EvidenceUpload()
    body.CopyFrom(header)
    body.ClearField("request_id")
    return fingerprint(body.SerializeToString(deterministic=True))


def download_job(principal: Principal, case_id: str, payload: dict[str, Any], now: Any) -> WriteJob:
    """The audit entry of one download (no change to the case document)."""

    def run(tx: WriteTx) -> None:
        body = dict(payload)
        if principal.on_behalf_of is not None:
            body["via"] = {"service": principal.subject, "on_behalf_of": principal.actor}
        tx.append(case_id, "EvidenceDownloaded", body, principal.actor, now)

    return WriteJob(run)


class Spool:
    """The upload's bytes on their way to the store: hashed, counted and sniffed as they come."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"up-{uuid.uuid4().hex}"
        self.file = open(self.path, "wb")  # noqa: SIM115 (closed in finish/discard)
        self.digest = hashlib.sha256()
        self.size = 0
        self.head = b""

    def write(self, data: bytes) -> None:
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        self.digest.update(data)
        self.file.write(data)
        self.size += len(data)

    def finish(self) -> None:
        self.file.close()

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class EvidenceCalls:
    def __init__(self, service: Any, store: EvidenceStore, config: EvidenceConfig) -> None:
        self.service = service  # CaseFileService: principal, readable, _run, case_reply
        self.store = store
        self.config = config

    # ---- upload ----------------------------------------------------------------------------

    def _check_header(self, h: casefile_pb2.EvidenceUpload) -> None:
        missing = [
            f
            for f in ("request_id", "case_id", "evidence_id", "kind", "sha256", "captured_by")
            if not getattr(h, f)
        ]
        if missing:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"missing {', '.join(missing)}")
        if len(h.sha256) != 64 or any(c not in "0123456789abcdef" for c in h.sha256):
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "sha256 must be 64 lowercase hex")
        if h.size_bytes <= 0:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "size_bytes must be > 0")
        if h.size_bytes > self.config.limits.largest:
            raise Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"size {h.size_bytes} exceeds the largest accepted ({self.config.limits.largest})",
            )

    def _sniff(self, spool: Spool, declared: int) -> str:
        media_type = media_type_of(spool.head)
        if media_type is None:
            raise Refused(
                grpc.StatusCode.INVALID_ARGUMENT,
                "content is not an accepted media type (jpeg, png, heic, mp4, mov, 3gp, webm, "
                "m4a, aac, ogg, wav, mp3, pdf)",
            )
        limit = self.config.limits.limit_for(media_type)
        if declared > limit:
            raise Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{media_type} of {declared} bytes exceeds its limit of {limit} bytes",
            )
        return media_type

    async def _receive(
        self, header: casefile_pb2.EvidenceUpload, stream: AsyncIterator[Any]
    ) -> tuple[Spool, str]:
        spool = Spool(self.store.incoming_dir())
        media_type = ""
        try:
            async for message in stream:
                if message.WhichOneof("part") != "chunk":
                    raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "one header, then chunks")
                chunk = message.chunk
                if len(chunk) >= THREAD_CHUNK:
                    # hashing and writing a large chunk off the event loop (hashlib releases
                    # the GIL): other calls go on meanwhile
                    await asyncio.to_thread(spool.write, chunk)
                else:
                    spool.write(chunk)
                if spool.size > header.size_bytes:
                    raise Refused(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"more than the declared {header.size_bytes} bytes",
                    )
                if not media_type and (
                    len(spool.head) >= SNIFF_BYTES or spool.size == header.size_bytes
                ):
                    media_type = self._sniff(spool, header.size_bytes)
            spool.finish()
            if spool.size != header.size_bytes:
                raise Refused(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"received {spool.size} bytes, declared {header.size_bytes}",
                )
            media_type = media_type or self._sniff(spool, header.size_bytes)
            actual = spool.digest.hexdigest()
            if actual != header.sha256:
                raise Refused(
                    grpc.StatusCode.DATA_LOSS,
                    f"content hashes to {actual}, not the declared {header.sha256}",
                )
        except BaseException:
            spool.discard()
            raise
        return spool, media_type

    async def upload(
        self, stream: AsyncIterator[casefile_pb2.UploadEvidenceRequest], context: Any
    ) -> casefile_pb2.UploadEvidenceResponse:
        svc = self.service
        principal = await svc._principal(context, write=True)
        first = await anext(aiter(stream), None)
        if first is None or first.WhichOneof("part") != "header":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message is the header")
        assert first is not None
        h = first.header
        try:
            self._check_header(h)
            kind = kinds.EvidenceKind(h.kind)
        except Refused as err:
            await context.abort(err.code, err.detail)
        except ValueError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown kind {h.kind!r}")
        # authorised before a byte is taken (an AddEvidence the caller could not make)
        await svc._readable(context, principal, h.case_id, Action.ADD_EVIDENCE)
        try:
            spool, media_type = await self._receive(h, stream)
        except Refused as err:
            await context.abort(err.code, err.detail)
        try:
            facts = PhotoFacts(None, None, None)
            if media_type in PHOTO_TYPES:
                facts = await asyncio.to_thread(read_photo, spool.path, self.config.zone)
            stored = await asyncio.to_thread(self.store.put_file, h.sha256, spool.path)
            if facts.preview is not None:
                await asyncio.to_thread(self.store.put_preview, h.sha256, facts.preview)
        finally:
            spool.path.unlink(missing_ok=True)
        reported = (h.position.lat, h.position.lon) if h.HasField("position") else None
        captured_at = h.captured_at.ToDatetime(tzinfo=UTC)
        flags = disagreements(
            reported_at=captured_at,
            reported_position=reported,
            exif_at=facts.captured_at,
            exif_position=facts.position,
            tolerance=self.config.tolerance,
        )
        content = records.EvidenceContent(
            size_bytes=h.size_bytes,
            exif_captured_at=facts.captured_at,
            exif_position=custody.Position(*facts.position) if facts.position else None,
            flags=flags,
            preview_sha256=h.sha256 if facts.preview is not None else "",
        )
        command = commands.AddEvidence(
            evidence_id=h.evidence_id,
            kind=kind,
            sha256=h.sha256,
            captured_at=captured_at,
            captured_by=h.captured_by,
            description=h.description or f"{media_type} uploaded by {principal.actor}",
            position=custody.Position(*reported) if reported else None,
            media_type=media_type,
            content=content,
        )
        now = svc.now()
        reply = await svc._run(
            context,
            lambda: svc.store.command_job(
                principal=principal,
                request_id=h.request_id,
                fingerprint=_header_fingerprint(h),
                case_id=h.case_id,
                command=command,
                now=now,
                respond=lambda sc, scope, legal: svc.case_reply(sc, scope, now, legal),
            ),
        )
        svc.feed.notify([h.case_id])
        return casefile_pb2.UploadEvidenceResponse(
            case=casefile_pb2.Case.FromString(reply),
            evidence_id=h.evidence_id,
            sha256=h.sha256,
            size_bytes=h.size_bytes,
            media_type=media_type,
            already_stored=not stored,
            flags=list(flags),
            preview_sha256=content.preview_sha256,
        )

    # ---- download --------------------------------------------------------------------------

    async def download(
        self, request: casefile_pb2.DownloadEvidenceRequest, context: Any
    ) -> AsyncIterator[casefile_pb2.EvidenceChunk]:
        svc = self.service
        principal = await svc._principal(context, write=False)
        if request.offset < 0 or request.length < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "offset and length are >= 0")
        sc, _ = await svc._readable(context, principal, request.case_id, Action.DOWNLOAD_EVIDENCE)
        item = next((e for e in sc.case.evidence if e.evidence_id == request.evidence_id), None)
        if item is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"no evidence {request.evidence_id} in {request.case_id}"
            )
        assert item is not None
        media_type = "image/jpeg" if request.preview else item.media_type
        try:
            size = await asyncio.to_thread(self.store.size, item.sha256, preview=request.preview)
        except ObjectMissing:
            what = "preview" if request.preview else "content"
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"the {what} of evidence {item.evidence_id} is not held"
            )
        if request.offset > size or (request.offset == size and size > 0):
            await context.abort(
                grpc.StatusCode.OUT_OF_RANGE, f"offset {request.offset} is past the end ({size})"
            )
        length = min(request.length or size - request.offset, size - request.offset)
        await svc.committer.write(
            download_job(
                principal,
                request.case_id,
                {
                    "evidence_id": item.evidence_id,
                    "sha256": item.sha256,
                    "preview": request.preview,
                    "offset": request.offset,
                    "length": length,
                },
                svc.now(),
            )
        )
        chunks = self.store.read(item.sha256, request.offset, length, preview=request.preview)
        first = casefile_pb2.EvidenceChunk(
            sha256=item.sha256, size_bytes=size, media_type=media_type, offset=request.offset
        )
        sent = False
        while True:
            data = await asyncio.to_thread(next, chunks, None)
            if data is None:
                break
            for start in range(0, len(data), DOWNLOAD_CHUNK):
                piece = data[start : start + DOWNLOAD_CHUNK]
                if not sent:
                    first.data = piece
                    yield first
                    sent = True
                else:
                    yield casefile_pb2.EvidenceChunk(data=piece)
        if not sent:
            yield first


def store_from_env(config: EvidenceConfig) -> EvidenceStore:
    from casefile.adapters.evidence_store import open_store
    from casefile.evidence_config import STATE

    return open_store(config.store_url, Path(os.environ.get("LIANDONG_STATE", str(STATE))))
