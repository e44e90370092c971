"""Bank statements in the console (``/console/bank``): upload a statement, see its lines, and
assign a credit no customer was found for.

The same use cases as ``ispbill payments import|unmatched|assign`` and the API's
``/bank-statements`` routes, with the API's roles: admin and read-only users see the lines
(they are the operator's bank account, not any one reseller's), only an admin imports and
assigns.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ispbill.adapters.bank import FORMAT_CHOICES
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.domain.bank import LineStatus
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.domain.money import Money
from ispbill.entrypoints.pages import app_of, redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import StaffPrincipal, require_admin, require_global
from ispbill.use_cases.catalog.name_lookups import customer_id_of
from ispbill.use_cases.payments.bank_import import ImportReport, assign_line, import_statement
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 100
MAX_FILE_BYTES = 10 * 1024 * 1024  # a year of a small ISP's statements is far below this
STATUSES = [s.value for s in LineStatus]
CSV_HEADER = [
    "id",
    "booked_on",
    "amount",
    "currency",
    "reference",
    "counterparty_name",
    "counterparty_iban",
    "description",
    "status",
    "reason",
    "customer_id",
    "payment_id",
    "file_name",
    "external_id",
]


def _status(text: str) -> str | None:
    """The filter: ``unmatched`` unless asked otherwise; ``all`` shows every line."""
    if text == "all":
        return None
    return text if text in STATUSES else LineStatus.UNMATCHED.value


async def _bank_page(
    request: Request,
    staff: StaffPrincipal,
    *,
    status: str = LineStatus.UNMATCHED,
    after: int = 0,
    error: str | None = None,
    error_line: int | None = None,
    report: ImportReport | None = None,
    http_status: int = 200,
) -> Response:
    chosen = _status(status)
    rows = await work(
        request,
        lambda uow, _now: console_catalog.bank_lines(
            uow.session, status=chosen, after=max(after, 0), limit=PAGE_SIZE + 1
        ),
    )
    context: dict[str, Any] = {
        "lines": rows[:PAGE_SIZE],
        "next_after": rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None,
        "status": chosen or "all",
        "statuses": [*STATUSES, "all"],
        "formats": FORMAT_CHOICES,
        "error": error,
        "error_line": error_line,
        "report": report,
    }
    return staff_page(request, staff, "console/bank.html", context, status=http_status)


@router.get("/bank")
async def bank_lines(
    request: Request,
    staff: Staff,
    status: str = LineStatus.UNMATCHED,
    after: int = 0,
    format: str = "",
) -> Response:
    require_global(staff)
    if format != "csv":
        return await _bank_page(request, staff, status=status, after=after)
    chosen = _status(status)
    rows = await work(
        request,
        lambda uow, _now: console_catalog.bank_lines(
            uow.session, status=chosen, after=0, limit=None
        ),
    )
    return csv_response(
        f"bank-lines-{chosen or 'all'}.csv",
        CSV_HEADER,
        [
            (
                r.id,
                r.booked_on.isoformat(),
                f"{Money(r.amount_minor, r.currency).to_decimal():f}",
                r.currency,
                r.reference,
                r.counterparty_name,
                r.counterparty_iban,
                r.description,
                r.status,
                r.reason,
                r.customer_id,
                r.payment_id,
                r.file_name,
                r.external_id,
            )
            for r in rows
        ],
    )


async def _upload(request: Request) -> tuple[bytes, str]:
    """The uploaded file (the form's CSRF token already checked), refused when missing, empty
    or too large: nothing is read into the database before the whole file parses."""
    upload = (await request.form()).get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise ValidationError("file", "choose a statement file (CSV, camt.053 or MT940)")
    data = await upload.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError("file", f"must be at most {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    return data, upload.filename[:255]


@router.post("/bank")
async def import_bank_statement(request: Request, staff: Staff) -> Response:
    """Import a statement; importing the same file twice creates nothing the second time."""
    require_admin(staff)
    try:
        return await _import(request, staff)
    finally:
        await (await request.form()).close()  # the upload's spooled temporary file


async def _import(request: Request, staff: StaffPrincipal) -> Response:
    form = await form_of(request)
    app = app_of(request)
    try:
        data, name = await _upload(request)
        report = await run_in_threadpool(
            lambda: import_statement(
                app.uow_factory,
                data=data,
                file_name=name,
                now=app.clock.now(),
                actor=staff.actor,
                format=form.get("format", "auto"),
            )
        )
    except IspbillError as exc:
        return await _bank_page(request, staff, error=str(exc), http_status=422)
    return await _bank_page(request, staff, report=report)


@router.post("/bank/lines/{line_id}/assign")
async def assign_bank_line(request: Request, staff: Staff, line_id: int) -> Response:
    """Post an unmatched credit as a payment of the customer the operator chose."""
    require_admin(staff)
    form = await form_of(request)
    if not 0 < line_id <= MAX_ID:
        raise HTTPException(404, "no such bank statement line")
    customer = form.get("customer", "").strip()
    try:
        await work(
            request,
            lambda uow, now: assign_line(
                uow,
                line_id=line_id,
                customer_id=customer_id_of(uow, customer),
                now=now,
                actor=staff.actor,
            ),
        )
    except IspbillError as exc:
        return await _bank_page(request, staff, error=str(exc), error_line=line_id, http_status=422)
    return redirect(request, f"/console/bank?status={LineStatus.UNMATCHED}")
