"""Evidence through the phone API on real servers: uvicorn on a port, dispatch's casefile
client, a real casefile gRPC server with its evidence store. A dropped upload resumes from
the offset the server holds; the complete file reaches casefile acting for the person; video
downloads answer HTTP range requests under the case's access rules."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from casefile.adapters.evidence_store import open_store
from dispatch.adapters.upload_spool import UploadSpool
from dispatch.domain.tasks import task_id_for
from dispatch.entrypoints.phone_api import create_app
from liandong.tokens.keys import new_private_key
from liandong.tokens.phone import issue as phone_token
from liandong.v1 import casefile_pb2
from tests.integration.casefile.evidence_files import jpeg, mp4, sha
from tests.integration.casefile.test_evidence_upload import config
from tests.integration.dispatch.phone_server import AcceptedCase, accepted_case, serving
from tests.unit.dispatch.harness import T0

pytestmark = pytest.mark.integration
KEY = "dispatch-evidence-integration-key-0123456789"
PHONE_KEY = "phone-signing-key-of-at-least-32-bytes!!"
DISPATCH_KEY = new_private_key()
TID = task_id_for("A1")
OFFSET_TYPE = {"Content-Type": "application/offset+octet-stream"}


def auth(pid: str, role: str = "ENFORCEMENT") -> dict[str, str]:
    return {"Authorization": f"Bearer {phone_token(pid, role, ['320106'], key=PHONE_KEY)}"}


class Stack:
    def __init__(self, url: str, joint: AcceptedCase, uploads: UploadSpool) -> None:
        self.url, self.joint, self.uploads = url, joint, uploads

    async def case(self) -> casefile_pb2.Case:
        return await self.joint.case()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    evidence = str(tmp_path / "evidence")
    store = (open_store(evidence, tmp_path), config(evidence))
    async with accepted_case(tmp_path, KEY, DISPATCH_KEY, evidence=store) as joint:
        uploads = UploadSpool(tmp_path / "uploads", max_bytes=8 * 2**20, quota_bytes=20 * 2**20)
        app = create_app(joint.h.service, PHONE_KEY, uploads=uploads)
        async with serving(app) as url:
            yield Stack(url, joint, uploads)


def metadata(data: bytes, evidence_id: str = "V1", kind: str = "VIDEO") -> dict[str, Any]:
    return {
        "evidence_id": evidence_id,
        "kind": kind,
        "sha256": sha(data),
        "size": len(data),
        "media_type": "video/mp4",
        "captured_at": (T0 + timedelta(minutes=30)).isoformat(),
        "description": "outfall at night",
        "lat": 32.0,
        "lon": 118.8,
    }


async def _drop_midway(url: str, path: str, offset: int, data: bytes, sent: int) -> None:
    """A PATCH whose connection dies after `sent` of its `len(data)` body bytes."""
    host, port = url.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {auth('e1')['Authorization']}\r\n"
        f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    writer.write(head + data[:sent])
    await writer.drain()
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


async def test_a_dropped_upload_resumes_and_reaches_the_case(stack: Stack) -> None:
    video = mp4(3 * 2**20 + 12_345)
    MB = 2**20
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as c:
        created = await c.post(
            f"/v1/tasks/{TID}/evidence/uploads", json=metadata(video), headers=auth("e1")
        )
        assert created.status_code == 201, created.text
        up = created.json()
        where = created.headers["Location"]
        assert where == up["location"] and up["offset"] == 0
        # asked again (the answer was lost): the same upload
        again = await c.post(
            f"/v1/tasks/{TID}/evidence/uploads", json=metadata(video), headers=auth("e1")
        )
        assert again.status_code == 200 and again.json()["upload_id"] == up["upload_id"]
        first = await c.patch(
            where, content=video[:MB], headers={**auth("e1"), **OFFSET_TYPE, "Upload-Offset": "0"}
        )
        assert first.status_code == 204 and first.headers["Upload-Offset"] == str(MB)
        # the link drops 300 kB into the second megabyte
        await _drop_midway(stack.url, where, MB, video[MB : 2 * MB], 300_000)
        offset = MB
        for _ in range(500):  # the server notices the closed connection, then HEAD says
            head = await c.head(where, headers=auth("e1"))
            offset = int(head.headers["Upload-Offset"])
            if offset > MB:
                break
            await asyncio.sleep(0.02)
        assert MB < offset <= MB + 300_000
        assert head.headers["Upload-Length"] == str(len(video))
        # a PATCH at the phone's stale offset is refused with the server's
        stale = await c.patch(
            where, content=b"x", headers={**auth("e1"), **OFFSET_TYPE, "Upload-Offset": str(MB)}
        )
        assert stale.status_code == 409 and stale.headers["Upload-Offset"] == str(offset)
        early = await c.post(f"{where}/complete", headers=auth("e1"))
        assert early.status_code == 409
        rest = await c.patch(
            where,
            content=video[offset:],
            headers={**auth("e1"), **OFFSET_TYPE, "Upload-Offset": str(offset)},
        )
        assert rest.status_code == 204 and rest.headers["Upload-Offset"] == str(len(video))
        done = await c.post(f"{where}/complete", headers=auth("e1"))
        assert done.status_code == 200, done.text
        evidence = done.json()
        assert evidence["sha256"] == sha(video) and evidence["media_type"] == "video/mp4"
        assert evidence["size"] == len(video) and evidence["preview_url"] is None
        assert (await c.post(f"{where}/complete", headers=auth("e1"))).json() == evidence
        assert not stack.uploads.part(up["upload_id"]).exists()  # the bytes left dispatch
        case = await stack.case()
        item = case.evidence[0]
        assert (item.evidence_id, item.sha256, item.captured_by) == ("V1", sha(video), "e1")
        assert item.content.size_bytes == len(video)

        # downloads: a range of the video for a team officer, the whole file, and refusals
        url = evidence["download_url"]
        part = await c.get(url, headers={**auth("e2"), "Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == video[1000:2000]
        assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(video)}"
        assert part.headers["Content-Type"] == "video/mp4"
        tail = await c.get(url, headers={**auth("e2"), "Range": f"bytes={len(video) - 10}-"})
        assert tail.status_code == 206 and tail.content == video[-10:]
        whole = await c.get(url, headers=auth("e1"))
        assert whole.status_code == 200 and whole.content == video
        assert whole.headers["Accept-Ranges"] == "bytes"
        past = await c.get(url, headers={**auth("e1"), "Range": f"bytes={len(video)}-"})
        assert past.status_code == 416
        # monitoring staff see samples only (casefile refuses), an outsider is refused here
        staff = await c.get(url, headers=auth("m1", "MONITORING"))
        assert staff.status_code == 403 and "casefile" in staff.text
        assert (await c.get(url, headers=auth("e3"))).status_code == 403
        assert (await c.get(url)).status_code == 401


async def test_uploads_refuse_what_is_wrong(stack: Stack) -> None:
    photo = jpeg()
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as c:
        too_big = {**metadata(photo, "P9", "PHOTO"), "size": 9 * 2**20}
        r = await c.post(f"/v1/tasks/{TID}/evidence/uploads", json=too_big, headers=auth("e1"))
        assert r.status_code == 413
        outsider = await c.post(
            f"/v1/tasks/{TID}/evidence/uploads", json=metadata(photo), headers=auth("e3")
        )
        assert outsider.status_code == 403
        # a declared hash the bytes do not have: refused at completion, back to offset 0
        wrong = {**metadata(photo, "P1", "PHOTO"), "sha256": "ab" * 32}
        where = (
            await c.post(f"/v1/tasks/{TID}/evidence/uploads", json=wrong, headers=auth("e1"))
        ).headers["Location"]
        bad_type = await c.patch(where, content=photo, headers={**auth("e1"), "Upload-Offset": "0"})
        assert bad_type.status_code == 415
        more = await c.patch(
            where,
            content=photo + b"extra",
            headers={**auth("e1"), **OFFSET_TYPE, "Upload-Offset": "0"},
        )
        assert more.status_code == 413 and more.headers["Upload-Offset"] == "0"
        ok = await c.patch(
            where, content=photo, headers={**auth("e1"), **OFFSET_TYPE, "Upload-Offset": "0"}
        )
        assert ok.status_code == 204
        refused = await c.post(f"{where}/complete", headers=auth("e1"))
        assert refused.status_code == 422 and refused.headers["Upload-Offset"] == "0"
        # someone else's upload is not found for them
        assert (await c.head(where, headers=auth("e2"))).status_code == 404
        # a photo done right: EXIF read, preview offered
        good = await c.post(
            f"/v1/tasks/{TID}/evidence/uploads",
            json={**metadata(photo, "P2", "PHOTO"), "lat": 31.3, "lon": 120.6},
            headers=auth("e2"),
        )
        where = good.headers["Location"]
        await c.patch(
            where, content=photo, headers={**auth("e2"), **OFFSET_TYPE, "Upload-Offset": "0"}
        )
        done = (await c.post(f"{where}/complete", headers=auth("e2"))).json()
        assert done["media_type"] == "image/jpeg" and done["preview_url"].endswith("preview=true")
        preview = await c.get(done["preview_url"], headers=auth("e1"))
        assert preview.status_code == 200 and preview.headers["Content-Type"] == "image/jpeg"
        assert len(preview.content) < len(photo)
