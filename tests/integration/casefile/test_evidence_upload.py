"""UploadEvidence and DownloadEvidence through a real casefile gRPC server, on local disk and
on a real S3 server: hash, size and media type checked from the bytes, identical bytes stored
once, EXIF beside the phone's report, previews, access rules, and every download audited."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from PIL import Image

from casefile.adapters.evidence_store import open_store
from casefile.domain.evidence import DEFAULT_LIMITS, SizeLimits, Tolerance
from casefile.evidence_config import EvidenceConfig
from liandong.events import to_timestamp
from liandong.tokens.verifying import AuthConfig
from liandong.v1 import casefile_pb2, casefile_pb2_grpc
from tests.integration.casefile.conftest import KEY, Server, bearer, running_server
from tests.integration.casefile.evidence_files import jpeg, mp4, sha
from tests.integration.casefile.walk import CASE, auth, walk
from tests.unit.casefile.scenario import utc

pytestmark = pytest.mark.integration

EXIF_AT = utc(2026, 3, 2, 3, 10)  # the photo's EXIF time (11:10 +08:00)


def config(url: str, limits: SizeLimits = DEFAULT_LIMITS) -> EvidenceConfig:
    from zoneinfo import ZoneInfo

    return EvidenceConfig(
        url, limits, Tolerance(seconds=600, metres=200), ZoneInfo("Asia/Shanghai")
    )


async def _started(tmp_path: Path, store_url: str, limits: SizeLimits = DEFAULT_LIMITS) -> Any:
    cfg = config(store_url, limits)
    store = open_store(store_url, tmp_path)
    return running_server(
        f"sqlite:///{tmp_path / 'casefile.db'}",
        AuthConfig(required=True, hs_key=KEY),
        evidence=(store, cfg),
    ), store


def upload_messages(
    data: bytes,
    *,
    evidence_id: str = "P1",
    request_id: str = "up-1",
    declared_sha: str | None = None,
    declared_size: int | None = None,
    kind: str = "PHOTO",
    captured_at: Any = None,
    position: tuple[float, float] | None = (31.3, 120.6),
    chunk: int = 64 * 1024,
    header: bool = True,
) -> AsyncIterator[casefile_pb2.UploadEvidenceRequest]:
    async def gen() -> AsyncIterator[casefile_pb2.UploadEvidenceRequest]:
        if header:
            h = casefile_pb2.EvidenceUpload(
                request_id=request_id,
                case_id=CASE,
                evidence_id=evidence_id,
                kind=kind,
                sha256=declared_sha or sha(data),
                size_bytes=len(data) if declared_size is None else declared_size,
                media_type="application/octet-stream",
                captured_at=to_timestamp(captured_at or utc(2026, 3, 2, 3, 12)),
                captured_by="o1",
                description="discharge outlet",
            )
            if position is not None:
                h.position.CopyFrom(casefile_pb2.SitePosition(lat=position[0], lon=position[1]))
            yield casefile_pb2.UploadEvidenceRequest(header=h)
        for start in range(0, len(data), chunk):
            yield casefile_pb2.UploadEvidenceRequest(chunk=data[start : start + chunk])

    return gen()


async def download(
    stub: Any, metadata: Any, evidence_id: str = "P1", **kw: Any
) -> tuple[casefile_pb2.EvidenceChunk, bytes]:
    first = None
    data = b""
    async for part in stub.DownloadEvidence(
        casefile_pb2.DownloadEvidenceRequest(case_id=CASE, evidence_id=evidence_id, **kw),
        metadata=metadata,
    ):
        first = first or part
        data += part.data
    assert first is not None
    return first, data


async def _opened(server: Server, channel: grpc.aio.Channel) -> Any:
    stub = casefile_pb2_grpc.CaseFileStub(channel)
    await walk(server, stub, upto=2)  # opened, officers arrived
    server.clock.at = utc(2026, 3, 2, 4)
    return stub


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_photo_upload_is_checked_stored_flagged_and_downloaded(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "s3":
        for name, value in request.getfixturevalue("s3_env").items():
            monkeypatch.setenv(name, value)
        url = f"s3://ev-{uuid.uuid4().hex[:10]}/cases"
    else:
        url = str(tmp_path / "evidence")
    photo = jpeg()
    running, store = await _started(tmp_path, url)
    async with running as server, grpc.aio.insecure_channel(server.address) as ch:
        stub = await _opened(server, ch)
        # reported 30 min after the EXIF time (tolerance 10 min), at the EXIF position
        reply = await stub.UploadEvidence(
            upload_messages(photo, captured_at=utc(2026, 3, 2, 3, 40)), metadata=auth("o1")
        )
        assert reply.media_type == "image/jpeg"  # from the bytes, not the declared type
        assert reply.sha256 == sha(photo) and reply.size_bytes == len(photo)
        assert not reply.already_stored
        assert len(reply.flags) == 1 and reply.flags[0].startswith("CAPTURE_TIME_DISAGREES")
        item = reply.case.evidence[0]
        assert item.evidence_id == "P1" and item.media_type == "image/jpeg"
        assert item.content.exif_captured_at.ToDatetime() == EXIF_AT.replace(tzinfo=None)
        assert (item.content.exif_position.lat, item.content.exif_position.lon) == (
            pytest.approx(31.3),
            pytest.approx(120.6),
        )
        assert item.content.preview_sha256 == sha(photo)
        # the same bytes as another item: stored once
        again = await stub.UploadEvidence(
            upload_messages(photo, evidence_id="P2", request_id="up-2"), metadata=auth("o1")
        )
        assert again.already_stored and again.flags == []  # reported 03:12, within tolerance
        assert list(store.keys()) == [sha(photo)]
        # a retry of the first upload (same request id) answers as the first did
        retry = await stub.UploadEvidence(
            upload_messages(photo, captured_at=utc(2026, 3, 2, 3, 40)), metadata=auth("o1")
        )
        assert retry.case.version == reply.case.version
        # downloads: the original, a range, the preview; each audited
        first, data = await download(stub, auth("o2"))
        assert data == photo and first.media_type == "image/jpeg"
        assert first.size_bytes == len(photo)
        _, part = await download(stub, auth("mgr"), offset=100, length=1000)
        assert part == photo[100:1100]
        meta, preview = await download(stub, auth("o1"), preview=True)
        assert meta.media_type == "image/jpeg" and len(preview) < len(photo)
        assert max(Image.open(io.BytesIO(preview)).size) == 1024
        # downloads are audited without a new document: the case is still served as vouched
        served = await stub.GetCase(casefile_pb2.GetCaseRequest(case_id=CASE), metadata=auth("o1"))
        assert served.version == again.case.version and len(served.evidence) == 2
        entries = [e for e in server.store.audit_entries(CASE) if e.kind == "EvidenceDownloaded"]
        assert [(e.actor, json.loads(e.payload_json)["length"]) for e in entries] == [
            ("o2", len(photo)),
            ("mgr", 1000),
            ("o1", len(preview)),
        ]


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


async def test_refusals_store_nothing(tmp_path: Path) -> None:
    limits = SizeLimits((("image/*", 2000), ("video/*", 10 * 2**20)), default=10 * 2**20)
    running, store = await _started(tmp_path, str(tmp_path / "evidence"), limits)
    photo = jpeg()
    video = mp4(300_000)
    async with running as server, grpc.aio.insecure_channel(server.address) as ch:
        stub = await _opened(server, ch)
        up = stub.UploadEvidence
        o1 = auth("o1")
        # bytes that hash to something else than declared
        code = await _code(
            up(upload_messages(video, kind="VIDEO", declared_sha="ab" * 32), metadata=o1)
        )
        assert code is grpc.StatusCode.DATA_LOSS
        # more bytes than declared / fewer bytes than declared
        short = upload_messages(video, kind="VIDEO", declared_size=1000)
        assert await _code(up(short, metadata=o1)) is grpc.StatusCode.INVALID_ARGUMENT
        long = upload_messages(video, kind="VIDEO", declared_size=400_000)
        assert await _code(up(long, metadata=o1)) is grpc.StatusCode.INVALID_ARGUMENT
        # a photo over its media type's limit (2000 bytes here)
        assert (
            await _code(up(upload_messages(photo), metadata=o1))
            is grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        # content of no accepted media type, whatever is declared
        text = b"just some text pretending to be a photo" * 10
        assert (
            await _code(up(upload_messages(text), metadata=o1)) is grpc.StatusCode.INVALID_ARGUMENT
        )
        # chunks without a header
        headless = upload_messages(video, header=False)
        assert await _code(up(headless, metadata=o1)) is grpc.StatusCode.INVALID_ARGUMENT
        # monitoring staff add no evidence; refused before any byte is taken, and audited
        staff = upload_messages(video, kind="VIDEO")
        assert await _code(up(staff, metadata=auth("m1"))) is grpc.StatusCode.PERMISSION_DENIED
        assert list(store.keys()) == []
        assert list(store.incoming_dir().iterdir()) == []
        kinds = [e.kind for e in server.store.audit_entries(CASE)]
        assert "AddEvidence" not in kinds and kinds[-1] == "AccessDenied"
        # and a good one goes through
        ok = await up(upload_messages(video, kind="VIDEO", evidence_id="V1"), metadata=o1)
        assert ok.media_type == "video/mp4" and ok.preview_sha256 == ""


async def test_downloads_follow_the_case_access_rules(tmp_path: Path) -> None:
    running, _ = await _started(tmp_path, str(tmp_path / "evidence"))
    video = mp4(500_000)
    async with running as server, grpc.aio.insecure_channel(server.address) as ch:
        stub = await _opened(server, ch)
        await stub.UploadEvidence(
            upload_messages(video, kind="VIDEO", evidence_id="V1"), metadata=auth("o1")
        )
        denied = {
            "monitoring staff on the team": auth("m1"),
            "an officer not on the team": bearer("o9", "officer"),
            "a manager of another county": bearer("far", "manager", jurisdictions=["1101"]),
        }
        for who, metadata in denied.items():
            code = await _code(download(stub, metadata, "V1"))
            assert code is grpc.StatusCode.PERMISSION_DENIED, who
        assert await _code(download(stub, auth("o1"), "NOPE")) is grpc.StatusCode.NOT_FOUND
        past = download(stub, auth("o1"), "V1", offset=len(video))
        assert await _code(past) is grpc.StatusCode.OUT_OF_RANGE
        no_preview = download(stub, auth("o1"), "V1", preview=True)
        assert await _code(no_preview) is grpc.StatusCode.NOT_FOUND
        _, tail = await download(stub, auth("o1"), "V1", offset=499_000)
        assert tail == video[499_000:]
        denials = [e for e in server.store.audit_entries(CASE) if e.kind == "AccessDenied"]
        assert {json.loads(e.payload_json)["method"] for e in denials} == {"DownloadEvidence"}
        assert len(denials) == 3
