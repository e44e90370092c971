"""Customer classes in the console (``/console/classes``): the list, its CSV, and a new class
(admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import require_admin
from ispbill.use_cases.catalog.offerings import NewClass, add_class
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/classes")
async def classes(request: Request, staff: Staff, format: str = "") -> Response:
    rows = await work(request, lambda uow, _now: console_catalog.classes(uow.session))
    if format == "csv":
        return csv_response(
            "classes.csv",
            ["id", "name", "grace_days", "invoice_template", "custom_fields"],
            [
                (
                    c.id,
                    c.name,
                    c.grace_days,
                    c.invoice_template,
                    [f.get("name") for f in c.custom_fields],
                )
                for c in rows
            ],
        )
    return staff_page(
        request, staff, "console/classes.html", {"classes": rows, "error": None, "form": {}}
    )


@router.post("/classes")
async def create_class(request: Request, staff: Staff) -> Response:
    require_admin(staff)
    form = await form_of(request)
    fields = [f.strip() for f in form.get("custom_fields", "").split(",") if f.strip()]
    try:
        grace = int(form.get("grace_days") or 0)
    except ValueError:
        grace = -1
    spec = NewClass(name=form.get("name", ""), grace_days=grace, custom_fields=fields)
    try:
        await work(request, lambda uow, now: add_class(uow, spec=spec, now=now, actor=staff.actor))
    except IspbillError as exc:
        rows = await work(request, lambda uow, _now: console_catalog.classes(uow.session))
        return staff_page(
            request,
            staff,
            "console/classes.html",
            {"classes": rows, "error": str(exc), "form": form},
            status=422,
        )
    return redirect(request, "/console/classes")
