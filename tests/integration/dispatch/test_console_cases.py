"""The console's cases and legal clocks: dispatch asks a real casefile gRPC server (tokens
required, dispatch's own key), acting for the signed-in manager, for cases whose legal
deadlines fall within N days, overdue first; casefile scopes them to the manager's
jurisdiction, and a manager's token reads but never writes.

FILING runs 15 calendar days from discovery (casefile domain.clocks). Now is Friday 20 March
2026, 10:00 CST. Cases, by discovery, with FILING's last allowed day: C1 320106 1 March (16
March: overdue), C2 320106 12 March (27 March: 7 days on), C3 320115 15 March (30 March: 10
days on), C4 320106 19 March (3 April: 14 days on)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import grpc
import httpx
import pytest

from casefile.adapters.bundle_archive import bundle_key, public_pem, verify_bundle_file
from casefile.adapters.evidence_store import open_store
from dispatch.adapters.casefile_client import CaseFileClient, CasefileTokens
from dispatch.domain.report_facts import CST
from dispatch.entrypoints.phone_api import create_app
from liandong.events import to_timestamp
from liandong.tokens.issuing import issue_service
from liandong.tokens.keys import new_private_key
from liandong.tokens.verifying import AuthConfig
from liandong.v1 import casefile_pb2, casefile_pb2_grpc
from tests.integration.casefile.conftest import KEY, running_server
from tests.integration.casefile.test_evidence_upload import config as evidence_config
from tests.unit.dispatch.harness import build
from tests.unit.dispatch.test_phone_api import KEY as DISPATCH_JWT_KEY
from tests.unit.dispatch.test_phone_api import auth

DISPATCH_KEY = new_private_key()
NOW = datetime(2026, 3, 20, 10, 0, tzinfo=CST)
CASES = {
    "C1": ("320106", datetime(2026, 3, 1, 9, 0, tzinfo=CST)),
    "C2": ("320106", datetime(2026, 3, 12, 9, 0, tzinfo=CST)),
    "C3": ("320115", datetime(2026, 3, 15, 9, 0, tzinfo=CST)),
    "C4": ("320106", datetime(2026, 3, 19, 9, 0, tzinfo=CST)),
}


def open_request(name: str, county: str, discovered: datetime) -> casefile_pb2.OpenCaseRequest:
    return casefile_pb2.OpenCaseRequest(
        request_id=f"open-{name}", task_id=f"task-{name}", alert_ids=[name],
        enterprise_id="E1", outlet_id="O1", county=county,
        team=[casefile_pb2.Party(person_id="o1", name="王", role="ENFORCEMENT"),
              casefile_pb2.Party(person_id="o2", name="李", role="ENFORCEMENT"),
              casefile_pb2.Party(person_id="m1", name="张", role="MONITORING")],
        discovered_at=to_timestamp(discovered), summary=f"{name} SO2 over limit",
        opened_by="dispatch",
    )  # fmt: skip


@pytest.fixture
async def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], str]]:
    config = AuthConfig(
        required=True, hs_key=KEY, service_keys={"dispatch": DISPATCH_KEY.public_key()}
    )
    monkeypatch.setenv("LIANDONG_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("LIANDONG_CASEFILE_BUNDLE_KEY", str(tmp_path / "bundle.key"))
    evidence_url = str(tmp_path / "evidence")
    evidence = (open_store(evidence_url, tmp_path), evidence_config(evidence_url))
    db = f"sqlite:///{tmp_path / 'casefile.db'}"
    async with running_server(db, config, evidence=evidence) as server:
        server.clock.at = NOW
        ids: dict[str, str] = {}
        service = (("authorization", f"Bearer {issue_service(DISPATCH_KEY, service='dispatch')}"),)
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = casefile_pb2_grpc.CaseFileStub(channel)
            for name, (county, discovered) in CASES.items():
                case = await stub.OpenCase(open_request(name, county, discovered), metadata=service)
                ids[name] = case.case_id
        h = build(tmp_path)
        client = CaseFileClient(server.address, CasefileTokens(DISPATCH_KEY), timeout_s=5)
        h.service.casefile = client  # type: ignore[assignment]
        app = create_app(h.service, DISPATCH_JWT_KEY)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c, ids, server.address
        await client.close()
        h.close()


async def names(
    c: httpx.AsyncClient, ids: dict[str, str], who: dict[str, str], days: int
) -> list[str]:
    r = await c.get("/v1/reports/cases", params={"due_within_days": days}, headers=who)
    assert r.status_code == 200, r.text
    by_id = {v: k for k, v in ids.items()}
    return [by_id[x["case_id"]] for x in r.json()["cases"]]


async def test_cases_due_within_n_days_overdue_first_in_my_jurisdiction(env) -> None:
    c, ids, _ = env
    gulou = auth("gl", "DUTY_MANAGER", "320106")
    jiangning = auth("jn", "DUTY_MANAGER", "320115")
    province = auth("boss", "DUTY_MANAGER", "32")
    assert await names(c, ids, gulou, 6) == ["C1"]
    assert await names(c, ids, gulou, 7) == ["C1", "C2"]
    assert await names(c, ids, gulou, 14) == ["C1", "C2", "C4"]
    assert await names(c, ids, jiangning, 7) == []
    assert await names(c, ids, jiangning, 10) == ["C3"]
    assert await names(c, ids, province, 10) == ["C1", "C2", "C3"]
    body = (await c.get("/v1/reports/cases", params={"due_within_days": 7}, headers=gulou)).json()
    first, second = body["cases"]
    assert first["overdue"] is True and first["clocks"][0]["name"] == "FILING"
    assert (
        first["clocks"][0]["state"] == "BREACHED" and first["clocks"][0]["due_date"] == "2026-03-16"
    )
    assert second["overdue"] is False and second["clocks"][0]["due_date"] == "2026-03-27"
    for bad in (0, -1, 400):
        r = await c.get("/v1/reports/cases", params={"due_within_days": bad}, headers=gulou)
        assert r.status_code == 422
    r = await c.get("/v1/reports/cases", headers=auth("e1", "ENFORCEMENT"))
    assert r.status_code == 403


async def test_a_case_page_with_records_and_audit_verification(env) -> None:
    c, ids, _ = env
    gulou = auth("gl", "DUTY_MANAGER", "320106")
    r = await c.get(f"/v1/reports/cases/{ids['C1']}", headers=gulou)
    assert r.status_code == 200, r.text
    case = r.json()  # audited: the opening, and FILING's breach (already past at opening)
    assert (
        case["audit"]["ok"] is True
        and case["audit"]["checked"] == 2
        and case["audit"]["problem"] == ""
    )
    assert (
        case["records"][0]["kind"] == "opened"
        and case["records"][0]["summary"] == "C1 SO2 over limit"
    )
    assert case["bundle_command"] == f"liandong casefile export {ids['C1']}"
    # another county's case: casefile refuses the manager, dispatch says 403
    r = await c.get(f"/v1/reports/cases/{ids['C3']}", headers=gulou)
    assert r.status_code == 403 and "outside" in r.json()["detail"]
    assert (await c.get("/v1/reports/cases/nope", headers=gulou)).status_code == 404


async def test_the_case_bundle_downloads_as_a_signed_tar_for_the_manager(
    env, tmp_path: Path
) -> None:
    c, ids, _ = env
    gulou = auth("gl", "DUTY_MANAGER", "320106")
    case = (await c.get(f"/v1/reports/cases/{ids['C1']}", headers=gulou)).json()
    assert case["bundle_url"] == f"/v1/reports/cases/{ids['C1']}/bundle"
    r = await c.get(case["bundle_url"], headers=gulou)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-tar"
    disposition = r.headers["content-disposition"]
    assert disposition == f'attachment; filename="{ids["C1"]}.tar"'
    assert int(r.headers["content-length"]) == len(r.content)
    out = tmp_path / "C1.tar"
    out.write_bytes(r.content)
    assert verify_bundle_file(out, public_pem(bundle_key(tmp_path / "bundle.key"))) == []
    # casefile's refusals: another county's case 403, an unknown case 404; field staff 403,
    # nobody signed in 401
    r = await c.get(f"/v1/reports/cases/{ids['C3']}/bundle", headers=gulou)
    assert r.status_code == 403 and "outside" in r.json()["detail"]
    assert (await c.get("/v1/reports/cases/nope/bundle", headers=gulou)).status_code == 404
    field = auth("e1", "ENFORCEMENT")
    assert (await c.get(case["bundle_url"], headers=field)).status_code == 403
    assert (await c.get(case["bundle_url"])).status_code == 401


async def test_a_token_acting_for_a_manager_reads_but_never_writes(env) -> None:
    _, ids, address = env
    acting = CasefileTokens(DISPATCH_KEY).for_manager("gl", ["320106"])
    async with grpc.aio.insecure_channel(address) as channel:
        stub = casefile_pb2_grpc.CaseFileStub(channel)
        read = await stub.GetCase(casefile_pb2.GetCaseRequest(case_id=ids["C2"]), metadata=acting)
        assert read.case_id == ids["C2"]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.FileCase(
                casefile_pb2.FileCaseRequest(request_id="f1", case_id=ids["C2"], filing_no="x"),
                metadata=acting,
            )
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
