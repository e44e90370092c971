"""Plans in the console (``/console/plans``): the list, its CSV, and a new plan (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import require_admin
from ispbill.use_cases.catalog.offerings import NewPlan, add_plan
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/plans")
async def plans(request: Request, staff: Staff, format: str = "") -> Response:
    rows = await work(request, lambda uow, _now: console_catalog.plans(uow.session))
    if format == "csv":
        return csv_response(
            "plans.csv",
            [
                "id",
                "name",
                "price_minor",
                "currency",
                "cycle",
                "download_kbps",
                "upload_kbps",
                "active",
            ],
            [
                (
                    p.id,
                    p.name,
                    p.price_minor,
                    p.currency,
                    p.cycle_kind,
                    p.download_kbps,
                    p.upload_kbps,
                    p.active,
                )
                for p in rows
            ],
        )
    return staff_page(
        request, staff, "console/plans.html", {"plans": rows, "error": None, "form": {}}
    )


@router.post("/plans")
async def create_plan(request: Request, staff: Staff) -> Response:
    require_admin(staff)
    form = await form_of(request)
    spec = NewPlan(
        name=form.get("name", ""),
        price=form.get("price", ""),
        currency=form.get("currency", ""),
        download=form.get("download", ""),
        upload=form.get("upload", ""),
        cycle=form.get("cycle") or "customer",
    )
    try:
        await work(request, lambda uow, now: add_plan(uow, spec=spec, now=now, actor=staff.actor))
    except IspbillError as exc:
        rows = await work(request, lambda uow, _now: console_catalog.plans(uow.session))
        return staff_page(
            request,
            staff,
            "console/plans.html",
            {"plans": rows, "error": str(exc), "form": form},
            status=422,
        )
    return redirect(request, "/console/plans")
