"""list indexes: the console's event log, payments and invoices lists filtered at scale

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 23:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_events_kind_id", "events", ["kind", "id"]),
    ("ix_payments_received_at", "payments", ["received_at"]),
    ("ix_invoices_status_id", "invoices", ["status", "id"]),
    ("ix_invoices_issue_date", "invoices", ["issue_date"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
