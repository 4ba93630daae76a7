"""Documents the phone API itself produces for a case (the inspection record's text and the
signature images drawn on the phone), kept by content hash; casefile holds their SHA-256 as
evidence, so anyone can check that these bytes are the ones the case names."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import Column, LargeBinary
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel

from dispatch.adapters.schema import create_tables


class FieldFileRow(SQLModel, table=True):
    __tablename__ = "dispatch_field_files"

    sha256: str = Field(primary_key=True)
    media_type: str
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    case_id: str = Field(index=True)
    stored_at: datetime


TABLES = [FieldFileRow.__table__]  # type: ignore[attr-defined]


class FieldFiles:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, TABLES)

    def put(self, content: bytes, media_type: str, case_id: str) -> str:
        """Stores the bytes (once per content) and returns their SHA-256 hex."""
        digest = hashlib.sha256(content).hexdigest()
        with Session(self.engine) as s:
            if s.get(FieldFileRow, digest) is None:
                s.add(
                    FieldFileRow(
                        sha256=digest,
                        media_type=media_type,
                        content=content,
                        case_id=case_id,
                        stored_at=datetime.now(UTC),
                    )
                )
                s.commit()
        return digest

    def get(self, digest: str) -> FieldFileRow | None:
        with Session(self.engine) as s:
            return s.get(FieldFileRow, digest)
