"""Tax profiles in the console (``/console/taxes``): the list, its CSV, and a new profile
(admin only)."""

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
from ispbill.entrypoints.web.session import require_admin
from ispbill.use_cases.catalog import catalog_edits as edits
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


def tax_form(tax: Any) -> EditPage:
    return EditPage(
        title=f"Edit tax profile {tax.name}",
        action=f"/console/taxes/{tax.id}/edit",
        back="/console/taxes",
        fields=[
            FormField("name", "Name", tax.name),
            FormField("rate", "Rate, percent", f"{tax.rate_bp // 100}.{tax.rate_bp % 100:02d}"),
            FormField("inclusive", "Prices include tax", "on" if tax.inclusive else "", "checkbox"),
        ],
        notes=("A new rate applies to charges made from now on; issued documents keep theirs.",),
    )


def _tax_page(tax_profile_id: int) -> Any:
    def load(uow: UnitOfWork, _now: datetime) -> EditPage:
        tax = console_catalog.tax_profile(uow.session, tax_profile_id)
        if tax is None:
            raise HTTPException(404, "no such tax profile")
        return tax_form(tax)

    return load


@router.get("/taxes/{tax_profile_id}/edit")
async def edit_tax_form(request: Request, staff: Staff, tax_profile_id: int) -> Response:
    require_admin(staff)
    return edit_page(request, staff, await work(request, _tax_page(tax_profile_id)))


@router.post("/taxes/{tax_profile_id}/edit")
async def update_tax(request: Request, staff: Staff, tax_profile_id: int) -> Response:
    require_admin(staff)
    load = _tax_page(tax_profile_id)
    await work(request, load)
    return await submit(
        request,
        staff,
        load=load,
        save=lambda uow, now, form: edits.update_tax_profile(
            uow,
            tax_profile_id=tax_profile_id,
            name=form.get("name"),
            rate=form.get("rate"),
            inclusive="inclusive" in form,
            now=now,
            actor=staff.actor,
        ),
        done="/console/taxes",
    )
