"""`liandong casefile export` writes one signed archive with the case document, its audit
chain and every evidence file; `verify --bundle` (and the script inside, without Liandong)
names every altered, missing or extra file, and an edited case document fails even with a
recomputed SHA256SUMS."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from casefile.adapters.bundle_archive import bundle_key
from casefile.entrypoints.cli import casefile_app
from liandong.tokens.verifying import AuthConfig
from tests.integration.casefile.conftest import KEY, running_server
from tests.integration.casefile.evidence_files import jpeg, mp4, sha
from tests.integration.casefile.test_evidence_upload import config, upload_messages
from tests.integration.casefile.walk import CASE, auth, walk
from tests.unit.casefile.scenario import utc

pytestmark = pytest.mark.integration
runner = CliRunner()
PHOTO, VIDEO = jpeg(), mp4(700_000)


class Exported:
    def __init__(self, tar: Path, db: str, key: Path) -> None:
        self.tar, self.db, self.key = tar, db, key
        self.public = key.with_suffix(".pub")

    def verify(self, path: Path | None = None, *extra: str) -> tuple[int, str]:
        args = ["verify", "--bundle", str(path or self.tar), "--key", str(self.public), *extra]
        result = runner.invoke(casefile_app, args)
        return result.exit_code, result.output


@pytest.fixture()
async def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Exported]:
    from casefile.adapters.evidence_store import open_store

    evidence = tmp_path / "evidence"
    key = tmp_path / "keys" / "casefile-bundle.key"
    monkeypatch.setenv("LIANDONG_EVIDENCE_STORE", str(evidence))
    monkeypatch.setenv("LIANDONG_CASEFILE_BUNDLE_KEY", str(key))
    db = f"sqlite:///{tmp_path / 'casefile.db'}"
    store = open_store(str(evidence), tmp_path)
    async with (
        running_server(
            db, AuthConfig(required=True, hs_key=KEY), evidence=(store, config(str(evidence)))
        ) as server,
        grpc.aio.insecure_channel(server.address) as ch,
    ):
        from liandong.v1 import casefile_pb2_grpc

        stub = casefile_pb2_grpc.CaseFileStub(ch)
        await walk(server, stub, upto=3)  # opened, arrived, a site note or photo by hash
        server.clock.at = utc(2026, 3, 2, 4)
        await stub.UploadEvidence(upload_messages(PHOTO, evidence_id="P1"), metadata=auth("o1"))
        await stub.UploadEvidence(
            upload_messages(VIDEO, evidence_id="V1", request_id="up-v", kind="VIDEO"),
            metadata=auth("o2"),
        )
    out = tmp_path / "bundle.tar"
    result = runner.invoke(casefile_app, ["export", CASE, "--out", str(out), "--db", db])
    assert result.exit_code == 0, result.output
    yield Exported(out, db, key)


def members(tar: Path) -> dict[str, bytes]:
    with tarfile.open(tar) as t:
        return {m.name.split("/", 1)[1]: t.extractfile(m).read() for m in t if m.isfile()}  # type: ignore[union-attr]


def rewrite(tar: Path, out: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(out, "w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{CASE}/{name}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out


def resum(files: dict[str, bytes], key: Ed25519PrivateKey | None = None) -> dict[str, bytes]:
    """What a forger does: SHA256SUMS recomputed (and signed with `key` when given)."""
    lines = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in sorted(files.items())
        if name not in ("SHA256SUMS", "SHA256SUMS.sig")
    ).encode()
    out = {**files, "SHA256SUMS": lines}
    if key is not None:
        out["SHA256SUMS.sig"] = key.sign(lines)
    return out


async def test_export_holds_everything_and_verifies(exported: Exported, tmp_path: Path) -> None:
    assert os.stat(exported.tar).st_mode & 0o777 == 0o600
    files = members(exported.tar)
    assert files[f"evidence/{sha(PHOTO)}.jpg"] == PHOTO
    assert files[f"evidence/{sha(VIDEO)}.mp4"] == VIDEO
    manifest = json.loads(files["manifest.json"])
    assert {i["evidence_id"] for i in manifest["evidence"]} >= {"P1", "V1"}
    code, output = exported.verify()
    assert code == 0, output
    assert "evidence E1: recorded by hash only" in output  # the walk's photo, by hash
    # without Liandong: tar, sha256sum -c, openssl, and the script under a bare python3
    shutil.unpack_archive(exported.tar, tmp_path / "x")
    folder = tmp_path / "x" / CASE
    for command in (
        ["sha256sum", "--quiet", "-c", "SHA256SUMS"],
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(exported.public),
            "-rawin",
            "-in",
            "SHA256SUMS",
            "-sigfile",
            "SHA256SUMS.sig",
        ],
        ["/usr/bin/python3", "-I", "verify_bundle.py", "--key", str(exported.public)],
    ):
        run = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
        assert run.returncode == 0, (command, run.stdout, run.stderr)


async def test_altered_missing_and_extra_files_are_named(
    exported: Exported, tmp_path: Path
) -> None:
    files = members(exported.tar)
    photo = f"evidence/{sha(PHOTO)}.jpg"
    altered = {**files, photo: PHOTO[:-1] + b"\x00"}
    code, output = exported.verify(rewrite(exported.tar, tmp_path / "a.tar", altered))
    assert code == 1 and f"altered file: {photo}" in output
    missing = {k: v for k, v in files.items() if k != f"evidence/{sha(VIDEO)}.mp4"}
    code, output = exported.verify(rewrite(exported.tar, tmp_path / "m.tar", missing))
    assert code == 1 and f"missing file: evidence/{sha(VIDEO)}.mp4" in output
    extra = {**files, "evidence/extra.jpg": PHOTO}
    code, output = exported.verify(rewrite(exported.tar, tmp_path / "e.tar", extra))
    assert code == 1 and "extra file: evidence/extra.jpg" in output
    # the same finding from the script inside the bundle, without Liandong
    shutil.unpack_archive(tmp_path / "a.tar", tmp_path / "a")
    run = subprocess.run(
        ["/usr/bin/python3", "-I", "verify_bundle.py", "--key", str(exported.public)],
        cwd=tmp_path / "a" / CASE,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1 and f"altered file: {photo}" in run.stdout


async def test_an_edited_case_document_fails_with_recomputed_sums(
    exported: Exported, tmp_path: Path
) -> None:
    files = members(exported.tar)
    doc = json.loads(files["case.json"])
    doc["arrival"]["officers_present"] = ["o1"]  # the second officer's presence erased
    edited = {**files, "case.json": json.dumps(doc, ensure_ascii=False).encode()}
    # SHA256SUMS recomputed, signature kept: the signature and the chain both refuse it
    code, output = exported.verify(rewrite(exported.tar, tmp_path / "c.tar", resum(edited)))
    assert code == 1
    assert "SHA256SUMS.sig: signature does not verify" in output
    assert "altered file: case.json" in output and "audit chain recorded" in output
    # the team served beside the document edited the same way
    record = json.loads(files["record.json"])
    record["team"] = record["team"][:1]
    served = resum({**files, "record.json": json.dumps(record).encode()}, bundle_key(exported.key))
    code, output = exported.verify(rewrite(exported.tar, tmp_path / "r.tar", served))
    assert code == 1 and "altered file: record.json" in output
    # signed with a key of the forger's own: still not the agency's signature
    forged = resum(edited, Ed25519PrivateKey.generate())
    code, output = exported.verify(rewrite(exported.tar, tmp_path / "f.tar", forged))
    assert code == 1 and "signature does not verify" in output
    # even with the agency's key stolen, the document does not match the chain
    stolen = resum(edited, bundle_key(exported.key))
    code, output = exported.verify(rewrite(exported.tar, tmp_path / "s.tar", stolen))
    assert code == 1 and "signature" not in output and "altered file: case.json" in output
    # an audit entry rewritten (actor), sums recomputed and signed with the stolen key
    lines = files["audit.jsonl"].decode().splitlines()
    entry = json.loads(lines[1])
    entry["actor"] = "someone-else"
    lines[1] = json.dumps(entry, ensure_ascii=False)
    chain = resum(
        {**files, "audit.jsonl": ("\n".join(lines) + "\n").encode()}, bundle_key(exported.key)
    )
    code, output = exported.verify(rewrite(exported.tar, tmp_path / "t.tar", chain))
    assert code == 1 and "audit.jsonl line 2 (case_seq 2): entry edited" in output


async def test_exit_codes_and_careful_writes(exported: Exported, tmp_path: Path) -> None:
    code, output = exported.verify(tmp_path / "nothing.tar")
    assert code == 3 and "cannot read" in output
    not_tar = tmp_path / "case.json"
    not_tar.write_text("{}")
    assert exported.verify(not_tar)[0] == 3
    assert exported.verify(None, "--evidence")[0] == 2
    # export: an existing file only with --force, never through a symlink, 0600
    again = runner.invoke(
        casefile_app, ["export", CASE, "--out", str(exported.tar), "--db", exported.db]
    )
    assert again.exit_code == 1 and "exists" in again.output
    target = tmp_path / "elsewhere"
    link = tmp_path / "link.tar"
    link.symlink_to(target)
    linked = runner.invoke(
        casefile_app, ["export", CASE, "--out", str(link), "--db", exported.db, "--force"]
    )
    assert linked.exit_code == 1 and "symbolic link" in linked.output and not target.exists()
    forced = runner.invoke(
        casefile_app, ["export", CASE, "--out", str(exported.tar), "--db", exported.db, "--force"]
    )
    assert forced.exit_code == 0 and exported.verify()[0] == 0
