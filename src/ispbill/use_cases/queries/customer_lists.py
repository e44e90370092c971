"""Read models of customers for the API: the customer list and one customer with its balance,
its wallet's recent postings and its ledger history.

A reader sees the customers its ``Scope`` admits (a reseller its own, a customer session only
itself); another's is ``None``, which the caller answers as "not found", never "forbidden".
Lists come a slice at a time by keyset on the id (``adapters/db/keyset.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.keyset import Slice, keyset_slice, mapped
from ispbill.adapters.db.models import Customer, LedgerAccount, LedgerPosting, LedgerTransaction
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.ledger import AccountRef
from ispbill.domain.money import Money
from ispbill.use_cases.catalog.customer_records import record_values
from ispbill.use_cases.queries.dashboard import Scope


@dataclass(frozen=True)
class CustomerView:
    id: int
    name: str
    status: str
    reseller_id: int | None
    class_id: int
    currency: str
    balance_control: str
    billing_timezone: str
    invoicing_mode: str
    locale: str
    credit_limit: Money | None
    minimum_balance: Money
    created_at: datetime
    balance: Money
    billing_cycle: str = ""
    cycle_n: int = 1
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    billing_address: str | None = None
    service_address: str | None = None
    service_gps: str | None = None
    company_registration_number: str | None = None
    vat_id: str | None = None
    internal_notes: str | None = None  # staff only: never shown to the subscriber
    archived_at: datetime | None = None


@dataclass(frozen=True)
class CustomerFilter:
    search: str | None = None
    archived: bool = False  # the archived customers instead of the others
    status: str | None = None
    balance_control: str | None = None
    reseller_id: int | None = None
    class_id: int | None = None


@dataclass(frozen=True)
class PostingView:
    posting_id: int
    transaction_id: int
    kind: str
    memo: str
    amount: Money
    effective_at: datetime
    recorded_at: datetime


@dataclass(frozen=True)
class WalletView:
    customer_id: int
    balance: Money
    postings: list[PostingView]


def customer_view(row: Customer, balance: Money) -> CustomerView:
    record = record_values(row)
    return CustomerView(
        id=row.id,
        name=row.name,
        status=row.status,
        reseller_id=row.reseller_id,
        class_id=row.class_id,
        currency=row.currency,
        balance_control=row.balance_control,
        billing_timezone=row.billing_timezone,
        invoicing_mode=row.invoicing_mode,
        locale=row.locale,
        credit_limit=(
            Money(row.credit_limit_minor, row.currency)
            if row.credit_limit_minor is not None
            else None
        ),
        minimum_balance=Money(row.minimum_balance_minor, row.currency),
        created_at=row.created_at,
        balance=balance,
        billing_cycle=row.cycle_kind,
        cycle_n=row.cycle_n,
        emails=tuple(record["emails"]),
        phones=tuple(record["phones"]),
        billing_address=row.billing_address,
        service_address=row.service_address,
        service_gps=record["service_gps"],
        company_registration_number=row.company_registration_number,
        vat_id=row.vat_id,
        internal_notes=row.internal_notes,
        archived_at=row.archived_at,
    )


def visible_row(session: Session, scope: Scope, customer_id: int | None) -> Customer | None:
    """The customer when it exists and the reader may see it (for the other read models)."""
    found = session.get(Customer, customer_id) if customer_id is not None else None
    if found is None or not scope.admits(found.id, found.reseller_id):
        return None
    return found


def is_visible(uow: UnitOfWork, scope: Scope, customer_id: int | None) -> bool:
    """Whether the customer exists and the reader may see it."""
    return visible_row(uow.session, scope, customer_id) is not None


def find_customer(uow: UnitOfWork, scope: Scope, customer_id: int) -> CustomerView | None:
    """One customer with its wallet balance, or None when absent or not the reader's."""
    row = visible_row(uow.session, scope, customer_id)
    if row is None:
        return None
    return customer_view(row, ledger.wallet_balance(uow.session, row.id, row.currency))


def shown(uow: UnitOfWork, row: Customer) -> CustomerView:
    """A customer a use case has just written, with its balance."""
    return customer_view(row, ledger.wallet_balance(uow.session, row.id, row.currency))


def list_customers(
    uow: UnitOfWork, scope: Scope, wanted: CustomerFilter, *, after: int | None, limit: int
) -> Slice[CustomerView]:
    """Customers by id with their balances (one more query for the slice's balances)."""
    query = scope.restrict(select(Customer)).where(
        Customer.archived_at.is_not(None) if wanted.archived else Customer.archived_at.is_(None)
    )
    if wanted.search:
        query = query.where(Customer.name.icontains(wanted.search, autoescape=True))
    if wanted.status is not None:
        query = query.where(Customer.status == wanted.status)
    if wanted.balance_control is not None:
        query = query.where(Customer.balance_control == wanted.balance_control)
    if wanted.reseller_id is not None:
        query = query.where(Customer.reseller_id == wanted.reseller_id)
    if wanted.class_id is not None:
        query = query.where(Customer.class_id == wanted.class_id)

    def shape(rows: list[Customer]) -> list[CustomerView]:
        balances = ledger.wallet_balances(uow.session, [(c.id, c.currency) for c in rows])
        return [customer_view(c, balances[c.id]) for c in rows]

    found = keyset_slice(uow.session, query, Customer.id, after=after, limit=limit)
    return mapped(found, shape)


def _postings(row: Customer) -> Any:
    code = AccountRef.wallet(row.id, row.currency).code
    return (
        select(LedgerPosting, LedgerTransaction)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerAccount.code == code)
    )


def _posting_view(posting: LedgerPosting, transaction: LedgerTransaction) -> PostingView:
    return PostingView(
        posting_id=posting.id,
        transaction_id=transaction.id,
        kind=transaction.kind,
        memo=transaction.memo,
        amount=Money(posting.amount_minor, posting.currency),
        effective_at=transaction.effective_at,
        recorded_at=transaction.recorded_at,
    )


def find_wallet(
    uow: UnitOfWork, scope: Scope, customer_id: int, *, recent: int
) -> WalletView | None:
    """The wallet's balance and its ``recent`` latest postings (by effective time)."""
    row = visible_row(uow.session, scope, customer_id)
    if row is None:
        return None
    latest = uow.session.execute(
        _postings(row)
        .order_by(LedgerTransaction.effective_at.desc(), LedgerPosting.id.desc())
        .limit(recent)
    ).all()
    return WalletView(
        customer_id=row.id,
        balance=ledger.wallet_balance(uow.session, row.id, row.currency),
        postings=[_posting_view(p, t) for p, t in latest],
    )


def ledger_entries(
    uow: UnitOfWork,
    scope: Scope,
    customer_id: int,
    *,
    kind: str | None,
    after: int | None,
    limit: int,
) -> Slice[PostingView] | None:
    """The wallet's postings, newest first, a slice at a time (None: not the reader's)."""
    row = visible_row(uow.session, scope, customer_id)
    if row is None:
        return None
    query = _postings(row)
    if kind is not None:
        query = query.where(LedgerTransaction.kind == kind)
    found = keyset_slice(
        uow.session,
        query,
        LedgerPosting.id,
        after=after,
        limit=limit,
        newest_first=True,
        scalars=False,
        row_id=lambda pair: int(pair[0].id),
    )
    return mapped(found, lambda rows: [_posting_view(p, t) for p, t in rows])
