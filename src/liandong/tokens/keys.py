"""Key files. The embedded default's HS256 key (`local_key`), and per-service ES256 (EC P-256)
key pairs: a service signs its casefile tokens with its own private key, and casefile holds
only the public half.

Files are PEM: the private key PKCS#8 unencrypted (0600), the public key SubjectPublicKeyInfo
(0644) beside it with the suffix `.pub` (`dispatch.key` -> `dispatch.pub`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from liandong.settings import ROOT

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def service_name(text: str) -> str:
    """A service name as it appears in `kid`, `sub` and LIANDONG_CASEFILE_SERVICE_KEYS."""
    name = text.strip()
    if not _NAME.fullmatch(name):
        raise ValueError(f"service name {text!r}: lower-case letters, digits, '_', '.', '-'")
    return name


def local_key(path: Path) -> str:
    """The embedded default's signing key: created once (0600) beside the database."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


def embedded_service_key(service: str, root: Path | None = None) -> Path:
    """Where the embedded default keeps `service`'s private casefile key (its public key
    beside it, `.pub`) under the checkout `root` (default: this one); dispatch signs with it
    and casefile's default trusts it."""
    return (root or ROOT) / ".state" / f"{service}-casefile.key"


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_path_of(private: Path) -> Path:
    return private.with_suffix(".pub")


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: not an unencrypted PEM private key ({err})") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path}: an EC P-256 private key is needed (ES256)")
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError as err:
        raise ValueError(f"{path}: not a PEM public key ({err})") from err
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path}: an EC P-256 public key is needed (ES256)")
    return key


def _place(path: Path, data: bytes, mode: int, *, keep_existing: bool) -> None:
    """Writes `data` to a temporary file beside `path`, then puts it in place in one step, so
    a reader never sees a half-written key. keep_existing: an existing `path` stands (a hard
    link fails with FileExistsError); otherwise it is replaced."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if keep_existing:
            with contextlib.suppress(FileExistsError):  # another creator was first: theirs
                os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def local_key_pair(
    private: Path, generate: Callable[[], ec.EllipticCurvePrivateKey] = new_private_key
) -> Path:
    """The embedded default's key pair: created once (private 0600), then reused. Safe when
    several processes (dispatch and casefile starting together) create it at the same moment:
    the first private key put in place wins and every caller derives the same public key from
    it. Returns the public key's path."""
    private.parent.mkdir(parents=True, exist_ok=True)
    if not private.exists():
        _place(private, private_pem(generate()), 0o600, keep_existing=True)
    wanted = public_pem(load_private_key(private).public_key())
    public = public_path_of(private)
    if not public.exists() or public.read_bytes() != wanted:
        _place(public, wanted, 0o644, keep_existing=False)
    return public


def write_key_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """A new key pair for service `name`: `<dir>/<name>.key` (0600) and `<dir>/<name>.pub`.
    Refuses (FileExistsError) to replace an existing key."""
    name = service_name(name)
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / f"{name}.key"
    public = public_path_of(private)
    for path in (private, public):
        if path.exists():
            raise FileExistsError(f"{path} exists; remove it or choose another directory")
    key = new_private_key()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem(key))
    fd = os.open(public, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(public_pem(key.public_key()))
    return private, public


def parse_service_keys(text: str) -> dict[str, Path]:
    """`name=path,name=path` (LIANDONG_CASEFILE_SERVICE_KEYS) -> {name: public key path}."""
    keys: dict[str, Path] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, path = part.partition("=")
        if not sep or not path.strip():
            raise ValueError(f"service key {part.strip()!r}: expected name=path/to/public.pem")
        name = service_name(name)
        if name in keys:
            raise ValueError(f"service key {name!r} is configured twice")
        keys[name] = Path(path.strip())
    return keys
