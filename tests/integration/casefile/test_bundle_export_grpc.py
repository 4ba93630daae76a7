"""ExportBundle through a real casefile gRPC server (SQLite and PostgreSQL, evidence on local
disk): a manager within jurisdiction, or dispatch's key acting for one, receives the signed
bundle that `liandong casefile verify --bundle` accepts, with the evidence file in it; every
export is audited (BundleExported, vouching for no document); a manager of another county is
PERMISSION_DENIED (and audited), an unknown case NOT_FOUND, a damaged evidence object
DATA_LOSS; the temporary archive never stays under the state folder."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from casefile.adapters.bundle_archive import bundle_key, public_pem, verify_bundle_file
from casefile.adapters.evidence_store import open_store
from casefile.adapters.evidence_store.local import LocalEvidenceStore
from liandong.tokens.issuing import issue_service
from liandong.tokens.keys import new_private_key
from liandong.tokens.verifying import AuthConfig
from liandong.v1 import casefile_pb2, casefile_pb2_grpc
from tests.integration.casefile.conftest import KEY, Server, bearer, running_server
from tests.integration.casefile.evidence_files import jpeg, sha
from tests.integration.casefile.test_evidence_upload import config, upload_messages
from tests.integration.casefile.walk import CASE, auth, walk
from tests.unit.casefile.scenario import utc

pytestmark = pytest.mark.integration

# a console service's own key ("dispatch" is the HS256 name the walk opens cases with)
DISPATCH = new_private_key()


@pytest.fixture()
async def env(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Server, Any, LocalEvidenceStore]]:
    """A case with one uploaded photo; the bundle key and state folder under tmp_path."""
    monkeypatch.setenv("LIANDONG_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("LIANDONG_CASEFILE_BUNDLE_KEY", str(tmp_path / "bundle.key"))
    url = str(tmp_path / "evidence")
    store = open_store(url, tmp_path)
    assert isinstance(store, LocalEvidenceStore)
    auth_config = AuthConfig(
        required=True, hs_key=KEY, service_keys={"reports": DISPATCH.public_key()}
    )
    async with (
        running_server(db_url, auth_config, evidence=(store, config(url))) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        stub = casefile_pb2_grpc.CaseFileStub(channel)
        await walk(server, stub, upto=2)  # opened, officers arrived
        server.clock.at = utc(2026, 3, 2, 4)
        await stub.UploadEvidence(upload_messages(jpeg()), metadata=auth("o1"))
        yield server, stub, store


async def export(stub: Any, metadata: Any, case_id: str = CASE) -> tuple[Any, bytes]:
    first = None
    data = b""
    async for part in stub.ExportBundle(
        casefile_pb2.ExportBundleRequest(case_id=case_id), metadata=metadata
    ):
        first = first or part
        data += part.data
    assert first is not None
    return first, data


async def refused(stub: Any, metadata: Any, case_id: str = CASE) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await export(stub, metadata, case_id)
    return err.value.code(), err.value.details() or ""


def exports_left(tmp_path: Path) -> list[str]:
    folder = tmp_path / "state" / "exports"
    return sorted(os.listdir(folder)) if folder.exists() else []


async def test_a_manager_in_jurisdiction_exports_a_bundle_that_verifies(
    env: tuple[Server, Any, LocalEvidenceStore], tmp_path: Path
) -> None:
    server, stub, _ = env
    first, data = await export(stub, bearer("mgr", "manager", jurisdictions=["3205"]))
    assert first.file_name == f"{CASE}.tar"
    assert first.size_bytes == len(data) and first.sha256 == hashlib.sha256(data).hexdigest()
    out = tmp_path / "bundle.tar"
    out.write_bytes(data)
    public = public_pem(bundle_key(tmp_path / "bundle.key"))
    assert verify_bundle_file(out, public) == []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = set(tar.getnames())
    photo = f"{CASE}/evidence/{sha(jpeg())}.jpg"
    assert {f"{CASE}/SHA256SUMS", f"{CASE}/case.json", f"{CASE}/record.json", photo} <= names
    # audited, vouching for no document: the case still verifies and is still served
    last = server.store.audit_entries(CASE)[-1]
    assert (last.kind, last.actor) == ("BundleExported", "mgr")
    assert json.loads(last.payload_json)["sha256"] == first.sha256
    verified = await stub.VerifyCase(
        casefile_pb2.GetCaseRequest(case_id=CASE), metadata=auth("mgr")
    )
    assert verified.ok, verified.detail
    assert exports_left(tmp_path) == []


async def test_dispatch_acting_for_a_manager_exports_and_the_audit_names_both(
    env: tuple[Server, Any, LocalEvidenceStore], tmp_path: Path
) -> None:
    server, stub, _ = env
    act = {"sub": "gl", "roles": ["manager"], "jurisdiction": ["320583"]}
    token = issue_service(DISPATCH, service="reports", act=act)
    first, data = await export(stub, (("authorization", f"Bearer {token}"),))
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    last = server.store.audit_entries(CASE)[-1]
    assert (last.kind, last.actor) == ("BundleExported", "gl")
    assert json.loads(last.payload_json)["via"] == {"service": "reports", "on_behalf_of": "gl"}
    # dispatch acting for a manager of another county: refused
    other = {"sub": "jn", "roles": ["manager"], "jurisdiction": ["320115"]}
    token = issue_service(DISPATCH, service="reports", act=other)
    code, detail = await refused(stub, (("authorization", f"Bearer {token}"),))
    assert code is grpc.StatusCode.PERMISSION_DENIED and "outside" in detail


async def test_out_of_jurisdiction_unknown_case_and_damaged_evidence_are_refused(
    env: tuple[Server, Any, LocalEvidenceStore], tmp_path: Path
) -> None:
    server, stub, store = env
    before = len(server.store.audit_entries(CASE))
    code, detail = await refused(stub, bearer("nj", "manager", jurisdictions=["3201"]))
    assert code is grpc.StatusCode.PERMISSION_DENIED and "outside" in detail
    entries = server.store.audit_entries(CASE)
    assert [e.kind for e in entries[before:]] == ["AccessDenied"]  # the attempt is on record
    code, _ = await refused(stub, auth("mgr"), case_id="no-such-case")
    assert code is grpc.StatusCode.NOT_FOUND
    code, _ = await refused(stub, ())  # no token
    assert code is grpc.StatusCode.UNAUTHENTICATED
    # the photo's bytes damaged in the store: no bundle, no export on record
    path = store.path(sha(jpeg()))
    os.chmod(path, 0o644)
    damaged = bytearray(path.read_bytes())
    damaged[-10] ^= 0xFF
    path.write_bytes(bytes(damaged))
    code, detail = await refused(stub, auth("mgr"))
    assert code is grpc.StatusCode.DATA_LOSS and "damaged" in detail
    kinds = [e.kind for e in server.store.audit_entries(CASE)]
    assert "BundleExported" not in kinds
    assert exports_left(tmp_path) == []
