"""Discounts (issue 17): add one to a service or a customer, list them, end one.

A discount applies to the periods starting on or after the day it is added (local), for N of
them or until a date; the tick prices it (``domain/billing``: a negative charge of kind
``discount`` per charge it reduces, on the same invoice). Ending a discount keeps the periods
already discounted and stops it for every period starting after today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.lookups import MAX_ID, by_id
from ispbill.adapters.db.models import Charge as ChargeRow
from ispbill.adapters.db.models import Customer, DiscountRow
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import ChargeKind
from ispbill.domain.calendar import local_date
from ispbill.domain.dates import check_date
from ispbill.domain.discounts import check_discount
from ispbill.domain.errors import NotFound, ValidationError
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money
from ispbill.use_cases.billing.extras import parse_amount
from ispbill.use_cases.billing.reevaluation import reevaluate_customer
from ispbill.use_cases.payments.recording import lock_customer, lock_service

DISCOUNT_ADDED = "discount.added"
DISCOUNT_ENDED = "discount.ended"


@dataclass(frozen=True)
class DiscountView:
    id: int
    customer_id: int
    service_id: int | None
    percent: int | None
    amount: Money | None
    periods: int | None
    until: date | None
    starts_on: date
    ended_on: date | None
    reason: str
    given: Money  # what the discount took off so far (gross)


def add_discount(
    uow: UnitOfWork,
    *,
    customer_id: int | None = None,
    service_id: int | None = None,
    percent: int | None = None,
    amount: str | None = None,
    periods: int | None = None,
    until: date | None = None,
    reason: str = "",
    now: datetime,
    actor: str,
) -> DiscountView:
    """A discount on a service (``service_id``) or on every service of a customer
    (``customer_id``), from the periods starting today (the customer's local day)."""
    if (customer_id is None) == (service_id is None):
        raise ValidationError("customer", "give exactly one of customer and service")
    if until is not None:
        check_date("until", until)
    if service_id is not None:
        customer, service = lock_service(uow, service_id)
        if service.state == ServiceState.ENDED.value:
            raise ValidationError("service", f"service {service.id} has ended")
    else:
        assert customer_id is not None
        customer = lock_customer(uow, customer_id)
    today = local_date(now, customer.billing_timezone)
    money = parse_amount(amount, None, customer.currency, "amount") if amount is not None else None
    cleaned = check_discount(
        percent=percent,
        amount=money,
        currency=customer.currency,
        periods=periods,
        until=until,
        starts_on=today,
        reason=reason,
    )
    reevaluate_customer(uow, customer.id, now=now, actor=actor)  # due periods first, as they were
    row = DiscountRow(
        customer_id=customer.id,
        service_id=service_id,
        percent=percent,
        amount_minor=money.minor if money is not None else None,
        currency=customer.currency,
        periods=periods,
        until=until,
        starts_on=today,
        ended_on=None,
        reason=cleaned,
        created_at=now,
        actor=actor,
    )
    uow.session.add(row)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=DISCOUNT_ADDED,
        subject_type="service" if service_id is not None else "customer",
        subject_id=service_id if service_id is not None else customer.id,
        customer_id=customer.id,
        reason=cleaned,
        figures={
            "discount": row.id,
            "percent": percent,
            "amount": str(money) if money is not None else None,
            "periods": periods,
            "until": until.isoformat() if until else None,
            "starts_on": today.isoformat(),
        },
    )
    # a deactivated prepaid service may be affordable once discounted
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    uow.commit()
    return _view(uow, row)


def end_discount(uow: UnitOfWork, *, discount_id: int, now: datetime, actor: str) -> DiscountView:
    """No period starting after today (local) is discounted; those discounted stay so."""
    customer_id = discount_customer(uow, discount_id)
    uow.session.rollback()
    customer = lock_customer(uow, customer_id)
    row = uow.session.get(DiscountRow, discount_id)
    assert row is not None
    if row.ended_on is not None:
        raise ValidationError("discount", f"discount {row.id} already ended on {row.ended_on}")
    today = local_date(now, customer.billing_timezone)
    row.ended_on = today
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=DISCOUNT_ENDED,
        subject_type="service" if row.service_id is not None else "customer",
        subject_id=row.service_id if row.service_id is not None else customer.id,
        customer_id=customer.id,
        reason=row.reason,
        figures={"discount": row.id, "ended_on": today.isoformat()},
    )
    uow.session.flush()
    view = _view(uow, row)
    uow.commit()
    return view


def list_discounts(uow: UnitOfWork, *, customer_id: int | None = None) -> list[DiscountView]:
    query = select(DiscountRow).order_by(DiscountRow.id)
    if customer_id is not None:
        by_id(uow.session, Customer, customer_id, field="customer")
        query = query.where(DiscountRow.customer_id == customer_id)
    return [_view(uow, row) for row in uow.session.scalars(query)]


def discount_customer(uow: UnitOfWork, discount_id: int) -> int:
    """The customer a discount belongs to (for scope checks at the edge)."""
    found = (
        uow.session.scalar(select(DiscountRow.customer_id).where(DiscountRow.id == discount_id))
        if 0 < discount_id <= MAX_ID
        else None
    )
    if found is None:
        raise NotFound("discount", discount_id, field="discount")
    return found


def _view(uow: UnitOfWork, row: DiscountRow) -> DiscountView:
    given = uow.session.scalar(
        select(func.coalesce(func.sum(ChargeRow.gross_minor), 0)).where(
            ChargeRow.discount_id == row.id, ChargeRow.kind == ChargeKind.DISCOUNT.value
        )
    )
    return DiscountView(
        id=row.id,
        customer_id=row.customer_id,
        service_id=row.service_id,
        percent=row.percent,
        amount=Money(row.amount_minor, row.currency) if row.amount_minor is not None else None,
        periods=row.periods,
        until=row.until,
        starts_on=row.starts_on,
        ended_on=row.ended_on,
        reason=row.reason,
        given=Money(-int(given or 0), row.currency),
    )
