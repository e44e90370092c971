"""payment references: unique per (customer, method, reference), not per (method, reference)

A reference is the payer's (a receipt number, a transfer id), not a global key: real bank data
repeats references across payers, and the old constraint made another customer's payment under
the same reference impossible to record (the service answered with the first payer's payment).

On SQLite the table is rebuilt (batch mode: copy, drop, rename). Allocations, bank statement
lines and the rest point at ``payments`` by name and keep doing so; ``env.py`` runs SQLite
migrations with foreign keys off and checks them all before the commit.

Downgrading restores the global (method, reference) constraint and fails if two customers'
payments share a method and reference by then.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "uq_payments_method_reference"
NEW = "uq_payments_customer_method_reference"


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(OLD, type_="unique")
        batch_op.create_unique_constraint(NEW, ["customer_id", "method", "reference"])


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(NEW, type_="unique")
        batch_op.create_unique_constraint(OLD, ["method", "reference"])
