"""enforcement_outbox.status: 'dead' (the dead letter after the last attempt) replaces 'failed'

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-07 23:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enforcement_outbox", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_enforcement_outbox_status"), type_="check")
    op.execute("UPDATE enforcement_outbox SET status = 'dead' WHERE status = 'failed'")
    with op.batch_alter_table("enforcement_outbox", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_enforcement_outbox_status"), "status IN ('pending', 'done', 'dead')"
        )


def downgrade() -> None:
    with op.batch_alter_table("enforcement_outbox", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_enforcement_outbox_status"), type_="check")
    op.execute("UPDATE enforcement_outbox SET status = 'failed' WHERE status = 'dead'")
    with op.batch_alter_table("enforcement_outbox", schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_enforcement_outbox_status"), "status IN ('pending', 'done', 'failed')"
        )
