"""Invoices: gapless numbering, issuing from charges, and applying credit.

An invoice is immutable once issued: its lines and totals never change, only how much of it is
paid (allocations) and so its status. Corrections are credit notes. Numbers come from a counter
row per series bucket incremented in the same transaction as the invoice, so a rolled-back
invoice gives its number back and the sequence has no gaps.

UISP seed: "The one month invoice will be marked as paid and the rest of the payment will be
saved as the client's credit. When a new invoice is created the next month, it will
automatically use the client's credit."
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import uuid4

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.models import (
    Allocation,
    Charge,
    Customer,
    Invoice,
    InvoiceCounter,
    InvoiceLineRow,
)
from ispbill.adapters.db.settings_store import OperatorSettings
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import ChargeKind
from ispbill.domain.invoicing import (
    DocumentKind,
    InvoiceStatus,
    LineKind,
    NumberSeries,
    due_date,
    format_number,
    series_key,
    status_for,
)
from ispbill.domain.money import Money

OPEN = (InvoiceStatus.ISSUED.value, InvoiceStatus.PARTIALLY_PAID.value)


def series_for(kind: DocumentKind, operator: OperatorSettings) -> NumberSeries:
    if kind is DocumentKind.CREDIT_NOTE:
        return NumberSeries("CN", operator.credit_note_number_format)
    return NumberSeries("INV", operator.invoice_number_format)


def next_number(session: Session, series: NumberSeries, issue_date: date) -> str:
    """Take the next number of the series' bucket under the counter's row lock."""
    key = series_key(series, issue_date)
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        dialect_insert(InvoiceCounter).values(key=key, last_seq=0).on_conflict_do_nothing()
    )
    seq = session.scalars(
        update(InvoiceCounter)
        .where(InvoiceCounter.key == key)
        .values(last_seq=InvoiceCounter.last_seq + 1)
        .returning(InvoiceCounter.last_seq)
    ).one()
    return format_number(series, issue_date, seq)


# An invoice numbered at commit carries this mark and a random tail until then; no real number
# starts with it (number formats are the operator's, validated by domain/invoicing).
PROVISIONAL = "~"
_UNNUMBERED = "ispbill.invoices.unnumbered"


def number_invoices_at_commit(uow: UnitOfWork, invoice_id: int, series: NumberSeries) -> None:
    """Number this invoice as the unit of work's last write (PostgreSQL).

    The counter row of a series bucket is shared by every writer that issues an invoice in it:
    taken when the invoice was issued, it was held through the rest of the transaction (a
    tick's chunk of a thousand customers), and every payment or Charge & Invoice needing a
    number waited. Taken at commit, it is held for an instant. Still gapless: the numbers go
    to the invoices present at commit (one savepoint rolled back takes its invoice and no
    number), in id order, from one ``UPDATE ... RETURNING`` per bucket."""
    pending: list[tuple[int, NumberSeries]] = uow.session.info.setdefault(_UNNUMBERED, [])
    pending.append((invoice_id, series))
    uow.last_step(_UNNUMBERED, _number_pending, order=10)


def _number_pending(uow: UnitOfWork) -> None:
    pending: list[tuple[int, NumberSeries]] = uow.session.info.pop(_UNNUMBERED, [])
    if not pending:
        return
    session = uow.session
    series_of = dict(pending)
    invoices = session.scalars(
        select(Invoice)
        .where(Invoice.id.in_(list(series_of)), Invoice.number.startswith(PROVISIONAL))
        .order_by(Invoice.id)
    )
    buckets: dict[str, list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        buckets[series_key(series_of[invoice.id], invoice.issue_date)].append(invoice)
    for key in sorted(buckets):  # key order: two committers cannot deadlock on counters
        rows = buckets[key]
        session.execute(
            pg_insert(InvoiceCounter).values(key=key, last_seq=0).on_conflict_do_nothing()
        )
        last = session.scalars(
            update(InvoiceCounter)
            .where(InvoiceCounter.key == key)
            .values(last_seq=InvoiceCounter.last_seq + len(rows))
            .returning(InvoiceCounter.last_seq)
        ).one()
        for seq, invoice in enumerate(rows, start=last - len(rows) + 1):
            invoice.number = format_number(series_of[invoice.id], invoice.issue_date, seq)
    session.flush()


@dataclass(frozen=True)
class IssueRequest:
    customer: Customer
    charges: Sequence[Charge]
    issue_date: date
    key: str
    kind: DocumentKind = DocumentKind.INVOICE
    paid_from_wallet: bool = False


def issue_from_charges(
    session: Session,
    request: IssueRequest,
    *,
    now: datetime,
    operator: OperatorSettings,
    number_at_commit: UnitOfWork | None = None,
) -> Invoice | None:
    """One invoice for the given charges (one customer, one billing date); once per key.
    With ``number_at_commit`` (a caller that does not read the number before it commits), the
    number is taken as that unit of work's last write (``number_invoices_at_commit``)."""
    existing = session.scalars(
        select(Invoice).where(Invoice.idempotency_key == request.key)
    ).first()
    if existing is not None or not request.charges:
        return existing
    customer = request.customer
    net = sum(c.net_minor for c in request.charges)
    tax = sum(c.tax_minor for c in request.charges)
    gross = net + tax
    series = series_for(request.kind, operator)
    deferred = number_at_commit is not None and number_at_commit.dialect == "postgresql"
    invoice = Invoice(
        number=(
            f"{PROVISIONAL}{uuid4().hex}"
            if deferred
            else next_number(session, series, request.issue_date)
        ),
        idempotency_key=request.key,
        kind=request.kind.value,
        customer_id=customer.id,
        issue_date=request.issue_date,
        # the customer's own payment terms win over the operator-wide setting (issue 17)
        due_date=due_date(
            request.issue_date,
            customer.payment_terms_days
            if customer.payment_terms_days is not None
            else operator.payment_terms_days,
        ),
        currency=customer.currency,
        net_minor=net,
        tax_minor=tax,
        gross_minor=gross,
        paid_minor=gross if request.paid_from_wallet else 0,
        status=(InvoiceStatus.PAID if request.paid_from_wallet else InvoiceStatus.ISSUED).value,
        issued_at=now,
    )
    session.add(invoice)
    session.flush()
    if deferred:
        assert number_at_commit is not None
        number_invoices_at_commit(number_at_commit, invoice.id, series)
    session.add_all(
        InvoiceLineRow(
            invoice_id=invoice.id,
            position=position,
            description=_line_text(c),
            service_id=c.service_id,
            period_start=c.period_start,
            period_end=c.period_end,
            quantity_num=c.quantity_num,
            quantity_den=c.quantity_den,
            unit_price_minor=c.unit_price_minor,
            net_minor=c.net_minor,
            tax_minor=c.tax_minor,
            gross_minor=c.gross_minor,
            tax_rate_bp=c.tax_rate_bp,
            tax_inclusive=c.tax_inclusive,
            kind=(
                LineKind.DISCOUNT if c.kind == ChargeKind.DISCOUNT.value else LineKind.CHARGE
            ).value,
        )
        for position, c in enumerate(request.charges, start=1)
    )
    for charge in request.charges:
        charge.invoice_id = invoice.id
    if not request.paid_from_wallet and request.kind is DocumentKind.INVOICE:
        # collections looks at the customer at the next tick (use_cases/collections/non_payers.py)
        review = customer.collection_review_at
        if review is None or review > now:
            customer.collection_review_at = now
    session.flush()
    return invoice


def _line_text(charge: Charge) -> str:
    suffix = {
        ChargeKind.REACTIVATION.value: " (reactivation)",
        ChargeKind.REFUND.value: " (refund)",
        ChargeKind.CHANGE.value: " (plan change)",
    }.get(charge.kind, "")
    return f"{charge.description}{suffix}"


def open_invoices(session: Session, customer_id: int) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(
                Invoice.customer_id == customer_id,
                Invoice.status.in_(OPEN),
                Invoice.kind == DocumentKind.INVOICE.value,
            )
            .order_by(Invoice.issue_date, Invoice.id)
            .with_for_update()
        )
    )


