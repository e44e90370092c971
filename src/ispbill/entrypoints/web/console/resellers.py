"""Resellers in the console (``/console/resellers``): the list (a reseller's user sees only its
own reseller, never the others' names), its CSV, and a new reseller (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import StaffPrincipal, require_admin
from ispbill.use_cases.catalog.offerings import add_reseller
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)


def _reseller_rows(uow: UnitOfWork, staff: StaffPrincipal) -> list[Any]:
    """A reseller's user sees only its own reseller, never the others' names."""
    only = staff.reseller_id if staff.role == "reseller" else None
    if staff.role == "reseller" and only is None:
        return []
    return console_catalog.resellers(uow.session, only=only)


@router.get("/resellers")
async def resellers(request: Request, staff: Staff, format: str = "") -> Response:
    rows = await work(request, lambda uow, _now: _reseller_rows(uow, staff))
    if format == "csv":
        return csv_response(
            "resellers.csv",
            ["id", "name", "created_at"],
            [(r.id, r.name, r.created_at.isoformat()) for r in rows],
        )
    context: dict[str, Any] = {"resellers": rows, "error": None, "form": {}}
    return staff_page(request, staff, "console/resellers.html", context)


@router.post("/resellers")
async def create_reseller(request: Request, staff: Staff) -> Response:
    require_admin(staff)
    form = await form_of(request)
    name = form.get("name", "")
    try:
        await work(
            request, lambda uow, now: add_reseller(uow, name=name, now=now, actor=staff.actor)
        )
    except IspbillError as exc:
        rows = await work(request, lambda uow, _now: _reseller_rows(uow, staff))
        context = {"resellers": rows, "error": str(exc), "form": form}
        return staff_page(request, staff, "console/resellers.html", context, status=422)
    return redirect(request, "/console/resellers")
