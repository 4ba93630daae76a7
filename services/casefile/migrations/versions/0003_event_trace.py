"""case_events.traceparent / tracestate: the W3C trace context of the request that made the
change, so the outbox relay publishes casefile.events with it in the record headers, like
every other topic (issue 12, item 14). Rows written before have none.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("case_events", sa.Column("traceparent", sa.String()))
    op.add_column("case_events", sa.Column("tracestate", sa.String()))


def downgrade() -> None:
    with op.batch_alter_table("case_events") as batch:
        batch.drop_column("tracestate")
        batch.drop_column("traceparent")
