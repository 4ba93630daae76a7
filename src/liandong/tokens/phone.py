"""Bearer tokens for the phone API (dispatch): JWT HS256 carrying person id, role and jurisdiction.

Roles: ENFORCEMENT, MONITORING and OPERATIONS are field staff (they see only the tasks they
hold or were offered); DUTY_MANAGER (alias MANAGER) sees every task inside its jurisdiction."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import jwt
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from liandong.settings import ROOT

ALGORITHM = "HS256"
ISSUER = "liandong"


class TokenRole(StrEnum):
    ENFORCEMENT = "ENFORCEMENT"
    MONITORING = "MONITORING"
    OPERATIONS = "OPERATIONS"
    DUTY_MANAGER = "DUTY_MANAGER"

    @property
    def manager(self) -> bool:
        return self is TokenRole.DUTY_MANAGER


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    person_id: str
    role: TokenRole
    jurisdiction: tuple[str, ...]


def key_file() -> Path:
    """Where the embedded default keeps the phone API's signing key (created on first use)."""
    return Path(
        os.environ.get("LIANDONG_DISPATCH_JWT_KEY_FILE", str(ROOT / ".state" / "dispatch-jwt.key"))
    )


_warned: set[Path] = set()


def signing_key() -> str:
    """LIANDONG_DISPATCH_JWT_KEY, or else a random key generated once under the state folder
    (never a constant: a key in the source would let anyone mint a duty manager's token)."""
    configured = os.environ.get("LIANDONG_DISPATCH_JWT_KEY")
    if configured:
        return configured
    path = key_file()
    if path not in _warned:
        _warned.add(path)
        logging.getLogger(__name__).warning(
            "LIANDONG_DISPATCH_JWT_KEY unset: phone tokens are signed with the embedded key %s "
            "(one machine only; set the variable in every real deployment)",
            path,
        )
    return local_key(path)


def local_key(path: Path) -> str:
    """A 256-bit key in `path` (0600), created on first use. Several processes creating it
    at once agree: the key is written to a temporary file and hard-linked into place, so
    the first one wins and nobody reads a half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
            with contextlib.suppress(FileExistsError):  # another process put its key first
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path}: the phone API's signing key must be at least 32 characters")
    return key


def issue(
    person_id: str,
    role: str,
    jurisdiction: list[str] | tuple[str, ...] | str,
    *,
    key: str | None = None,
    ttl: timedelta = timedelta(hours=12),
    now: datetime | None = None,
) -> str:
    """A signed token; `role` is a TokenRole name (MANAGER is accepted for DUTY_MANAGER)."""
    issued = now or datetime.now(UTC)
    codes = [jurisdiction] if isinstance(jurisdiction, str) else list(jurisdiction)
    claims = {
        "sub": person_id,
        "role": _role(role).value,
        "roles": [_role(role).value],  # the list casefile tokens carry: one claim shape for both
        "jurisdiction": codes,
        "iss": ISSUER,
        "iat": issued,
        "exp": issued + ttl,
    }
    return jwt.encode(claims, key or signing_key(), algorithm=ALGORITHM)


def _role(raw: str) -> TokenRole:
    name = raw.strip().upper()
    return TokenRole.DUTY_MANAGER if name == "MANAGER" else TokenRole(name)


def verify(token: str, key: str | None = None) -> Principal:
    try:
        claims = jwt.decode(
            token,
            key or signing_key(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat"]},
        )
    except (jwt.PyJWTError, ValueError) as e:
        raise InvalidToken(str(e)) from e
    try:
        shape = PhoneClaims.model_validate(claims)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"][:1]) or "claims"
        raise InvalidToken(f"token claim {where!r} is invalid: {first['msg']}") from None
    codes = [shape.jurisdiction] if isinstance(shape.jurisdiction, str) else shape.jurisdiction
    return Principal(shape.sub, _role(shape.role), tuple(codes))


class PhoneClaims(BaseModel):
    """The claims a phone token must carry, with their types: a validly signed token of the
    wrong shape is refused (401 with the reason), never a 500."""

    model_config = ConfigDict(extra="allow")

    sub: StrictStr = Field(min_length=1)
    role: StrictStr
    jurisdiction: StrictStr | list[StrictStr] = Field(default_factory=list)

    @field_validator("role")
    @classmethod
    def _known_role(cls, value: str) -> str:
        _role(value)  # ValueError names the unknown role
        return value
