"""The evidence store's two backends on real storage: local disk and a real S3 server
(s3proxy, started by deploy/s3/s3.sh). Same contract for both."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casefile.adapters.evidence_store import EvidenceStore, ObjectMissing, rehash
from casefile.adapters.evidence_store.local import LocalEvidenceStore
from casefile.adapters.evidence_store.s3 import S3EvidenceStore, s3_client
from casefile.entrypoints.cli import casefile_app
from tests.integration.casefile.conftest import build_store
from tests.integration.casefile.evidence_files import mp4, sha

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EvidenceStore]:
    if request.param == "local":
        monkeypatch.setenv("LIANDONG_EVIDENCE_STORE", str(tmp_path / "evidence"))
        yield LocalEvidenceStore(tmp_path / "evidence")
        return
    env = request.getfixturevalue("s3_env")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bucket = f"evidence-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("LIANDONG_EVIDENCE_STORE", f"s3://{bucket}/case-files")
    s3 = S3EvidenceStore.from_url(f"s3://{bucket}/case-files", tmp_path / "spool")
    yield s3


def _spooled(store: EvidenceStore, data: bytes) -> Path:
    path = store.incoming_dir() / f"t-{uuid.uuid4().hex}"
    path.write_bytes(data)
    return path


def test_written_once_read_back_and_deduplicated(store: EvidenceStore) -> None:
    data = mp4(3 * 2**20 + 17)
    key = sha(data)
    assert store.put_file(key, _spooled(store, data)) is True
    assert store.exists(key) and store.size(key) == len(data)
    assert b"".join(store.read(key)) == data
    assert b"".join(store.read(key, 1000, 5000)) == data[1000:6000]
    assert rehash(store, key) == key
    # the same bytes again: stored once, nothing replaced
    assert store.put_file(key, _spooled(store, data)) is False
    assert list(store.keys()) == [key]
    with pytest.raises(ObjectMissing):
        store.size("0" * 64)


def test_local_objects_are_read_only_and_never_replaced(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path / "evidence")
    data = b"%PDF-1.7 original"
    key = sha(data)
    store.put_file(key, _spooled(store, data))
    path = store.path(key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    # a different file offered under the same key (a caller's bug) does not replace it
    assert store.put_file(key, _spooled(store, b"%PDF-1.7 forged")) is False
    assert path.read_bytes() == data
    assert list((tmp_path / "evidence" / "incoming").iterdir()) == []


def _corrupt(store: EvidenceStore, key: str, data: bytes) -> None:
    """Damage behind the service's back: on disk by the owner, on S3 by a client with keys."""
    bad = bytearray(data)
    bad[100] ^= 0xFF
    if isinstance(store, LocalEvidenceStore):
        path = store.path(key)
        os.chmod(path, 0o644)
        path.write_bytes(bytes(bad))
    else:
        assert isinstance(store, S3EvidenceStore)
        store.client.put_object(Bucket=store.bucket, Key=store.key(key), Body=bytes(bad))


def test_verify_evidence_finds_a_damaged_object(store: EvidenceStore, tmp_path: Path) -> None:
    good, bad = mp4(300_000, seed=1), mp4(200_000, seed=2)
    for data in (good, bad):
        store.put_file(sha(data), _spooled(store, data))
    db = f"sqlite:///{tmp_path / 'casefile.db'}"
    build_store(db).engine.dispose()  # an empty case file database: no case cites them
    ok = runner.invoke(casefile_app, ["verify", "--evidence", "--db", db])
    assert ok.exit_code == 0, ok.output
    assert "2 evidence objects" in ok.output
    _corrupt(store, sha(bad), bad)
    failed = runner.invoke(casefile_app, ["verify", "--evidence", "--db", db])
    assert failed.exit_code == 1, failed.output
    assert f"DAMAGED: object {sha(bad)}" in failed.output
    assert sha(good) not in failed.output


def test_s3_client_talks_to_a_real_server(s3_env: dict[str, str]) -> None:
    client = s3_client(s3_env["LIANDONG_EVIDENCE_S3_ENDPOINT"])
    # credentials come from the environment in production; here passed explicitly
    assert client.meta.endpoint_url == s3_env["LIANDONG_EVIDENCE_S3_ENDPOINT"]
