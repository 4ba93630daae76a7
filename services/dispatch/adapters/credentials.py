"""Embedded sign-in for the phone and web apps: argon2 password hashes set by
`liandong people set-password ID`, and refresh tokens (random, stored only as their SHA-256,
rotated on every use; reusing a rotated one revokes all of that person's sessions, since it
means the token was copied)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import CursorResult, delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from dispatch.adapters.schema import create_tables

REFRESH_TTL = timedelta(days=30)
_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults


class CredentialRow(SQLModel, table=True):
    __tablename__ = "dispatch_credentials"

    person_id: str = Field(primary_key=True)
    password_hash: str
    updated_at: datetime


class RefreshTokenRow(SQLModel, table=True):
    __tablename__ = "dispatch_refresh_tokens"

    token_sha256: str = Field(primary_key=True)
    person_id: str = Field(index=True)
    role: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class OidcPendingRow(SQLModel, table=True):
    """A sign-in sent to the OpenID provider and not yet back (kept here, not in a cookie, so
    the PKCE verifier never leaves the server and any replica can finish it)."""

    __tablename__ = "dispatch_oidc_pending"

    state_sha256: str = Field(primary_key=True)
    nonce: str
    verifier: str
    app: str
    role: str | None = None
    expires_at: datetime = Field(index=True)


class OidcHandoffRow(SQLModel, table=True):
    """A one-time code that hands a finished OIDC sign-in to the app, which exchanges it for
    the token pair by POST (tokens never travel in a URL)."""

    __tablename__ = "dispatch_oidc_handoffs"

    code_sha256: str = Field(primary_key=True)
    person_id: str
    role: str
    expires_at: datetime = Field(index=True)


TABLES = [
    CredentialRow.__table__,  # type: ignore[attr-defined]
    RefreshTokenRow.__table__,  # type: ignore[attr-defined]
    OidcPendingRow.__table__,  # type: ignore[attr-defined]
    OidcHandoffRow.__table__,  # type: ignore[attr-defined]
]
PENDING_TTL = timedelta(minutes=10)  # time to sign in at the provider
HANDOFF_TTL = timedelta(minutes=1)  # the app exchanges the code as soon as it loads


class RefreshRefused(Exception):
    pass


@dataclass(frozen=True)
class PendingSignIn:
    nonce: str
    verifier: str
    app: str
    role: str | None


@dataclass(frozen=True)
class RefreshGrant:
    token: str
    person_id: str
    role: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


class CredentialStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, TABLES)

    def set_password(self, person_id: str, password: str, now: datetime | None = None) -> None:
        if len(password) < 8:
            raise ValueError("a password needs at least 8 characters")
        row = CredentialRow(
            person_id=person_id,
            password_hash=_hasher.hash(password),
            updated_at=now or datetime.now(UTC),
        )
        with Session(self.engine) as s:
            s.merge(row)
            # a new password ends every session of the old one
            s.exec(
                update(RefreshTokenRow)  # type: ignore[call-overload]
                .where(RefreshTokenRow.person_id == person_id)  # type: ignore[arg-type]
                .where(RefreshTokenRow.revoked_at.is_(None))  # type: ignore[union-attr]
                .values(revoked_at=row.updated_at)
            )
            s.commit()

    def check_password(self, person_id: str, password: str) -> bool:
        with Session(self.engine) as s:
            row = s.get(CredentialRow, person_id)
        if row is None:
            _hasher.hash(password)  # same cost for unknown people: no timing oracle
            return False
        try:
            return _hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def issue_refresh(self, person_id: str, role: str, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        token = secrets.token_urlsafe(32)
        with Session(self.engine) as s:
            s.add(
                RefreshTokenRow(
                    token_sha256=_digest(token),
                    person_id=person_id,
                    role=role,
                    issued_at=now,
                    expires_at=now + REFRESH_TTL,
                )
            )
            s.commit()
        return token

    def rotate(self, token: str, now: datetime | None = None) -> RefreshGrant:
        """Spends `token` and returns a new one for the same person and role."""
        now = now or datetime.now(UTC)
        with Session(self.engine) as s:
            row = s.get(RefreshTokenRow, _digest(token))
            if row is None:
                raise RefreshRefused("unknown refresh token")
            if row.revoked_at is not None:
                self._revoke_all(s, row.person_id, now)
                s.commit()
                raise RefreshRefused("refresh token already used or revoked; signed out everywhere")
            if _aware(row.expires_at) <= now:
                raise RefreshRefused("refresh token expired")
            row.revoked_at = now
            s.add(row)
            fresh = secrets.token_urlsafe(32)
            s.add(
                RefreshTokenRow(
                    token_sha256=_digest(fresh),
                    person_id=row.person_id,
                    role=row.role,
                    issued_at=now,
                    expires_at=now + REFRESH_TTL,
                )
            )
            grant = RefreshGrant(fresh, row.person_id, row.role)
            s.commit()
        return grant

    def revoke(self, token: str, now: datetime | None = None) -> None:
        with Session(self.engine) as s:
            row = s.get(RefreshTokenRow, _digest(token))
            if row is not None and row.revoked_at is None:
                row.revoked_at = now or datetime.now(UTC)
                s.add(row)
                s.commit()

    def keep_pending(
        self,
        state: str,
        sign_in: PendingSignIn,
        now: datetime | None = None,
    ) -> None:
        now = now or datetime.now(UTC)
        with Session(self.engine) as s:
            # started sign-ins nobody finished pile up otherwise
            s.exec(
                delete(OidcPendingRow).where(OidcPendingRow.expires_at < now)  # type: ignore[arg-type]
            )
            s.add(
                OidcPendingRow(
                    state_sha256=_digest(state),
                    nonce=sign_in.nonce,
                    verifier=sign_in.verifier,
                    app=sign_in.app,
                    role=sign_in.role,
                    expires_at=now + PENDING_TTL,
                )
            )
            s.commit()

    def take_pending(self, state: str, now: datetime | None = None) -> PendingSignIn | None:
        """The sign-in started with `state`, once: it is deleted as it is read."""
        now = now or datetime.now(UTC)
        with Session(self.engine) as s:
            row = s.get(OidcPendingRow, _digest(state))
            if row is None:
                return None
            found = PendingSignIn(row.nonce, row.verifier, row.app, row.role)
            expires_at = row.expires_at
            # the delete decides, not the read: of two requests racing with one value, only
            # the one whose delete removed the row goes on
            gone: CursorResult[Any] = s.execute(  # type: ignore[assignment]
                delete(OidcPendingRow).where(OidcPendingRow.state_sha256 == row.state_sha256)  # type: ignore[arg-type]
            )
            s.commit()
            if gone.rowcount != 1 or _aware(expires_at) <= now:
                return None
            return found

    def issue_handoff(self, person_id: str, role: str, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        code = secrets.token_urlsafe(32)
        with Session(self.engine) as s:
            s.exec(
                delete(OidcHandoffRow).where(OidcHandoffRow.expires_at < now)  # type: ignore[arg-type]
            )
            s.add(
                OidcHandoffRow(
                    code_sha256=_digest(code),
                    person_id=person_id,
                    role=role,
                    expires_at=now + HANDOFF_TTL,
                )
            )
            s.commit()
        return code

    def take_handoff(self, code: str, now: datetime | None = None) -> tuple[str, str] | None:
        """(person id, role) for a one-time code, once; None when unknown, spent or expired."""
        now = now or datetime.now(UTC)
        with Session(self.engine) as s:
            row = s.get(OidcHandoffRow, _digest(code))
            if row is None:
                return None
            found = (row.person_id, row.role)
            expires_at = row.expires_at
            # the delete decides, not the read: of two requests racing with one value, only
            # the one whose delete removed the row goes on
            gone: CursorResult[Any] = s.execute(  # type: ignore[assignment]
                delete(OidcHandoffRow).where(OidcHandoffRow.code_sha256 == row.code_sha256)  # type: ignore[arg-type]
            )
            s.commit()
            if gone.rowcount != 1 or _aware(expires_at) <= now:
                return None
            return found

    def has_password(self, person_id: str) -> bool:
        with Session(self.engine) as s:
            return s.get(CredentialRow, person_id) is not None

    def people_with_passwords(self) -> list[str]:
        with Session(self.engine) as s:
            return list(s.exec(select(CredentialRow.person_id)))

    @staticmethod
    def _revoke_all(s: Session, person_id: str, now: datetime) -> None:
        s.exec(
            update(RefreshTokenRow)  # type: ignore[call-overload]
            .where(RefreshTokenRow.person_id == person_id)  # type: ignore[arg-type]
            .where(RefreshTokenRow.revoked_at.is_(None))  # type: ignore[union-attr]
            .values(revoked_at=now)
        )
