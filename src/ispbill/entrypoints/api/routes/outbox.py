"""``/api/v1/outbox``: the CoA outbox (access changes on their way to the NAS), operator-wide.

Listing is for admin and readonly tokens (the commands are the network's, not a customer's);
``?status=dead`` lists the dead letters, the commands whose attempts ran out. ``retry`` puts a
dead letter back in the queue through the same use case as the console: admin only.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.auth import Admin, Operator
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.schemas import OutboxCommandOut, OutboxRetryIn
from ispbill.use_cases.network import enforcement
from ispbill.use_cases.queries import outbox_lists
from ispbill.use_cases.queries.outbox_lists import OutboxCommandView, command_view

router = APIRouter(prefix="/api/v1/outbox", tags=["network"])
CommandId = Annotated[int, Path(ge=1, le=MAX_ID)]
Status = Literal["pending", "done", "dead"]


def command_out(row: OutboxCommandView) -> OutboxCommandOut:
    return OutboxCommandOut(
        id=row.id,
        service_id=row.service_id,
        event_kind=row.event_kind,
        reason=row.reason,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        completed_at=row.completed_at,
        last_error=row.last_error,
        sessions=row.sessions,
    )


@router.get("", response_model=Page[OutboxCommandOut])
async def list_commands(
    request: Request,
    _caller: Operator,
    paging: Paging,
    status: Annotated[Status | None, Query()] = None,
) -> Page[OutboxCommandOut]:
    """CoA commands, newest first: pending, done, or dead (attempts exhausted)."""
    app = container(request)

    def work() -> Page[OutboxCommandOut]:
        with app.uow() as uow:
            found = outbox_lists.list_commands(
                uow, status=status, after=paging.after(newest_first=True), limit=paging.limit
            )
            return page_of(found, command_out, newest_first=True)

    return await call(work)


@router.post("/{command_id}/retry", response_model=OutboxCommandOut)
async def retry_command(
    command_id: CommandId, body: OutboxRetryIn, request: Request, caller: Admin
) -> OutboxCommandOut:
    """Queue a dead letter again, due now, its attempts started afresh (admin only). A done
    or pending command is refused (409, field ``status``)."""
    app = container(request)

    def work() -> OutboxCommandOut:
        with app.uow() as uow:
            row = enforcement.retry_command(
                uow,
                command_id=command_id,
                reason=body.reason,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return command_out(command_view(row))

    return await call(work)
