"""Builders and read-backs for the time-travel scenarios, plus the books check.

Everything goes through the use cases (catalog, customers, services, payments, settings, the
tick), each at an explicit instant: a scenario is a list of dated calls, so "three months
later" is just a later ``now``. Read-backs return plain tuples of exact values (minor units,
dates, fractions) so a scenario can assert whole sequences, not counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any, NamedTuple

from sqlalchemy import select

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.models import (
    Allocation,
    Charge,
    Customer,
    Event,
    Invoice,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
    Service,
)
from ispbill.bootstrap import App
from ispbill.domain.invoicing import status_for
from ispbill.domain.money import Money
from ispbill.use_cases.billing import tick as billing
from ispbill.use_cases.billing.tick import TickReport
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog import plan_prices
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, plan_id_of
from ispbill.use_cases.payments import recording as payments
from ispbill.use_cases.service_lifecycle import new_services as services

ACTOR = "scenario"
CLASS = "Home"
SMALL_CHUNK = 2  # every scenario ticks in chunks this small, so chunking is always exercised


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC instant (customers bill in UTC unless a scenario says otherwise)."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def days(start: date, stop: date) -> Iterator[date]:
    """Every date from ``start`` to ``stop`` inclusive."""
    current = start
    while current <= stop:
        yield current
        current += timedelta(days=1)


# --- builders ---------------------------------------------------------------------------------


def add_class(app: App, now: datetime, name: str = CLASS) -> None:
    with app.uow() as uow:
        catalog.add_class(uow, spec=catalog.NewClass(name=name), now=now, actor=ACTOR)


def add_plan(
    app: App,
    now: datetime,
    name: str,
    price: str,
    *,
    cycle: str = "customer",
    period_months: tuple[str, ...] = (),
) -> None:
    spec = catalog.NewPlan(
        name=name,
        price=price,
        currency="USD",
        download="50M",
        upload="10M",
        cycle=cycle,
        period_months=period_months,
    )
    with app.uow() as uow:
        catalog.add_plan(uow, spec=spec, now=now, actor=ACTOR)


def set_price(app: App, now: datetime, plan: str, amount: str, effective: date) -> None:
    """The plan's price becomes ``amount`` from ``effective`` (decided at ``now``)."""
    with app.uow() as uow:
        plan_prices.change_plan_price(
            uow,
            plan_id=plan_id_of(uow, plan),
            amount=amount,
            effective=effective,
            now=now,
            actor=ACTOR,
        )


def add_customer(app: App, now: datetime, name: str, **terms: Any) -> int:
    """A USD customer of class ``Home`` created at ``now`` (which fixes its cycle's origin)."""
    with app.uow() as uow:
        class_id = customer_class_id_of(uow, CLASS)
        spec = customer_cases.NewCustomer(
            name=name, customer_class_id=class_id, currency="USD", **terms
        )
        return customer_cases.add_customer(uow, spec=spec, now=now, actor=ACTOR).id


def add_service(app: App, now: datetime, customer: int, plan: str, **terms: Any) -> int:
    with app.uow() as uow:
        spec = services.NewService(customer_id=customer, plan_id=plan_id_of(uow, plan), **terms)
        return services.add_service(uow, spec=spec, now=now, actor=ACTOR).id


def pay(app: App, now: datetime, customer: int, amount: str, key: str) -> payments.Recorded:
    spec = payments.NewPayment(
        customer_id=customer, amount=amount, method="cash", reference=key, idempotency_key=key
    )
    with app.uow() as uow:
        return payments.record_payment(uow, spec=spec, now=now, actor=ACTOR)


def set_setting(app: App, now: datetime, key: str, raw: str) -> None:
    with app.uow() as uow:
        settings_store.set_value(uow, key=key, raw=raw, now=now, actor=ACTOR)


def tick(app: App, now: datetime, chunk_size: int = SMALL_CHUNK) -> TickReport:
    return billing.tick(app.uow, now=now, chunk_size=chunk_size)


