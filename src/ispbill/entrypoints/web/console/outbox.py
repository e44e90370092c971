"""The CoA outbox in the console (``/console/outbox``): access changes on their way to the
NAS, newest first, filtered by status; a dead letter (attempts exhausted) has "Retry now" for
admins, through the use case the API's ``POST /api/v1/outbox/{id}/retry`` calls.
Operator-wide, as the API's ``GET /outbox``: never a reseller's user."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ispbill.adapters.db.keyset import Slice
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.session import StaffPrincipal, require_admin, require_global
from ispbill.use_cases.network import enforcement
from ispbill.use_cases.queries import outbox_lists
from ispbill.use_cases.queries.outbox_lists import OutboxCommandView

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50


async def _show(
    request: Request,
    staff: StaffPrincipal,
    *,
    status: str = "",
    before: int | None = None,
    refused: str | None = None,
) -> Response:
    wanted = status or None
    error = refused

    def read(uow: UnitOfWork, _now: datetime) -> Slice[OutboxCommandView]:
        return outbox_lists.list_commands(uow, status=wanted, after=before, limit=PAGE_SIZE)

    try:
        listed = await work(request, read)
    except IspbillError as exc:
        listed, error = Slice([], None), str(exc)
    context = {
        "listed": listed,
        "status": status,
        "statuses": outbox_lists.STATUSES,
        "error": error,
    }
    return staff_page(request, staff, "console/outbox.html", context, status=422 if error else 200)


@router.get("/outbox")
async def outbox_list(
    request: Request, staff: Staff, status: str = "", before: int | None = None
) -> Response:
    """CoA commands newest first: pending, done, or dead (attempts exhausted)."""
    require_global(staff)
    return await _show(request, staff, status=status, before=before)


@router.post("/outbox/{command_id}/retry")
async def retry_command(request: Request, staff: Staff, command_id: int) -> Response:
    """Queue a dead letter again now (admin only, with a reason)."""
    require_admin(staff)
    form = await form_of(request)

    def act(uow: UnitOfWork, now: datetime) -> object:
        return enforcement.retry_command(
            uow, command_id=command_id, reason=form.get("reason", ""), now=now, actor=staff.actor
        )

    try:
        await work(request, act)
    except IspbillError as exc:
        return await _show(request, staff, refused=str(exc))
    return redirect(request, f"/console/outbox#command-{command_id}")
