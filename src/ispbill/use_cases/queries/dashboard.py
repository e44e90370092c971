"""Read models of the operator console: the customer search, the dashboard's figures.

Reads only; every listing is one or a few set-based queries whatever the number of customers
(the console must stay fast at 100,000 customers, bench/console.py). A reseller's staff user
passes its ``reseller_id`` and sees its own customers only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, func, select
from sqlalchemy.orm import Session

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.models import (
    Charge,
    Customer,
    Event,
    LedgerAccount,
    Payment,
    Plan,
    Service,
)
from ispbill.domain.customers import BalanceControl
from ispbill.domain.ledger import AccountKind, AccountRef
from ispbill.domain.lifecycle import ServiceEvent, ServiceState
from ispbill.domain.money import Money

PAGE_SIZE = 50


@dataclass(frozen=True)
class Scope:
    """Whose customers a reader may see: everybody's (both None), one reseller's, or only one
    customer's own (a customer's portal session)."""

    reseller_id: int | None = None
    customer_id: int | None = None

    def restrict(self, query: Any) -> Any:
        """``query`` (which selects from customers) limited to this reader's customers."""
        if self.reseller_id is not None:
            query = query.where(Customer.reseller_id == self.reseller_id)
        if self.customer_id is not None:
            query = query.where(Customer.id == self.customer_id)
        return query

    def admits(self, customer_id: int, reseller_id: int | None) -> bool:
        """Whether this reader may see the customer ``customer_id`` of ``reseller_id``."""
        if self.reseller_id is not None and reseller_id != self.reseller_id:
            return False
        return self.customer_id is None or customer_id == self.customer_id


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matches(search: str) -> ColumnElement[bool]:
    """Part of the name, case-insensitive (ILIKE: the trigram index on PostgreSQL), or the
    customer's id when the search is a number."""
    by_name = Customer.name.ilike(_like(search), escape="\\")
    text = search.strip().lstrip("#")
    if text.isascii() and text.isdigit() and len(text) < 12:
        return by_name | (Customer.id == int(text))
    return by_name


@dataclass(frozen=True)
class CustomerRow:
    id: int
    name: str
    status: str
    currency: str
    balance: Money
    services: dict[str, int]


@dataclass(frozen=True)
class CustomerPage:
    rows: list[CustomerRow]
    next_after: int | None


ARCHIVED = "archived"  # the customer list's filter for archived customers


def _query(scope: Scope, search: str | None, status: str | None) -> Any:
    query = scope.restrict(select(Customer.id, Customer.name, Customer.status, Customer.currency))
    if search and search.strip():
        query = query.where(_matches(search))
    if status == ARCHIVED:  # archived customers leave every other list
        return query.where(Customer.archived_at.is_not(None))
    query = query.where(Customer.archived_at.is_(None))
    if status:
        query = query.where(Customer.status == status)
    return query


def customer_page(
    session: Session,
    *,
    scope: Scope,
    search: str | None = None,
    status: str | None = None,
    after: int = 0,
    limit: int = PAGE_SIZE,
) -> CustomerPage:
    """One page of customers by id after ``after`` (keyset pagination: the cost of page 2,000
    is the cost of page 1)."""
    query = _query(scope, search, status).where(Customer.id > after).order_by(Customer.id)
    found = session.execute(query.limit(limit + 1)).all()
    more = len(found) > limit
    found = found[:limit]
    ids = [r.id for r in found]
    balances = ledger.wallet_balances(session, [(r.id, r.currency) for r in found])
    states: dict[int, dict[str, int]] = defaultdict(dict)
    if ids:
        for customer_id, state, count in session.execute(
            select(Service.customer_id, Service.state, func.count())
            .where(Service.customer_id.in_(ids))
            .group_by(Service.customer_id, Service.state)
        ):
            states[customer_id][state] = int(count)
    rows = [
        CustomerRow(r.id, r.name, r.status, r.currency, balances[r.id], states.get(r.id, {}))
        for r in found
    ]
    return CustomerPage(rows, ids[-1] if more and ids else None)


def iter_customers(
    session: Session, *, scope: Scope, search: str | None = None, status: str | None = None
) -> Iterator[CustomerRow]:
    """Every matching customer, a page at a time (the CSV export)."""
    after = 0
    while True:
        page = customer_page(
            session, scope=scope, search=search, status=status, after=after, limit=1000
        )
        yield from page.rows
        if page.next_after is None:
            return
        after = page.next_after


# -- dashboard ----------------------------------------------------------------------------------


def _month(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.substr(cast(column, String), 1, 7)  # SQLite keeps 'YYYY-MM-DD HH:MM:SS'


def month_keys(now: datetime, months: int) -> list[str]:
    keys: list[str] = []
    year, month = now.year, now.month
    for _ in range(months):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(keys))


def _month_start(key: str) -> datetime:
    year, month = key.split("-")
    return datetime(int(year), int(month), 1, tzinfo=UTC)


@dataclass
class Dashboard:
    months: list[str]
    # currency -> month -> minor units
    revenue: dict[str, dict[str, int]] = field(default_factory=dict)
    payments: dict[str, dict[str, int]] = field(default_factory=dict)
    payment_counts: dict[str, int] = field(default_factory=dict)
    # state -> counts at the end of each month (the last one: now)
    states: dict[str, list[int]] = field(default_factory=dict)
    at_risk: list[AtRisk] = field(default_factory=list)


