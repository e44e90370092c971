"""``/api/v1/invoices`` and ``/api/v1/credit-notes``: issued documents, their lines and PDFs.

Documents are immutable once issued; the API only reads them. A reseller token reaches its
customers' documents, a customer session its own; anyone else's is a 404.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.pdf.render import render_pdf
from ispbill.domain.invoicing import DocumentKind, InvoiceStatus
from ispbill.entrypoints.api.auth import Caller, Principal, not_found, require_customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.pagination import Page, PageRequest, Paging, page_of
from ispbill.entrypoints.api.schemas import Amount, Day, InvoiceLineOut, InvoiceOut
from ispbill.use_cases.billing.invoice_documents import printable
from ispbill.use_cases.queries import invoice_lists
from ispbill.use_cases.queries.invoice_lists import DocumentView
from ispbill.use_cases.queries.operator_lists import DocumentFilter

router = APIRouter(prefix="/api/v1", tags=["invoices"])
InvoiceId = Annotated[int, Path(ge=1, le=MAX_ID)]
PDF = "application/pdf"


def invoice_out(row: DocumentView) -> InvoiceOut:
    return InvoiceOut(
        id=row.id,
        number=row.number,
        kind=row.kind,
        customer_id=row.customer_id,
        issue_date=row.issue_date,
        due_date=row.due_date,
        status=row.status,
        net=Amount.of(row.net),
        tax=Amount.of(row.tax),
        gross=Amount.of(row.gross),
        paid=Amount.of(row.paid),
        corrects_id=row.corrects_id,
        issued_at=row.issued_at,
        lines=[
            InvoiceLineOut(
                position=line.position,
                description=line.description,
                service_id=line.service_id,
                period_start=line.period_start,
                period_end=line.period_end,
                quantity=(
                    str(line.quantity_num)
                    if line.quantity_den == 1
                    else f"{line.quantity_num}/{line.quantity_den}"
                ),
                unit_price=Amount.of(line.unit_price),
                net=Amount.of(line.net),
                tax=Amount.of(line.tax),
                gross=Amount.of(line.gross),
                tax_rate_bp=line.tax_rate_bp,
                tax_inclusive=line.tax_inclusive,
            )
            for line in row.lines
        ]
        if row.lines is not None
        else None,
    )


def _documents(
    request: Request,
    caller: Principal,
    paging: PageRequest,
    kinds: tuple[str, ...],
    customer_id: int | None,
    status: InvoiceStatus | None,
    issued_from: date | None,
    issued_to: date | None,
) -> Page[InvoiceOut]:
    app = container(request)
    wanted = DocumentFilter(
        kinds, customer_id, status.value if status is not None else None, issued_from, issued_to
    )
    with app.uow() as uow:
        if customer_id is not None:
            require_customer(uow, caller, customer_id)
        found = invoice_lists.list_documents(
            uow, caller.reader, wanted, after=paging.after(newest_first=True), limit=paging.limit
        )
        return page_of(found, invoice_out, newest_first=True)


CustomerFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/invoices", response_model=Page[InvoiceOut], tags=["invoices"])
async def list_invoices(
    request: Request,
    caller: Caller,
    paging: Paging,
    customer_id: CustomerFilter = None,
    status: Annotated[InvoiceStatus | None, Query()] = None,
    issued_from: Annotated[Day | None, Query()] = None,
    issued_to: Annotated[Day | None, Query()] = None,
) -> Page[InvoiceOut]:
    """Invoices and statements, newest first; filter by customer, status and issue date."""
    kinds = (DocumentKind.INVOICE.value, DocumentKind.STATEMENT.value)
    return await call(
        lambda: _documents(
            request, caller, paging, kinds, customer_id, status, issued_from, issued_to
        )
    )


@router.get("/credit-notes", response_model=Page[InvoiceOut], tags=["invoices"])
async def list_credit_notes(
    request: Request,
    caller: Caller,
    paging: Paging,
    customer_id: CustomerFilter = None,
    issued_from: Annotated[Day | None, Query()] = None,
    issued_to: Annotated[Day | None, Query()] = None,
) -> Page[InvoiceOut]:
    """Credit notes, newest first (``corrects_id`` names the invoice each corrects)."""
    kinds = (DocumentKind.CREDIT_NOTE.value,)
    return await call(
        lambda: _documents(
            request, caller, paging, kinds, customer_id, None, issued_from, issued_to
        )
    )


def _visible(request: Request, caller: Principal, invoice_id: int) -> tuple[InvoiceOut, str]:
    app = container(request)
    with app.uow() as uow:
        row = invoice_lists.find_document(uow, caller.reader, invoice_id)
    if row is None:
        raise not_found("invoice", invoice_id)
    return invoice_out(row), row.number


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut)
async def get_invoice(invoice_id: InvoiceId, request: Request, caller: Caller) -> InvoiceOut:
    """One document (invoice, statement or credit note) with its lines."""
    shown, _number = await call(lambda: _visible(request, caller, invoice_id))
    return shown


@router.get(
    "/invoices/{invoice_id}/pdf",
    response_class=Response,
    responses={200: {"content": {PDF: {"schema": {"type": "string", "format": "binary"}}}}},
)
async def invoice_pdf(invoice_id: InvoiceId, request: Request, caller: Caller) -> Response:
    """The document as a PDF, rendered from its stored lines (never repriced)."""
    app = container(request)

    def work() -> bytes:
        _shown, number = _visible(request, caller, invoice_id)
        with app.uow() as uow:
            document = printable(uow, number)
        return render_pdf(document.view, document.template)

    pdf = await call(work)
    return Response(
        pdf,
        media_type=PDF,
        headers={"Content-Disposition": f'inline; filename="invoice-{invoice_id}.pdf"'},
    )