def unallocated_credit(session: Session, customer: Customer, invoices: Sequence[Invoice]) -> Money:
    """Money received but not matched to an invoice: the wallet plus what open invoices owe
    (every postpaid charge is invoiced, so wallet = unallocated - open due)."""
    balance = ledger.wallet_balance(session, customer.id, customer.currency)
    owed = sum(i.gross_minor - i.paid_minor for i in invoices)
    return Money(max(0, balance.minor + owed), customer.currency)


def apply_credit(
    session: Session,
    customer: Customer,
    *,
    now: datetime,
    payment_id: int | None = None,
    limit: Money | None = None,
) -> Money:
    """Pay open invoices oldest first from unallocated money; returns what was applied."""
    invoices = open_invoices(session, customer.id)
    available = unallocated_credit(session, customer, invoices)
    if limit is not None:
        available = min(available, limit)
    applied = 0
    for invoice in invoices:
        take = min(available.minor - applied, invoice.gross_minor - invoice.paid_minor)
        if take <= 0:
            break
        session.add(
            Allocation(
                invoice_id=invoice.id,
                payment_id=payment_id,
                source="payment" if payment_id else "credit",
                amount_minor=take,
                created_at=now,
            )
        )
        invoice.paid_minor += take
        invoice.status = status_for(
            Money(invoice.gross_minor, invoice.currency),
            Money(invoice.paid_minor, invoice.currency),
            voided=False,
        ).value
        applied += take
    session.flush()
    return Money(applied, customer.currency)
