"""customer records (issue 17): addresses, GPS, company numbers, notes, contacts, archiving

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 23:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ispbill.adapters.db.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billing_address", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("service_address", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("service_latitude_microdeg", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("service_longitude_microdeg", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("company_registration_number", sa.String(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("vat_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("internal_notes", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "archived_at", ispbill.adapters.db.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "archived_at", ispbill.adapters.db.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    op.create_table(
        "customer_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=254), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind IN ('email', 'phone')", name=op.f("ck_customer_contacts_kind")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_contacts_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_contacts")),
        sa.UniqueConstraint("customer_id", "kind", "value", name="uq_customer_contacts_value"),
    )
    with op.batch_alter_table("customer_contacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_contacts_customer_id"), ["customer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_contacts_customer_id"))
    op.drop_table("customer_contacts")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for column in (
            "archived_at",
            "internal_notes",
            "vat_id",
            "company_registration_number",
            "service_longitude_microdeg",
            "service_latitude_microdeg",
            "service_address",
            "billing_address",
        ):
            batch_op.drop_column(column)
