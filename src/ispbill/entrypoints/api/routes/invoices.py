"""``/api/v1/invoices`` and ``/api/v1/credit-notes``: issued documents, their lines and PDFs.

Documents are immutable once issued; the API only reads them. A reseller token reaches its
customers' documents, a customer session its own; anyone else's is a 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.models import Customer, Invoice
from ispbill.adapters.pdf.render import render_pdf
from ispbill.domain.invoicing import DocumentKind, InvoiceStatus
from ispbill.domain.money import Money
from ispbill.entrypoints.api.auth import Caller, Principal, not_found
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.pagination import Page, PageRequest, Paging, paginate
from ispbill.entrypoints.api.schemas import Amount, Day, InvoiceLineOut, InvoiceOut
from ispbill.use_cases.billing.invoice_documents import printable

router = APIRouter(prefix="/api/v1", tags=["invoices"])
InvoiceId = Annotated[int, Path(ge=1, le=MAX_ID)]
PDF = "application/pdf"


def invoice_out(row: Invoice, *, lines: bool = False) -> InvoiceOut:
    def money(minor: int) -> Amount:
        return Amount.of(Money(minor, row.currency))

    return InvoiceOut(
        id=row.id,
        number=row.number,
        kind=row.kind,
        customer_id=row.customer_id,
        issue_date=row.issue_date,
        due_date=row.due_date,
        status=row.status,
        net=money(row.net_minor),
        tax=money(row.tax_minor),
        gross=money(row.gross_minor),
        paid=money(row.paid_minor),
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
                unit_price=money(line.unit_price_minor),
                net=money(line.net_minor),
                tax=money(line.tax_minor),
                gross=money(line.gross_minor),
                tax_rate_bp=line.tax_rate_bp,
                tax_inclusive=line.tax_inclusive,
            )
            for line in row.lines
        ]
        if lines
        else None,
    )


def _page(rows: Sequence[Invoice]) -> list[InvoiceOut]:
    return [invoice_out(r) for r in rows]


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
    with app.uow() as uow:
        query = caller.scope(select(Invoice).where(Invoice.kind.in_(kinds)), Invoice.customer_id)
        if customer_id is not None:
            caller.customer(uow.session, customer_id)
            query = query.where(Invoice.customer_id == customer_id)
        if status is not None:
            query = query.where(Invoice.status == status.value)
        if issued_from is not None:
            query = query.where(Invoice.issue_date >= issued_from)
        if issued_to is not None:
            query = query.where(Invoice.issue_date <= issued_to)
        return paginate(uow.session, query, Invoice.id, paging, _page, newest_first=True)


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
        row = uow.session.get(Invoice, invoice_id)
        customer = uow.session.get(Customer, row.customer_id) if row else None
        if row is None or customer is None or not caller.may_see(customer):
            raise not_found("invoice", invoice_id)
        return invoice_out(row, lines=True), row.number


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
