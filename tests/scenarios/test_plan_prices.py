"""A plan's price from a day (issue 17): each service pays it from its first billing period
starting on or after that day; periods already charged never change."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from ispbill.adapters.db.models import Event, PlanPrice
from ispbill.bootstrap import App
from ispbill.domain.errors import ValidationError
from ispbill.use_cases.catalog import plan_prices
from ispbill.use_cases.catalog.name_lookups import plan_id_of

from .helpers import (
    ACTOR,
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    charges,
    check_books,
    set_price,
    tick,
    wallet,
)

T0 = at(2025, 12, 1, 9)


def _build(app: App) -> tuple[int, int]:
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    prepaid = add_customer(app, T0, "Pre", available_funds="200.00")
    add_service(app, T0, prepaid, "Home 30", active_from=date(2026, 1, 1))
    postpaid = add_customer(app, T0, "Post", balance_control="postpaid", invoicing_mode="backward")
    add_service(app, T0, postpaid, "Home 30", active_from=date(2026, 1, 1))
    return prepaid, postpaid


def _periods(app: App, customer: int) -> list[tuple[date, int]]:
    return [(c.start, c.gross) for c in charges(app, customer)]


def test_a_price_change_mid_period_applies_from_the_next_period(app: App) -> None:
    prepaid, postpaid = _build(app)
    tick(app, at(2026, 1, 1, 6))
    assert _periods(app, prepaid) == [(date(2026, 1, 1), 30_00)]

    set_price(app, at(2026, 1, 14, 10), "Home 30", "40.00", date(2026, 1, 15))
    tick(app, at(2026, 2, 1, 6))
    tick(app, at(2026, 3, 1, 6))

    # prepaid is charged at each period's start: January at 30.00, then 40.00
    assert _periods(app, prepaid) == [
        (date(2026, 1, 1), 30_00),
        (date(2026, 2, 1), 40_00),
        (date(2026, 3, 1), 40_00),
    ]
    assert wallet(app, prepaid) == 200_00 - 110_00
    # backward: January started before the 15th, so its charge at its end is the old price
    assert _periods(app, postpaid) == [(date(2026, 1, 1), 30_00), (date(2026, 2, 1), 40_00)]
    with app.uow() as uow:
        rows = uow.session.scalars(select(PlanPrice).order_by(PlanPrice.valid_from)).all()
        assert [(r.price_minor, r.valid_from, r.valid_to) for r in rows] == [
            (30_00, date(2025, 12, 1), date(2026, 1, 15)),
            (40_00, date(2026, 1, 15), None),
        ]
        event = uow.session.scalars(select(Event).where(Event.kind == "plan.price_changed")).one()
        assert (event.actor, event.figures) == (
            ACTOR,
            {"old_price": "30.00 USD", "new_price": "40.00 USD", "from": "2026-01-15"},
        )
    check_books(app)


def test_a_period_already_charged_is_not_recharged(app: App) -> None:
    prepaid, _ = _build(app)
    tick(app, at(2026, 1, 1, 6))
    # decided on January 10, effective January 1: January is charged already and stays so
    set_price(app, at(2026, 1, 10, 10), "Home 30", "25.00", date(2026, 1, 1))
    again = tick(app, at(2026, 1, 10, 11))
    assert again.charges == 0
    tick(app, at(2026, 2, 1, 6))
    assert _periods(app, prepaid) == [(date(2026, 1, 1), 30_00), (date(2026, 2, 1), 25_00)]
    check_books(app)


def test_a_price_on_a_later_day_waits_for_its_period(app: App) -> None:
    """Decided in advance: the periods before the day keep the old price."""
    prepaid, _ = _build(app)
    set_price(app, T0, "Home 30", "35.00", date(2026, 3, 1))
    for month in (1, 2, 3):
        tick(app, at(2026, month, 1, 6))
    assert _periods(app, prepaid) == [
        (date(2026, 1, 1), 30_00),
        (date(2026, 2, 1), 30_00),
        (date(2026, 3, 1), 35_00),
    ]


@pytest.mark.parametrize(
    ("amount", "effective", "field", "rule"),
    [
        ("31.00", date(2025, 12, 1), "from", "not after 2025-12-01"),
        ("30.00", date(2026, 2, 1), "amount", "already 30.00"),
        ("-1.00", date(2026, 2, 1), "amount", "must not be negative"),
        ("1.005", date(2026, 2, 1), "amount", ""),
        ("31.00", date(2300, 1, 1), "from", "out of range"),
    ],
)
def test_a_refused_price_names_the_field_and_writes_nothing(
    app: App, amount: str, effective: date, field: str, rule: str
) -> None:
    _build(app)
    with app.uow() as uow, pytest.raises(ValidationError) as refused:
        plan_prices.change_plan_price(
            uow,
            plan_id=plan_id_of(uow, "Home 30"),
            amount=amount,
            effective=effective,
            now=at(2026, 1, 5),
            actor=ACTOR,
        )
    assert refused.value.field == field
    assert rule in str(refused.value)
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count(PlanPrice.id))) == 1
        assert (
            uow.session.scalar(
                select(func.count(Event.id)).where(Event.kind == "plan.price_changed")
            )
            == 0
        )
