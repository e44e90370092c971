"""Read models of the console's operator-wide lists: the event log, payments, invoices and
credit notes, with the filters of the API's ``GET /events``, ``/payments``, ``/invoices`` and
``/credit-notes``.

Newest first by id, a page at a time by keyset (``id < before``): never OFFSET and never a
COUNT, so page 2,000 costs what page 1 costs at 100,000 customers. A reseller's reader sees
the rows of its own customers only, as does an API token of a reseller (``Scope``); rows of no
customer (operator-wide events) are then left out. The API's lists (``use_cases/queries/*_lists``)
build their queries with the same functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ispbill.adapters.db.models import Customer, Event, Invoice, Notification, Payment, TopUpRule
from ispbill.use_cases.queries.dashboard import Scope

PAGE_SIZE = 100
Row = TypeVar("Row", Event, Payment, Invoice, TopUpRule, Notification)


@dataclass(frozen=True)
class EventFilter:
    customer_id: int | None = None
    kind: str | None = None
    kind_prefix: str | None = None
    subject_type: str | None = None
    subject_id: int | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None  # exclusive


@dataclass(frozen=True)
class PaymentFilter:
    customer_id: int | None = None
    method: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None  # exclusive
    reversed: bool | None = None


@dataclass(frozen=True)
class DocumentFilter:
    kinds: tuple[str, ...]
    customer_id: int | None = None
    status: str | None = None
    issued_from: date | None = None
    issued_to: date | None = None  # inclusive, as the API's issued_to


@dataclass(frozen=True)
class TopUpFilter:
    customer_id: int | None = None
    enabled: bool | None = None


@dataclass(frozen=True)
class NotificationFilter:
    customer_id: int | None = None
    status: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class Listed(Generic[Row]):
    """One page: its rows, the names of their customers, and where the next page starts."""

    rows: list[Row]
    names: dict[int, str]
    next_before: int | None


def scoped(query: Any, column: Any, scope: Scope) -> Any:
    """Only the rows whose customer ``column`` is one of the reader's customers (for the API's
    lists as for the console's)."""
    if scope.reseller_id is not None:
        mine = select(Customer.id).where(Customer.reseller_id == scope.reseller_id)
        query = query.where(column.in_(mine.scalar_subquery()))
    if scope.customer_id is not None:
        query = query.where(column == scope.customer_id)
    return query


def events_query(scope: Scope, wanted: EventFilter) -> Any:
    query = scoped(select(Event), Event.customer_id, scope)
    if wanted.customer_id is not None:
        query = query.where(Event.customer_id == wanted.customer_id)
    if wanted.kind is not None:
        query = query.where(Event.kind == wanted.kind)
    if wanted.kind_prefix is not None:
        query = query.where(Event.kind.startswith(wanted.kind_prefix, autoescape=True))
    if wanted.subject_type is not None:
        query = query.where(Event.subject_type == wanted.subject_type)
    if wanted.subject_id is not None:
        query = query.where(Event.subject_id == wanted.subject_id)
    if wanted.occurred_from is not None:
        query = query.where(Event.occurred_at >= wanted.occurred_from)
    if wanted.occurred_to is not None:
        query = query.where(Event.occurred_at < wanted.occurred_to)
    return query


def payments_query(scope: Scope, wanted: PaymentFilter) -> Any:
    query = scoped(select(Payment), Payment.customer_id, scope)
    if wanted.customer_id is not None:
        query = query.where(Payment.customer_id == wanted.customer_id)
    if wanted.method is not None:
        query = query.where(Payment.method == wanted.method)
    if wanted.received_from is not None:
        query = query.where(Payment.received_at >= wanted.received_from)
    if wanted.received_to is not None:
        query = query.where(Payment.received_at < wanted.received_to)
    if wanted.reversed is not None:
        column = Payment.reversed_by_id
        query = query.where(column.is_not(None) if wanted.reversed else column.is_(None))
    return query


def documents_query(scope: Scope, wanted: DocumentFilter) -> Any:
    query = scoped(
        select(Invoice).where(Invoice.kind.in_(wanted.kinds)), Invoice.customer_id, scope
    )
    if wanted.customer_id is not None:
        query = query.where(Invoice.customer_id == wanted.customer_id)
    if wanted.status is not None:
        query = query.where(Invoice.status == wanted.status)
    if wanted.issued_from is not None:
        query = query.where(Invoice.issue_date >= wanted.issued_from)
    if wanted.issued_to is not None:
        query = query.where(Invoice.issue_date <= wanted.issued_to)
    return query


def top_ups_query(scope: Scope, wanted: TopUpFilter) -> Any:
    """The automatic top-up rules, as the API's ``GET /top-up-rules``."""
    query = scoped(select(TopUpRule), TopUpRule.customer_id, scope)
    if wanted.customer_id is not None:
        query = query.where(TopUpRule.customer_id == wanted.customer_id)
    if wanted.enabled is not None:
        query = query.where(TopUpRule.enabled == wanted.enabled)
    return query


def notifications_query(scope: Scope, wanted: NotificationFilter) -> Any:
    """The customer e-mail outbox, as the API's ``GET /notifications``."""
    query = scoped(select(Notification), Notification.customer_id, scope)
    if wanted.customer_id is not None:
        query = query.where(Notification.customer_id == wanted.customer_id)
    if wanted.status is not None:
        query = query.where(Notification.status == wanted.status)
    if wanted.kind is not None:
        query = query.where(Notification.kind == wanted.kind)
    return query


def page(
    session: Session,
    query: Any,
    model: Any = None,
    *,
    before: int | None,
    limit: int | None = None,
) -> Listed[Any]:
    """The ``limit`` (a page) newest rows of ``query`` below id ``before``: one index range
    scan on the primary key, plus one query for the page's customer names. ``model`` is the
    listed table, by default the one the query selects."""
    limit = limit or PAGE_SIZE
    model = model if model is not None else query.column_descriptions[0]["entity"]
    if before is not None:
        query = query.where(model.id < before)
    rows = list(session.scalars(query.order_by(model.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Listed(rows, customer_names(session, rows), rows[-1].id if more and rows else None)


def customer_names(session: Session, rows: Sequence[Any]) -> dict[int, str]:
    ids = {r.customer_id for r in rows if r.customer_id is not None}
    if not ids:
        return {}
    found = session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(ids)))
    return {row.id: row.name for row in found}
