"""customer_pending_changes: a timezone, cycle or invoicing mode from the next period (issue 17)

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-08 00:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ispbill.adapters.db.types

revision: str = "0020"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_pending_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("old_value", sa.String(length=100), nullable=False),
        sa.Column("new_value", sa.String(length=100), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("due_at", ispbill.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column(
            "created_at", ispbill.adapters.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("closed_at", ispbill.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "field IN ('billing_timezone', 'billing_cycle', 'invoicing_mode')",
            name=op.f("ck_customer_pending_changes_field"),
        ),
        sa.CheckConstraint(
            "status IN ('planned', 'done', 'cancelled')",
            name=op.f("ck_customer_pending_changes_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_pending_changes_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_pending_changes")),
    )
    with op.batch_alter_table("customer_pending_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_pending_changes_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_customer_pending_changes_status_due_at", ["status", "due_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_pending_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_pending_changes_status_due_at")
        batch_op.drop_index(batch_op.f("ix_customer_pending_changes_customer_id"))
    op.drop_table("customer_pending_changes")
