"""Read models of payments for the API: the payment list (the console's filters,
``operator_lists.payments_query``), one payment with what of it is allocated to invoices, and
the imported bank statement lines.

A reader sees the payments of its own customers; another's is ``None`` ("not found").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from ispbill.adapters.db.keyset import Slice, keyset_slice, mapped
from ispbill.adapters.db.models import Allocation, BankStatementLine, Payment
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.money import Money
from ispbill.use_cases.queries.customer_lists import visible_row
from ispbill.use_cases.queries.dashboard import Scope
from ispbill.use_cases.queries.operator_lists import PaymentFilter, payments_query


@dataclass(frozen=True)
class PaymentView:
    id: int
    customer_id: int
    amount: Money
    method: str
    reference: str | None
    received_at: datetime
    recorded_at: datetime
    reversed: bool
    allocated: Money


@dataclass(frozen=True)
class BankLineView:
    id: int
    booked_on: date
    amount: Money
    reference: str | None
    counterparty_name: str | None
    counterparty_iban: str | None
    description: str
    status: str
    reason: str
    customer_id: int | None
    payment_id: int | None


def payment_views(uow: UnitOfWork, rows: list[Payment]) -> list[PaymentView]:
    """Payments with what of each is allocated to invoices (one query for them all)."""
    ids = [p.id for p in rows]
    allocated: dict[int, int] = (
        {
            payment_id: int(total or 0)
            for payment_id, total in uow.session.execute(
                select(Allocation.payment_id, func.sum(Allocation.amount_minor))
                .where(Allocation.payment_id.in_(ids), Allocation.reversed_at.is_(None))
                .group_by(Allocation.payment_id)
            ).all()
            if payment_id is not None
        }
        if ids
        else {}
    )
    return [
        PaymentView(
            id=p.id,
            customer_id=p.customer_id,
            amount=Money(p.amount_minor, p.currency),
            method=p.method,
            reference=p.reference,
            received_at=p.received_at,
            recorded_at=p.recorded_at,
            reversed=p.reversed_by_id is not None,
            allocated=Money(allocated.get(p.id, 0), p.currency),
        )
        for p in rows
    ]


def list_payments(
    uow: UnitOfWork, scope: Scope, wanted: PaymentFilter, *, after: int | None, limit: int
) -> Slice[PaymentView]:
    """Payments of the reader's customers, newest first."""
    query = payments_query(scope, wanted)
    found = keyset_slice(
        uow.session, query, Payment.id, after=after, limit=limit, newest_first=True
    )
    return mapped(found, lambda rows: payment_views(uow, rows))


def find_payment(uow: UnitOfWork, scope: Scope, payment_id: int) -> PaymentView | None:
    """One payment of the reader's customers, or None (absent or another's)."""
    row = uow.session.get(Payment, payment_id)
    if row is None or visible_row(uow.session, scope, row.customer_id) is None:
        return None
    return payment_views(uow, [row])[0]


def bank_line_view(row: BankStatementLine) -> BankLineView:
    return BankLineView(
        id=row.id,
        booked_on=row.booked_on,
        amount=Money(row.amount_minor, row.currency),
        reference=row.reference,
        counterparty_name=row.counterparty_name,
        counterparty_iban=row.counterparty_iban,
        description=row.description,
        status=row.status,
        reason=row.reason,
        customer_id=row.customer_id,
        payment_id=row.payment_id,
    )


def list_bank_lines(
    uow: UnitOfWork, status: str | None, *, after: int | None, limit: int
) -> Slice[BankLineView]:
    """Imported statement lines by id (operator-wide); ``status`` e.g. unmatched."""
    query = select(BankStatementLine)
    if status is not None:
        query = query.where(BankStatementLine.status == status)
    found = keyset_slice(uow.session, query, BankStatementLine.id, after=after, limit=limit)
    return mapped(found, lambda rows: [bank_line_view(r) for r in rows])
