"""Benchmark: verify a generated 200,000-entry global audit chain (pure Python, hashlib).

The chain interleaves 500 cases with realistic payloads (command fields, states, Chinese
text, Decimals). Building it is not timed; only `verify_chain` is.

Run: `python bench/casefile_audit.py` or import and call `run()` (used by `make bench`)."""

from __future__ import annotations

import time as clock
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from casefile.domain.audit import AuditEntry, chain_entry, verify_chain

ENTRIES = 200_000
CASES = 500
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def synthetic(n: int = ENTRIES) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    heads: dict[str, AuditEntry] = {}
    prev: AuditEntry | None = None
    for i in range(n):
        case_id = f"C{i % CASES:05d}"
        payload = {
            "command": {
                "evidence_id": f"E{i}",
                "kind": "PHOTO",
                "sha256": f"{i:064x}",
                "captured_by": f"o{i % 40}",
                "description": "排污口现场照片",
                "amount": Decimal("150000.00"),
            },
            "from_state": "FILED",
            "to_state": "FILED",
        }
        e = chain_entry(
            prev,
            case_prev=heads.get(case_id),
            case_id=case_id,
            kind="AddEvidence",
            payload=payload,
            actor=f"o{i % 40}",
            at=T0 + timedelta(milliseconds=37 * i),
        )
        heads[case_id] = e
        entries.append(e)
        prev = e
    return entries


def run() -> list[dict]:
    entries = synthetic()
    started = clock.perf_counter()
    report = verify_chain(entries)
    elapsed = clock.perf_counter() - started
    if not report.ok:
        raise RuntimeError(f"generated chain failed to verify: {report}")
    return [
        {
            "name": "casefile_audit_verify",
            "value": round(len(entries) / elapsed),
            "unit": "entries/s",
            "target": 100000,
            "command": "make bench",
        }
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
