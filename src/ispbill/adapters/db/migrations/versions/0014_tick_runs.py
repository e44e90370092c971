"""tick_runs: the record of each scheduled or requested run of the tick

Revision ID: 0014
Revises: 0016
Create Date: 2026-12-07 23:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ispbill.adapters.db.types import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tick_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("now", UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("ranges_total", sa.Integer(), nullable=True),
        sa.Column("ranges_done", sa.Integer(), nullable=False),
        sa.Column("ranges_failed", sa.Integer(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')",
            name=op.f("ck_tick_runs_status"),
        ),
        sa.CheckConstraint(
            "ranges_done >= 0 AND ranges_failed >= 0", name=op.f("ck_tick_runs_ranges")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tick_runs")),
    )
    op.create_index("ix_tick_runs_status", "tick_runs", ["status", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tick_runs_status", table_name="tick_runs")
    op.drop_table("tick_runs")
