"""Extra charges, corrections and scheduled changes (issue 17): recurring add-ons on services
(``service_addons``), add-on and one-off charges (``charges.addon_id``; a one-off charge may
name no service), a customer's own payment terms (``customers.payment_terms_days``), and plan
changes or terminations planned for a future day (``scheduled_changes``).

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-07 23:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ispbill.adapters.db.types import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERIOD_ONLY = "kind = 'period'"
ADDON_ONLY = "kind = 'addon'"


def upgrade() -> None:
    op.create_table(
        "service_addons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_profile_id", sa.Integer(), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.CheckConstraint("price_minor > 0", name=op.f("ck_service_addons_price")),
        sa.CheckConstraint("length(currency) = 3", name=op.f("ck_service_addons_currency")),
        sa.CheckConstraint(
            "ends_on IS NULL OR ends_on >= starts_on", name=op.f("ck_service_addons_window")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_service_addons_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_service_addons_service_id_services")
        ),
        sa.ForeignKeyConstraint(
            ["tax_profile_id"],
            ["tax_profiles.id"],
            name=op.f("fk_service_addons_tax_profile_id_tax_profiles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_addons")),
    )
    with op.batch_alter_table("service_addons", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_addons_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_service_addons_service_id"), ["service_id"], unique=False
        )

    # SQLite rebuilds the table in batch mode; the partial index is dropped first and made
    # again after, so its WHERE clause cannot be lost in the copy.
    op.drop_index(
        "uq_charges_service_period",
        table_name="charges",
        postgresql_where=sa.text(PERIOD_ONLY),
        sqlite_where=sa.text(PERIOD_ONLY),
    )
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("addon_id", sa.Integer(), nullable=True))
        batch_op.alter_column("service_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_charges_addon_id_service_addons"),
            "service_addons",
            ["addon_id"],
            ["id"],
        )
    op.create_index(
        "uq_charges_service_period",
        "charges",
        ["service_id", "period_start"],
        unique=True,
        postgresql_where=sa.text(PERIOD_ONLY),
        sqlite_where=sa.text(PERIOD_ONLY),
    )
    op.create_index(
        "uq_charges_addon_period",
        "charges",
        ["addon_id", "period_start"],
        unique=True,
        postgresql_where=sa.text(ADDON_ONLY),
        sqlite_where=sa.text(ADDON_ONLY),
    )

    op.create_table(
        "scheduled_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("due_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("previous_active_to", sa.Date(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("closed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "kind IN ('plan_change', 'termination')", name=op.f("ck_scheduled_changes_kind")
        ),
        sa.CheckConstraint(
            "status IN ('planned', 'done', 'cancelled', 'failed')",
            name=op.f("ck_scheduled_changes_status"),
        ),
        sa.CheckConstraint(
            "(kind = 'plan_change') = (plan_id IS NOT NULL)", name=op.f("ck_scheduled_changes_plan")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_scheduled_changes_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_scheduled_changes_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_scheduled_changes_service_id_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_changes")),
    )
    with op.batch_alter_table("scheduled_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduled_changes_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_scheduled_changes_service_id"), ["service_id"], unique=False
        )
        batch_op.create_index(
            "ix_scheduled_changes_status_due_at", ["status", "due_at"], unique=False
        )

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_terms_days", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            "payment_terms_days",
            "payment_terms_days IS NULL OR payment_terms_days BETWEEN 0 AND 365",
        )


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_constraint("payment_terms_days", type_="check")
        batch_op.drop_column("payment_terms_days")
    with op.batch_alter_table("scheduled_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_changes_status_due_at")
        batch_op.drop_index(batch_op.f("ix_scheduled_changes_service_id"))
        batch_op.drop_index(batch_op.f("ix_scheduled_changes_customer_id"))
    op.drop_table("scheduled_changes")
    op.drop_index(
        "uq_charges_addon_period",
        table_name="charges",
        postgresql_where=sa.text(ADDON_ONLY),
        sqlite_where=sa.text(ADDON_ONLY),
    )
    op.drop_index(
        "uq_charges_service_period",
        table_name="charges",
        postgresql_where=sa.text(PERIOD_ONLY),
        sqlite_where=sa.text(PERIOD_ONLY),
    )
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_charges_addon_id_service_addons"), type_="foreignkey"
        )
        batch_op.alter_column("service_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("addon_id")
    op.create_index(
        "uq_charges_service_period",
        "charges",
        ["service_id", "period_start"],
        unique=True,
        postgresql_where=sa.text(PERIOD_ONLY),
        sqlite_where=sa.text(PERIOD_ONLY),
    )
    with op.batch_alter_table("service_addons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_addons_service_id"))
        batch_op.drop_index(batch_op.f("ix_service_addons_customer_id"))
    op.drop_table("service_addons")
