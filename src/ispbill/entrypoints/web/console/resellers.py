"""Resellers in the console (``/console/resellers``): the list (a reseller's user sees only its
own reseller, never the others' names), its CSV, and a new reseller (admin only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.console.editing import (
    EditPage,
    FormField,
    edit_page,
    submit,
)
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import StaffPrincipal, require_admin
from ispbill.use_cases.catalog import catalog_edits as edits
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


def _reseller_page(reseller_id: int) -> Any:
    def load(uow: UnitOfWork, _now: datetime) -> EditPage:
        found = console_catalog.resellers(uow.session, only=reseller_id)
        if not found:
            raise HTTPException(404, "no such reseller")
        return EditPage(
            title=f"Edit reseller {found[0].name}",
            action=f"/console/resellers/{reseller_id}/edit",
            back="/console/resellers",
            fields=[FormField("name", "Name", found[0].name)],
        )

    return load


@router.get("/resellers/{reseller_id}/edit")
async def edit_reseller_form(request: Request, staff: Staff, reseller_id: int) -> Response:
    require_admin(staff)
    return edit_page(request, staff, await work(request, _reseller_page(reseller_id)))


@router.post("/resellers/{reseller_id}/edit")
async def update_reseller(request: Request, staff: Staff, reseller_id: int) -> Response:
    require_admin(staff)
    load = _reseller_page(reseller_id)
    await work(request, load)
    return await submit(
        request,
        staff,
        load=load,
        save=lambda uow, now, form: edits.update_reseller(
            uow, reseller_id=reseller_id, name=form.get("name", ""), now=now, actor=staff.actor
        ),
        done="/console/resellers",
    )
