"""ExportBundle (server stream) of the CaseFile service: the case's signed bundle, written by
adapters/bundle_archive (the same writer as `liandong casefile export`) to a temporary file
under the state folder, streamed in chunks and deleted.

Access: the case's EXPORT rule (officers on the team, managers within jurisdiction, operators,
services, and a trusted service acting for a manager: the console). Status codes:
INVALID_ARGUMENT (no case_id), NOT_FOUND (unknown case), PERMISSION_DENIED, DATA_LOSS (the
stored case its chain does not vouch for, or an evidence object whose bytes no longer match
their hash), UNIMPLEMENTED (no evidence store configured). Every export is an audit entry
`BundleExported` of the case (who, and the archive's sha256 and size), written before the
bytes go.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from casefile.adapters.bundle_archive import BundleError, Written, bundle_key, write_bundle
from casefile.adapters.bundle_source import read_bundle_source
from casefile.adapters.evidence_store import EvidenceStore
from casefile.adapters.store import WriteJob
from casefile.adapters.write_tx import WriteTx
from casefile.domain.access import Action, Principal
from casefile.evidence_config import STATE, bundle_key_path
from liandong.v1 import casefile_pb2

log = logging.getLogger(__name__)

CHUNK = 256 * 1024


def export_job(principal: Principal, case_id: str, payload: dict[str, Any], now: Any) -> WriteJob:
    """The audit entry of one export (no change to the case document)."""

    def run(tx: WriteTx) -> None:
        body = dict(payload)
        if principal.on_behalf_of is not None:
            body["via"] = {"service": principal.subject, "on_behalf_of": principal.actor}
        tx.append(case_id, "BundleExported", body, principal.actor, now)

    return WriteJob(run)


def export_dir() -> Path:
    """Where bundles are written before they are streamed (removed once sent)."""
    return Path(os.environ.get("LIANDONG_STATE", str(STATE))) / "exports"


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


async def export_bundle(
    svc: Any, store: EvidenceStore, request: casefile_pb2.ExportBundleRequest, context: Any
) -> AsyncIterator[casefile_pb2.BundleChunk]:
    """The ExportBundle call of `svc` (CaseFileService), reading evidence from `store`."""
    principal = await svc._principal(context, write=False)
    await svc._readable(context, principal, request.case_id, Action.EXPORT)
    source = await asyncio.to_thread(read_bundle_source, svc.store.engine, request.case_id)
    if source is None:  # removed since it was read: cases are never deleted, but say so
        await context.abort(grpc.StatusCode.NOT_FOUND, f"no case {request.case_id}")
    assert source is not None
    folder = export_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"bundle-{uuid.uuid4().hex}.tar"
    try:

        def write() -> tuple[Written, str]:
            written = write_bundle(
                out,
                case_id=request.case_id,
                case_doc=source.doc,
                record=source.record,
                entries=source.entries,
                evidence=source.case.evidence,
                store=store,
                key=bundle_key(bundle_key_path()),
            )
            return written, _sha256_of(out)

        try:
            written, sha256 = await asyncio.to_thread(write)
        except BundleError as err:
            log.error("export of %s refused: %s", request.case_id, err)
            await context.abort(grpc.StatusCode.DATA_LOSS, str(err))
        size = out.stat().st_size
        await svc.committer.write(
            export_job(
                principal,
                request.case_id,
                {
                    "sha256": sha256,
                    "size_bytes": size,
                    "evidence_files": written.evidence_files,
                    "missing_content": written.missing_content,
                },
                svc.now(),
            )
        )
        first: casefile_pb2.BundleChunk | None = casefile_pb2.BundleChunk(
            file_name=f"{request.case_id}.tar", size_bytes=size, sha256=sha256
        )
        with out.open("rb") as f:
            while True:
                data = await asyncio.to_thread(f.read, CHUNK)
                if not data:
                    break
                if first is not None:
                    first.data = data
                    yield first
                    first = None
                else:
                    yield casefile_pb2.BundleChunk(data=data)
        if first is not None:  # an empty archive cannot happen, but the header still goes
            yield first
    finally:
        out.unlink(missing_ok=True)
