"""The evidence store port: content-addressed, write-once storage of evidence bytes.

The key is the SHA-256 (hex) of the original bytes. Backends: `local` (files under the state
folder, the embedded default) and `s3` (S3-compatible object storage: Ceph RGW, Aliyun OSS,
Tencent COS, MinIO, s3proxy). What each guarantees against deletion is in docs/casefile.md.
Previews (scaled photos for the apps) live beside the originals under their own namespace;
they are derived and never evidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

CHUNK = 1 << 20


class ObjectMissing(Exception):
    """No object under this key."""


class EvidenceStore(Protocol):
    """Write once, read many; the service never overwrites or deletes an object."""

    name: str

    def put_file(self, sha256: str, path: Path) -> bool:
        """Stores the file's bytes under `sha256` (the caller has hashed them); False when
        the key was held already (identical bytes are stored once). `path` may be consumed."""
        ...

    def put_preview(self, sha256: str, data: bytes) -> None: ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str, *, preview: bool = False) -> int:
        """Raises ObjectMissing."""
        ...

    def read(
        self, sha256: str, offset: int = 0, length: int | None = None, *, preview: bool = False
    ) -> Iterator[bytes]:
        """The bytes from `offset`, `length` of them (None: to the end), in chunks."""
        ...

    def keys(self) -> Iterator[str]:
        """Every original's key."""
        ...

    def incoming_dir(self) -> Path:
        """Where uploads are spooled before they are stored (same filesystem when local)."""
        ...


def rehash(store: EvidenceStore, sha256: str) -> str:
    """SHA-256 of the bytes the store now holds under `sha256`."""
    digest = hashlib.sha256()
    for chunk in store.read(sha256):
        digest.update(chunk)
    return digest.hexdigest()


def is_key(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def open_store(url: str, state_dir: Path) -> EvidenceStore:
    """`file:///path` or a plain path (local), `s3://bucket[/prefix]` (S3; endpoint and keys
    from LIANDONG_EVIDENCE_S3_* / AWS_* variables, see config)."""
    if url.startswith("s3://"):
        from casefile.adapters.evidence_store.s3 import S3EvidenceStore

        return S3EvidenceStore.from_url(url, state_dir / "evidence-incoming")
    from casefile.adapters.evidence_store.local import LocalEvidenceStore

    return LocalEvidenceStore(Path(url.removeprefix("file://")))
