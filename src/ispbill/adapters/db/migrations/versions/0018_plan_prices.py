"""plan_prices: a plan's price history, each price from a day (issue 17)

Every existing plan gets one open row with its current price, valid from the day it was
created, so the engine prices every period as before.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 23:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

import sqlalchemy as sa
from alembic import op

import ispbill.adapters.db.types

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    prices = op.create_table(
        "plan_prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column(
            "created_at", ispbill.adapters.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint("price_minor >= 0", name=op.f("ck_plan_prices_price")),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_plan_prices_valid_range")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_plan_prices_plan_id_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_prices")),
        sa.UniqueConstraint("plan_id", "valid_from", name="uq_plan_prices_plan_from"),
    )
    with op.batch_alter_table("plan_prices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_prices_plan_id"), ["plan_id"], unique=False)
    plans = sa.table(
        "plans",
        sa.column("id", sa.Integer()),
        sa.column("price_minor", sa.BigInteger()),
        sa.column("created_at", ispbill.adapters.db.types.UTCDateTime(timezone=True)),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(plans.c.id, plans.c.price_minor, plans.c.created_at)).all()
    if rows:
        op.bulk_insert(
            prices,
            [
                {
                    "plan_id": row.id,
                    "price_minor": row.price_minor,
                    "valid_from": row.created_at.astimezone(UTC).date(),
                    "created_at": row.created_at,
                }
                for row in rows
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("plan_prices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_prices_plan_id"))
    op.drop_table("plan_prices")
