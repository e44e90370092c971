"""Read model of the CoA outbox (``enforcement_outbox``) for the API and the console: the
commands newest first, filtered by status (``dead``: the dead letters an operator retries)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ispbill.adapters.db.keyset import Slice, keyset_slice, mapped
from ispbill.adapters.db.models import OutboxCommand
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import ValidationError
from ispbill.domain.radius import CommandStatus

STATUSES = [s.value for s in CommandStatus]


@dataclass(frozen=True)
class OutboxCommandView:
    id: int
    service_id: int
    event_kind: str
    reason: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None  # only while it waits to be sent
    completed_at: datetime | None
    last_error: str | None
    sessions: int  # how many sessions the command has answers for


def command_view(row: OutboxCommand) -> OutboxCommandView:
    return OutboxCommandView(
        id=row.id,
        service_id=row.service_id,
        event_kind=row.event_kind,
        reason=row.reason,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=(
            row.next_attempt_at if row.status == CommandStatus.PENDING.value else None
        ),
        completed_at=row.completed_at,
        last_error=row.last_error,
        sessions=len(row.results or {}),
    )


def list_commands(
    uow: UnitOfWork, *, status: str | None, after: int | None, limit: int
) -> Slice[OutboxCommandView]:
    """Commands newest first, of one status when given."""
    if status is not None and status not in STATUSES:
        raise ValidationError("status", f"must be one of {', '.join(STATUSES)}")
    query = select(OutboxCommand)
    if status is not None:
        query = query.where(OutboxCommand.status == status)
    found = keyset_slice(
        uow.session, query, OutboxCommand.id, after=after, limit=limit, newest_first=True
    )
    return mapped(found, lambda rows: [command_view(r) for r in rows])
