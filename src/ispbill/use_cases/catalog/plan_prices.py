"""A plan's price from a day (issue 17): the price history the engine reads.

A change applies to each service from its first billing period starting on or after its day
(``domain/billing.ServiceTerms.price_on``); periods already charged keep their charges, since
the engine never charges a period twice. The history is append-only: the open row (the
current price, no end) is closed on the new day and the new price opens. ``plans.price_minor``
follows the open row: it is the plan's list price, shown in listings and used for new quotes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import Plan, PlanPrice
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.dates import check_date
from ispbill.domain.errors import ValidationError
from ispbill.domain.ledger import check_amount_range
from ispbill.domain.money import Money

PRICE_CHANGED = "plan.price_changed"


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One price of a plan, for the screens: from ``valid_from`` to ``valid_to`` (exclusive)."""

    amount: Money
    valid_from: date
    valid_to: date | None


def price_history(uow: UnitOfWork, *, plan_id: int) -> list[PriceRow]:
    """The plan's prices, oldest first; the last has no end."""
    plan = by_id(uow.session, Plan, plan_id, field="plan")
    return [
        PriceRow(Money(row.price_minor, plan.currency), row.valid_from, row.valid_to)
        for row in sorted(plan.prices, key=lambda r: r.valid_from)
    ]


def change_plan_price(
    uow: UnitOfWork,
    *,
    plan_id: int,
    amount: str,
    effective: date,
    now: datetime,
    actor: str,
) -> PriceRow:
    """Price ``plan_id`` at ``amount`` (major units, the plan's currency) from ``effective``."""
    uow.begin_write()
    plan = by_id(uow.session, Plan, plan_id, field="plan")
    price = Money.from_major(amount, plan.currency, field="amount")
    if price.is_negative:
        raise ValidationError("amount", "must not be negative")
    check_amount_range(price, "amount")
    check_date("from", effective)
    history = sorted(plan.prices, key=lambda r: r.valid_from)
    current = history[-1] if history else None
    if current is not None:
        if effective <= current.valid_from:
            raise ValidationError(
                "from",
                f"{effective.isoformat()} is not after {current.valid_from.isoformat()}, the day "
                f"the current price {Money(current.price_minor, plan.currency)} took effect; a "
                "price history only grows",
            )
        if current.price_minor == price.minor:
            raise ValidationError("amount", f"the price is already {price}")
        current.valid_to = effective
    old = Money(plan.price_minor, plan.currency)
    row = PlanPrice(price_minor=price.minor, valid_from=effective, valid_to=None, created_at=now)
    plan.prices.append(row)
    plan.price_minor = price.minor
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=PRICE_CHANGED,
        subject_type="plan",
        subject_id=plan.id,
        figures={"old_price": str(old), "new_price": str(price), "from": effective.isoformat()},
    )
    uow.commit()
    return PriceRow(price, effective, None)
