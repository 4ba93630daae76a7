"""Partial evidence uploads from phones, kept on dispatch's disk until they are complete and
handed to casefile (docs/dispatch.md, "Evidence uploads").

Each upload is two files in the spool folder: `<id>.json` (who, which task and case, the
declared hash, size and metadata; the result once casefile took it) and `<id>.part` (the
bytes received so far; its length is the upload's offset, so what reached the disk before a
dropped connection counts and the phone resumes from there). Bounded: one upload at most
`max_bytes`, all open uploads together at most `quota_bytes` (declared sizes), and uploads
untouched for `expire_after` are removed when a new one is created.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class UploadRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Upload:
    upload_id: str
    person_id: str
    role: str
    task_id: str
    case_id: str
    evidence_id: str
    kind: str
    sha256: str
    size: int
    media_type: str
    captured_at: str
    description: str
    lat: float | None
    lon: float | None
    created_at: float
    result: dict[str, Any] | None = field(default=None)


class UploadSpool:
    def __init__(
        self,
        folder: Path,
        *,
        max_bytes: int = 1024 * 2**20,
        quota_bytes: int = 4 * 1024 * 2**20,
        expire_after_s: float = 24 * 3600,
    ) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.quota_bytes = quota_bytes
        self.expire_after_s = expire_after_s
        folder.mkdir(parents=True, exist_ok=True)

    def _meta(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.json"

    def part(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.part"

    def _save(self, up: Upload) -> None:
        tmp = self._meta(up.upload_id).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(up), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self._meta(up.upload_id))

    def _all(self) -> Iterator[Upload]:
        for path in self.folder.glob("*.json"):
            try:
                yield Upload(**json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue

    def get(self, upload_id: str) -> Upload | None:
        if not upload_id.isalnum():
            return None
        try:
            return Upload(**json.loads(self._meta(upload_id).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def offset(self, upload_id: str) -> int:
        try:
            return self.part(upload_id).stat().st_size
        except FileNotFoundError:
            return 0

    def sweep(self, now: float | None = None) -> None:
        """Removes uploads untouched for longer than `expire_after_s`."""
        now = time.time() if now is None else now
        for up in list(self._all()):
            part = self.part(up.upload_id)
            touched = part.stat().st_mtime if part.exists() else up.created_at
            if now - max(touched, up.created_at) > self.expire_after_s:
                self.discard(up.upload_id, forget=True)

    def create(self, **fields: Any) -> tuple[Upload, bool]:
        """A new upload, or the open one of the same person, task, evidence id and hash (a
        phone that lost the answer asks again). Returns it and whether it is new."""
        size = int(fields["size"])
        if size <= 0:
            raise UploadRefused(422, "size must be > 0")
        if size > self.max_bytes:
            raise UploadRefused(413, f"size {size} exceeds the upload limit {self.max_bytes}")
        self.sweep()
        same = ("person_id", "task_id", "evidence_id", "sha256", "size")
        pending = 0
        for up in self._all():
            if all(getattr(up, k) == fields[k] for k in same):
                return up, False
            if up.result is None:
                pending += up.size
        if pending + size > self.quota_bytes:
            raise UploadRefused(
                507, "too many unfinished uploads on the server; finish or retry later"
            )
        up = Upload(upload_id=uuid.uuid4().hex, created_at=time.time(), **fields)
        self.part(up.upload_id).touch()
        self._save(up)
        return up, True

    def append(self, up: Upload, offset: int, chunks: Iterator[bytes] | None = None) -> Any:
        """Checks `offset` against what the spool holds and returns a writer for the bytes;
        raises UploadRefused(409) when the phone's offset is not the server's."""
        held = self.offset(up.upload_id)
        if up.result is not None:
            raise UploadRefused(409, "upload already completed")
        if offset != held:
            raise UploadRefused(409, f"offset {offset} is not the upload's offset {held}")
        return open(self.part(up.upload_id), "ab")

    def complete(self, up: Upload, result: dict[str, Any]) -> None:
        """Casefile took it: the bytes go, the answer stays (a repeated complete gets it)."""
        up.result = result
        self._save(up)
        self.part(up.upload_id).unlink(missing_ok=True)

    def discard(self, upload_id: str, *, forget: bool = False) -> None:
        self.part(upload_id).unlink(missing_ok=True)
        if forget:
            self._meta(upload_id).unlink(missing_ok=True)
        else:
            self.part(upload_id).touch()  # back to offset 0
