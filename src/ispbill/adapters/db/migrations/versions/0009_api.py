"""api: customer session tokens, token expiry, idempotency record expiry

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 18:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ispbill.adapters.db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "expires_at", ispbill.adapters.db.types.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_index(
            batch_op.f("ix_api_tokens_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_api_tokens_customer_id_customers"), "customers", ["customer_id"], ["id"]
        )
        batch_op.drop_constraint(batch_op.f("ck_api_tokens_role"), type_="check")
        batch_op.create_check_constraint(
            "role", "role IN ('admin', 'reseller', 'readonly', 'customer')"
        )
        batch_op.create_check_constraint(
            "customer", "(role = 'customer') = (customer_id IS NOT NULL)"
        )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_created_at"))
    op.execute("DELETE FROM api_tokens WHERE role = 'customer'")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_api_tokens_customer"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_api_tokens_role"), type_="check")
        batch_op.create_check_constraint("role", "role IN ('admin', 'reseller', 'readonly')")
        batch_op.drop_constraint(
            batch_op.f("fk_api_tokens_customer_id_customers"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_api_tokens_customer_id"))
        batch_op.drop_column("expires_at")
        batch_op.drop_column("customer_id")
