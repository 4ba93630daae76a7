"""Initial casefile schema: case files, members, audit chain, requests, outbox, breaches.

Revision ID: 0001
Revises:
Create Date: 2026-03-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_files",
        sa.Column("case_id", sa.String(), primary_key=True),
        sa.Column("task_id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("county", sa.String(), nullable=False),
        sa.Column("enterprise_id", sa.String(), nullable=False),
        sa.Column("outlet_id", sa.String(), nullable=False),
        sa.Column("alert_ids_json", sa.Text(), nullable=False),
        sa.Column("team_json", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("opened_by", sa.String(), nullable=False),
        sa.Column("discovered_at", TZ, nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.Column("doc_sha256", sa.String(), nullable=False),
    )
    op.create_index("ix_case_files_task_id", "case_files", ["task_id"], unique=True)
    for column in ("state", "county", "enterprise_id", "outlet_id"):
        op.create_index(f"ix_case_files_{column}", "case_files", [column])

    op.create_table(
        "case_members",
        sa.Column("case_id", sa.String(), primary_key=True),
        sa.Column("person_id", sa.String(), primary_key=True),
    )
    op.create_index("ix_case_members_person_id", "case_members", ["person_id"])

    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("case_seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("at", sa.String(), nullable=False),
        sa.Column("prev_hash", sa.String(), nullable=False),
        sa.Column("case_prev_hash", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.UniqueConstraint("case_id", "case_seq", name="uq_audit_case_seq"),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
    )
    op.create_table(
        "request_results",
        sa.Column("request_id", sa.String(), primary_key=True),
        sa.Column("principal", sa.String(), primary_key=True),
        sa.Column("method", sa.String(), primary_key=True),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("result", sa.LargeBinary(), nullable=False),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(), nullable=False, unique=True),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("event_bytes", sa.LargeBinary(), nullable=False),
        sa.Column("published_at", TZ, nullable=True),
        sa.UniqueConstraint("case_id", "sequence", name="uq_event_case_sequence"),
    )
    op.create_index("ix_case_events_unpublished", "case_events", ["published_at", "id"])
    op.create_table(
        "clock_breaches",
        sa.Column("case_id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "clock_breaches",
        "case_events",
        "request_results",
        "audit_head",
        "audit_entries",
        "case_members",
        "case_files",
    ):
        op.drop_table(table)
