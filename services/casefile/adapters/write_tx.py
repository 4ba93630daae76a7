"""One write transaction of the casefile store, as a buffered unit of work.

A batch of writes (group commit) runs in one database transaction. The rows it reads are
fetched up front where it can name them (request ids, case ids: one query each) and the rows
it writes are buffered and sent once per table when the batch ends (executemany), so the
cost of a write is its domain work, not a round of ORM flushes. Writes later in the batch see
the earlier ones through the working state kept here.

Between transactions `WriteCache` keeps the last known case rows and per-case audit heads.
They are trusted only while the global audit head is the one this process committed: any
other writer (another process, a manual edit) moves the head, and then every row is read
again (a decoded case document is still reused when the stored text is unchanged).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.engine import Connection

from casefile.adapters import case_events
from casefile.adapters.codec import EncodingMemo, case_from_doc
from casefile.adapters.tables import (
    AuditHeadRow,
    AuditRow,
    BreachRow,
    CaseFileRow,
    CaseMemberRow,
    EventRow,
    RequestRow,
)
from casefile.domain import requests as idem
from casefile.domain.audit import GENESIS, AuditEntry, chain_entry
from casefile.domain.records import Case

CASES = CaseFileRow.__table__  # type: ignore[attr-defined]
MEMBERS = CaseMemberRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
HEAD = AuditHeadRow.__table__  # type: ignore[attr-defined]
REQUESTS = RequestRow.__table__  # type: ignore[attr-defined]
EVENTS = EventRow.__table__  # type: ignore[attr-defined]
BREACHES = BreachRow.__table__  # type: ignore[attr-defined]

CACHED_CASES = 4096
# PostgreSQL advisory lock key held by every write transaction (any constant unique to it)
WRITE_LOCK = 0x6C64_6366_7772_6974  # "ldcfwrit"
_TAKE_WRITE_LOCK = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=WRITE_LOCK)
# columns a write changes on an existing case row
_UPDATED = ("state", "version", "event_seq", "doc", "doc_sha256", "next_due_at", "team_json")
_CASE_UPDATE = (
    update(CASES)
    .where(CASES.c.case_id == bindparam("k_case_id"))
    .values({c: bindparam("v_" + c, type_=CASES.c[c].type) for c in _UPDATED})
)
_REQUEST_UPDATE = (
    update(REQUESTS)
    .where(REQUESTS.c.request_id == bindparam("k_request_id"))
    .where(REQUESTS.c.principal == bindparam("k_principal"))
    .where(REQUESTS.c.method == bindparam("k_method"))
    .values(
        fingerprint=bindparam("v_fingerprint"),
        result=bindparam("v_result", type_=REQUESTS.c.result.type),
        at=bindparam("v_at", type_=REQUESTS.c.at.type),
    )
)
_MEMBER_DELETE = (
    delete(MEMBERS)
    .where(MEMBERS.c.case_id == bindparam("k_case_id"))
    .where(MEMBERS.c.person_id == bindparam("k_person_id"))
)
# the audit row columns are the entry's fields, in its order (AuditEntry(*row) rebuilds it)
_ENTRY_FIELDS = tuple(f.name for f in fields(AuditEntry))

RequestKey = tuple[str, str, str]  # (request id, principal, method)


@dataclass(frozen=True)
class StoredCase:
    case: Case
    task_id: str
    alert_ids: list[str]
    team: list[dict[str, str]]
    summary: str
    opened_by: str
    # encodings of the list items, kept between writes (write path only)
    memo: EncodingMemo | None = field(default=None, compare=False, repr=False)


@dataclass
class CaseState:
    """A case row as the write path reads and changes it."""

    case_id: str
    task_id: str
    county: str
    state: str
    version: int
    event_seq: int
    doc: str
    doc_sha256: str
    next_due_at: datetime | None
    team_json: str
    stored: StoredCase
    new: bool = False  # inserted by the running transaction
    changed: bool = False  # to be written when the transaction ends


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_GIL_HELD_CHUNK = 2047  # hashlib releases the GIL for larger updates


def sha256_text(text: str) -> str:
    """SHA-256 hex of the UTF-8 text, fed in chunks hashlib hashes without releasing the GIL:
    in the writer thread a release means waiting for the event loop to hand it back."""
    data = memoryview(text.encode("utf-8"))
    digest = hashlib.sha256()
    for start in range(0, len(data), _GIL_HELD_CHUNK):
        digest.update(data[start : start + _GIL_HELD_CHUNK])
    return digest.hexdigest()


def record_sha256(
    task_id: str, alert_ids: list[str], team: list[dict[str, str]], summary: str, opened_by: str
) -> str:
    """The digest of what GetCase serves beside the case document (the task, alerts, team
    with names, summary, who opened it): each audit entry carries it as `record_sha256`, so
    an edit of those columns is found by verify and refused by reads."""
    return sha256_text(record_text(task_id, alert_ids, team, summary, opened_by))


def record_text(
    task_id: str, alert_ids: list[str], team: list[dict[str, str]], summary: str, opened_by: str
) -> str:
    """The text `record_sha256` hashes (exported bundles carry it as record.json)."""
    record = {
        "alert_ids": list(alert_ids),
        "opened_by": opened_by,
        "summary": summary,
        "task_id": task_id,
        "team": list(team),
    }
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def row_record_sha256(row: Any) -> str:
    return record_sha256(
        row.task_id,
        json.loads(row.alert_ids_json),
        json.loads(row.team_json),
        row.summary,
        row.opened_by,
    )


def stored_from_row(row: Any, memo: EncodingMemo | None = None) -> StoredCase:
    return StoredCase(
        case_from_doc(row.doc),
        row.task_id,
        json.loads(row.alert_ids_json),
        json.loads(row.team_json),
        row.summary,
        row.opened_by,
        memo,
    )


class WriteCache:
    """Case rows and per-case audit heads kept between transactions (see the module doc)."""

    def __init__(self) -> None:
        self.cases: OrderedDict[str, CaseState] = OrderedDict()
        self.case_heads: OrderedDict[str, AuditEntry] = OrderedDict()
        self.head: tuple[int, str] | None = None  # the global head this process committed

    def forget(self) -> None:
        """After a rollback: nothing of the batch was stored, so nothing cached is trusted."""
        self.cases.clear()
        self.case_heads.clear()
        self.head = None

    def keep(self, cases: Iterable[CaseState], heads: dict[str, AuditEntry]) -> None:
        for cs in cases:
            cs.new = cs.changed = False
            self.cases[cs.case_id] = cs
            self.cases.move_to_end(cs.case_id)
        for case_id, entry in heads.items():
            self.case_heads[case_id] = entry
            self.case_heads.move_to_end(case_id)
        while len(self.cases) > CACHED_CASES:
            self.cases.popitem(last=False)
        while len(self.case_heads) > 2 * CACHED_CASES:
            self.case_heads.popitem(last=False)


@dataclass
class _Request:
    record: idem.IdempotencyRecord | None
    in_database: bool  # a row exists (a new result replaces it instead of being inserted)


class WriteTx:
    """The running write transaction: lookups through the working state, buffered writes."""

    def __init__(self, conn: Connection, cache: WriteCache, *, lock_head: bool) -> None:
        self.conn = conn
        self.cache = cache
        if lock_head:
            # Writers of every replica queue here until the holder commits, also on a fresh
            # database where there is no head row yet for FOR UPDATE to lock (two first
            # writes would both start the chain at seq 1 and one would fail).
            conn.execute(_TAKE_WRITE_LOCK)
        query = select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)
        found = conn.execute(query.with_for_update() if lock_head else query).first()
        self.head_exists = found is not None
        self.seq, self.hash = (int(found.seq), str(found.hash)) if found else (0, GENESIS)
        # cached rows are as stored only if nobody else committed since this process did
        self.trusted = cache.head == (self.seq, self.hash)
        if not self.trusted:
            cache.case_heads.clear()
        self.cases: dict[str, CaseState] = {}
        self.by_task: dict[str, str] = {}
        self.case_heads: dict[str, AuditEntry] = {}
        self.requests: dict[RequestKey, _Request] = {}
        self.breach_names: dict[str, set[str]] = {}
        self.audit_rows: list[dict[str, Any]] = []
        self.event_rows: list[dict[str, Any]] = []
        self.request_inserts: list[dict[str, Any]] = []
        self.request_updates: list[dict[str, Any]] = []
        self.member_inserts: list[dict[str, Any]] = []
        self.member_deletes: list[dict[str, Any]] = []
        self.breach_rows: list[dict[str, Any]] = []
        self.new_rows: dict[str, dict[str, Any]] = {}  # columns of new cases beyond CaseState
        self.dirty = False  # whether the running job has written
        self.trace: dict[str, str] = {}  # the running job's trace context (WriteJob.trace)

    # ---- reads ---------------------------------------------------------------------------

    def prefetch(self, keys: list[RequestKey], case_ids: list[str]) -> None:
        """Reads the batch's idempotency records and uncached case rows, one query each."""
        if keys:
            ids = sorted({k[0] for k in keys})
            wanted = set(keys)
            for k in wanted:
                self.requests.setdefault(k, _Request(None, False))
            rows = self.conn.execute(select(REQUESTS).where(REQUESTS.c.request_id.in_(ids))).all()
            for row in rows:
                key = (row.request_id, row.principal, row.method)
                if key in wanted:
                    self.requests[key] = _Request(self._record_of(row), True)
        missing = sorted(
            {c for c in case_ids if c and not (self.trusted and c in self.cache.cases)}
        )
        if missing:
            query = select(CASES).where(CASES.c.case_id.in_(missing))
            for case_row in self.conn.execute(query):
                self.cases[case_row.case_id] = self._from_row(case_row)

    @staticmethod
    def _record_of(row: Any) -> idem.IdempotencyRecord:
        return idem.IdempotencyRecord(
            idem.IdempotencyKey(row.request_id, row.principal, row.method),
            row.fingerprint,
            bytes(row.result),
            utc(row.at),
        )

    def request(self, key: RequestKey) -> idem.IdempotencyRecord | None:
        known = self.requests.get(key)
        if known is None:
            row = self.conn.execute(
                select(REQUESTS)
                .where(REQUESTS.c.request_id == key[0])
                .where(REQUESTS.c.principal == key[1])
                .where(REQUESTS.c.method == key[2])
            ).first()
            known = _Request(self._record_of(row), True) if row else _Request(None, False)
            self.requests[key] = known
        return known.record

    def _from_row(self, row: Any) -> CaseState:
        cached = self.cache.cases.get(row.case_id)
        if cached is not None and cached.doc == row.doc:
            sc = replace(
                cached.stored,
                alert_ids=json.loads(row.alert_ids_json),
                team=json.loads(row.team_json),
                summary=row.summary,
                opened_by=row.opened_by,
            )
        else:
            sc = stored_from_row(row, EncodingMemo())
        return CaseState(
            case_id=row.case_id,
            task_id=row.task_id,
            county=row.county,
            state=row.state,
            version=row.version,
            event_seq=row.event_seq,
            doc=row.doc,
            doc_sha256=row.doc_sha256,
            next_due_at=row.next_due_at,
            team_json=row.team_json,
            stored=sc,
        )

    def case(self, case_id: str) -> CaseState | None:
        cs = self.cases.get(case_id)
        if cs is not None:
            return cs
        if self.trusted:
            cached = self.cache.cases.get(case_id)
            if cached is not None:
                cs = replace(cached)
                self.cases[case_id] = cs
                return cs
        row = self.conn.execute(select(CASES).where(CASES.c.case_id == case_id)).first()
        if row is None:
            return None
        cs = self._from_row(row)
        self.cases[case_id] = cs
        return cs

    def case_for_task(self, task_id: str) -> CaseState | None:
        case_id = self.by_task.get(task_id)
        if case_id is None:
            case_id = self.conn.execute(
                select(CASES.c.case_id).where(CASES.c.task_id == task_id)
            ).scalar()
        return self.case(case_id) if case_id else None

    def members(self, case_id: str) -> set[str]:
        rows = self.conn.execute(select(MEMBERS.c.person_id).where(MEMBERS.c.case_id == case_id))
        return {r.person_id for r in rows}

    def known_breaches(self, case_id: str) -> set[str]:
        names = self.breach_names.get(case_id)
        if names is None:
            rows = self.conn.execute(select(BREACHES.c.name).where(BREACHES.c.case_id == case_id))
            names = self.breach_names[case_id] = {r.name for r in rows}
        return names

    def _case_head(self, case_id: str) -> AuditEntry | None:
        entry = self.case_heads.get(case_id)
        if entry is None and self.trusted:
            entry = self.cache.case_heads.get(case_id)
        if entry is None:
            row = self.conn.execute(
                select(AUDIT)
                .where(AUDIT.c.case_id == case_id)
                .order_by(AUDIT.c.case_seq.desc())
                .limit(1)
            ).first()
            if row is not None:
                entry = AuditEntry(*(getattr(row, f) for f in _ENTRY_FIELDS))
        return entry

    # ---- writes --------------------------------------------------------------------------

    def add_case(self, cs: CaseState, members: Iterable[str], row: dict[str, Any]) -> None:
        """A new case: `row` holds the columns the case state does not (alert ids, summary...)."""
        self.dirty = True
        cs.new = cs.changed = True
        self.cases[cs.case_id] = cs
        self.by_task[cs.task_id] = cs.case_id
        self.new_rows[cs.case_id] = row
        for person in members:
            self.member_inserts.append({"case_id": cs.case_id, "person_id": person})

    def change_members(self, case_id: str, add: Iterable[str], remove: Iterable[str]) -> None:
        self.dirty = True
        for person in add:
            self.member_inserts.append({"case_id": case_id, "person_id": person})
        for person in remove:
            self.member_deletes.append({"k_case_id": case_id, "k_person_id": person})

    def append(
        self, case_id: str, kind: str, payload: dict[str, Any], actor: str, at: datetime
    ) -> AuditEntry:
        """The next audit entry of the global chain and of the case's own chain."""
        self.dirty = True
        # chain_entry needs only the predecessor's seq and hash
        prev = (
            AuditEntry(self.seq, "", 0, "", "{}", "", "", "", "", self.hash) if self.seq else None
        )
        entry = chain_entry(
            prev,
            case_prev=self._case_head(case_id),
            case_id=case_id,
            kind=kind,
            payload=payload,
            actor=actor,
            at=at,
        )
        self.audit_rows.append({f: getattr(entry, f) for f in _ENTRY_FIELDS})
        self.seq, self.hash = entry.seq, entry.hash
        self.case_heads[case_id] = entry
        return entry

    def add_event(self, cs: CaseState, entry: AuditEntry, at: datetime) -> None:
        """The outbox row of a committed change (published later by the relay)."""
        cs.event_seq += 1
        cs.changed = True
        message = case_events.build(
            case_id=cs.case_id,
            sequence=cs.event_seq,
            entry_kind=entry.kind,
            state=cs.state,
            version=cs.version,
            actor=entry.actor,
            task_id=cs.task_id,
            county=cs.county,
            at=at,
            payload_json=entry.payload_json,
            audit_seq=entry.seq,
            audit_hash=entry.hash,
        )
        self.event_rows.append(
            {
                "event_id": message.meta.event_id,
                "case_id": cs.case_id,
                "sequence": cs.event_seq,
                "version": cs.version,
                "kind": message.kind,
                "at": at,
                "event_bytes": message.SerializeToString(),
                "published_at": None,
                "traceparent": self.trace.get("traceparent"),
                "tracestate": self.trace.get("tracestate"),
            }
        )

    def add_breach(self, case_id: str, name: str, due_at: datetime, now: datetime) -> None:
        self.dirty = True
        self.known_breaches(case_id).add(name)
        self.breach_rows.append(
            {"case_id": case_id, "name": name, "due_at": due_at, "recorded_at": now}
        )

    def remember_request(
        self, key: RequestKey, fingerprint: str, result: bytes, now: datetime
    ) -> None:
        """Stores a write's first result under its request key (replacing an expired one)."""
        known = self.requests.get(key) or _Request(None, False)
        if known.in_database:
            self.request_updates.append(
                {
                    "k_request_id": key[0],
                    "k_principal": key[1],
                    "k_method": key[2],
                    "v_fingerprint": fingerprint,
                    "v_result": result,
                    "v_at": now,
                }
            )
        else:
            self.request_inserts.append(
                {
                    "request_id": key[0],
                    "principal": key[1],
                    "method": key[2],
                    "fingerprint": fingerprint,
                    "result": result,
                    "at": now,
                }
            )
        record = idem.IdempotencyRecord(idem.IdempotencyKey(*key), fingerprint, result, now)
        # a second write with this key in the same batch must update, not insert again
        self.requests[key] = _Request(record, True)

    def flush(self) -> None:
        """Sends every buffered write: one statement per table (executemany)."""
        conn = self.conn
        new_rows = self.new_rows
        inserts = []
        updates = []
        for cs in self.cases.values():
            if cs.new:
                inserts.append({**new_rows[cs.case_id], **self._columns(cs)})
            elif cs.changed:
                updates.append(
                    {"k_case_id": cs.case_id}
                    | {"v_" + k: v for k, v in self._columns(cs).items() if k in _UPDATED}
                )
        for statement, rows in (
            (insert(CASES), inserts),
            (_CASE_UPDATE, updates),
            (_MEMBER_DELETE, self.member_deletes),
            (insert(MEMBERS), self.member_inserts),
            (insert(AUDIT), self.audit_rows),
            (insert(EVENTS), self.event_rows),
            (insert(BREACHES), self.breach_rows),
            (_REQUEST_UPDATE, self.request_updates),
            (insert(REQUESTS), self.request_inserts),
        ):
            if rows:
                conn.execute(statement, rows)
        if self.audit_rows:
            if self.head_exists:
                conn.execute(
                    update(HEAD).where(HEAD.c.id == 1).values(seq=self.seq, hash=self.hash)
                )
            else:
                conn.execute(insert(HEAD).values(id=1, seq=self.seq, hash=self.hash))

    @staticmethod
    def _columns(cs: CaseState) -> dict[str, Any]:
        return {
            "case_id": cs.case_id,
            "task_id": cs.task_id,
            "county": cs.county,
            "state": cs.state,
            "version": cs.version,
            "event_seq": cs.event_seq,
            "doc": cs.doc,
            "doc_sha256": cs.doc_sha256,
            "next_due_at": cs.next_due_at,
            "team_json": cs.team_json,
        }

    def keep(self) -> None:
        """After the commit: the working state becomes the trusted cache."""
        self.cache.keep(self.cases.values(), self.case_heads)
        self.cache.head = (self.seq, self.hash)
