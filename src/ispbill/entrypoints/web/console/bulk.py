"""Bulk actions on the filtered customer list (``/console/customers/bulk``, issue 17).

The list's filters (``q``, ``status``) select the customers, within the user's scope. A GET
with an ``action`` shows the preview as a confirmation (``web/common.Confirmation``): every
service that changes and how, and the customers with nothing to change; its one button posts
the same filters and fields with the token. The POST selects and previews again and acts only
when the token matches that fresh preview, so a customer who entered or left the filter since,
or a service whose state moved, is shown again rather than changed unseen. The result page
lists each customer: done, or refused with the reason (one customer's refusal stops nobody
else). ``action=export`` is the selection's CSV, one row per service, with nothing to confirm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.pages import app_of
from ispbill.entrypoints.web.common import (
    CONFIRM_FIELD,
    Confirmation,
    Staff,
    confirmation_page,
    form_of,
    is_confirmed,
    scope_of,
    staff_page,
    work,
)
from ispbill.entrypoints.web.console.customers import LIST_FILTERS
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import StaffPrincipal, require_write
from ispbill.use_cases.collections import bulk_actions as bulk
from ispbill.use_cases.collections.suspensions import profile_names
from ispbill.use_cases.queries import console_catalog
from ispbill.use_cases.queries import dashboard as console_views

router = APIRouter(prefix="/console", include_in_schema=False)

FIELDS = (
    "q",
    "status",
    "action",
    "reason",
    "suspend_invoicing",
    "note",
    "plan",
    "amount",
    "description",
)
VERBS = {
    bulk.BulkKind.SUSPEND: "suspend",
    bulk.BulkKind.LIFT: "lift the suspension of",
    bulk.BulkKind.CHANGE_PLAN: "move to another plan",
    bulk.BulkKind.CHARGE: "charge once",
}


def _selection(uow: UnitOfWork, staff: StaffPrincipal, values: Mapping[str, str]) -> list[int]:
    """The ids of the customers the list shows with these filters, in the user's scope."""
    status = values.get("status", "")
    rows = console_views.iter_customers(
        uow.session,
        scope=scope_of(staff),
        search=values.get("q", "")[:200],
        status=status if status in LIST_FILTERS else None,
    )
    return [row.id for row in rows]


def _request(values: Mapping[str, str]) -> bulk.BulkRequest:
    kind = bulk.parse_kind(values.get("action", ""))
    plan = values.get("plan", "").strip()
    return bulk.BulkRequest(
        kind=kind,
        reason=values.get("reason", "").strip(),
        suspend_invoicing=values.get("suspend_invoicing") == "1",
        note=values.get("note", ""),
        plan_id=int(plan) if plan.isascii() and plan.isdigit() and len(plan) < 10 else None,
        amount=values.get("amount", "").strip(),
        description=values.get("description", "").strip(),
    )


def _preview(
    uow: UnitOfWork, staff: StaffPrincipal, values: Mapping[str, str]
) -> tuple[bulk.BulkRequest, list[bulk.BulkLine], Confirmation]:
    request = _request(values)
    ids = _selection(uow, staff, values)
    lines = bulk.preview(uow, customer_ids=ids, request=request)
    changing = [line for line in lines if line.acts]
    customers = len({line.customer_id for line in changing})
    what = VERBS[request.kind]
    if request.kind is bulk.BulkKind.SUSPEND:
        names = profile_names(uow)
        what += f" (reason {names.get(request.reason, request.reason)!r})"
    if request.kind is bulk.BulkKind.CHANGE_PLAN and request.plan_id is not None:
        plan = next(p for p in console_catalog.plans(uow.session) if p.id == request.plan_id)
        what += f" {plan.name!r}"
    target = f"{len(changing)} service(s) of {customers} customer(s)"
    if request.kind is bulk.BulkKind.CHARGE:
        what, target = (
            f"add a one-off charge of {request.amount} ({request.description!r}) to",
            (f"{customers} customer(s)"),
        )
    consequence = (
        f"This will {what} {target}, each "
        f"customer on its own (a refusal stops no one else); {len(ids) - customers} of the "
        f"{len(ids)} customer(s) selected have nothing to change."
    )
    fields = {k: values.get(k, "") for k in FIELDS}
    confirmation = Confirmation(
        title=f"Bulk action: {request.kind.value.replace('_', ' ')}",
        consequence=consequence,
        action="/console/customers/bulk",
        back="/console/customers?"
        + urlencode({"q": values.get("q", ""), "status": values.get("status", "")}),
        button=f"Confirm for {customers} customer(s)",
        fields=fields,
        details=[f"{line.customer_name} (#{line.customer_id}): {line.change}" for line in lines],
    )
    return request, lines, confirmation


async def _refused(request: Request, staff: StaffPrincipal, exc: IspbillError) -> Response:
    return staff_page(
        request,
        staff,
        "console/bulk_result.html",
        {"results": [], "error": str(exc), "back": "/console/customers"},
        status=422,
    )


@router.get("/customers/bulk")
async def bulk_preview(request: Request, staff: Staff) -> Response:
    values = dict(request.query_params)
    if values.get("action") == "export":
        rows = await work(
            request,
            lambda uow, _now: bulk.export_rows(uow, customer_ids=_selection(uow, staff, values)),
        )
        header = ["customer_id", "name", "status", "balance_control", "service_id", "plan"]
        header += ["state", "state_reason", "billed_until"]
        return csv_response("customers-services.csv", header, rows)
    if not values.get("action"):  # opened by hand: the actions start from the list
        context: dict[str, Any] = {"results": [], "error": None, "back": "/console/customers"}
        return staff_page(request, staff, "console/bulk_result.html", context)
    require_write(staff)
    try:
        _, _, confirmation = await work(request, lambda uow, _now: _preview(uow, staff, values))
    except IspbillError as exc:
        return await _refused(request, staff, exc)
    return confirmation_page(request, staff, confirmation, {})


@router.post("/customers/bulk")
async def bulk_apply(request: Request, staff: Staff) -> Response:
    require_write(staff)
    form = await form_of(request)
    try:
        wanted, lines, confirmation = await work(
            request, lambda uow, _now: _preview(uow, staff, form)
        )
    except IspbillError as exc:
        return await _refused(request, staff, exc)
    if not is_confirmed(request, form, confirmation):
        return confirmation_page(request, staff, confirmation, form)
    app = app_of(request)
    # the confirmation keys the one-off charges: the same confirmed form twice charges once
    wanted = replace(wanted, key=f"bulk-{form[CONFIRM_FIELD][:40]}")

    def run() -> list[bulk.BulkResult]:
        now: datetime = app.clock.now()
        return bulk.apply(app.uow, lines=lines, request=wanted, now=now, actor=staff.actor)

    results = await run_in_threadpool(run)
    context: dict[str, Any] = {"results": results, "error": None, "back": confirmation.back}
    return staff_page(request, staff, "console/bulk_result.html", context)
