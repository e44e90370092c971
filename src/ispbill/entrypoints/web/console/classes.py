"""Customer classes in the console (``/console/classes``): the list, its CSV, and a new class
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
    joined,
    lines,
    submit,
    whole_number,
)
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import require_admin
from ispbill.use_cases.catalog import catalog_edits as edits
from ispbill.use_cases.catalog.name_lookups import tax_profile_id_of
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


def class_form(klass: Any, taxes: list[Any]) -> EditPage:
    fields = [
        f["name"]
        + (":required" if f.get("required", True) else ":optional")
        + (f":{f['pattern']}" if f.get("pattern") else "")
        for f in klass.custom_fields
    ]
    return EditPage(
        title=f"Edit class {klass.name}",
        action=f"/console/classes/{klass.id}/edit",
        back="/console/classes",
        fields=[
            FormField("name", "Name", klass.name),
            FormField("grace_days", "Grace days", str(klass.grace_days)),
            FormField("invoice_template", "Invoice template", klass.invoice_template),
            FormField(
                "tax_profile",
                "Tax profile",
                str(klass.tax_profile_id or ""),
                "select",
                [("", "—"), *[(str(t.id), t.name) for t in taxes]],
            ),
            FormField(
                "notification_emails",
                "Notification e-mails, one per line",
                joined(klass.notification_emails),
                "textarea",
            ),
            FormField(
                "custom_fields",
                "Custom fields, one per line (NAME[:required|optional][:REGEX])",
                joined(fields),
                "textarea",
            ),
        ],
        notes=("Changes apply at once to the class's customers without their own value.",),
    )


def _class_page(class_id: int) -> Any:
    def load(uow: UnitOfWork, _now: datetime) -> EditPage:
        klass = console_catalog.customer_class(uow.session, class_id)
        if klass is None:
            raise HTTPException(404, "no such class")
        return class_form(klass, console_catalog.tax_profiles(uow.session))

    return load


@router.get("/classes/{class_id}/edit")
async def edit_class_form(request: Request, staff: Staff, class_id: int) -> Response:
    require_admin(staff)
    return edit_page(request, staff, await work(request, _class_page(class_id)))


@router.post("/classes/{class_id}/edit")
async def update_class(request: Request, staff: Staff, class_id: int) -> Response:
    require_admin(staff)
    load = _class_page(class_id)
    await work(request, load)

    def save(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        tax = form.get("tax_profile", "")
        changes = edits.ClassChanges(
            name=form.get("name"),
            grace_days=whole_number(form.get("grace_days"), "grace_days"),
            invoice_template=form.get("invoice_template"),
            tax_profile_id=tax_profile_id_of(uow, tax) if tax.strip() else 0,
            notification_emails=lines(form.get("notification_emails")),
            custom_fields=lines(form.get("custom_fields")),
        )
        return edits.update_class(
            uow, class_id=class_id, changes=changes, now=now, actor=staff.actor
        )

    return await submit(request, staff, load=load, save=save, done="/console/classes")
