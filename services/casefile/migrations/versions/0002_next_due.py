"""case_files.next_due_at: the earliest due instant of a running clock, indexed, so the
periodic breach checker reads only the cases with a clock due, not every open case.

Revision ID: 0002
Revises: 0001
Create Date: 2026-03-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("case_files", sa.Column("next_due_at", sa.DateTime(timezone=True)))
    op.create_index("ix_case_files_next_due_at", "case_files", ["next_due_at"])
    # Existing open cases are due for one check now; that check stores their real next due.
    op.execute("UPDATE case_files SET next_due_at = opened_at WHERE state <> 'CLOSED'")


def downgrade() -> None:
    op.drop_index("ix_case_files_next_due_at", table_name="case_files")
    with op.batch_alter_table("case_files") as batch:
        batch.drop_column("next_due_at")
