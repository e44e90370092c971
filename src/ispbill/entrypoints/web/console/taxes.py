"""Tax profiles in the console (``/console/taxes``): the list, its CSV, and a new profile
(admin only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import require_admin
from ispbill.use_cases.catalog.offerings import add_tax_profile
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/taxes")
async def tax_profiles(request: Request, staff: Staff, format: str = "") -> Response:
    rows = await work(request, lambda uow, _now: console_catalog.tax_profiles(uow.session))
    if format == "csv":
        return csv_response(
            "tax_profiles.csv",
            ["id", "name", "rate_bp", "inclusive"],
            [(t.id, t.name, t.rate_bp, t.inclusive) for t in rows],
        )
    context: dict[str, Any] = {"taxes": rows, "error": None, "form": {}}
    return staff_page(request, staff, "console/taxes.html", context)


@router.post("/taxes")
async def create_tax_profile(request: Request, staff: Staff) -> Response:
    require_admin(staff)
    form = await form_of(request)

    def create(uow: UnitOfWork, now: datetime) -> object:
        return add_tax_profile(
            uow,
            name=form.get("name", ""),
            rate=form.get("rate", ""),
            inclusive=form.get("inclusive") == "1",
            now=now,
            actor=staff.actor,
        )

    try:
        await work(request, create)
    except IspbillError as exc:
        rows = await work(request, lambda uow, _now: console_catalog.tax_profiles(uow.session))
        context = {"taxes": rows, "error": str(exc), "form": form}
        return staff_page(request, staff, "console/taxes.html", context, status=422)
    return redirect(request, "/console/taxes")
