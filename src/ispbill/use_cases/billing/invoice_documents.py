"""Reading issued invoices back: listing them, one with its lines, and its printable view.

An issued invoice is printed as it was stored, never recomputed: the lines' stored amounts are
loaded into the domain's ``InvoiceLine`` (which only checks they are coherent), so a PDF made a
year later shows exactly the figures of the day it was issued. The seller comes from the
operator settings, the language from the customer's locale, and the template from the
customer's own invoice template or else its class's (PortaBilling: the class carries the
"invoice template").
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy import select
from sqlalchemy.orm import object_session

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import Customer, Invoice
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.pdf.render import InvoiceView, Party, build_invoice_view
from ispbill.domain.errors import NotFound
from ispbill.domain.invoicing import (
    DocumentKind,
    InvoiceDraft,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
)
from ispbill.domain.money import Money
from ispbill.domain.taxes import TaxProfile
from ispbill.use_cases.catalog.customer_accounts import choice


def list_invoices(
    uow: UnitOfWork,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[Invoice]:
    """Newest first; ``status`` is one of the invoice statuses (refused by name otherwise)."""
    query = select(Invoice).order_by(Invoice.issue_date.desc(), Invoice.id.desc()).limit(limit)
    if customer_id is not None:
        row = by_id(uow.session, Customer, customer_id, field="customer")
        query = query.where(Invoice.customer_id == row.id)
    if status is not None:
        query = query.where(Invoice.status == choice(InvoiceStatus, status, "status").value)
    return list(uow.session.scalars(query))


def get_invoice(uow: UnitOfWork, number: str) -> Invoice:
    row = uow.session.scalars(select(Invoice).where(Invoice.number == number.strip())).first()
    if row is None:
        raise NotFound("invoice", number, field="number")
    return row


def stored_draft(invoice: Invoice) -> InvoiceDraft:
    """The document as issued: stored lines and amounts, no repricing."""
    currency = invoice.currency
    original = _corrected_number(invoice) if invoice.kind == DocumentKind.CREDIT_NOTE else None
    lines = tuple(
        InvoiceLine(
            description=line.description,
            service_id=line.service_id,
            period_start=line.period_start,
            period_end=line.period_end,
            quantity=Fraction(line.quantity_num, line.quantity_den),
            unit_price=Money(line.unit_price_minor, currency),
            tax_profile=TaxProfile(
                rate_text(line.tax_rate_bp), line.tax_rate_bp, line.tax_inclusive
            ),
            net=Money(line.net_minor, currency),
            tax=Money(line.tax_minor, currency),
            kind=LineKind(line.kind),
        )
        for line in invoice.lines
    )
    return InvoiceDraft(
        kind=DocumentKind(invoice.kind),
        customer_id=invoice.customer_id,
        currency=currency,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        lines=lines,
        original_number=original,
        # a credit note of a prepaid wallet's uninvoiced charges corrects no invoice
        uninvoiced=invoice.kind == DocumentKind.CREDIT_NOTE and invoice.corrects_id is None,
    )


def _corrected_number(invoice: Invoice) -> str | None:
    session = object_session(invoice)
    if session is None or invoice.corrects_id is None:
        return None
    corrected = session.get(Invoice, invoice.corrects_id)
    return corrected.number if corrected is not None else None


def rate_text(rate_bp: int) -> str:
    whole, frac = divmod(rate_bp, 100)
    return f"{whole}.{frac:02d}%" if frac else f"{whole}%"


@dataclass(frozen=True)
class Printable:
    view: InvoiceView
    template: str


def printable(uow: UnitOfWork, number: str) -> Printable:
    """The view and template name for ``adapters.pdf.render`` of a stored invoice."""
    invoice = get_invoice(uow, number)
    customer = invoice.customer
    operator = settings_store.load(uow)
    seller = Party(
        operator.seller_name,
        tuple(part.strip() for part in operator.seller_address.split(";") if part.strip()),
    )
    buyer = Party(
        customer.name,
        (),
        tuple((key, str(value)) for key, value in sorted(customer.custom_data.items())),
    )
    view = build_invoice_view(
        stored_draft(invoice),
        number=invoice.number,
        seller=seller,
        customer=buyer,
        locale=customer.locale,
        paid=Money(invoice.paid_minor, invoice.currency),
        voided=invoice.status == InvoiceStatus.VOID.value,
    )
    template = customer.invoice_template or customer.customer_class.invoice_template
    return Printable(view=view, template=template)
