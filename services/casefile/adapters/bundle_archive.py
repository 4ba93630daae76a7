"""Case bundles as signed tar archives (format liandong.casefile.bundle/2, described in
adapters/bundle_check.py, which travels inside each bundle as verify_bundle.py).

The signing key is casefile's own Ed25519 key (LIANDONG_CASEFILE_BUNDLE_KEY, default
.state/casefile-bundle.key, created 0600 on first use with its public half `.pub` beside it);
publish the public half to whoever checks bundles. A recomputed SHA256SUMS is then not enough
to pass off an edited bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casefile.adapters import bundle_check
from casefile.adapters.evidence_store import EvidenceStore, ObjectMissing
from casefile.domain.audit import AuditEntry, entry_to_dict
from casefile.domain.evidence import extension_of

README = """Liandong case bundle {case_id}

Check it without Liandong (Linux/macOS: coreutils, OpenSSL 3, Python 3):

  tar xf BUNDLE.tar && cd {case_id}
  sha256sum -c SHA256SUMS                       # every file as listed (evidence, case, chain)
  openssl pkeyutl -verify -pubin -inkey casefile-bundle.pub -rawin \\
      -in SHA256SUMS -sigfile SHA256SUMS.sig    # the list as the agency signed it
  python3 verify_bundle.py --key casefile-bundle.pub   # chain, case document, evidence, extras

casefile-bundle.pub is the agency's published bundle key: take it from the agency, never
from a bundle. With Liandong: liandong casefile verify --bundle BUNDLE.tar
"""


class BundleError(Exception):
    """The bundle cannot be written (exists, symlink, content damaged in the store)."""


def bundle_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key at `path`, created (0600, public half `.pub`) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            path.with_suffix(".pub").write_bytes(
                key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise BundleError(f"{path} is not an Ed25519 private key")
    return loaded


def public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


class _Hashing(io.RawIOBase):
    """A readable stream over the store's chunks that hashes what passes through."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.digest = hashlib.sha256()
        self.buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.buffer:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.digest.update(chunk)
            self.buffer = chunk
        n = min(len(b), len(self.buffer))
        b[:n] = self.buffer[:n]
        self.buffer = self.buffer[n:]
        return n


def _open_new(out: Path, force: bool) -> IO[bytes]:
    """`out` for writing, 0600, never through a symlink; an existing file only with force."""
    if out.is_symlink():
        raise BundleError(f"{out} is a symbolic link; not following it")
    if not out.parent.is_dir():
        raise BundleError(f"folder {out.parent} does not exist")
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(out, flags, 0o600)
    except FileExistsError:
        raise BundleError(f"{out} exists; --force replaces it") from None
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


@dataclass(frozen=True)
class Written:
    files: int
    evidence_files: int
    bytes: int
    missing_content: list[str]


