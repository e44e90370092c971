"""Splynx "Create invoices for consumed services": monthly statements for prepaid customers.

Splynx seed: "If the option to Create invoices (after charge&invoice) is enabled in finance
settings, Splynx will generate an invoice for consumed services on the first day of the next
month." ispbill issues, for each prepaid customer and each past month (in the customer's
timezone), one invoice of the charges the wallet already paid that month and that no invoice
lists yet; it is issued paid and dated the first day of the next month. Off by default
(``prepaid_monthly_statement``); the tick runs it once per run, in chunks of customers.

Several processes may run it at once (a tick per range of customers, two workers): each chunk
locks its customers (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the per-customer mutex a payment
and the tick take) and reads their charges after the lock, so a customer another run holds is
left to it and a statement is issued once. SQLite serialises the writers (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import select

from ispbill.adapters.db.invoice_store import IssueRequest, issue_from_charges
from ispbill.adapters.db.models import Charge, Customer
from ispbill.adapters.db.settings_store import OperatorSettings
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import ChargeKind
from ispbill.domain.calendar import local_date
from ispbill.domain.customers import BalanceControl
from ispbill.domain.invoicing import DocumentKind


def first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def issue_monthly_statements(
    uow_factory: Callable[[], UnitOfWork],
    *,
    now: datetime,
    operator: OperatorSettings,
    chunk_size: int = 1000,
) -> int:
    """Issue every statement due up to ``now``; returns how many were issued."""
    if not operator.prepaid_monthly_statement:
        return 0
    issued = 0
    after = 0
    while True:
        with uow_factory() as uow:
            uow.begin_write()
            customers = _lock_prepaid_customers_with_uninvoiced(uow, after, chunk_size)
            if not customers:
                return issued
            issued += _issue_for(uow, customers, now=now, operator=operator)
            uow.commit()
        after = customers[-1].id


def _lock_prepaid_customers_with_uninvoiced(
    uow: UnitOfWork, after: int, limit: int
) -> list[Customer]:
    """The next chunk of customers with uninvoiced charges, locked; those another writer holds
    are skipped. Their charges are read by the next statement, so after the lock: a statement
    another run committed meanwhile is seen (its charges carry the invoice) and not repeated."""
    has_uninvoiced = (
        select(Charge.customer_id)
        .where(Charge.invoice_id.is_(None), Charge.kind != ChargeKind.REFUND.value)
        .distinct()
    )
    query = (
        select(Customer)
        .where(
            Customer.id > after,
            Customer.balance_control == BalanceControl.PREPAID.value,
            Customer.id.in_(has_uninvoiced),
        )
        .order_by(Customer.id)
        .limit(limit)
    )
    if uow.dialect == "postgresql":
        query = query.with_for_update(of=Customer, skip_locked=True)
    return list(uow.session.scalars(query))


def _issue_for(
    uow: UnitOfWork, customers: list[Customer], *, now: datetime, operator: OperatorSettings
) -> int:
    by_id = {c.id: c for c in customers}
    charges = uow.session.scalars(
        select(Charge)
        .where(
            Charge.customer_id.in_(list(by_id)),
            Charge.invoice_id.is_(None),
            Charge.kind != ChargeKind.REFUND.value,
        )
        .order_by(Charge.customer_id, Charge.charged_at, Charge.id)
    )
    months: dict[tuple[int, date], list[Charge]] = defaultdict(list)
    for charge in charges:
        zone = by_id[charge.customer_id].billing_timezone
        charged_on = local_date(charge.charged_at, zone)
        month = date(charged_on.year, charged_on.month, 1)
        if first_of_next_month(month) <= local_date(now, zone):
            months[(charge.customer_id, month)].append(charge)
    issued = 0
    for (customer_id, month), items in months.items():
        request = IssueRequest(
            customer=by_id[customer_id],
            charges=items,
            issue_date=first_of_next_month(month),
            key=f"statement:{customer_id}:{month:%Y-%m}",
            kind=DocumentKind.INVOICE,
            paid_from_wallet=True,
        )
        # nothing reads the number before the commit: taken as the last write, briefly
        statement = issue_from_charges(
            uow.session, request, now=now, operator=operator, number_at_commit=uow
        )
        if statement is not None:
            issued += 1
    return issued
