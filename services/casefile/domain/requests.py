"""Idempotent writes (pure part): a retried request returns the first result.

A key is (request_id, principal, method): the same request id from another principal or for
another method is a different request, so one caller can neither replay nor probe another's
results. The request payload is fingerprinted with SHA-256 over its canonical JSON
(`canonical`), or over encoded bytes the caller made canonical (the gRPC server passes the
request's deterministic protobuf encoding without its request id).
Reusing a key with a *different* payload is a client bug, answered with
INVALID_ARGUMENT rather than ALREADY_EXISTS: nothing the client asked for exists yet, the
argument (a request id bound to other content) is wrong, and a retry will never succeed.
Records older than the retention window are forgotten by the adapter; a key seen again after
that is treated as new (the state machine still refuses a repeated legal act).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from casefile.domain.canonical import canonical_bytes

DEFAULT_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class IdempotencyKey:
    request_id: str
    principal: str
    method: str


@dataclass(frozen=True)
class IdempotencyRecord:
    key: IdempotencyKey
    fingerprint: str
    result: bytes  # the serialised first response
    at: datetime


class Outcome(StrEnum):
    FRESH = "FRESH"  # execute the request and store its result
    REPLAY = "REPLAY"  # return the stored result, do nothing
    CONFLICT = "CONFLICT"  # same key, different payload -> ALREADY_EXISTS


@dataclass(frozen=True)
class Check:
    outcome: Outcome
    result: bytes | None = None
    reason: str = ""


def fingerprint(payload: Mapping[str, Any] | bytes | Any) -> str:
    """SHA-256 hex of the payload's canonical JSON, or of `payload` itself when it is bytes
    (the request id itself is excluded by the caller)."""
    encoded = payload if isinstance(payload, bytes) else canonical_bytes(payload)
    return hashlib.sha256(encoded).hexdigest()


def make_key(request_id: str, principal: str, method: str) -> IdempotencyKey:
    if not request_id.strip():
        raise ValueError("request_id is required for a write")
    return IdempotencyKey(request_id, principal, method)


def check(
    previous: IdempotencyRecord | None,
    key: IdempotencyKey,
    payload_fingerprint: str,
    now: datetime,
    retention: timedelta = DEFAULT_RETENTION,
) -> Check:
    if previous is None or previous.key != key or now - previous.at > retention:
        return Check(Outcome.FRESH)
    if previous.fingerprint != payload_fingerprint:
        return Check(
            Outcome.CONFLICT,
            reason=f"request id {key.request_id!r} was already used for {key.method} "
            "with a different payload",
        )
    return Check(Outcome.REPLAY, previous.result, "duplicate request: first result returned")
