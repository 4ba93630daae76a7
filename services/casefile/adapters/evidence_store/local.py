"""Evidence on local disk: `<root>/objects/ab/cd/<sha256>`, previews in `<root>/previews/`.

An object is written to a spool file in `<root>/incoming/` (same filesystem), flushed to disk,
made read-only (0444) and then hard-linked into place: link(2) fails when the name exists, so
publishing is atomic and never replaces an object (rename would). The service has no code
path that deletes or rewrites an object; the folders are 0755 so only the owner (the service
account, or root) could, which is what `verify --evidence` is for.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from casefile.adapters.evidence_store import CHUNK, ObjectMissing, is_key


class LocalEvidenceStore:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("objects", "previews", "incoming"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str, *, preview: bool = False) -> Path:
        if not is_key(sha256):
            raise ValueError(f"not a SHA-256 key: {sha256!r}")
        if preview:
            return self.root / "previews" / f"{sha256}.jpg"
        return self.root / "objects" / sha256[:2] / sha256[2:4] / sha256

    def incoming_dir(self) -> Path:
        return self.root / "incoming"

    def _publish(self, spool: Path, final: Path) -> bool:
        with open(spool, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(spool, 0o444)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(spool, final)
        except FileExistsError:
            return False
        finally:
            spool.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the new name survives a crash
            fd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return True

    def put_file(self, sha256: str, path: Path) -> bool:
        final = self.path(sha256)
        if final.exists():
            path.unlink(missing_ok=True)
            return False
        if path.parent != self.incoming_dir():
            spool = self.incoming_dir() / f"{sha256}.{os.getpid()}.{id(path)}"
            with open(path, "rb") as src, open(spool, "wb") as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
            path = spool
        return self._publish(path, final)

    def put_preview(self, sha256: str, data: bytes) -> None:
        final = self.path(sha256, preview=True)
        if final.exists():
            return
        spool = self.incoming_dir() / f"{sha256}.preview.{os.getpid()}"
        spool.write_bytes(data)
        self._publish(spool, final)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str, *, preview: bool = False) -> int:
        try:
            return self.path(sha256, preview=preview).stat().st_size
        except FileNotFoundError:
            raise ObjectMissing(sha256) from None

    def read(
        self, sha256: str, offset: int = 0, length: int | None = None, *, preview: bool = False
    ) -> Iterator[bytes]:
        try:
            f = open(self.path(sha256, preview=preview), "rb")  # noqa: SIM115 (generator)
        except FileNotFoundError:
            raise ObjectMissing(sha256) from None
        with f:
            f.seek(offset)
            left = length
            while left is None or left > 0:
                chunk = f.read(CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def keys(self) -> Iterator[str]:
        for path in sorted((self.root / "objects").glob("??/??/*")):
            if is_key(path.name):
                yield path.name