def write_bundle(
    out: Path,
    *,
    case_id: str,
    case_doc: str,
    entries: Iterable[AuditEntry],
    record: str | None = None,
    evidence: Iterable[Any],
    store: EvidenceStore,
    key: Ed25519PrivateKey,
    force: bool = False,
) -> Written:
    """One tar archive with the case document, the record served beside it (`record`: task,
    alerts, team, summary, who opened it, as `record_sha256` hashes it), its audit chain,
    every evidence file it cites
    (re-hashed on the way: damage in the store stops the export), SHA256SUMS and its
    signature, the README and verify_bundle.py."""
    own = [entry_to_dict(e) for e in entries if e.case_id == case_id]
    sums: dict[str, str] = {}
    items: list[dict[str, Any]] = []
    missing: list[str] = []
    top = case_id
    mtime = time.time()
    total = 0
    with (
        _open_new(out, force) as f,
        tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(data), mtime, 0o444
            tar.addfile(info, io.BytesIO(data))
            if name not in (bundle_check.SUMS, bundle_check.SIGNATURE):
                sums[name] = hashlib.sha256(data).hexdigest()

        written: set[str] = set()
        for item in evidence:
            path = f"evidence/{item.sha256}.{extension_of(item.media_type)}"
            entry = {
                "evidence_id": item.evidence_id,
                "sha256": item.sha256,
                "media_type": item.media_type,
                "kind": str(getattr(item.kind, "value", item.kind)),
                "path": path,
            }
            items.append(entry)
            if path in written:
                continue
            try:
                size = store.size(item.sha256)
            except ObjectMissing:
                missing.append(item.evidence_id)
                continue
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.mtime, info.mode = size, mtime, 0o444
            stream = _Hashing(store.read(item.sha256))
            tar.addfile(info, io.BufferedReader(stream, 1 << 20))
            actual = stream.digest.hexdigest()
            if actual != item.sha256:
                raise BundleError(
                    f"evidence {item.evidence_id}: the store's object {item.sha256} hashes to "
                    f"{actual}; the store is damaged (liandong casefile verify --evidence)"
                )
            sums[path] = actual
            written.add(path)
            total += size
        manifest = {
            "format": bundle_check.FORMAT,
            "case_id": case_id,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime)),
            "head": {"case_seq": own[-1]["case_seq"], "hash": own[-1]["hash"]} if own else None,
            "case_sha256": hashlib.sha256(case_doc.encode("utf-8")).hexdigest(),
            "evidence": items,
            "missing_content": missing,
            "signature": {
                "alg": "Ed25519",
                "public_key_sha256": hashlib.sha256(public_pem(key).encode("ascii")).hexdigest(),
            },
        }
        add("case.json", case_doc.encode("utf-8"))
        if record is not None:
            add("record.json", record.encode("utf-8"))
        add(
            "audit.jsonl",
            "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in own).encode("utf-8"),
        )
        add("manifest.json", (json.dumps(manifest, ensure_ascii=False, indent=1) + "\n").encode())
        add("README.txt", README.format(case_id=case_id).encode("utf-8"))
        add("verify_bundle.py", Path(bundle_check.__file__).read_bytes())
        sums_text = "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items()))
        add(bundle_check.SUMS, sums_text.encode("utf-8"))
        add(bundle_check.SIGNATURE, key.sign(sums_text.encode("utf-8")))
    return Written(len(sums) + 2, len(written), total, missing)


def read_bundle(path: Path) -> tuple[dict[str, str], dict[str, bytes], list[str]]:
    """Hashes every member of the archive (streaming), keeps the small control files, and
    names members that are no regular file or lie outside the bundle's one folder.
    Raises OSError / tarfile.TarError when the archive cannot be read."""
    hashes: dict[str, str] = {}
    texts: dict[str, bytes] = {}
    problems: list[str] = []
    keep = {*bundle_check.CONTROL, bundle_check.RECORD, bundle_check.SUMS, bundle_check.SIGNATURE}
    top: str | None = None
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with tarfile.open(path, mode="r:*") as tar:
        for member in tar:
            name = member.name
            head, _, rel = name.partition("/")
            if member.isdir() and not rel.strip("/"):
                continue
            top = top or head
            if head != top or not rel or rel.startswith("/") or ".." in rel.split("/"):
                problems.append(f"extra file: {name} (outside the bundle folder {top}/)")
                continue
            if member.isdir():
                continue
            if not member.isfile():
                problems.append(f"extra file: {rel} (not a regular file)")
                continue
            source = tar.extractfile(member)
            assert source is not None
            digest = hashlib.sha256()
            data = bytearray() if rel in keep else None
            while n := source.readinto(buf):  # type: ignore[attr-defined]
                digest.update(view[:n])
                if data is not None:
                    data += view[:n]
            if data is not None:
                texts[rel] = bytes(data)
            if rel not in (bundle_check.SUMS, bundle_check.SIGNATURE):
                hashes[rel] = digest.hexdigest()
    return hashes, texts, problems


def verify_bundle_file(
    path: Path, public_key_pem: str | None, notes: list[str] | None = None
) -> list[str]:
    """Every problem of the bundle at `path` ([] when it verifies); `notes` receives what is
    worth saying but no failure. Raises OSError / tarfile.TarError when it cannot be read."""
    hashes, texts, problems = read_bundle(path)
    return problems + bundle_check.check(hashes, texts, public_key_pem, notes)
