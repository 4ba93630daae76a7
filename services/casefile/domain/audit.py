"""Tamper-evident audit chain: one global hash chain with a per-case chain threaded through it.

Every change becomes an append-only entry. Two links are hashed into each entry:

* `prev_hash`: hash of the previous entry of the *global* chain (all cases, `seq` 1, 2, ...).
  Deleting a whole case, or any entry, breaks it; this is the stronger guarantee, so the
  service verifies the global chain.
* `case_prev_hash`: hash of the previous entry of the *same case* (`case_seq` 1, 2, ...), so a
  single case can be exported and verified on its own, without the other cases' entries.

`hash` = SHA-256 (hex) over the canonical JSON (see `canonical`) of the object holding every
field except `hash`: {actor, at, case_id, case_prev_hash, case_seq, kind, payload, prev_hash,
seq}. The entry stores `at` already in canonical form (UTC, microseconds) and the payload as
its canonical JSON text, so the stored row *is* the hashed text: no re-encoding ambiguity
after a database round trip, and verifying needs no per-entry object building. The first
entry links to GENESIS (64 zeros). The chain proves integrity, not authorship or time: anchor
the head (`Anchor`) periodically outside the service (e.g. RFC 3161 timestamp); without an
anchor, cutting off the newest entries (truncation) cannot be detected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from casefile.domain.canonical import canonical_json, format_instant, parse_instant

GENESIS = "0" * 64
BUNDLE_FORMAT = "liandong.casefile.bundle/1"
CANONICALIZATION = (
    "sha256 over UTF-8 JSON with sorted keys, no whitespace, non-ASCII unescaped; instants UTC "
    "YYYY-MM-DDTHH:MM:SS.ffffffZ; Decimal as string; entry hash covers actor, at, case_id, "
    "case_prev_hash, case_seq, kind, payload, prev_hash, seq; payload embedded as stored"
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    case_id: str
    case_seq: int
    kind: str
    payload_json: str  # canonical JSON text of the payload
    actor: str
    at: str  # canonical UTC instant
    prev_hash: str
    case_prev_hash: str
    hash: str

    @property
    def payload(self) -> Any:
        return json.loads(self.payload_json)

    @property
    def at_datetime(self) -> datetime:
        return parse_instant(self.at)


@dataclass(frozen=True)
class Anchor:
    """A (seq, hash) pair kept outside the chain: a checkpoint or the last known head."""

    seq: int
    hash: str


class ChainProblem(StrEnum):
    EDITED = "EDITED"  # content no longer matches its own hash
    BROKEN_LINK = "BROKEN_LINK"  # predecessor's hash differs from the prev_hash recorded
    DELETED = "DELETED"  # a seq is missing
    REORDERED = "REORDERED"  # a seq appears later than its place
    INSERTED = "INSERTED"  # an extra entry (duplicate seq, or beyond the anchored head)
    TRUNCATED = "TRUNCATED"  # entries up to the anchored head are missing
    FOREIGN = "FOREIGN"  # an entry of another case inside a case chain
    MALFORMED = "MALFORMED"  # a bundle field has the wrong type or is missing


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: ChainProblem | None = None
    detail: str = ""
    head: Anchor | None = None


def _entry_text(
    seq: int,
    case_id: str,
    case_seq: int,
    kind: str,
    payload_json: str,
    actor: str,
    at: str,
    prev_hash: str,
    case_prev_hash: str,
) -> str:
    # Keys in sorted order; equal to canonical_json of the same object when payload_json is
    # canonical (tested), but built by concatenation because it is the verification hot path.
    return (
        f'{{"actor":{encode_basestring(actor)},"at":{encode_basestring(at)},'
        f'"case_id":{encode_basestring(case_id)},'
        f'"case_prev_hash":{encode_basestring(case_prev_hash)},"case_seq":{case_seq},'
        f'"kind":{encode_basestring(kind)},"payload":{payload_json},'
        f'"prev_hash":{encode_basestring(prev_hash)},"seq":{seq}}}'
    )


def entry_hash(e: AuditEntry) -> str:
    text = _entry_text(
        e.seq,
        e.case_id,
        e.case_seq,
        e.kind,
        e.payload_json,
        e.actor,
        e.at,
        e.prev_hash,
        e.case_prev_hash,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_entry(
    prev: AuditEntry | None,
    *,
    case_prev: AuditEntry | None,
    case_id: str,
    kind: str,
    payload: Mapping[str, Any],
    actor: str,
    at: datetime,
) -> AuditEntry:
    """The next entry after `prev` (global head) and `case_prev` (this case's head)."""
    if case_prev is not None and case_prev.case_id != case_id:
        raise ValueError(f"case_prev belongs to case {case_prev.case_id}, not {case_id}")
    seq = 1 if prev is None else prev.seq + 1
    case_seq = 1 if case_prev is None else case_prev.case_seq + 1
    payload_json = canonical_json(payload)
    at_text = format_instant(at)
    prev_hash = GENESIS if prev is None else prev.hash
    case_prev_hash = GENESIS if case_prev is None else case_prev.hash
    text = _entry_text(
        seq, case_id, case_seq, kind, payload_json, actor, at_text, prev_hash, case_prev_hash
    )
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return AuditEntry(
        seq,
        case_id,
        case_seq,
        kind,
        payload_json,
        actor,
        at_text,
        prev_hash,
        case_prev_hash,
        digest,
    )


# ---- verification --------------------------------------------------------------------------


def _diagnose(
    entries: Sequence[AuditEntry],
    i: int,
    expected: int,
    seq_of: Any,
    prev_of: Any,
) -> tuple[int, ChainProblem, str]:
    e = entries[i]
    s = seq_of(e)
    if s == expected:
        if entry_hash(e) != e.hash:
            return s, ChainProblem.EDITED, f"entry {s} does not match its hash"
        return (
            s - 1,
            ChainProblem.BROKEN_LINK,
            f"entry {s} records prev_hash {prev_of(e)[:12]}..., which entry {s - 1} does not "
            f"have: entry {s - 1} was rewritten or replaced",
        )
    if s > expected:
        later = next(
            (j for j in range(i + 1, len(entries)) if seq_of(entries[j]) == expected), None
        )
        if later is not None:
            return (
                expected,
                ChainProblem.REORDERED,
                f"found {s} where {expected} belongs; {expected} is at position {later}",
            )
        return expected, ChainProblem.DELETED, f"entries {expected}..{s - 1} are missing"
    bad = s if s == expected - 1 else expected
    return bad, ChainProblem.INSERTED, f"extra entry with seq {s} at position {i}"


def _check_head(
    last: AuditEntry | None, last_seq: int, checked: int, expected_head: Anchor | None
) -> VerifyReport:
    head = Anchor(last_seq, last.hash) if last is not None else None
    if expected_head is not None:
        if last_seq < expected_head.seq:
            return VerifyReport(
                False,
                checked,
                last_seq + 1,
                ChainProblem.TRUNCATED,
                f"chain ends at {last_seq}; anchored head is {expected_head.seq}",
                head,
            )
        if last_seq > expected_head.seq:
            return VerifyReport(
                False,
                checked,
                expected_head.seq + 1,
                ChainProblem.INSERTED,
                f"entries beyond the anchored head {expected_head.seq}",
                head,
            )
        if head is None or head.hash != expected_head.hash:
            return VerifyReport(
                False,
                checked,
                expected_head.seq,
                ChainProblem.BROKEN_LINK,
                f"head {expected_head.seq} differs from its anchor: the chain was rewritten",
                head,
            )
    return VerifyReport(True, checked, head=head)


def verify_chain(
    entries: Iterable[AuditEntry],
    *,
    after: Anchor | None = None,
    expected_head: Anchor | None = None,
) -> VerifyReport:
    """Verify the global chain from the start (or from a trusted checkpoint `after`).

    Reports the first problem only; everything after a break is untrusted anyway."""
    items = entries if isinstance(entries, Sequence) else list(entries)
    expected = 1 if after is None else after.seq + 1
    last_hash = GENESIS if after is None else after.hash
    sha = hashlib.sha256
    enc = encode_basestring
    last: AuditEntry | None = None
    for i, e in enumerate(items):
        text = (
            f'{{"actor":{enc(e.actor)},"at":{enc(e.at)},"case_id":{enc(e.case_id)},'
            f'"case_prev_hash":{enc(e.case_prev_hash)},"case_seq":{e.case_seq},'
            f'"kind":{enc(e.kind)},"payload":{e.payload_json},'
            f'"prev_hash":{enc(e.prev_hash)},"seq":{e.seq}}}'
        )
        if (
            e.seq != expected
            or e.prev_hash != last_hash
            or sha(text.encode("utf-8")).hexdigest() != e.hash
        ):
            bad, problem, detail = _diagnose(
                items, i, expected, lambda x: x.seq, lambda x: x.prev_hash
            )
            return VerifyReport(False, i, bad, problem, detail, Anchor(expected - 1, last_hash))
        last_hash = e.hash
        expected += 1
        last = e
    return _check_head(last, expected - 1, len(items), expected_head)


def verify_case_chain(
    entries: Iterable[AuditEntry], case_id: str, *, expected_head: Anchor | None = None
) -> VerifyReport:
    """Verify one case's thread (case_seq, case_prev_hash) plus increasing global seq.

    `first_bad_seq` and anchors refer to `case_seq` here."""
    items = list(entries)
    expected = 1
    last_hash = GENESIS
    last_global = 0
    last: AuditEntry | None = None
    for i, e in enumerate(items):
        if e.case_id != case_id:
            return VerifyReport(
                False,
                i,
                e.case_seq,
                ChainProblem.FOREIGN,
                f"entry of case {e.case_id!r} at position {i}",
            )
        if e.case_seq != expected or e.case_prev_hash != last_hash or entry_hash(e) != e.hash:
            bad, problem, detail = _diagnose(
                items, i, expected, lambda x: x.case_seq, lambda x: x.case_prev_hash
            )
            return VerifyReport(False, i, bad, problem, detail, Anchor(expected - 1, last_hash))
        if e.seq <= last_global:
            return VerifyReport(
                False,
                i,
                e.case_seq,
                ChainProblem.REORDERED,
                f"global seq {e.seq} after {last_global}",
            )
        last_global = e.seq
        last_hash = e.hash
        expected += 1
        last = e
    return _check_head(last, expected - 1, len(items), expected_head)


# ---- export bundle -------------------------------------------------------------------------

_ENTRY_FIELDS: dict[str, type] = {
    "seq": int,
    "case_id": str,
    "case_seq": int,
    "kind": str,
    "payload_json": str,
    "actor": str,
    "at": str,
    "prev_hash": str,
    "case_prev_hash": str,
    "hash": str,
}


def entry_to_dict(e: AuditEntry) -> dict[str, Any]:
    return {name: getattr(e, name) for name in _ENTRY_FIELDS}


def _bundle_hash(bundle: Mapping[str, Any]) -> str:
    body = {k: v for k, v in bundle.items() if k != "bundle_sha256"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def export_bundle(
    case: Any, entries: Iterable[AuditEntry], evidence: Iterable[Any]
) -> dict[str, Any]:
    """A self-contained, JSON-ready bundle of one case for review outside the service.

    `case` and `evidence` are dataclasses (Case, Evidence) or mappings; the case's entries are
    taken from `entries` (others are ignored). Evidence files travel beside the bundle and are
    checked against the digests recorded in the chain (`verify_evidence_file`)."""
    case_doc = canonical_json(case)
    case_obj = json.loads(case_doc)
    case_id = case_obj["case_id"]
    own = [entry_to_dict(e) for e in entries if e.case_id == case_id]
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "canonicalization": CANONICALIZATION,
        "case_id": case_id,
        "case": case_obj,
        "entries": own,
        "evidence": [json.loads(canonical_json(item)) for item in evidence],
        "head": {"case_seq": own[-1]["case_seq"], "hash": own[-1]["hash"]} if own else None,
    }
    bundle["bundle_sha256"] = _bundle_hash(bundle)
    return bundle


def _entry_from_dict(raw: Any) -> AuditEntry | None:
    if not isinstance(raw, Mapping):
        return None
    values: list[Any] = []
    for name, kind in _ENTRY_FIELDS.items():
        value = raw.get(name)
        if type(value) is not kind:
            return None
        values.append(value)
    return AuditEntry(*values)


def _recorded_evidence(entries: Sequence[AuditEntry]) -> dict[str, str]:
    recorded: dict[str, str] = {}
    for e in entries:
        if e.kind == "AddEvidence":
            command = json.loads(e.payload_json).get("command", {})
            recorded[command.get("evidence_id", "")] = command.get("sha256", "")
    return recorded


def verify_bundle(
    bundle: Mapping[str, Any], *, expected_head: Anchor | None = None
) -> VerifyReport:
    """Verify an exported bundle with nothing but the bundle (a pure function over the dict).

    Whoever holds a bundle can rewrite all of it and recompute every hash; pass the case head
    anchored elsewhere (`expected_head`, case_seq and hash) to rule that out too."""

    def malformed(detail: str, seq: int | None = None) -> VerifyReport:
        return VerifyReport(False, 0, seq, ChainProblem.MALFORMED, detail)

    if not isinstance(bundle, Mapping) or bundle.get("format") != BUNDLE_FORMAT:
        return malformed(f"not a {BUNDLE_FORMAT} bundle")
    try:
        if bundle.get("bundle_sha256") != _bundle_hash(bundle):
            return VerifyReport(
                False, 0, None, ChainProblem.EDITED, "bundle_sha256 does not match the bundle"
            )
    except ValueError as exc:
        return malformed(f"bundle cannot be encoded canonically: {exc}")
    case_id = bundle.get("case_id")
    raw_entries = bundle.get("entries")
    if not isinstance(case_id, str) or not isinstance(raw_entries, list):
        return malformed("case_id and entries are required")
    entries: list[AuditEntry] = []
    for i, raw in enumerate(raw_entries):
        entry = _entry_from_dict(raw)
        if entry is None:
            return malformed(f"entry at position {i} is malformed", i + 1)
        try:
            payload = json.loads(entry.payload_json)
            parse_instant(entry.at)
        except ValueError:
            return malformed(f"entry at position {i} has unreadable payload or time", i + 1)
        if canonical_json(payload) != entry.payload_json:
            return malformed(f"entry at position {i}: payload is not canonical", i + 1)
        entries.append(entry)
    head_raw = bundle.get("head")
    head = expected_head
    if head is None and isinstance(head_raw, Mapping):
        head = Anchor(int(head_raw.get("case_seq", 0)), str(head_raw.get("hash", "")))
    report = verify_case_chain(entries, case_id, expected_head=head)
    if not report.ok:
        return report
    case_obj = bundle.get("case")
    if isinstance(case_obj, Mapping) and entries:
        last_state = json.loads(entries[-1].payload_json).get("to_state")
        if last_state is not None and case_obj.get("state") != last_state:
            return VerifyReport(
                False,
                len(entries),
                None,
                ChainProblem.EDITED,
                f"case state {case_obj.get('state')!r} differs from the chain's {last_state!r}",
                report.head,
            )
    recorded = _recorded_evidence(entries)
    listed = bundle.get("evidence", [])
    if not isinstance(listed, list):
        return malformed("evidence must be a list")
    if not all(isinstance(item, Mapping) for item in listed):
        return malformed("evidence item is not an object")
    missing = set(recorded) - {str(item.get("evidence_id")) for item in listed}
    if missing:
        return VerifyReport(
            False,
            len(entries),
            None,
            ChainProblem.DELETED,
            f"evidence recorded in the chain but absent: {', '.join(sorted(missing))}",
            report.head,
        )
    for item in listed:
        eid = item.get("evidence_id")
        if recorded.get(str(eid)) != item.get("sha256"):
            return VerifyReport(
                False,
                len(entries),
                None,
                ChainProblem.EDITED,
                f"evidence {eid!r} digest differs from the one recorded in the chain",
                report.head,
            )
    return report


def verify_evidence_file(bundle: Mapping[str, Any], evidence_id: str, data: bytes) -> bool:
    """Whether a file's bytes are the evidence item the bundle's chain recorded."""
    entries = [e for e in map(_entry_from_dict, bundle.get("entries", [])) if e is not None]
    recorded = _recorded_evidence(entries).get(evidence_id)
    return recorded is not None and hashlib.sha256(data).hexdigest() == recorded
