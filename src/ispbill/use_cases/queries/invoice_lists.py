"""Read models of issued documents for the API: invoices, statements and credit notes (the
console's filters, ``operator_lists.documents_query``), and one document with its lines.

A reader sees the documents of its own customers; another's is ``None`` ("not found").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ispbill.adapters.db.keyset import Slice, keyset_slice, mapped
from ispbill.adapters.db.models import Invoice, InvoiceLineRow
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.money import Money
from ispbill.use_cases.queries.customer_lists import visible_row
from ispbill.use_cases.queries.dashboard import Scope
from ispbill.use_cases.queries.operator_lists import DocumentFilter, documents_query


@dataclass(frozen=True)
class DocumentLineView:
    position: int
    description: str
    service_id: int | None
    period_start: date | None
    period_end: date | None
    quantity_num: int
    quantity_den: int
    unit_price: Money
    net: Money
    tax: Money
    gross: Money
    tax_rate_bp: int
    tax_inclusive: bool


@dataclass(frozen=True)
class DocumentView:
    id: int
    number: str
    kind: str
    customer_id: int
    issue_date: date
    due_date: date
    status: str
    net: Money
    tax: Money
    gross: Money
    paid: Money
    corrects_id: int | None
    issued_at: datetime
    lines: list[DocumentLineView] | None  # None in lists; a single document has its lines


def _line_view(line: InvoiceLineRow, currency: str) -> DocumentLineView:
    return DocumentLineView(
        position=line.position,
        description=line.description,
        service_id=line.service_id,
        period_start=line.period_start,
        period_end=line.period_end,
        quantity_num=line.quantity_num,
        quantity_den=line.quantity_den,
        unit_price=Money(line.unit_price_minor, currency),
        net=Money(line.net_minor, currency),
        tax=Money(line.tax_minor, currency),
        gross=Money(line.gross_minor, currency),
        tax_rate_bp=line.tax_rate_bp,
        tax_inclusive=line.tax_inclusive,
    )


def document_view(row: Invoice, *, lines: bool = False) -> DocumentView:
    def money(minor: int) -> Money:
        return Money(minor, row.currency)

    return DocumentView(
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
        lines=[_line_view(line, row.currency) for line in row.lines] if lines else None,
    )


def list_documents(
    uow: UnitOfWork, scope: Scope, wanted: DocumentFilter, *, after: int | None, limit: int
) -> Slice[DocumentView]:
    """Documents of the reader's customers, newest first, without their lines."""
    query = documents_query(scope, wanted)
    found = keyset_slice(
        uow.session, query, Invoice.id, after=after, limit=limit, newest_first=True
    )
    return mapped(found, lambda rows: [document_view(r) for r in rows])


def find_document(uow: UnitOfWork, scope: Scope, document_id: int) -> DocumentView | None:
    """One document of the reader's customers with its lines, or None."""
    row = uow.session.get(Invoice, document_id)
    if row is None or visible_row(uow.session, scope, row.customer_id) is None:
        return None
    return document_view(row, lines=True)
