"""Network access servers in the console (``/console/nas``): the routers that ask ispbill's
RADIUS; their shared secrets are never shown. Operator-wide, as the API's ``GET /nas``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ispbill.domain.errors import IspbillError
from ispbill.domain.radius import Vendor
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import require_admin, require_global
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
