"""The on-site inspection record (现场检查笔录) through the phone API on real servers: uvicorn
on a port, dispatch's casefile client, a real casefile gRPC server. A record casefile refuses
leaves nothing on the case (no record or signature evidence without its inspection); one it
accepts is there with its record and every signature as evidence, once, also when the phone
sends it again; the audit chain verifies."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from casefile.adapters.store import CaseStore
from dispatch.domain.tasks import TaskState, task_id_for
from dispatch.entrypoints.phone_api import create_app
from liandong.tokens.keys import new_private_key
from liandong.tokens.phone import issue as phone_token
from liandong.v1 import casefile_pb2
from tests.integration.dispatch.phone_server import AcceptedCase, accepted_case, serving
from tests.unit.dispatch.harness import OUTLET, T0, Harness

KEY = "dispatch-inspection-integration-key-0123456"
PHONE_KEY = "phone-signing-key-of-at-least-32-bytes!!"
DISPATCH_KEY = new_private_key()
TID = task_id_for("A1")


def auth(pid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {phone_token(pid, 'ENFORCEMENT', ['320106'], key=PHONE_KEY)}"}


@dataclass
class Site:
    url: str
    joint: AcceptedCase

    @property
    def h(self) -> Harness:
        return self.joint.h

    @property
    def store(self) -> CaseStore:
        return self.joint.store

    @property
    def case_id(self) -> str:
        return self.joint.case_id

    async def case(self) -> casefile_pb2.Case:
        return await self.joint.case()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """A case ON_SITE: e1 and e2 accepted and checked in, their arrival recorded by casefile."""
    async with accepted_case(tmp_path, KEY, DISPATCH_KEY) as joint:
        h = joint.h
        await h.service.update_status(TID, "e1", TaskState.EN_ROUTE, None)
        h.clock.advance(minutes=20)
        await h.service.update_status(TID, "e1", TaskState.ON_SITE, OUTLET)
        await h.service.update_status(TID, "e2", TaskState.ON_SITE, OUTLET)
        await h.service.call_casefile()
        async with serving(create_app(h.service, PHONE_KEY)) as url:
            yield Site(url, joint)


def png(shade: int) -> str:
    """A distinct small PNG, base64 (a signature drawn on the phone)."""
    out = io.BytesIO()
    Image.new("RGB", (60, 20), (shade, shade, shade)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def body(request_id: str, signers: tuple[str, ...]) -> dict[str, Any]:
    signed_at = (T0 + timedelta(minutes=40)).isoformat()
    return {
        "request_id": request_id,
        "record_id": f"rec-{request_id}",
        "record": {"present": "e1, e2, 赵经理", "findings": "氮氧化物小时均值超标"},
        "signatures": {
            pid: {"image_png": png(40 * i), "signed_at": signed_at}
            for i, pid in enumerate(signers, 1)
        },
        "party_signed_by": "赵经理",
        "party_signature_png": png(250),
    }


async def test_a_refused_inspection_leaves_no_evidence_and_an_accepted_one_records_all(
    site: Site,
) -> None:
    before = await site.case()
    assert before.state == "ON_SITE" and not before.HasField("inspection")
    async with httpx.AsyncClient(base_url=site.url, timeout=30) as c:
        # e3 is a certified officer of the county but not on this case's team: casefile
        # refuses the record, and neither the record nor any signature stays behind
        stranger = await c.post(
            f"/v1/tasks/{TID}/inspection",
            json=body("insp-stranger-0001", ("e1", "e3")),
            headers=auth("e1"),
        )
        assert stranger.status_code == 409, stranger.text
        assert "e3 is not an enforcement officer on the case" in stranger.json()["detail"]
        refused = await site.case()
        assert list(refused.evidence) == list(before.evidence)
        assert not refused.HasField("inspection")
        assert (refused.state, refused.version) == ("ON_SITE", before.version)

        # signed by the two officers on site and the plant's representative: all recorded
        good = body("insp-good-00001", ("e1", "e2"))
        accepted = await c.post(f"/v1/tasks/{TID}/inspection", json=good, headers=auth("e1"))
        assert accepted.status_code == 200, accepted.text
        case = await site.case()
        assert case.state == "INSPECTED"
        assert [s.signer for s in case.inspection.signatures] == ["e1", "e2"]
        assert case.inspection.party_signed_by == "赵经理"
        record_id = "rec-insp-good-00001"
        assert sorted((e.evidence_id, e.kind) for e in case.evidence) == [
            (record_id, "SURVEY_RECORD"),
            (f"{record_id}:sig:e1", "DOCUMENT"),
            (f"{record_id}:sig:e2", "DOCUMENT"),
            (f"{record_id}:sig:赵经理", "DOCUMENT"),
        ]
        record = next(e for e in case.evidence if e.kind == "SURVEY_RECORD")
        assert record.sha256 == case.inspection.record_sha256
        # the answer is the case with the record and its evidence
        assert len(accepted.json()["evidence"]) == 4 and accepted.json()["inspection"]

        # the phone sends it again later (its answer was lost): recorded once, same answer
        site.h.clock.advance(minutes=7)
        again = await c.post(f"/v1/tasks/{TID}/inspection", json=good, headers=auth("e1"))
        assert again.status_code == 200, again.text
        assert again.json() == accepted.json()
        assert (await site.case()).version == case.version

    report, document = await asyncio.to_thread(site.store.verify_case, site.case_id)
    assert report.ok and document == "", (report, document)
