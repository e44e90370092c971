"""Leases on an outbox table's due rows: how several senders share one table.

Both outboxes (the CoA commands, ``outbox.py``, and the customer e-mail, ``notifications``) keep
``status``, ``attempts`` and ``next_attempt_at``. A sender leases the due rows in a short
transaction of its own (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two senders never take the
same row) by moving ``next_attempt_at`` ahead, then works on them outside any transaction. One
that dies mid-send leaves the lease to expire and the row is taken again: a message may go out
twice, never zero times.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.radius import CommandStatus


def lease_due(
    uow: UnitOfWork,
    model: Any,
    *,
    now: datetime,
    lease_s: float,
    limit: int,
    only: int | None = None,
) -> list[int]:
    """Lease up to ``limit`` due rows of ``model`` (only the row ``only``, when given: a job's
    one row) in the caller's write (which commits it); returns their ids."""
    statement = (
        select(model)
        .where(
            model.status == CommandStatus.PENDING.value,  # a notification's too
            # a new row is due whatever the clock that wrote it said (back-dated CLI)
            or_(model.attempts == 0, model.next_attempt_at <= now),
        )
        .order_by(model.id)
        .limit(limit)
    )
    if only is not None:
        statement = statement.where(model.id == only)
    if uow.dialect == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    rows = list(uow.session.scalars(statement))
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = now + timedelta(seconds=lease_s)
    return [row.id for row in rows]
