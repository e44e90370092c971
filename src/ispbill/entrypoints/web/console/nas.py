"""Network access servers in the console (``/console/nas``): the routers that ask ispbill's
RADIUS; their shared secrets are never shown. Operator-wide, as the API's ``GET /nas``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError
from ispbill.domain.radius import Vendor
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.console.editing import (
    EditPage,
    FormField,
    edit_page,
    submit,
    whole_number,
)
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import require_admin, require_global
from ispbill.use_cases.network import nas_edits
from ispbill.use_cases.network.identities import NewNas, add_nas, list_nas

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/nas")
async def nas_list(request: Request, staff: Staff, format: str = "") -> Response:
    """The routers that ask ispbill's RADIUS; their shared secrets are never shown.
    Operator-wide, as the API's ``GET /nas``: never a reseller's user."""
    require_global(staff)
    rows = await work(request, lambda uow, _now: list_nas(uow))
    if format == "csv":
        return csv_response(
            "nas.csv",
            ["id", "name", "address", "vendor", "coa_port", "require_message_authenticator"],
            [
                (n.id, n.name, n.address, n.vendor, n.coa_port, n.require_message_authenticator)
                for n in rows
            ],
        )
    return staff_page(request, staff, "console/nas.html", {"nas": rows, "error": None, "form": {}})


@router.post("/nas")
async def nas_create(request: Request, staff: Staff) -> Response:
    require_admin(staff)
    form = await form_of(request)
    port = form.get("coa_port", "3799").strip()
    spec = NewNas(
        name=form.get("name", ""),
        address=form.get("address", ""),
        secret=form.get("secret", ""),
        coa_port=int(port) if port.isdigit() else -1,
        vendor=form.get("vendor", Vendor.MIKROTIK),
        require_message_authenticator=form.get("require_message_authenticator") == "1",
    )
    try:
        await work(request, lambda uow, now: add_nas(uow, spec=spec, now=now, actor=staff.actor))
    except IspbillError as exc:
        rows = await work(request, lambda uow, _now: list_nas(uow))
        shown = {k: v for k, v in form.items() if k != "secret"}
        context = {"nas": rows, "error": str(exc), "form": shown}
        return staff_page(request, staff, "console/nas.html", context, status=422)
    return redirect(request, "/console/nas")


def nas_form(row: Any) -> EditPage:
    return EditPage(
        title=f"Edit NAS {row.name}",
        action=f"/console/nas/{row.id}/edit",
        back="/console/nas",
        fields=[
            FormField("name", "Name", row.name),
            FormField("address", "Address", row.address),
            FormField("secret", "New shared secret (empty: keep it)", ""),
            FormField("coa_port", "CoA port", str(row.coa_port)),
            FormField(
                "vendor", "Vendor", row.vendor, "select", [(v.value, v.value) for v in Vendor]
            ),
            FormField(
                "require_message_authenticator",
                "Require Message-Authenticator",
                "on" if row.require_message_authenticator else "",
                "checkbox",
            ),
        ],
        notes=("Regenerate the FreeRADIUS configuration afterwards (ispbill radius config).",),
    )


def _nas_page(nas_id: int) -> Any:
    def load(uow: UnitOfWork, _now: datetime) -> EditPage:
        found = [n for n in list_nas(uow) if n.id == nas_id]
        if not found:
            raise HTTPException(404, "no such NAS")
        return nas_form(found[0])

    return load


@router.get("/nas/{nas_id}/edit")
async def edit_nas_form(request: Request, staff: Staff, nas_id: int) -> Response:
    require_admin(staff)
    return edit_page(request, staff, await work(request, _nas_page(nas_id)))


@router.post("/nas/{nas_id}/edit")
async def update_nas(request: Request, staff: Staff, nas_id: int) -> Response:
    require_admin(staff)
    load = _nas_page(nas_id)
    await work(request, load)

    def save(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        changes = nas_edits.NasChanges(
            name=form.get("name"),
            address=form.get("address"),
            secret=form.get("secret") or None,
            coa_port=whole_number(form.get("coa_port"), "coa_port"),
            vendor=form.get("vendor"),
            require_message_authenticator="require_message_authenticator" in form,
        )
        return nas_edits.update_nas(uow, nas_id=nas_id, changes=changes, now=now, actor=staff.actor)

    return await submit(request, staff, load=load, save=save, done="/console/nas")
