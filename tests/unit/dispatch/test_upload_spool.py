"""The phone uploads' spool: bounded, resumable, found again, swept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dispatch.adapters.upload_spool import UploadRefused, UploadSpool


def fields(evidence_id: str = "V1", size: int = 100, person: str = "e1") -> dict[str, Any]:
    return {
        "person_id": person,
        "role": "ENFORCEMENT",
        "task_id": "t1",
        "case_id": "case-1",
        "evidence_id": evidence_id,
        "kind": "VIDEO",
        "sha256": "ab" * 32,
        "size": size,
        "media_type": "",
        "captured_at": "2026-03-02T02:30:00+00:00",
        "description": "",
        "lat": None,
        "lon": None,
    }


def test_bounds_offsets_and_the_same_upload_again(tmp_path: Path) -> None:
    spool = UploadSpool(tmp_path, max_bytes=1000, quota_bytes=1500)
    with pytest.raises(UploadRefused) as big:
        spool.create(**fields(size=1001))
    assert big.value.status == 413
    up, new = spool.create(**fields(size=1000))
    assert new and spool.offset(up.upload_id) == 0
    with spool.append(up, 0) as f:
        f.write(b"x" * 300)
    assert spool.offset(up.upload_id) == 300
    with pytest.raises(UploadRefused) as stale:
        spool.append(up, 0)
    assert stale.value.status == 409
    again, new = spool.create(**fields(size=1000))
    assert not new and again.upload_id == up.upload_id
    with pytest.raises(UploadRefused) as full:  # 1000 + 600 unfinished > 1500
        spool.create(**fields("V2", size=600))
    assert full.value.status == 507
    spool.complete(up, {"evidence_id": "V1"})
    assert not spool.part(up.upload_id).exists()
    assert spool.get(up.upload_id).result == {"evidence_id": "V1"}  # type: ignore[union-attr]
    spool.create(**fields("V2", size=600))  # the completed one no longer counts
    assert spool.get("../etc") is None


def test_untouched_uploads_are_swept(tmp_path: Path) -> None:
    spool = UploadSpool(tmp_path, expire_after_s=3600)
    old, _ = spool.create(**fields("old"))
    spool.sweep(now=old.created_at + 7200)
    assert spool.get(old.upload_id) is None and not spool.part(old.upload_id).exists()
