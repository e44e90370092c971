"""Read model of one customer's page (the console's customer page, the portal's home, the
walled garden): its wallet and recent postings, services with their network logins, payments,
the automatic top-up rule, the plans it may move to, its events.

Reads only, a handful of queries per page whatever the customer's history (lists are capped).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ispbill.adapters.db import event_log
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.invoice_store import open_invoices, unallocated_credit
from ispbill.adapters.db.models import (
    Customer,
    Event,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
    NetworkIdentity,
    Payment,
    Plan,
    Service,
    TopUpRule,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.ledger import AccountRef
from ispbill.domain.money import Money

POSTINGS_SHOWN = 50
PAYMENTS_SHOWN = 100
EVENTS_SHOWN = 100


def services(session: Session, customer_id: int) -> list[Service]:
    return list(
        session.scalars(
            select(Service).where(Service.customer_id == customer_id).order_by(Service.id)
        )
    )


def payments(session: Session, customer_id: int, *, limit: int = PAYMENTS_SHOWN) -> list[Payment]:
    """The latest payments, newest first."""
    return list(
        session.scalars(
            select(Payment)
            .where(Payment.customer_id == customer_id)
            .order_by(Payment.received_at.desc(), Payment.id.desc())
            .limit(limit)
        )
    )


def top_up_rule(session: Session, customer_id: int) -> TopUpRule | None:
    return session.scalar(select(TopUpRule).where(TopUpRule.customer_id == customer_id))


def balance(session: Session, customer: Customer) -> Money:
    return ledger.wallet_balance(session, customer.id, customer.currency)


def wallet_postings(
    session: Session, customer: Customer, *, limit: int = POSTINGS_SHOWN
) -> list[tuple[Money, LedgerTransaction]]:
    """The wallet's latest postings (signed amount, transaction), newest first."""
    wallet = AccountRef.wallet(customer.id, customer.currency)
    rows = session.execute(
        select(LedgerPosting, LedgerTransaction)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerAccount.code == wallet.code)
        .order_by(LedgerTransaction.effective_at.desc(), LedgerPosting.id.desc())
        .limit(limit)
    ).all()
    return [(Money(p.amount_minor, p.currency), t) for p, t in rows]


def identities(session: Session, service_ids: list[int]) -> dict[int, NetworkIdentity]:
    """The network login of each service that has one, by service id."""
    found = session.scalars(
        select(NetworkIdentity).where(NetworkIdentity.service_id.in_(service_ids))
    )
    return {row.service_id: row for row in found}


def plans_for(session: Session, currency: str) -> list[Plan]:
    """The active plans a customer of ``currency`` may be given, by name."""
    return list(
        session.scalars(
            select(Plan).where(Plan.active.is_(True), Plan.currency == currency).order_by(Plan.name)
        )
    )


def customer_of_service(session: Session, service_id: int) -> Customer | None:
    found = session.get(Service, service_id)
    return session.get(Customer, found.customer_id) if found is not None else None


@dataclass(frozen=True)
class CustomerDetail:
    customer: Customer
    balance: Money
    # what a refund may pay back: money that pays an open invoice is not credit
    credit: Money
    postings: list[tuple[Money, LedgerTransaction]]
    services: list[Service]
    identities: dict[int, NetworkIdentity]
    plans: list[Plan]
    payments: list[Payment]
    top_up: TopUpRule | None
    events: list[Event]


def customer_detail(uow: UnitOfWork, customer: Customer) -> CustomerDetail:
    """Everything the console's customer page shows of ``customer`` from storage."""
    session = uow.session
    owned = services(session, customer.id)
    return CustomerDetail(
        customer=customer,
        balance=balance(session, customer),
        credit=unallocated_credit(session, customer, open_invoices(session, customer.id)),
        postings=wallet_postings(session, customer),
        services=owned,
        identities=identities(session, [s.id for s in owned]),
        plans=plans_for(session, customer.currency),
        payments=payments(session, customer.id),
        top_up=top_up_rule(session, customer.id),
        events=event_log.for_customer(uow, customer.id, limit=EVENTS_SHOWN),
    )
