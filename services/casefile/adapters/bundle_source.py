"""What a case bundle is made of, read from casefile's database in one snapshot: the stored
case document, the record served beside it and the case's audit chain. One snapshot, so a
write landing meanwhile cannot leave a chain that vouches for a newer document than the one
exported (PostgreSQL reads at REPEATABLE READ; SQLite's deferred BEGIN already holds one)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from casefile.adapters.codec import case_from_doc
from casefile.adapters.store import to_entry
from casefile.adapters.tables import AuditRow, CaseFileRow
from casefile.adapters.write_tx import record_text
from casefile.domain.audit import AuditEntry
from casefile.domain.records import Case


@dataclass(frozen=True)
class BundleSource:
    case: Case
    doc: str
    record: str
    entries: list[AuditEntry]


def read_bundle_source(engine: Engine, case_id: str) -> BundleSource | None:
    """The case's document, record and audit entries as of one moment; None: no such case."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with Session(engine) as s:
        row = s.get(CaseFileRow, case_id)
        if row is None:
            return None
        rows = s.exec(
            select(AuditRow).where(AuditRow.case_id == case_id).order_by(AuditRow.seq)  # type: ignore[arg-type]
        ).all()
        entries = [to_entry(r) for r in rows]
        doc = row.doc
        record = record_text(
            row.task_id,
            json.loads(row.alert_ids_json),
            json.loads(row.team_json),
            row.summary,
            row.opened_by,
        )
    return BundleSource(case_from_doc(doc), doc, record, entries)