def tick_daily(
    app: App, first: date, last: date, *, hour: int = 6, chunk_size: int = SMALL_CHUNK
) -> list[TickReport]:
    """One tick a day at ``hour`` UTC, from ``first`` to ``last`` inclusive."""
    return [tick(app, at(d.year, d.month, d.day, hour), chunk_size) for d in days(first, last)]


# --- read-backs -------------------------------------------------------------------------------


class ChargeView(NamedTuple):
    service: int
    kind: str
    start: date
    end: date  # exclusive: the next period's start
    quantity: Fraction
    gross: int
    charged_at: datetime
    invoiced: bool


class InvoiceView(NamedTuple):
    issue_date: date
    gross: int
    paid: int
    status: str
    periods: tuple[tuple[int, date | None, date | None], ...]  # (service, start, end) per line


class EventView(NamedTuple):
    kind: str
    subject: int
    reason: str
    at: datetime
    figures: dict[str, Any]


def charges(app: App, customer: int | None = None) -> list[ChargeView]:
    query = select(Charge).order_by(Charge.charged_at, Charge.service_id, Charge.id)
    if customer is not None:
        query = query.where(Charge.customer_id == customer)
    with app.uow() as uow:
        return [
            ChargeView(
                c.service_id,
                c.kind,
                c.period_start,
                c.period_end,
                Fraction(c.quantity_num, c.quantity_den),
                c.gross_minor,
                c.charged_at,
                c.invoice_id is not None,
            )
            for c in uow.session.scalars(query)
        ]


def periods(app: App, service: int) -> list[tuple[date, date]]:
    """A service's charged periods as the seeds print them: first and last day, inclusive."""
    with app.uow() as uow:
        rows = uow.session.scalars(
            select(Charge).where(Charge.service_id == service).order_by(Charge.period_start)
        )
        return [(c.period_start, c.period_end - timedelta(days=1)) for c in rows]


def invoices(app: App, customer: int) -> list[InvoiceView]:
    with app.uow() as uow:
        rows = uow.session.scalars(
            select(Invoice).where(Invoice.customer_id == customer).order_by(Invoice.id)
        )
        return [
            InvoiceView(
                i.issue_date,
                i.gross_minor,
                i.paid_minor,
                i.status,
                tuple(
                    (line.service_id or 0, line.period_start, line.period_end) for line in i.lines
                ),
            )
            for i in rows
        ]


def allocations(app: App, customer: int) -> list[tuple[str, int, str]]:
    """(invoice issue date, amount, source) of every allocation, oldest first."""
    with app.uow() as uow:
        rows = uow.session.execute(
            select(Invoice.issue_date, Allocation.amount_minor, Allocation.source)
            .join(Invoice, Invoice.id == Allocation.invoice_id)
            .where(Invoice.customer_id == customer)
            .order_by(Allocation.id)
        ).all()
        return [(d.isoformat(), amount, source) for d, amount, source in rows]


def wallet(app: App, customer: int) -> int:
    with app.uow() as uow:
        return ledger.wallet_balance(uow.session, customer, "USD").minor


def state(app: App, service: int) -> tuple[str, str | None]:
    with app.uow() as uow:
        row = uow.session.get(Service, service)
        assert row is not None
        return row.state, row.state_reason


def customer_status(app: App, customer: int) -> str:
    with app.uow() as uow:
        row = uow.session.get(Customer, customer)
        assert row is not None
        return row.status


def events(app: App, customer: int, prefix: str = "service.") -> list[EventView]:
    """The customer's events whose kind starts with ``prefix``, oldest first
    (``service.created`` left out: it is the builder's, not the engine's)."""
    with app.uow() as uow:
        rows = uow.session.scalars(
            select(Event)
            .where(Event.customer_id == customer, Event.kind.startswith(prefix))
            .order_by(Event.occurred_at, Event.id)
        )
        return [
            EventView(e.kind, e.subject_id, e.reason, e.occurred_at, dict(e.figures))
            for e in rows
            if e.kind != "service.created"
        ]


