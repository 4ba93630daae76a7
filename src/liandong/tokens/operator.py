"""The embedded default's HS256 key for people and tools (casefile verifies with it), and the
operator's read-only token that the CLI and the demo send to casefile.

The key is never a constant: LIANDONG_JWT_KEY, else a random key generated once (0600) in
LIANDONG_JWT_KEY_FILE (default .state/casefile-jwt.key). The CLI sends LIANDONG_TOKEN when it
is set, else mints a short-lived ADMIN token (a platform operator: reads, no legal act) with
that key, which works wherever the CLI runs beside casefile's key file."""

from __future__ import annotations

import getpass
import os
from datetime import timedelta
from pathlib import Path

from liandong.settings import ROOT
from liandong.tokens.issuing import issue
from liandong.tokens.keys import local_key


def people_key_file() -> Path:
    return Path(os.environ.get("LIANDONG_JWT_KEY_FILE", str(ROOT / ".state" / "casefile-jwt.key")))


def people_signing_key() -> str:
    """The HS256 key: LIANDONG_JWT_KEY or the local key file (created on first use)."""
    return os.environ.get("LIANDONG_JWT_KEY") or local_key(people_key_file())


def operator_token(ttl: timedelta = timedelta(minutes=10)) -> str:
    """LIANDONG_TOKEN, else an ADMIN token for this user signed with the people's key."""
    given = os.environ.get("LIANDONG_TOKEN", "").strip()
    if given:
        return given
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return issue(people_signing_key(), sub=f"operator:{user}", roles=["admin"], ttl=ttl)


def operator_metadata() -> tuple[tuple[str, str]]:
    """gRPC metadata carrying the operator's bearer token."""
    return (("authorization", f"Bearer {operator_token()}"),)