@dataclass(frozen=True)
class AtRisk:
    customer_id: int
    name: str
    balance: Money
    due: Money
    next_due_at: datetime


def _sums(
    session: Session, scope: Scope, model: Any, amount: Any, at: Any, since: datetime
) -> dict[str, dict[str, int]]:
    month = _month(at, session.get_bind().dialect.name).label("month")
    query = (
        select(model.currency, month, func.sum(amount), func.count())
        .join(Customer, Customer.id == model.customer_id)
        .where(at >= since)
        .group_by(model.currency, month)
    )
    result: dict[str, dict[str, int]] = defaultdict(dict)
    for currency, key, total, _count in session.execute(scope.restrict(query)):
        result[currency][key] = int(total or 0)
    return dict(result)


def dashboard(session: Session, *, scope: Scope, now: datetime, months: int = 6) -> Dashboard:
    keys = month_keys(now, months)
    since = _month_start(keys[0])
    board = Dashboard(months=keys)
    board.revenue = _sums(session, scope, Charge, Charge.gross_minor, Charge.charged_at, since)
    board.payments = _sums(
        session, scope, Payment, Payment.amount_minor, Payment.received_at, since
    )
    board.states = service_states_over_time(session, scope=scope, keys=keys, now=now)
    board.at_risk = customers_at_risk(session, scope=scope, now=now)
    return board


def service_states_over_time(
    session: Session, *, scope: Scope, keys: list[str], now: datetime
) -> dict[str, list[int]]:
    """Services per state at the end of each month: today's counts, walked back through the
    state events (each carries the state it left) of the months shown."""
    current: dict[str, int] = dict.fromkeys((s.value for s in ServiceState), 0)
    query = scope.restrict(
        select(Service.state, func.count())
        .join(Customer, Customer.id == Service.customer_id)
        .group_by(Service.state)
    )
    for state, count in session.execute(query):
        current[state] = int(count)
    boundaries = [_month_start(k) for k in keys[1:]]  # end of month i = start of month i+1
    since = boundaries[0] if boundaries else now
    moves = session.execute(
        scope.restrict(
            select(Event.occurred_at, Event.kind, Event.figures)
            .join(Customer, Customer.id == Event.customer_id)
            .where(
                Event.subject_type == "service",
                Event.kind.like("service.%"),
                Event.occurred_at >= since,
            )
            .order_by(Event.occurred_at.desc(), Event.id.desc())
        )
    ).all()
    series: dict[str, list[int]] = {state: [count] for state, count in current.items()}
    counts = dict(current)
    index = 0
    for boundary in reversed(boundaries):
        while index < len(moves) and moves[index].occurred_at >= boundary:
            _undo(counts, moves[index].kind, moves[index].figures or {})
            index += 1
        for state in series:
            series[state].append(counts[state])
    return {state: list(reversed(values)) for state, values in series.items()}


def _undo(counts: dict[str, int], kind: str, figures: dict[str, Any]) -> None:
    if kind == ServiceEvent.CREATED.value:
        counts[ServiceState.PENDING.value] -= 1
        return
    to_state = kind.removeprefix("service.")
    from_state = figures.get("from")
    if to_state in counts and isinstance(from_state, str) and from_state in counts:
        counts[to_state] -= 1
        counts[from_state] += 1


def customers_at_risk(
    session: Session, *, scope: Scope, now: datetime, days: int = 7, limit: int = 50
) -> list[AtRisk]:
    """Prepaid customers whose wallet does not cover the periods their active (or starting)
    services renew for in the next ``days`` days (at the plans' list prices): the ones to call this week."""
    due = (
        select(
            Service.customer_id.label("customer_id"),
            func.sum(Plan.price_minor * func.coalesce(Service.period_months, 1)).label("due"),
            func.min(Service.next_due_at).label("next_due_at"),
        )
        .join(Plan, Plan.id == Service.plan_id)
        .where(
            Service.state.in_([ServiceState.ACTIVE.value, ServiceState.PENDING.value]),
            Service.next_due_at <= now + timedelta(days=days),
        )
        .group_by(Service.customer_id)
        .subquery()
    )
    wallet = and_(
        LedgerAccount.customer_id == Customer.id,
        LedgerAccount.kind == AccountKind.WALLET.value,
        LedgerAccount.currency == Customer.currency,
    )
    balance = func.coalesce(LedgerAccount.balance_minor, 0)
    query = scope.restrict(
        select(Customer.id, Customer.name, Customer.currency, balance, due.c.due, due.c.next_due_at)
        .join(due, due.c.customer_id == Customer.id)
        .outerjoin(LedgerAccount, wallet)
        .where(Customer.balance_control == BalanceControl.PREPAID.value, balance < due.c.due)
        .order_by(due.c.next_due_at, Customer.id)
        .limit(limit)
    )
    return [
        AtRisk(cid, name, Money(int(bal), cur), Money(int(amount), cur), at)
        for cid, name, cur, bal, amount, at in session.execute(query)
    ]


def wallet_code(customer: Customer) -> str:
    return AccountRef.wallet(customer.id, customer.currency).code