def postings(app: App, customer: int | None = None) -> list[tuple[str, str, int]]:
    """(idempotency key, account code, amount) of every posting, in storage order."""
    query = (
        select(LedgerTransaction.idempotency_key, LedgerAccount.code, LedgerPosting.amount_minor)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .order_by(LedgerPosting.id)
    )
    if customer is not None:
        query = query.where(LedgerTransaction.customer_id == customer)
    with app.uow() as uow:
        return [(k, code, int(a)) for k, code, a in uow.session.execute(query).all()]


# --- the books --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Books:
    """What ``check_books`` verified, for a scenario that wants to assert more."""

    wallets: dict[int, int]
    revenue: int


def check_books(app: App) -> Books:
    """The ledger balances and agrees with the documents, on any scenario's final state.

    * ``ledger.check``: every transaction sums to zero; every cached balance equals its postings.
    * Every charge row has exactly its ledger transaction: the wallet debited the gross (credited
      for a refund), revenue and tax payable credited the net and the tax.
    * Every wallet equals payments + opening funds - charges + credit notes, from the documents,
      with money refunds and reversals (ledger-only corrections) taken from the ledger.
    * Every invoice's paid amount equals its allocations (or the whole gross when the wallet paid
      it at issue, which leaves no allocation), and its status follows from the amounts.
    """
    with app.uow() as uow:
        session = uow.session
        assert ledger.check(session) == []
        legs: dict[int, dict[str, int]] = defaultdict(dict)
        for transaction_id, code, amount in session.execute(
            select(
                LedgerPosting.transaction_id, LedgerAccount.code, LedgerPosting.amount_minor
            ).join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        ):
            kind = code.split(":")[0]
            legs[transaction_id][kind] = legs[transaction_id].get(kind, 0) + int(amount)
        expected_wallet: dict[int, int] = defaultdict(int)
        for charge in session.scalars(select(Charge)):
            sign = 1 if charge.kind == "refund" else -1
            want = {"wallet": sign * charge.gross_minor}
            if charge.net_minor:
                want["revenue"] = -sign * charge.net_minor
            if charge.tax_minor:
                want["tax_payable"] = -sign * charge.tax_minor
            assert legs[charge.transaction_id] == want, (charge.id, legs[charge.transaction_id])
            expected_wallet[charge.customer_id] += sign * charge.gross_minor
        for customer_id, amount in session.execute(
            select(LedgerTransaction.customer_id, LedgerPosting.amount_minor)
            .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
            .where(
                LedgerAccount.kind == "wallet",
                LedgerTransaction.kind.in_(
                    ("payment", "opening_funds", "card_redemption", "refund", "reversal")
                ),
            )
        ):
            expected_wallet[customer_id] += int(amount)
        wallets = {
            int(cid): int(balance)
            for cid, balance in session.execute(
                select(LedgerAccount.customer_id, LedgerAccount.balance_minor).where(
                    LedgerAccount.kind == "wallet"
                )
            )
        }
        for customer_id, balance in wallets.items():
            assert balance == expected_wallet.get(customer_id, 0), customer_id
        allocated: dict[int, int] = defaultdict(int)
        for invoice_id, amount in session.execute(
            select(Allocation.invoice_id, Allocation.amount_minor).where(
                Allocation.reversed_at.is_(None)  # a reversed payment's matching is undone
            )
        ):
            allocated[invoice_id] += int(amount)
        for invoice in session.scalars(select(Invoice)):
            if invoice.id in allocated or invoice.paid_minor != invoice.gross_minor:
                assert invoice.paid_minor == allocated.get(invoice.id, 0), invoice.number
            gross = Money(invoice.gross_minor, invoice.currency)
            paid = Money(invoice.paid_minor, invoice.currency)
            voided = invoice.status == "void"  # cancelled by a full credit note (issue 17)
            assert invoice.status == status_for(gross, paid, voided=voided).value, invoice.number
        revenue = sum(
            int(b)
            for b in session.scalars(
                select(LedgerAccount.balance_minor).where(LedgerAccount.kind == "revenue")
            )
        )
        return Books(wallets=wallets, revenue=revenue)
