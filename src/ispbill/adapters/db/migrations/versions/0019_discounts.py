"""discounts: a percent or a fixed amount off a service's or a customer's periods (issue 17),
the discount a charge of kind ``discount`` applies (``charges.discount_id``) and the kind of an
invoice line (``invoice_lines.kind``: a discount line is negative).

Revision ID: 0019
Revises: 0020
Create Date: 2026-12-08 00:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ispbill.adapters.db.types import UTCDateTime

revision: str = "0019"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERIOD_ONLY = "kind = 'period'"
ADDON_ONLY = "kind = 'addon'"


def upgrade() -> None:
    op.create_table(
        "discounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=True),
        sa.Column("percent", sa.Integer(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("periods", sa.Integer(), nullable=True),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "(percent IS NULL) <> (amount_minor IS NULL)",
            name=op.f("ck_discounts_percent_or_amount"),
        ),
        sa.CheckConstraint(
            "percent IS NULL OR (percent >= 1 AND percent <= 100)",
            name=op.f("ck_discounts_percent"),
        ),
        sa.CheckConstraint(
            "amount_minor IS NULL OR amount_minor > 0", name=op.f("ck_discounts_amount")
        ),
        sa.CheckConstraint(
            "(periods IS NULL) <> (until IS NULL)", name=op.f("ck_discounts_periods_or_until")
        ),
        sa.CheckConstraint("periods IS NULL OR periods > 0", name=op.f("ck_discounts_periods")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_discounts_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_discounts_service_id_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discounts")),
    )
    with op.batch_alter_table("discounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_discounts_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_discounts_service_id"), ["service_id"], unique=False)

    # SQLite rebuilds the table in batch mode; the partial indexes are dropped first and made
    # again after, so their WHERE clauses cannot be lost in the copy.
    _drop_partial_indexes()
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("discount_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_charges_discount_id"), ["discount_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_charges_discount_id_discounts"), "discounts", ["discount_id"], ["id"]
        )
    _create_partial_indexes()
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="charge", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.drop_column("kind")
    _drop_partial_indexes()
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_charges_discount_id_discounts"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_charges_discount_id"))
        batch_op.drop_column("discount_id")
    _create_partial_indexes()
    with op.batch_alter_table("discounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discounts_service_id"))
        batch_op.drop_index(batch_op.f("ix_discounts_customer_id"))
    op.drop_table("discounts")


def _drop_partial_indexes() -> None:
    for name, where in (
        ("uq_charges_service_period", PERIOD_ONLY),
        ("uq_charges_addon_period", ADDON_ONLY),
    ):
        op.drop_index(
            name,
            table_name="charges",
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )


def _create_partial_indexes() -> None:
    for name, column, where in (
        ("uq_charges_service_period", "service_id", PERIOD_ONLY),
        ("uq_charges_addon_period", "addon_id", ADDON_ONLY),
    ):
        op.create_index(
            name,
            "charges",
            [column, "period_start"],
            unique=True,
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )
